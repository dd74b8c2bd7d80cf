"""Penalized *training*, the way d2l's weight-decay chapter does it (plain torch, no Pyro).

An ``nn.Linear(d, 1)`` is trained by full-batch gradient descent (``torch.optim.SGD``) on
d2l's mean loss, so that it reaches the canonical optimum
1/2 ||y - Xw - c||^2 + lam P(w) by a third route, the one practitioners use:

* ``"l2"``: loss (1/n) sum_i 1/2 r_i^2; the penalty enters only as the optimizer's
  ``weight_decay = lam / n`` on the weight (the bias is in its own parameter group with
  weight_decay 0, like d2l's ``train_concise``). weight_decay adds (lam/n) w to the
  gradient, the gradient of (lam/n) * 1/2 ||w||^2, so the objective is
  (1/n) [1/2 ||r||^2 + (lam/2) ||w||^2].
* ``"l1"``: loss (1/n) sum_i 1/2 r_i^2 + (lam/n) ||w||_1 written into the loss; autograd's
  subgradient of |w| (sign(w), 0 at 0) makes this the plain subgradient method. It hovers
  around the lasso solution and does **not** produce exact zeros -- that is what it is here
  to show (the MAP engine and the lasso solver use soft-thresholding instead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ._validation import (
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from .errors import report_nonconvergence

_PENALTIES = ("l2", "l1")
_HISTORY_POINTS = 200


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_penalized`.

    Attributes
    ----------
    coef, intercept
        The trained weight (1-D tensor) and bias.
    penalty, lam
        ``"l2"`` / ``"l1"`` and the canonical lambda.
    weight_decay
        The optimizer's weight_decay (lam / n for "l2", 0 for "l1").
    lr, epochs_run
        Step size and number of full-batch steps taken.
    loss_history
        d2l's mean objective, sampled at up to 200 evenly spaced epochs.
    grad_norm
        Final max-abs (sub)gradient of the mean objective, weight decay included.
    converged
        "l2": grad_norm <= tol times its initial value. "l1": always False (the
        subgradient method has no such stopping test).
    wall_time
        Seconds.
    """

    coef: torch.Tensor
    intercept: float
    penalty: str
    lam: float
    weight_decay: float
    lr: float
    epochs_run: int
    loss_history: tuple[float, ...]
    grad_norm: float
    converged: bool
    wall_time: float


def train_penalized(
    X,
    y,
    *,
    penalty: str,
    lam: float,
    epochs: int | None = None,
    lr: float | None = None,
    tol: float = 1e-10,
    strict: bool = False,
    init_scale: float = 0.0,
    seed: int = 2024,
) -> TrainResult:
    """Train ``nn.Linear`` with full-batch SGD on d2l's mean loss plus an L2 or L1 penalty.

    Objective (mean form, d2l's lambda_m = lam / n)::

        l2:  (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) * 1/2 ||w||^2  (via weight_decay)
        l1:  (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) * ||w||_1      (in the loss)

    whose minimiser is the canonical ridge / lasso optimum at ``lam``.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    penalty : {"l2", "l1"}
    lam : float
        Canonical lambda >= 0.
    epochs : int, optional
        Maximum full-batch steps (default 20000 for "l2", 5000 for "l1").
    lr : float, optional
        Step size; default 1/L with L = sigma_max([X, 1])^2 / n (+ lam/n for "l2"), the
        largest curvature of the smooth mean objective.
    tol : float
        "l2" stops when the max-abs gradient is below ``tol`` times its initial value.
    strict : bool
        For "l2", raise :class:`~mapreg.errors.ConvergenceError` instead of warning.
    init_scale, seed : float, int
        Initial weights ~ N(0, init_scale^2) i.i.d. (d2l initialises with init_scale = 1),
        drawn from a private ``torch.Generator(seed)`` so the global RNG is untouched (the
        default seed differs from the data sets' seeds, whose first draws are X itself); the
        bias starts at 0. The default 0 starts from w = 0. With lam = 0 and n < d, gradient
        descent never moves the part of the initial w orthogonal to the rows of X: that
        remnant is what makes d2l's unregularised run "overfit".
    """
    X, y = check_data(X, y)
    penalty = check_choice("penalty", penalty, _PENALTIES)
    lam = check_nonnegative("lam", lam)
    tol = check_positive("tol", tol)
    init_scale = check_nonnegative("init_scale", init_scale)
    n, d = X.shape
    if epochs is None:
        epochs = 20_000 if penalty == "l2" else 5_000
    epochs = check_positive_int("epochs", epochs)
    wd = lam / n if penalty == "l2" else 0.0
    if lr is None:
        A = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], dim=1)
        L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2 / n + wd
        lr = 1.0 / L
    lr = check_positive("lr", lr)

    start = time.perf_counter()
    net = nn.utils.skip_init(nn.Linear, d, 1, dtype=X.dtype)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        if init_scale > 0:
            gen = torch.Generator().manual_seed(seed)
            net.weight.normal_(0.0, init_scale, generator=gen)
    opt = torch.optim.SGD(
        [{"params": [net.weight], "weight_decay": wd}, {"params": [net.bias], "weight_decay": 0.0}],
        lr=lr,
    )
    every = max(1, epochs // _HISTORY_POINTS)
    history: list[float] = []
    grad0 = None
    gnorm = float("inf")
    converged = False
    epoch = 0
    for epoch in range(1, epochs + 1):  # noqa: B007 (epoch is reported)
        opt.zero_grad()
        r = net(X).squeeze(1) - y
        loss = 0.5 * (r * r).mean()
        if penalty == "l1":
            loss = loss + (lam / n) * net.weight.abs().sum()
        loss.backward()
        with torch.no_grad():
            gw = net.weight.grad + wd * net.weight
            gnorm = max(float(gw.abs().max()), float(net.bias.grad.abs().max()))
            if epoch % every == 0 or epoch == 1:
                extra = 0.5 * wd * float((net.weight * net.weight).sum())
                history.append(float(loss) + extra)
        if grad0 is None:
            grad0 = max(gnorm, 1e-300)
        if penalty == "l2" and gnorm <= tol * grad0:
            converged = True
            break
        opt.step()
    wall = time.perf_counter() - start
    if epoch % every != 0 and epoch != 1:  # always end the history with the final objective
        with torch.no_grad():
            history.append(float(loss) + 0.5 * wd * float((net.weight * net.weight).sum()))
    if penalty == "l2" and not converged:
        report_nonconvergence(
            f"d2l-style training did not converge in {epoch} epochs: gradient norm "
            f"{gnorm:.3e} > {tol:.1e} x initial {grad0:.3e}",
            strict,
        )
    return TrainResult(
        coef=net.weight.detach()[0].clone(),
        intercept=float(net.bias.detach()[0]),
        penalty=penalty,
        lam=lam,
        weight_decay=wd,
        lr=lr,
        epochs_run=epoch,
        loss_history=tuple(history),
        grad_norm=gnorm,
        converged=converged,
        wall_time=wall,
    )
