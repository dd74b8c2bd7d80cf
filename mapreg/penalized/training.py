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
  to show (the MAP engine and the lasso solver use soft-thresholding instead). It has no
  stopping test: ``converged`` is always False and ``status`` says ``"no_stopping_test"``.
* ``"l1-prox"``: the proximal-gradient method (ISTA) on the same objective: a gradient step
  on the smooth mean loss (1/n) sum_i 1/2 r_i^2 (``torch.optim.SGD``, no momentum), then
  soft-thresholding of the weight, w <- sign(w) max(|w| - lr lam / n, 0), the exact
  minimiser of (lam/n) ||w||_1 + ||w - v||^2 / (2 lr); the bias is not thresholded. Its
  fixed points are exactly the lasso's KKT points, and its iterates have exact zeros. It
  stops on the proximal-gradient residual G = (theta_k - theta_{k+1}) / lr, which is zero
  exactly at the lasso optimum (see :func:`train_penalized`).

Why the subgradient method never reaches a zero: if w_j != 0 the step moves w_j by
lr |g_j + (lam/n) sign(w_j)| >= lr (lam/n - |g_j|), g = the smooth gradient. For a
coordinate that is zero at the optimum theta* with slack s_j = lam/n - |g_j(theta*)| > 0,
|g_j(theta)| <= |g_j(theta*)| + h_j ||theta - theta*|| (h_j the 2-norm of row j of the
Hessian A'A/n), so two consecutive iterates cannot both lie within
delta_j = lr s_j / (2 + lr h_j) of theta*: the iterates hover at distance ~ lr lam / n
(:mod:`mapreg.training_plots` sums this over the zero set and shows it on numbers).

The smooth part of the mean objective is quadratic in theta = (w, c) with Hessian
H = A'A / n + (lam/n) diag(1, ..., 1, 0), A = [X, 1]. Its curvature range [mu, L] (mu over
the directions the iterates can move in) sets everything: the stable step sizes
(lr L < 2 (1 + momentum)), the rate, and the number of epochs. d2l's data (n = 20, d = 200,
lam = 1) have L / mu = 3185 -- the coupling of the uncentred bias with the weights, not the
decay alone -- so plain gradient descent needs ~ (L/mu) ln(1/tol) = 7e4 epochs, and with
heavy-ball momentum tuned to [mu, L] ~ sqrt(L/mu) ln(1/tol) = 800 (0.2-0.3 s on 2 cores).
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .._centring import EPS
from .._results import FrozenResult
from .._validation import (
    check_bool,
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from ..errors import report_nonconvergence

_PENALTIES = ("l2", "l1", "l1-prox")
_HISTORY_POINTS = 200
_MAX_DEFAULT_EPOCHS = 1_000_000


@dataclass(frozen=True, eq=False)
class TrainResult(FrozenResult):
    """Outcome of :func:`train_penalized` (frozen; ``coef`` reads a copy).

    Attributes
    ----------
    coef, intercept
        The trained weight (1-D tensor) and bias.
    penalty, lam
        ``"l2"`` / ``"l1"`` / ``"l1-prox"`` and the canonical lambda.
    weight_decay
        The optimizer's weight_decay (lam / n for "l2", 0 for "l1" and "l1-prox").
    lr, momentum, epochs_run
        Step size, SGD momentum and number of full-batch steps taken.
    loss_history
        d2l's mean objective, sampled at up to 200 evenly spaced epochs, ending with the
        final one.
    grad_norm
        Final max-abs (sub)gradient of the mean objective, weight decay included ("l1-prox":
        the max-abs proximal-gradient residual G of the last step).
    converged
        "l2" and "l1-prox": ``grad_norm <= tol * T``, T the scale of the optimality
        condition's terms (see :func:`train_penalized`). "l1": always False -- the
        subgradient method has no stopping test.
    status
        ``"converged"``; ``"max_epochs"`` ("l2" or "l1-prox" stopped by the epoch budget,
        with a warning);
        ``"diverged"`` (a non-finite iterate, or the objective grew with a step size above
        the stability limit; with a warning); ``"no_stopping_test"`` ("l1" ran its epochs:
        how far it ended from the lasso optimum is not measured -- compare with
        :func:`mapreg.lasso`).
    curvature
        (mu, L): the smallest and largest curvature of the smooth mean objective over the
        directions the iterates move in (see the module docstring).
    wall_time
        Seconds.
    watched
        With ``watch`` given: the weights w_j, j in ``watch``, after every step taken, shape
        (steps, len(watch)) (a copy per read; steps = epochs_run, or epochs_run - 1 when
        "l2" stopped on its test before stepping); else None. ``watched_bias``: the bias
        after every step, shape (steps,).
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
    wall_time: float = field(compare=False)  # not part of the answer
    momentum: float = 0.0
    status: str = "converged"
    curvature: tuple[float, float] = (math.nan, math.nan)
    watched: torch.Tensor | None = None
    watched_bias: torch.Tensor | None = None


def curvature_range(X: torch.Tensor, wd: float) -> tuple[float, float]:
    """(mu, L) of H = A'A/n + wd diag(1, ..., 1, 0), A = [X, 1], exactly.

    wd = 0: the gradient (1/n) A'(A theta - y) lies in range(A'), so the iterates move only
    there and mu is the smallest *non-zero* eigenvalue s_min(A)^2 / n (singular values below
    max(n, d+1) eps s_max are rounding). wd > 0: H is invariant on S = span(A', e_c) (e_c
    the bias coordinate) and equals wd on its orthogonal complement, so the spectrum is that
    of the (n+1) x (n+1) matrix Q'HQ (Q an orthonormal basis of S) plus wd when d > n.
    """
    n, d = X.shape
    A = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], dim=1)
    if wd == 0.0:
        s = torch.linalg.svdvals(A if n >= d + 1 else A.T)  # tall: see _centring.svd
        s = s[s > s.max() * max(n, d + 1) * EPS]
        return float(s.min()) ** 2 / n, float(s.max()) ** 2 / n
    if n >= d:
        H = A.T @ A / n
        H[:d, :d] += wd * torch.eye(d, dtype=X.dtype)
        ev = torch.linalg.eigvalsh(H)
        return float(ev[0]), float(ev[-1])
    e_c = torch.zeros(d + 1, 1, dtype=X.dtype)
    e_c[d] = 1.0
    Q, _ = torch.linalg.qr(torch.cat([A.T, e_c], dim=1))  # (d+1) x (n+1), orthonormal columns
    AQ, q = A @ Q, Q[d]
    Hs = AQ.T @ AQ / n + wd * (torch.eye(n + 1, dtype=X.dtype) - torch.outer(q, q))
    ev = torch.linalg.eigvalsh(Hs)
    return min(float(ev[0]), wd), max(float(ev[-1]), wd)


def _rate(lr: float, momentum: float, curv: tuple[float, float]) -> float:
    """Spectral radius of SGD with heavy-ball momentum on the quadratic: the largest |z| of
    z^2 - (1 + momentum - lr lam) z + momentum = 0 over lam in [mu, L] (attained at an end)."""
    worst = 0.0
    for lam in curv:
        b = 1.0 + momentum - lr * lam
        disc = b * b - 4.0 * momentum
        if disc < 0:
            worst = max(worst, math.sqrt(momentum))
        else:
            worst = max(worst, (abs(b) + math.sqrt(disc)) / 2.0)
    return worst


def train_penalized(
    X,
    y,
    *,
    penalty: str,
    lam: float,
    epochs: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    tol: float = 1e-10,
    strict: bool = False,
    init_scale: float = 0.0,
    seed: int = 2024,
    watch: Sequence[int] | None = None,
) -> TrainResult:
    """Train ``nn.Linear`` with full-batch SGD on d2l's mean loss plus an L2 or L1 penalty.

    Objective (mean form, d2l's lambda_m = lam / n)::

        l2:       (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) * 1/2 ||w||^2  (weight_decay)
        l1:       (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) * ||w||_1  (in the loss)
        l1-prox:  the same objective; a gradient step on the smooth part, then
                  soft-thresholding w at lr lam / n (the proximal step of the L1 term)

    whose minimiser is the canonical ridge / lasso optimum at ``lam``. Below, (mu, L) is the
    curvature range of the smooth part (:func:`curvature_range`) and kappa = L / mu.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    penalty : {"l2", "l1", "l1-prox"}
    lam : float
        Canonical lambda >= 0.
    epochs : int, optional
        Maximum full-batch steps. Default: run to convergence -- for "l2",
        2 ln(1/tol) / (-ln rho) + 100 with rho the rate of the chosen (lr, momentum) on the
        quadratic (at most 10^6); 5000 for "l1"; 100000 for "l1-prox" (it stops earlier on
        its residual: its rate depends on the support it identifies, unknown in advance).
    lr, momentum : float, optional
        ``torch.optim.SGD``'s step size and momentum (0 <= momentum < 1). With ``epochs``
        left at None for "l2" (run to convergence) and neither given, heavy-ball momentum
        tuned to [mu, L] (Polyak): lr = 4 / (sqrt(L) + sqrt(mu))^2,
        momentum = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2 -- the same fixed point,
        reached in ~sqrt(kappa) ln(1/tol) instead of ~kappa ln(1/tol) epochs. Otherwise
        d2l's plain SGD: momentum 0 and lr = 1/L (for a given momentum m:
        lr = (1 + sqrt(m))^2 / L). The iteration is stable iff lr L < 2 (1 + momentum).
        "l1-prox" is plain ISTA: momentum must be 0 (default lr = 1/L; its residual
        ||G|| is non-increasing for lr <= 1/L).
    tol : float
        "l2" stops when max |grad| <= tol * T, with T the largest entry of the scale of the
        optimality condition's terms, (1/n) |A|'(|A theta| + |y|) + (lam/n) |(w, 0)|: the
        gradient relative to what cancels in it, independent of the starting point (a
        far-off init inflates the initial gradient, not T at a point near the optimum).
        Float64 resolves T to ~n eps, far below the default 1e-10. "l1-prox" stops when
        max |G| <= tol * T with G = (theta_k - theta_{k+1}) / lr the proximal-gradient
        residual (zero iff theta_k satisfies the lasso's KKT conditions) and T the same
        scale plus lam/n (the L1 term's pull); the returned point is theta_{k+1}.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning (non-convergence
        of "l2", divergence of either).
    init_scale, seed : float, int
        Initial weights ~ N(0, init_scale^2) i.i.d. (d2l initialises with init_scale = 1),
        drawn from a private ``torch.Generator(seed)`` so the global RNG is untouched (the
        default seed differs from the data sets' seeds, whose first draws are X itself); the
        bias starts at 0. The default 0 starts from w = 0. With lam = 0 and n < d, gradient
        descent never moves the part of the initial w orthogonal to the rows of X: that
        remnant is what makes d2l's unregularised run "overfit".
    watch : sequence of int, optional
        Weight indices to record after every epoch (``TrainResult.watched``): the
        trajectories of single coordinates, e.g. those that are zero at the lasso optimum.

    Divergence (a step size above the stability limit, e.g. a user ``lr`` too large) is
    reported, never returned silently: training stops at the first non-finite objective,
    and a :class:`~mapreg.errors.ConvergenceWarning` gives lr, the limit and the objective's
    growth (``status="diverged"``).
    """
    X, y = check_data(X, y)
    penalty = check_choice("penalty", penalty, _PENALTIES)
    lam = check_nonnegative("lam", lam)
    tol = check_positive("tol", tol)
    init_scale = check_nonnegative("init_scale", init_scale)
    strict = check_bool("strict", strict)
    if epochs is not None:
        epochs = check_positive_int("epochs", epochs)
    if lr is not None:
        lr = check_positive("lr", lr)
    if momentum is not None:
        momentum = check_nonnegative("momentum", momentum)
        if momentum >= 1.0:
            raise ValueError(f"momentum must be a number in [0, 1); got {momentum!r}")
        if penalty == "l1-prox" and momentum != 0.0:
            raise ValueError(f"momentum must be 0 for penalty 'l1-prox' (plain proximal "
                             f"gradient); got {momentum!r}")
    n, d = X.shape
    watch_idx = None
    if watch is not None:
        try:
            watch_idx = [operator.index(j) for j in watch]
        except TypeError:
            watch_idx = [-1]
        bad = [j for j in watch_idx if not 0 <= j < d]
        if bad or any(isinstance(j, bool) for j in watch):
            raise ValueError(f"watch must be weight indices in [0, {d}); got {list(watch)!r}")
    wd = lam / n if penalty == "l2" else 0.0
    curv = curvature_range(X, wd)
    mu, L = curv
    if momentum is None:
        tuned = penalty == "l2" and epochs is None and lr is None
        momentum = ((math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))) ** 2 \
            if tuned else 0.0
    if lr is None:
        # (1 + sqrt(m))^2 / L is Polyak's step for the tuned m and 1/L for m = 0; the factor
        # 1 + 1e-8 keeps lr L off the stability edge 2 (1 + m) that the tuned pair nears
        # (by 4 mu / (sqrt(L) + sqrt(mu))^2) when L / mu is large
        lr = (1.0 + math.sqrt(momentum)) ** 2 / (L * (1.0 + 1e-8))
    stable = lr * L < 2.0 * (1.0 + momentum)
    rho = _rate(lr, momentum, curv)
    if epochs is None:
        if penalty == "l1":
            epochs = 5_000
        elif penalty == "l1-prox":
            epochs = 100_000
        elif rho < 1.0:
            need = 2.0 * math.log(1.0 / tol) / -math.log(rho) + 100
            epochs = int(min(math.ceil(need), _MAX_DEFAULT_EPOCHS))
        else:
            epochs = 20_000

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
        momentum=momentum,
    )
    absX = X.abs()
    prox = penalty == "l1-prox"
    thresh = lr * lam / n
    trace: list[torch.Tensor] = []
    bias_trace: list[float] = []

    def term_scale(pred, w) -> float:
        """T: the scale of the terms of (1/n) A'(A theta - y) + wd (w, 0) = 0 (plus the
        L1 term's lam/n for "l1-prox")."""
        pa = pred.abs() + y.abs()
        t = max(float((absX.T @ pa / n + wd * w.abs()).max()), float(pa.mean()))
        return max(t, lam / n) if prox else t

    every = max(1, epochs // _HISTORY_POINTS)
    history: list[float] = []
    gnorm, scale = math.inf, math.inf
    converged, finite = False, True
    epoch = 0
    for epoch in range(1, epochs + 1):  # noqa: B007 (epoch is reported)
        opt.zero_grad()
        pred = net(X).squeeze(1)
        r = pred - y
        loss = 0.5 * (r * r).mean()
        if penalty == "l1":
            loss = loss + (lam / n) * net.weight.abs().sum()
        loss.backward()
        with torch.no_grad():
            w = net.weight[0]
            objective = float(loss) + 0.5 * wd * float(w @ w)
            if prox:
                objective += lam / n * float(w.abs().sum())
            if epoch % every == 0 or epoch == 1:
                history.append(objective)
            if not math.isfinite(objective):
                finite = False
                break
            if prox:
                w_old, c_old = w.clone(), net.bias.detach().clone()
            else:
                gw = net.weight.grad[0] + wd * w
                gnorm = max(float(gw.abs().max()), float(net.bias.grad.abs().max()))
            # T is refreshed when the test may pass (it changes slowly near the optimum)
            if penalty == "l2" and (epoch == 1 or gnorm <= tol * scale):
                scale = term_scale(pred, w)
                if gnorm <= tol * scale:
                    converged = True
                    break
        opt.step()
        with torch.no_grad():
            if prox:
                v = net.weight[0]
                v.copy_(torch.sign(v) * torch.clamp(v.abs() - thresh, min=0.0))
                gnorm = max(float((w_old - v).abs().max()),
                            float((c_old - net.bias).abs().max())) / lr
                if epoch == 1 or gnorm <= tol * scale:
                    scale = term_scale(pred, w_old)
                    if gnorm <= tol * scale:
                        converged = True
            if watch_idx is not None:
                trace.append(net.weight[0, watch_idx].clone())
                bias_trace.append(float(net.bias[0]))
        if converged:
            break
    wall = time.perf_counter() - start
    if epoch % every != 0 and epoch != 1:  # always end the history with the final objective
        history.append(objective)
    diverged = not finite or (not stable and objective > history[0])
    if diverged:
        status = "diverged"
        how = (f"the objective became non-finite at epoch {epoch}" if not finite else
               f"the objective grew from {history[0]:.3e} to {objective:.3e} in {epoch} epochs")
        report_nonconvergence(
            f"d2l-style training ({penalty}) diverged: {how}; lr = {lr:.4g} with momentum "
            f"{momentum:.4g} is {'above' if not stable else 'within'} the stability limit "
            f"2 (1 + momentum) / L = {2 * (1 + momentum) / L:.4g} (L = {L:.4g}, the largest "
            f"curvature of the mean objective)",
            strict,
        )
    elif converged:
        status = "converged"
    elif penalty == "l1":
        status = "no_stopping_test"
    else:
        status = "max_epochs"
        need = (f"; at its rate {rho:.6f} per epoch it needs about "
                f"{2 * math.log(1 / tol) / -math.log(rho):.3g} epochs"
                if rho < 1 and not prox else "")
        what = "proximal-gradient residual" if prox else "gradient norm"
        report_nonconvergence(
            f"d2l-style training ({penalty}) did not converge in {epoch} epochs: {what} "
            f"{gnorm:.3e} > {tol:.1e} x {scale:.3e}, the scale of the optimality condition's "
            f"terms (lr = {lr:.4g}, momentum {momentum:.4g}, curvature range [{mu:.3g}, "
            f"{L:.3g}]){need}",
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
        momentum=momentum,
        status=status,
        curvature=curv,
        watched=None if watch_idx is None else (
            torch.stack(trace) if trace else torch.empty(0, len(watch_idx), dtype=X.dtype)),
        watched_bias=None if watch_idx is None else torch.tensor(bias_trace, dtype=X.dtype),
    )
