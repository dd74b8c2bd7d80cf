"""The base of every result object: frozen, comparable, and safe to hand out.

Results are frozen dataclasses, but a frozen dataclass holding a ``torch.Tensor`` is not
immutable: ``res.coef[0] = 5`` would change the result in place, and ``res1 == res2``
raises (``bool`` of a tensor with several elements). :class:`FrozenResult` closes both
holes:

* reading a tensor (or numpy array) attribute returns a copy (``res.coef`` is yours to
  change; the result keeps its own values);
* ``==`` compares field by field, tensors and arrays by value (dtype, shape and entries,
  NaN equal to NaN), skipping fields declared with ``field(compare=False)`` (wall-clock
  times), so two runs of the same deterministic fit compare equal.

Use it as ``@dataclass(frozen=True, eq=False) class XResult(FrozenResult): ...`` (``eq=False``
keeps the dataclass from generating its own ``__eq__``).
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import torch


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind
                                                                in "fc")))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        return (a.dtype == b.dtype and a.shape == b.shape
                and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)))
                and bool(torch.equal(torch.isnan(a), torch.isnan(b))))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):
        # nested results (possibly plain dataclasses holding tensors): field by field
        return all(_same(object.__getattribute__(a, f.name), object.__getattribute__(b, f.name))
                   for f in fields(a) if f.compare)
    return bool(a == b)


class FrozenResult:
    """Mixin for frozen result dataclasses that hold tensors (see the module docstring)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return value.clone() if isinstance(value, torch.Tensor) else value.copy()
        return value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _same(object.__getattribute__(self, f.name), object.__getattribute__(other, f.name))
            for f in fields(self)  # type: ignore[arg-type]
            if f.compare
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, but holds mutable tensors
