"""Exact penalized solvers: ridge (closed form) and lasso (coordinate descent).

Plain torch; this module never imports Pyro, so it is an independent path to the optimum
that the MAP engine reaches through Pyro's log joint. Both minimise the canonical
objective with an unpenalized intercept c::

    ridge:  1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2
    lasso:  1/2 ||y - Xw - c||^2 + lam ||w||_1

(scikit-learn's ``Ridge(alpha)`` is the ridge with lam = alpha; its ``Lasso(alpha)`` is the
lasso with lam = n * alpha; see :mod:`mapreg.conventions`.) Because c is unpenalized, its
optimum is c = mean(y) - mean(X) . w, so both solvers work on centred data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ._validation import (
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from .errors import report_nonconvergence

PENALTIES = ("ridge", "lasso")


@dataclass(frozen=True)
class PenalizedResult:
    """The optimum of a penalized least-squares problem.

    Attributes
    ----------
    coef, intercept
        The minimiser (w, c).
    penalty
        ``"ridge"`` or ``"lasso"``.
    lam
        lambda of the canonical objective (see the module docstring).
    objective
        The canonical objective at (coef, intercept).
    duality_gap
        Lasso: primal minus dual objective at the returned point (>= 0, 0 at the optimum);
        ridge: the largest absolute gradient entry (the closed form's residual).
    lam_max
        Lasso: the smallest lam for which w = 0 (max_j |x_j . (y - mean y)| with centred
        columns); ridge: ``inf``.
    iterations
        Coordinate-descent sweeps (0 for the closed form).
    converged
        Whether the duality gap reached its tolerance.
    wall_time
        Seconds spent in the solver.
    """

    coef: torch.Tensor
    intercept: float
    penalty: str
    lam: float
    objective: float
    duality_gap: float
    lam_max: float
    iterations: int
    converged: bool
    wall_time: float


def canonical_objective(X, y, coef, intercept, penalty: str, lam: float) -> float:
    """1/2 ||y - Xw - c||^2 + lam * P(w), P = 1/2 ||w||^2 (ridge) or ||w||_1 (lasso)."""
    penalty = check_choice("penalty", penalty, PENALTIES)
    X, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.as_tensor(coef, dtype=torch.float64)
    r = y - X @ w - float(intercept)
    pen = 0.5 * float(w @ w) if penalty == "ridge" else float(w.abs().sum())
    return 0.5 * float(r @ r) + lam * pen


def _center(X: torch.Tensor, y: torch.Tensor):
    xm, ym = X.mean(0), y.mean()
    return X - xm, y - ym, xm, ym


def ridge(X, y, lam: float) -> PenalizedResult:
    """Ridge regression in closed form.

    Minimises 1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2 over (w, c), c unpenalized::

        w = (Xc' Xc + lam I)^-1 Xc' yc        (n >= d, Cholesky)
        w = Xc' (Xc Xc' + lam I)^-1 yc        (n < d, the same w by the push-through identity)
        c = mean(y) - mean(X) . w

    with Xc, yc the centred data. ``lam = 0`` gives least squares (the minimum-norm
    solution when it is not unique).
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    start = time.perf_counter()
    Xc, yc, xm, ym = _center(X, y)
    n, d = X.shape
    if lam == 0.0:
        w = torch.linalg.lstsq(Xc, yc[:, None], driver="gelsd").solution[:, 0]
    elif n >= d:
        L = torch.linalg.cholesky(Xc.T @ Xc + lam * torch.eye(d, dtype=X.dtype))
        w = torch.cholesky_solve((Xc.T @ yc)[:, None], L)[:, 0]
    else:
        L = torch.linalg.cholesky(Xc @ Xc.T + lam * torch.eye(n, dtype=X.dtype))
        w = Xc.T @ torch.cholesky_solve(yc[:, None], L)[:, 0]
    c = float(ym - xm @ w)
    grad = -(Xc.T @ (yc - Xc @ w)) + lam * w
    wall = time.perf_counter() - start
    obj = canonical_objective(X, y, w, c, "ridge", lam)
    return PenalizedResult(
        w, c, "ridge", lam, obj, float(grad.abs().max()), float("inf"), 0, True, wall
    )


def lasso_lam_max(X, y) -> float:
    """The smallest lam at which the lasso solution is w = 0: max_j |Xc_j . yc|."""
    X, y = check_data(X, y)
    Xc, yc, _, _ = _center(X, y)
    return float((Xc.T @ yc).abs().max())


def lasso(
    X,
    y,
    lam: float,
    *,
    tol: float = 1e-12,
    max_sweeps: int = 100_000,
    strict: bool = False,
) -> PenalizedResult:
    """Lasso by cyclic coordinate descent with a duality-gap stop.

    Minimises the canonical objective 1/2 ||y - Xw - c||^2 + lam ||w||_1 over (w, c),
    c unpenalized (scikit-learn's ``Lasso(alpha)`` minimises (1/2n)||r||^2 + alpha ||w||_1,
    the same problem at lam = n * alpha).

    On centred data, each coordinate update is the soft-thresholding
    w_j <- S(w_j + x_j'r / ||x_j||^2, lam / ||x_j||^2). Sweeps alternate between all
    coordinates and the current support (as glmnet does). The dual point
    theta = r * min(1, lam / ||Xc' r||_inf) gives the gap
    P(w) - D(theta) with D(theta) = 1/2 ||yc||^2 - 1/2 ||yc - theta||^2; the solver stops when
    the gap is at most ``tol * 1/2 ||yc||^2``. Finally the point is *polished*: the linear
    system of the optimality conditions on the found support and signs is solved exactly,
    and kept if it preserves the signs and does not increase the gap.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    lam : float
        lambda >= 0. For lam >= :func:`lasso_lam_max` the solution is exactly w = 0.
    tol : float
        Relative duality-gap tolerance.
    max_sweeps : int
        Maximum number of coordinate-descent sweeps.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the gap
        tolerance is not reached.
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    tol = check_positive("tol", tol)
    max_sweeps = check_positive_int("max_sweeps", max_sweeps)
    start = time.perf_counter()
    Xc, yc, xm, ym = _center(X, y)
    n, d = X.shape
    lam_max = float((Xc.T @ yc).abs().max())
    target = tol * max(0.5 * float(yc @ yc), 1e-300)
    w = torch.zeros(d, dtype=X.dtype)
    sweeps = 0
    gap = _gap(Xc, yc, w, lam)
    if lam < lam_max and gap > target:
        w, sweeps, gap = _coordinate_descent(Xc, yc, lam, target, max_sweeps)
        polished = _polish(Xc, yc, w, lam)
        if polished is not None:
            pgap = _gap(Xc, yc, polished, lam)
            if pgap <= max(gap, target):
                w, gap = polished, pgap
    c = float(ym - xm @ w)
    wall = time.perf_counter() - start
    converged = gap <= target
    if not converged:
        report_nonconvergence(
            f"lasso coordinate descent did not converge in {sweeps} sweeps: duality gap "
            f"{gap:.3e} > tolerance {target:.3e}",
            strict,
        )
    obj = canonical_objective(X, y, w, c, "lasso", lam)
    return PenalizedResult(w, c, "lasso", lam, obj, gap, lam_max, sweeps, converged, wall)


def _gap(Xc: torch.Tensor, yc: torch.Tensor, w: torch.Tensor, lam: float) -> float:
    r = yc - Xc @ w
    primal = 0.5 * float(r @ r) + lam * float(w.abs().sum())
    corr = float((Xc.T @ r).abs().max())
    theta = r * (min(1.0, lam / corr) if corr > 0 else 1.0)
    diff = yc - theta
    dual = 0.5 * float(yc @ yc) - 0.5 * float(diff @ diff)
    return max(primal - dual, 0.0)


def _coordinate_descent(Xc, yc, lam, target, max_sweeps):
    n, d = Xc.shape
    norms = (Xc * Xc).sum(0)
    cols = [Xc[:, j] for j in range(d)]
    w = [0.0] * d
    r = yc.clone()
    sweeps = 0
    gap = float("inf")

    def sweep(indices) -> float:
        biggest = 0.0
        for j in indices:
            nj = float(norms[j])
            if nj == 0.0:
                continue
            old = w[j]
            z = old + float(cols[j] @ r) / nj
            t = lam / nj
            new = z - t if z > t else (z + t if z < -t else 0.0)
            if new != old:
                r.sub_(cols[j], alpha=new - old)
                w[j] = new
                biggest = max(biggest, abs(new - old) * nj**0.5)
        return biggest

    all_idx = range(d)
    prev_signs = None
    while sweeps < max_sweeps:
        sweep(all_idx)
        sweeps += 1
        active = [j for j in all_idx if w[j] != 0.0]
        # iterate on the active set (at most 20 sweeps) until it stops moving, then check
        for _ in range(20):
            if not active or sweeps >= max_sweeps:
                break
            step = sweep(active)
            sweeps += 1
            if step <= 1e-10 * max(float(yc.norm()), 1e-300):
                break
        wt = torch.tensor(w, dtype=Xc.dtype)
        gap = _gap(Xc, yc, wt, lam)
        if gap <= target:
            break
        signs = torch.sign(wt)
        if prev_signs is not None and torch.equal(signs, prev_signs):
            # support and signs have settled: try the exact solve on them
            polished = _polish(Xc, yc, wt, lam)
            if polished is not None:
                pgap = _gap(Xc, yc, polished, lam)
                if pgap <= target:
                    return polished, sweeps, pgap
        prev_signs = signs
    return torch.tensor(w, dtype=Xc.dtype), sweeps, gap


def _polish(Xc, yc, w, lam):
    """Solve Xc_S'(yc - Xc_S w_S) = lam sign(w_S) on the support S; None if signs change."""
    S = (w != 0).nonzero().squeeze(1)
    if S.numel() == 0 or S.numel() > Xc.shape[0]:
        return None
    XS = Xc[:, S]
    s = torch.sign(w[S])
    try:
        L = torch.linalg.cholesky(XS.T @ XS)
    except RuntimeError:
        return None
    wS = torch.cholesky_solve((XS.T @ yc - lam * s)[:, None], L)[:, 0]
    if not torch.equal(torch.sign(wS), s):
        return None
    out = torch.zeros_like(w)
    out[S] = wS
    return out


def solve_penalized(X, y, penalty: str, lam: float, **kwargs) -> PenalizedResult:
    """Dispatch to :func:`ridge` or :func:`lasso` by name."""
    penalty = check_choice("penalty", penalty, PENALTIES)
    if penalty == "ridge":
        if kwargs:
            raise ValueError(f"ridge takes no solver options; got {sorted(kwargs)}")
        return ridge(X, y, lam)
    return lasso(X, y, lam, **kwargs)
