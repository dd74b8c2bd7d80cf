"""Validation at the public boundary: THE place for checks.

Every message names the parameter, the allowed range and the value given. A wrong kind of
object (a string where a number belongs, an array of strings for ``X``) raises
``TypeError``; a number or array of the right kind but a bad value raises ``ValueError``.

Numbers are accepted as Python ``int`` / ``float``, numpy scalars (``np.int64(3)``), 0-d or
1-element arrays and 1-element tensors; they are returned as Python numbers, which is also
what the messages show (``got 3``, never ``got array(3)``).

Float64 range
-------------
``FLOAT_MIN = sys.float_info.min`` (~2.2e-308) is the smallest normal float64; below it
numbers lose precision and soon round to 0. ``FLOAT_LIM = 1 / FLOAT_MIN`` (~4.5e307) is
below ``sys.float_info.max``, so every x in ``[FLOAT_MIN, FLOAT_LIM]`` has a normal
reciprocal as well. Quantities whose reciprocals are used (prior scales: kappa = 1/sigma^2
or 1/b; the noise: 1/noise^2 weighs the likelihood; the canonical lam) must lie there.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

DTYPE = torch.float64

#: Smallest normal positive float64 (~2.2e-308).
FLOAT_MIN = sys.float_info.min
#: Largest x with 1/x >= FLOAT_MIN (~4.5e307): x and 1/x both normal positive float64.
FLOAT_LIM = 1.0 / FLOAT_MIN
#: Largest finite float64 (~1.8e308).
FLOAT_MAX = sys.float_info.max

_REAL_KINDS = "iuf"  # numpy dtype kinds accepted as real numbers: int, unsigned, float


def _kind_of(value: Any) -> str:
    """'an array of dtype ... and shape ...', 'a tensor ...' or 'a <type>'."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, torch.Tensor):
        return f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _show(number: int | float) -> str:
    """repr of a number, huge integers abbreviated (~1e400)."""
    if isinstance(number, int) and abs(number) > 10**15:
        return f"~{'-' if number < 0 else ''}1e{len(str(abs(number))) - 1}"
    return repr(number)


def as_number(name: str, value: Any, what: str = "a real number") -> int | float:
    """``value`` as a Python int or float, or ``TypeError`` naming ``what`` was expected.

    Accepts Python / numpy real scalars, 0-d or 1-element arrays and tensors of a real
    dtype. Refuses ``bool`` (``True`` is not a scale), complex numbers, strings, ``None``.
    """
    raw = value
    if isinstance(value, (np.ndarray, torch.Tensor)):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise TypeError(f"{name} must be {what}, a single number; got {_kind_of(raw)}")
        real = (value.dtype.kind in _REAL_KINDS if isinstance(value, np.ndarray)
                else (value.dtype.is_floating_point or not (value.dtype.is_complex
                      or value.dtype == torch.bool)))
        if not real:
            raise TypeError(f"{name} must be {what}; got {_kind_of(raw)}")
        value = value.item()
    elif isinstance(value, np.generic):
        if value.dtype.kind not in _REAL_KINDS:
            raise TypeError(f"{name} must be {what}; got {value!r} ({type(value).__name__})")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {what}; got {raw!r} ({type(raw).__name__})")
    return int(value) if isinstance(value, Integral) else float(value)


