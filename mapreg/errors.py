"""Warnings and errors raised by mapreg's solvers."""

from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """A solver stopped before its optimality test (KKT residual or duality gap) passed.

    The message always states the achieved residual and the tolerance asked for.
    """


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` by a solver called with ``strict=True``."""


def report_nonconvergence(message: str, strict: bool, stacklevel: int = 3) -> None:
    """Warn (default) or raise (``strict=True``) that a solver did not converge."""
    if strict:
        raise ConvergenceError(message)
    import warnings

    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)
