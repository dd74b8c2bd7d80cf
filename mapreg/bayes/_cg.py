"""Conjugate gradients on a Hessian-vector product: the one loop the MAP engines share.

No Pyro and no model here: ``hvp`` is whatever exact product the caller has (the chain rule
through a linear predictor, or a double backward through a retained trace).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def conjugate_gradient(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    max_iter: int,
    done: Callable[[torch.Tensor], bool],
    precondition: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, bool, int]:
    """Approximately solve H x = b for symmetric H by (preconditioned) conjugate gradients.

    Starts from x = 0 and stops when ``done(r)`` holds for the residual r = b - H x
    (returns ``(x, True, k)``), at a direction of non-positive curvature (``(x, False, k)``,
    x the iterate before it: 0 if it is the first) or after ``max_iter`` products
    (``(x, False, max_iter)``); k counts the Hessian-vector products.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    z = precondition(r) if precondition is not None else r
    d = z.clone()
    rz = float(r @ z)
    for k in range(1, max_iter + 1):
        Hd = hvp(d)
        curvature = float(d @ Hd)
        if not curvature > 0:
            return x, False, k
        alpha = rz / curvature
        x += alpha * d
        r -= alpha * Hd
        if done(r):
            return x, True, k
        z = precondition(r) if precondition is not None else r
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, False, max_iter
