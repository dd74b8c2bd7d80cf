"""Full-batch training of a linear model / GLM with any supported ``torch.optim`` optimizer,
to a stationary point checked on its own optimality condition (plain torch, no Pyro).

What the optimizer minimises depends on how it applies ``weight_decay`` (read from its
``param_groups`` by :func:`read_param_groups`):

* **coupled** (SGD with or without momentum / Nesterov, Adam, RMSprop, Adagrad): the decay
  wd * w is added to the gradient before the update, and the update is a (preconditioned)
  function of g + wd * w that vanishes only where it does. Every fixed point is a stationary
  point of the training loss plus (wd/2) ||w||^2 (summed over the decayed groups)::

      F(w, c) = loss(w, c) + sum_groups (wd_g / 2) ||w_g||^2,   stationarity: grad F = 0.

* **decoupled** (AdamW, ``Adam(decoupled_weight_decay=True)``): w <- w (1 - lr wd) -
  lr m_hat / (sqrt(v_hat) + eps). With m_hat = g, v_hat = g^2 at a fixed point,
  wd w_i = -g_i / (|g_i| + eps), so |w_i| < 1/wd: as eps -> 0 these are the KKT
  conditions of min loss(w, c) subject to ||w||_inf <= R = 1/wd (Xie & Li, ICML 2024).
  The stationarity measured is the projected-gradient residual of that box problem,
  G_i = (w_i - clip(w_i - g_i / L, -R, R)) L, with L = ||[X, 1]||_2^2 times the loss's
  curvature bound (2/n for MSELoss(mean)), in gradient units.

The stop test is relative, per coordinate j: |G_j| <= tol * s_j with s_j the sum of the
absolute values of the terms of the condition, s_j = sum_i |x_ij| |dloss/deta_i| +
|wd w_j| (the bias: sum_i |dloss/deta_i|), plus a rounding floor of a few eps times s_j;
``residual`` is max_j |G_j| / s_j. The learning rate is halved whenever the residual has not
reached a new minimum for ``patience`` epochs (adaptive methods at a constant learning rate
oscillate at a level set by it; a decoupled decay needs sum(lr) to diverge, which halving
on plateaus of growing length keeps in practice). A run that stops at ``max_epochs`` or
when the learning rate falls below ``min_lr`` warns (:class:`~mapreg.errors.ConvergenceWarning`)
with the residual reached.

Losses (torch modules, reduction "mean" = 1/n times "sum"), eta = Xw + c:

===============  =====================================================================
"mse"            ``MSELoss``: sum_i (y_i - eta_i)^2  (r^2, not 1/2 r^2)
"gaussian_nll"   ``GaussianNLLLoss`` with var = noise_scale^2: sum_i 1/2 (log var +
                 r_i^2 / var)  (Pyro's scale; the constant does not move the optimum)
"bce_with_logits" ``BCEWithLogitsLoss``: sum_i log(1 + e^eta_i) - y_i eta_i
"cross_entropy"  ``CrossEntropyLoss``: sum_i logsumexp_k eta_ik - eta_{i, y_i}
                 (``nn.Linear(d, K)``, K = number of classes)
"poisson_nll"    ``PoissonNLLLoss(log_input=True, full=False)``: sum_i e^eta_i - y_i eta_i
===============  =====================================================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    check_scale,
)
from ..errors import report_nonconvergence

LOSSES = ("mse", "gaussian_nll", "bce_with_logits", "cross_entropy", "poisson_nll")
REDUCTIONS = ("mean", "sum")

#: Optimizers whose decay this module understands, by name (``torch.optim`` classes).
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
_SUPPORTED = "SGD, Adam, Adam(decoupled_weight_decay=True), AdamW, RMSprop, Adagrad"


@dataclass(frozen=True)
class GroupDecay:
    """How one parameter group of an optimizer applies its weight decay.

    ``decay``: ``"coupled"`` (wd * w added to the gradient), ``"decoupled"`` (w shrunk by
    lr * wd apart from the gradient step: AdamW), ``"none"`` (weight_decay = 0) or
    ``"stalled"`` (SGD with momentum and dampening = 1: after the first step the buffer
    only decays, the iterates stop wherever they are -- no stationarity condition).
    ``settings`` holds the group's other hyper-parameters (momentum, betas, eps, ...).
    """

    index: int
    params: tuple[torch.Tensor, ...]
    weight_decay: float
    decay: str
    optimizer: str
    settings: dict[str, Any]


def _check_optimizer(optimizer: Any) -> str:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer instance ({_SUPPORTED}); "
                        f"got {optimizer!r} ({type(optimizer).__name__})")
    # AdamW subclasses Adam in recent torch: test it first
    for cls in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD, torch.optim.RMSprop,
                torch.optim.Adagrad):
        if isinstance(optimizer, cls):
            return cls.__name__
    raise ValueError(f"optimizer {type(optimizer).__name__} is not supported: the supported "
                     f"ones are {_SUPPORTED}")


def read_param_groups(optimizer: torch.optim.Optimizer) -> tuple[GroupDecay, ...]:
    """Read each parameter group's weight decay and how it enters the update.

    Raises ValueError for an unsupported optimizer class (naming the supported ones) and
    for ``maximize=True`` (the optimizer then ascends the loss: no MAP reading).
    """
    name = _check_optimizer(optimizer)
    out = []
    for i, group in enumerate(optimizer.param_groups):
        if group.get("maximize", False):
            raise ValueError(f"param group {i} of {name} has maximize=True: it ascends the "
                             f"loss, and the decay then does not describe a prior; use "
                             f"maximize=False")
        wd = float(group.get("weight_decay", 0.0))
        if not (math.isfinite(wd) and wd >= 0):
            raise ValueError(f"weight_decay of param group {i} must be a finite number >= 0; "
                             f"got {wd}")
        keys = {"SGD": ("lr", "momentum", "dampening", "nesterov"),
                "Adam": ("lr", "betas", "eps", "amsgrad", "decoupled_weight_decay"),
                "AdamW": ("lr", "betas", "eps", "amsgrad"),
                "RMSprop": ("lr", "alpha", "eps", "momentum", "centered"),
                "Adagrad": ("lr", "lr_decay", "eps")}[name]
        settings = {k: group[k] for k in keys if k in group}
        settings["lr"] = float(settings["lr"])
        decoupled = name == "AdamW" or bool(group.get("decoupled_weight_decay", False))
        if name == "SGD" and group.get("momentum", 0) > 0 and group.get("dampening", 0) == 1:
            decay = "stalled"
        elif wd == 0.0:
            decay = "none"
        else:
            decay = "decoupled" if decoupled else "coupled"
        out.append(GroupDecay(i, tuple(group["params"]), wd, decay, name, settings))
    return tuple(out)


def torch_loss(loss: str, reduction: str, noise_scale: float | None = None) -> nn.Module:
    """The torch loss module for ``loss`` (see the module table)."""
    loss = check_choice("loss", loss, LOSSES)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    if loss == "mse":
        return nn.MSELoss(reduction=reduction)
    if loss == "gaussian_nll":
        if noise_scale is None:
            raise ValueError("noise_scale (sigma_eps, a positive finite number) is required "
                             "for loss 'gaussian_nll'; got None")
        var = check_scale("noise_scale", noise_scale, 2) ** 2
        module = nn.GaussianNLLLoss(reduction=reduction, eps=0.0)
        return _GaussianNLL(module, var)
    if loss == "bce_with_logits":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    if loss == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)
    return nn.PoissonNLLLoss(log_input=True, full=False, reduction=reduction)


class _GaussianNLL(nn.Module):
    """``GaussianNLLLoss`` with a fixed variance: 1/2 (log var + r^2 / var) per sample."""

    def __init__(self, module: nn.Module, var: float) -> None:
        super().__init__()
        self.module, self.var = module, var

    def forward(self, eta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.module(eta, y, torch.full_like(eta, self.var))


def _curvature(loss: str, reduction: str, n: int, noise_scale: float | None) -> float:
    """Upper bound of the loss's second derivative in eta per sample, times the reduction.

    Used only to put the box residual in gradient units (the Lipschitz constant of the
    gradient, :func:`_box_residual`); the Poisson loss has none, its value at the point is
    used by the caller.
    """
    per = {"mse": 2.0, "gaussian_nll": 1.0 / (noise_scale or 1.0) ** 2, "bce_with_logits": 0.25,
           "cross_entropy": 0.5, "poisson_nll": 1.0}[loss]
    return per / n if reduction == "mean" else per


@dataclass(frozen=True, eq=False)
class OptimizerTrainResult(FrozenResult):
    """Outcome of :func:`train_full_batch` (frozen; tensors read as copies).

    Attributes
    ----------
    coef, intercept
        The trained weight, shape (d,) (one output) or (d, K) (cross entropy: the transpose
        of ``nn.Linear(d, K).weight``), and bias (a float, or a (K,) tensor).
    objective
        ``"decayed"`` (coupled decay: grad of loss + sum (wd/2)||w||^2 = 0), ``"box"``
        (decoupled decay: KKT of min loss s.t. ||w||_inf <= 1/wd) or ``"loss"`` (no decay).
    residual
        max_j |G_j| / s_j at the returned point (see the module docstring).
    converged
        Whether the residual passed ``tol`` (plus the rounding floor).
    epochs
        Optimizer steps taken.
    final_lr
        The learning rate of the first group when training stopped.
    optimizer
        The optimizer's class name.
    """

    coef: torch.Tensor
    intercept: float | torch.Tensor
    objective: str
    residual: float
    tol: float
    converged: bool
    epochs: int
    final_lr: float
    optimizer: str
    wall_time: float = field(compare=False)


def make_optimizer(optimizer: str | type | Callable, param_groups: list[dict],
                   **kwargs: Any) -> torch.optim.Optimizer:
    """An optimizer over ``param_groups``: ``optimizer`` is a name in :data:`OPTIMIZERS`,
    a ``torch.optim.Optimizer`` subclass (both get ``**kwargs``), or a factory
    ``param_groups -> Optimizer`` (then ``kwargs`` must be empty). ``lr`` and
    ``weight_decay`` are checked here, with mapreg's messages, before torch sees them."""
    if "lr" in kwargs:
        kwargs["lr"] = check_positive("lr", kwargs["lr"])
    if "weight_decay" in kwargs:
        kwargs["weight_decay"] = check_nonnegative("weight_decay", kwargs["weight_decay"])
    if isinstance(optimizer, str):
        cls = OPTIMIZERS[check_choice("optimizer", optimizer.lower(), OPTIMIZERS)]
        return cls(param_groups, **kwargs)
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(param_groups, **kwargs)
    if callable(optimizer):
        if kwargs:
            raise ValueError(f"optimizer options {sorted(kwargs)} go into the factory itself "
                             f"when optimizer is a callable; got them as keywords")
        out = optimizer(param_groups)
        if not isinstance(out, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory must return a torch.optim.Optimizer; got "
                            f"{type(out).__name__}")
        return out
    raise TypeError(f"optimizer must be a name ({', '.join(map(repr, OPTIMIZERS))}), a "
                    f"torch.optim.Optimizer subclass or a factory; got {optimizer!r}")