def _to_float(number: int | float) -> float:
    """float(number), with Python ints beyond the float64 range mapped to inf."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive finite real number, else raise.

    >>> check_positive("b", -1.0)
    Traceback (most recent call last):
    ValueError: b must be a positive finite number; got -1.0
    """
    what = "a positive finite number"
    number = as_number(name, value, what)
    x = _to_float(number)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be {what}; got {_show(number)}")
    return x


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0, else raise."""
    what = "a finite number >= 0"
    number = as_number(name, value, what)
    x = _to_float(number)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be {what}; got {_show(number)}")
    return x


def check_positive_int(name: str, value: Any, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer >= 1 (and <= ``maximum``), else raise.

    Python and numpy integers and 1-element integer arrays / tensors are accepted; a float
    such as ``3.0`` is refused (TypeError).
    """
    what = "an integer >= 1" if maximum is None else f"an integer between 1 and {maximum:_}"
    number = as_number(name, value, what)
    if not isinstance(number, int):
        raise TypeError(f"{name} must be {what}; got {number!r} ({type(value).__name__})")
    if number < 1 or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {what}; got {_show(number)}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (or a numpy bool), else TypeError.

    ``strict="no"`` or ``train=1`` are refused rather than read by truthiness.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them (TypeError for
    a value that is not a string)."""
    choices = list(choices)
    listed = ", ".join(map(repr, choices))
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed}; got {value!r} ({type(value).__name__})")
    if value not in choices:
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def power_range(power: float) -> tuple[float, float]:
    """The x > 0 for which x**power and x**-power both lie in [FLOAT_MIN, FLOAT_LIM].

    That is ``[FLOAT_MIN**(1/|power|), FLOAT_LIM**(1/|power|)]``: for ``power = 2``
    (sigma, noise) about 1.5e-154 .. 6.7e153, for ``power = 1`` (b) 2.2e-308 .. 4.5e307.
    """
    p = abs(power)
    return FLOAT_MIN ** (1.0 / p), FLOAT_LIM ** (1.0 / p)


def check_scale(name: str, value: Any, power: float) -> float:
    """A positive scale s whose power s**power and its reciprocal are normal float64.

    Used for the prior scales (kappa = 1/sigma^2, 1/b) and the noise (1/noise^2), so that
    no derived quantity rounds to 0 or overflows to inf::

        sigma must be between 1.49e-154 and 6.7e+153 so that sigma^2 and 1/sigma^2 are
        finite positive float64 numbers; got 1e-170
    """
    value = check_positive(name, value)
    lo, hi = power_range(power)
    if not lo <= value <= hi:
        sup = f"{name}^{power:g}" if power != 1 else name
        raise ValueError(
            f"{name} must be between {lo:.3g} and {hi:.3g} so that {sup} and 1/{sup} are "
            f"finite positive float64 numbers (not rounded to 0 or inf); got {value!r}"
        )
    return value


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def check_derived(name: str, value: float, formula: str, log10_value: float | None = None,
                  lo: float = FLOAT_MIN, hi: float = FLOAT_LIM) -> float:
    """A quantity computed from checked inputs (e.g. lam = noise^2 / sigma^2) must lie in
    ``[lo, hi]`` (default: normal positive float64 with a normal reciprocal).

    ``formula`` names the inputs (``"noise^2 / sigma^2 with noise=2, sigma=1e-150"``);
    ``log10_value`` (computed in logs by the caller) lets the message state the true
    magnitude when ``value`` itself overflowed or underflowed.
    """
    if lo <= value <= hi:
        return value
    exact = log10_value if log10_value is not None else _log10(value)
    shown = f"{value:.3g}" if 0 < value < math.inf else f"~1e{exact:.0f}"
    raise ValueError(
        f"{name} = {formula} = {shown} is outside {lo:.3g} .. {hi:.3g}, the range in which "
        f"it and its reciprocal are finite positive float64 numbers; change the inputs so "
        f"that {name} lies in it"
    )


def _as_array(name: str, value: Any, copy: bool = True) -> torch.Tensor:
    """Any array-like (list, numpy, pandas, tensor) as a new CPU float64 tensor (with
    ``copy=False``, one that may share the caller's memory: for read-only use)."""
    if value is None:
        raise TypeError(f"{name} is required: an array of real numbers; got None")
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers; got {_kind_of(value)}")
        # computed on the CPU, in float64; .clone() so the caller's tensor is never aliased
        t = value.detach().to(device="cpu", dtype=DTYPE)
        return t.clone() if copy else t
    try:
        arr = np.asarray(value)  # pandas DataFrame/Series (any column labels), lists, ...
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a rectangular array of real numbers; got "
                        f"{_kind_of(value)} that is not one (rows of different lengths?)") from exc
    if arr.dtype.kind not in _REAL_KINDS:
        hint = " (convert it with .astype(float) if it holds numbers)" if arr.dtype.kind == "O" \
            else ""
        raise TypeError(f"{name} must hold real numbers; got {_kind_of(arr)}{hint}")
    if not copy and arr.dtype == np.float64 and arr.flags.writeable and arr.flags.c_contiguous:
        return torch.from_numpy(arr)  # shares memory: the caller only reads it
    # a fresh, writable float64 copy: read-only inputs are fine and never aliased
    return torch.from_numpy(np.array(arr, dtype=np.float64, order="C", copy=True))


def check_data(X: Any, y: Any, copy: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, y)`` as new float64 CPU tensors after checking shapes and values.

    ``X`` must be 2-D ``(n_samples, n_features)``; ``y`` 1-D ``(n_samples,)`` (a column
    ``(n_samples, 1)`` is flattened); both non-empty and finite. Accepted: lists, numpy
    arrays (read-only ones too), pandas DataFrames / Series (whatever their labels),
    tensors on any device; the result is a copy, so the caller's data are never aliased --
    unless ``copy=False``, for callers that only read the data (no copy of a large float64
    array that is already in memory).
    """
    Xt = _as_array("X", X, copy)
    yt = _as_array("y", y, copy)
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
    _check_finite("X", Xt)
    _check_finite("y", yt)
    return Xt, yt


def check_vector(name: str, value: Any, size: int | None = None) -> torch.Tensor:
    """``value`` as a new 1-D, non-empty, finite float64 CPU tensor (with ``size`` entries
    if given), else TypeError / ValueError naming ``name``."""
    t = _as_array(name, value)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {tuple(t.shape)}")
    if size is not None and t.numel() != size:
        raise ValueError(f"{name} must have one entry per feature ({size}); got {t.numel()}")
    _check_finite(name, t)
    return t


def _check_finite(name: str, t: torch.Tensor) -> None:
    if math.isfinite(float(t.sum())):  # fast path: a NaN or inf would make the sum one too
        return
    bad = int((~torch.isfinite(t)).sum())  # (or the sum of finite values overflowed)
    if bad:
        raise ValueError(f"{name} must contain only finite values; found {bad} NaN/Inf entries")
