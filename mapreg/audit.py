"""Audit a training run: does full-batch training with this optimizer land on its prior's MAP?

:func:`audit` trains ``nn.Linear(d, K)`` full batch with a real torch optimizer
(:func:`mapreg.penalized.optimizers.train_full_batch`: no Pyro) to a stationary point of the
objective its decay implies, reads the optimizer's implied prior
(:func:`mapreg.optim.implied_prior`), computes the exact target by an independent route and
reports the distance:

* coupled decay (SGD +- momentum / Nesterov, Adam, RMSprop, Adagrad): the MAP under the
  implied Gaussian prior, from mapreg's engine on Pyro's log joint (:func:`map_estimate` for
  "mse" / "gaussian_nll", :func:`map_glm` for the GLM losses); the log posterior's KKT
  residual at the trained point by :func:`map_optimality` (one Pyro trace; Gaussian losses).
* decoupled decay (AdamW, ``Adam(decoupled_weight_decay=True)``), "mse" / "gaussian_nll":
  the box-constrained least-squares point min 1/2 ||r||^2 s.t. ||w||_inf <= 1/wd by
  scipy's bounded-variable least squares (:func:`constrained_linf`), and, for contrast, the
  ridge MAP a user would expect from reading weight_decay as coupled.

The bias is trained in its own parameter group with weight_decay 0 (a flat intercept, as in
mapreg's models); both start at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._results import FrozenResult
from ._validation import check_data
from .bayes import Gaussian, make_likelihood, map_estimate, map_glm, map_optimality
from .optim import ImpliedPrior, _canonical_lam, _context, implied_prior
from .penalized.constrained import constrained_linf
from .penalized.optimizers import make_optimizer, train_full_batch


@dataclass(frozen=True, eq=False)
class AuditResult(FrozenResult):
    """What a full-batch training run converged to, against its exact target (frozen).

    Attributes
    ----------
    optimizer
        The optimizer's class name.
    implied
        :class:`~mapreg.optim.ImpliedPrior` of the optimizer (group 0 weight, group 1 bias).
    target_kind
        ``"map"`` (coupled decay: the MAP under the implied prior) or ``"box"`` (decoupled
        decay: box-constrained least squares).
    coef, intercept
        The trained point (coef (d,) or (d, K); intercept float or (K,), centred to sum 0
        for cross entropy, where only differences are identified).
    target_coef, target_intercept
        The exact target.
    distance
        ||theta - theta*|| / ||theta*|| over theta = (coef, intercept).
    residual
        Relative stationarity residual of the target objective at the trained point
        (the training's stop test, :func:`~mapreg.penalized.optimizers.train_full_batch`).
    posterior_residual
        For "map" with a Gaussian loss: the MAP engine's relative KKT residual of Pyro's log
        posterior at the trained point (:func:`map_optimality`); for the GLM losses the
        training's residual (the penalized objective is the negative log posterior times a
        positive constant, so the relative residuals agree); for "box": the KKT residual of
        the naive ridge posterior (large: the point is not its MAP).
    converged, epochs, final_lr
        The training's bookkeeping.
    naive_coef, naive_intercept, naive_distance
        For "box": the ridge MAP of weight_decay read as coupled decay and the trained
        point's relative distance to it; None otherwise.
    """

    optimizer: str
    implied: ImpliedPrior
    target_kind: str
    coef: torch.Tensor
    intercept: float | torch.Tensor
    target_coef: torch.Tensor
    target_intercept: float | torch.Tensor
    distance: float
    residual: float
    posterior_residual: float | None
    converged: bool
    epochs: int
    final_lr: float
    naive_coef: torch.Tensor | None = None
    naive_intercept: float | None = None
    naive_distance: float | None = None
    wall_time: float = field(default=0.0, compare=False)

    def __str__(self) -> str:
        g = self.implied.groups[0]
        what = ("the MAP under " + (f"N(0, {g.sigma:.6g}^2)" if g.sigma is not None
                                    else f"lam = {g.lam:.6g}")
                if self.target_kind == "map" else f"the box ||w||_inf <= {g.radius:.6g} LS point")
        lines = [f"{self.optimizer}: trained {self.epochs} epochs (converged={self.converged}, "
                 f"stationarity residual {self.residual:.3e}); distance to {what}: "
                 f"{self.distance:.3e} (relative)."]
        if self.posterior_residual is not None:
            lines.append(f"log-posterior KKT residual at the trained point: "
                         f"{self.posterior_residual:.3e}")
        if self.naive_distance is not None:
            lines.append(f"distance to the ridge MAP of weight_decay read as coupled: "
                         f"{self.naive_distance:.3e} (relative): AdamW's decay is not that "
                         f"prior.")
        return "\n".join(lines)


def _flat(coef: torch.Tensor, intercept: Any) -> torch.Tensor:
    c = torch.as_tensor(intercept, dtype=coef.dtype).reshape(-1)
    return torch.cat([coef.reshape(-1), c])


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(b.norm())
    return float((a - b).norm()) / den if den > 0 else float((a - b).norm())


def audit(optimizer: str | type | Any, X, y, *, loss: str = "mse", reduction: str = "mean",
          noise_scale: float | None = None, tol: float | None = None,
          max_epochs: int = 200_000, patience: int = 50, strict: bool = False,
          **opt_kwargs: Any) -> AuditResult:
    """Train full batch with ``optimizer`` and measure the distance to its exact target.

    Parameters
    ----------
    optimizer : str, torch.optim.Optimizer subclass or callable
        "sgd", "adam", "adamw", "rmsprop", "adagrad", a class (both get ``**opt_kwargs``:
        lr, momentum, nesterov, betas, weight_decay, ...) or a factory
        ``param_groups -> Optimizer``. The weight group must have weight_decay > 0.
    X, y
        Data (n, d) and responses (see :func:`~mapreg.penalized.optimizers.train_full_batch`).
    loss, reduction, noise_scale
        As in :func:`~mapreg.optim.implied_prior`. For "mse" without ``noise_scale`` the
        target (which depends on lam only) is computed with sigma_eps = 1.
    tol : float, optional
        Relative stationarity tolerance of the training; default 1e-10 (coupled decay) or
        1e-6 (decoupled decay: AdamW's fixed point is the box point only up to eps / |g|).
    max_epochs, patience, strict
        Passed to the training (a ConvergenceWarning names the residual if it stops early).

    Returns
    -------
    AuditResult
    """
    X, y = check_data(X, y)
    ctx = _context(loss, reduction, X.shape[0], noise_scale)
    K = int(y.max()) + 1 if ctx.loss == "cross_entropy" else 1
    probe = nn.Linear(X.shape[1], K, dtype=X.dtype)
    opt = make_optimizer(optimizer, [{"params": [probe.weight]},
                                     {"params": [probe.bias], "weight_decay": 0.0}],
                         **opt_kwargs)
    implied = implied_prior(opt, ctx.loss, ctx.reduction, ctx.n, ctx.noise, module=probe)
    weight = implied.groups[0]
    if weight.kind not in ("gaussian", "box"):
        raise ValueError(f"audit needs weight decay on the weight group (a Gaussian prior or "
                         f"AdamW's box); the optimizer implies {weight.kind!r}: "
                         f"{weight.sentence}")
    if weight.kind == "box" and ctx.likelihood != "gaussian":
        raise ValueError(f"the audit of decoupled decay (box target) supports losses 'mse' and "
                         f"'gaussian_nll'; got {ctx.loss!r}")
    if tol is None:
        tol = 1e-10 if weight.kind == "gaussian" else 1e-6
    train = train_full_batch(X, y, optimizer, loss=ctx.loss, reduction=ctx.reduction,
                             noise_scale=ctx.noise, tol=tol, max_epochs=max_epochs,
                             patience=patience, strict=strict, **opt_kwargs)
    coef, intercept = train.coef, train.intercept
    if isinstance(intercept, torch.Tensor):
        intercept = intercept - intercept.mean()
    noise = ctx.noise if ctx.noise is not None else 1.0
    naive = naive_c = naive_dist = None
    if weight.kind == "gaussian":
        lam = weight.lam
        if ctx.likelihood == "gaussian":
            prior = Gaussian(sigma=noise / math.sqrt(lam))
            target = map_estimate(X, y, prior, noise)
            post = map_optimality(X, y, prior, noise, coef, intercept).kkt_residual
        else:
            prior = Gaussian(sigma=1.0 / math.sqrt(lam))
            lik = (make_likelihood("categorical", n_classes=K) if K > 1
                   else make_likelihood(ctx.likelihood))
            target = map_glm(X, y, prior, lik)
            post = train.residual
        t_coef, t_int = target.coef, target.intercept
        kind = "map"
    else:
        box = constrained_linf(X, y, weight.radius, strict=strict)
        t_coef, t_int = box.coef, box.intercept
        lam_naive = _canonical_lam(weight.weight_decay, "gaussian", ctx)
        prior = Gaussian(sigma=noise / math.sqrt(lam_naive))
        ridge_map = map_estimate(X, y, prior, noise)
        naive, naive_c = ridge_map.coef, ridge_map.intercept
        naive_dist = _distance(_flat(coef, intercept), _flat(naive, naive_c))
        post = map_optimality(X, y, prior, noise, coef, intercept).kkt_residual
        kind = "box"
    dist = _distance(_flat(coef, intercept), _flat(t_coef, t_int))
    return AuditResult(implied.source, implied, kind, coef, intercept, t_coef, t_int, dist,
                       train.residual, post, train.converged, train.epochs, train.final_lr,
                       naive, naive_c, naive_dist, train.wall_time)


__all__ = ["AuditResult", "audit"]