def _targets(loss: str, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The response in the dtype the loss wants, and the number of outputs."""
    if loss == "cross_entropy":
        if not torch.equal(y, y.round()) or float(y.min()) < 0:
            raise ValueError("y must hold class labels 0, 1, ..., K-1 for loss "
                             "'cross_entropy'")
        labels = y.long()
        return labels, int(labels.max()) + 1
    return y, 1


def train_full_batch(
    X,
    y,
    optimizer: str | type | Callable = "sgd",
    *,
    loss: str = "mse",
    reduction: str = "mean",
    noise_scale: float | None = None,
    tol: float = 1e-10,
    max_epochs: int = 200_000,
    patience: int = 50,
    min_lr: float = 1e-14,
    strict: bool = False,
    **opt_kwargs: Any,
) -> OptimizerTrainResult:
    """Train ``nn.Linear(d, K)`` full batch with a real torch optimizer until stationary.

    The weight is in parameter group 0 (with the optimizer's ``weight_decay``), the bias in
    group 1 with ``weight_decay = 0`` (an unpenalized intercept). Both start at 0. Each epoch
    computes ``loss(X @ W.T + b, y)`` with the torch module of :func:`torch_loss`, tests the
    stationarity of the objective the optimizer's decay implies (module docstring), then
    steps; the learning rate of every group is halved after ``patience`` epochs without a
    new minimum of the residual.

    Parameters
    ----------
    X : array-like (n, d)
    y : array-like (n,)
        Real responses ("mse", "gaussian_nll"), 0/1 ("bce_with_logits"), class labels
        0..K-1 ("cross_entropy"), counts ("poisson_nll").
    optimizer : str, Optimizer subclass or callable
        See :func:`make_optimizer`; ``**opt_kwargs`` (lr, momentum, weight_decay, betas,
        ...) are passed to it.
    loss, reduction, noise_scale
        The training loss (module table); ``noise_scale`` only for "gaussian_nll".
    tol : float
        Relative stationarity tolerance.
    max_epochs, patience, min_lr
        Budget and learning-rate schedule (halve after ``patience`` epochs without
        improvement; stop below ``min_lr``).
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning.

    Returns
    -------
    OptimizerTrainResult
    """
    X, y = check_data(X, y)
    loss = check_choice("loss", loss, LOSSES)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    tol = check_positive("tol", tol)
    max_epochs = check_positive_int("max_epochs", max_epochs)
    patience = check_positive_int("patience", patience)
    min_lr = check_positive("min_lr", min_lr)
    strict = check_bool("strict", strict)
    if noise_scale is not None and loss not in ("mse", "gaussian_nll"):
        raise ValueError(f"noise_scale applies to losses 'mse' and 'gaussian_nll' only; got "
                         f"noise_scale={noise_scale!r} with loss {loss!r}")
    start = time.perf_counter()
    target, K = _targets(loss, y)
    n, d = X.shape
    lin = nn.Linear(d, K, dtype=X.dtype)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
    opt = make_optimizer(optimizer, [{"params": [lin.weight]},
                                     {"params": [lin.bias], "weight_decay": 0.0}], **opt_kwargs)
    groups = read_param_groups(opt)
    if len(groups) != 2 or groups[0].params[0] is not lin.weight:
        raise ValueError("the optimizer factory must keep the two parameter groups it is given "
                         "(weight, then bias)")
    kind = groups[0].decay
    if kind == "stalled":
        raise ValueError("SGD with momentum > 0 and dampening = 1 never moves after its first "
                         "step's buffer decays: there is no stationary point to train to")
    if groups[1].weight_decay != 0.0:
        raise ValueError("the bias group must keep weight_decay = 0 (a flat intercept)")
    wd = groups[0].weight_decay
    objective = {"coupled": "decayed", "decoupled": "box", "none": "loss"}[kind]
    loss_fn = torch_loss(loss, reduction, noise_scale)
    absX = X.abs()
    lip = _curvature(loss, reduction, n, noise_scale) * float(
        torch.linalg.matrix_norm(torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1), 2)) ** 2
    best, since, res, epoch, converged = math.inf, 0, math.inf, 0, False
    for epoch in range(max_epochs + 1):  # noqa: B007
        opt.zero_grad(set_to_none=False)
        eta = X @ lin.weight.T + lin.bias
        eta.retain_grad()
        out = eta.squeeze(1) if K == 1 else eta
        loss_fn(out, target).backward()
        res, passes = _residual(lin, eta.grad, absX, wd, objective, lip, tol)
        if passes:
            converged = True
            break
        if epoch == max_epochs:
            break
        if res < best:
            best, since = res, 0
        else:
            since += 1
            if since >= patience:
                for g in opt.param_groups:
                    g["lr"] = float(g["lr"]) * 0.5
                since = 0
                if float(opt.param_groups[0]["lr"]) < min_lr:
                    break
        opt.step()
    W = lin.weight.detach().clone()
    b = lin.bias.detach().clone()
    coef = W[0] if K == 1 else W.T.contiguous()
    intercept: float | torch.Tensor = float(b[0]) if K == 1 else b
    lr = float(opt.param_groups[0]["lr"])
    if not converged:
        report_nonconvergence(
            f"{groups[0].optimizer} training did not reach a stationary point in {epoch} "
            f"epochs: relative stationarity residual {res:.3e} > tolerance {tol:.3e} "
            f"(objective {objective!r}, learning rate now {lr:.3e})", strict)
    return OptimizerTrainResult(coef, intercept, objective, res, tol, converged, epoch, lr,
                                groups[0].optimizer, time.perf_counter() - start)


def _residual(lin: nn.Linear, deta: torch.Tensor, absX: torch.Tensor, wd: float,
              objective: str, lip: float, tol: float) -> tuple[float, bool]:
    """max_j |G_j| / s_j and whether every coordinate passes |G_j| <= (tol + 8 eps) s_j."""
    with torch.no_grad():
        W = lin.weight
        g = lin.weight.grad
        a = deta.abs()
        s_w = a.T @ absX  # (K, d): sum_i |x_ij| |dloss/deta_ik|
        s_b = a.sum(0)
        if objective == "decayed":
            G = g + wd * W
            s_w = s_w + wd * W.abs()
        elif objective == "box":
            R = 1.0 / wd
            G = (W - torch.clamp(W - g / lip, -R, R)) * lip
        else:
            G = g
        Gb = lin.bias.grad
        num = torch.cat([G.abs().reshape(-1), Gb.abs().reshape(-1)])
        scale = torch.cat([s_w.reshape(-1), s_b.reshape(-1)])
        floor = torch.finfo(W.dtype).tiny
        rel = num / torch.clamp(scale, min=floor)
        passes = bool((num <= (tol + 8 * EPS) * scale).all())
        return float(rel.max()), passes


__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "REDUCTIONS",
    "GroupDecay",
    "OptimizerTrainResult",
    "make_optimizer",
    "read_param_groups",
    "torch_loss",
    "train_full_batch",
]

