"""Validation at the public boundary: every message names the parameter, the allowed
range and the value that was given."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real
from typing import Any

import torch

DTYPE = torch.float64


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive finite real number, else raise ValueError.

    >>> check_positive("b", -1.0)
    Traceback (most recent call last):
    ValueError: b must be a positive finite number; got -1.0
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0, else raise ValueError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if value is None:
        raise ValueError(f"{name} is required; got None")
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{name} must be a numeric array or tensor; got {type(value).__name__}"
        ) from exc
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in (
        torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{name} must hold real numbers; got dtype {t.dtype}")
    return t.detach().to(device="cpu", dtype=DTYPE)  # computed on the CPU, in float64


def check_data(X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, y)`` as float64 tensors after checking shapes and values.

    ``X`` must be 2-D ``(n_samples, n_features)``; ``y`` 1-D ``(n_samples,)`` (a column
    ``(n_samples, 1)`` is flattened); both non-empty and finite. The inputs are copied to
    CPU float64 tensors (a tensor on a GPU is moved), so the caller's arrays are never
    aliased.
    """
    Xt = _as_tensor("X", X)
    yt = _as_tensor("y", y)
    if Xt.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (n_samples, n_features); got shape {tuple(Xt.shape)}"
        )
    if yt.ndim == 2 and yt.shape[1] == 1:
        yt = yt.reshape(-1)
    if yt.ndim != 1:
        raise ValueError(
            f"y must be a 1-D array of shape (n_samples,); got shape {tuple(yt.shape)}"
        )
    if Xt.shape[0] == 0 or Xt.shape[1] == 0:
        raise ValueError(
            f"X must have at least one sample and one feature; got shape {tuple(Xt.shape)}"
        )
    if Xt.shape[0] != yt.shape[0]:
        raise ValueError(
            f"X and y must have the same number of samples; got X with {Xt.shape[0]} rows "
            f"and y with {yt.shape[0]} entries"
        )
    for name, t in (("X", Xt), ("y", yt)):
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise ValueError(f"{name} must contain only finite values; found {bad} NaN/Inf entries")
    return Xt.clone(), yt.clone()
