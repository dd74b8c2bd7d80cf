"""What prior did my training assume? The prior a torch optimizer's fixed point is the MAP of.

:func:`implied_prior` reads a real ``torch.optim`` instance (its ``param_groups``) and says,
per parameter group, which prior the training's stationary point corresponds to, for a given
loss and reduction (eta = Xw + c, r = y - eta, n samples, sigma_eps the noise scale):

==========================  ===========================================  =================
optimizer / term            fixed point                                  prior
==========================  ===========================================  =================
SGD (momentum, dampening    grad loss + wd w = 0 (the buffer is          Gaussian N(0, s^2)
< 1, Nesterov), Adam,       (1 - tau) g/(1 - mu) at a fixed point;       with 1/s^2 from
RMSprop, Adagrad with       Adam / RMSprop / Adagrad divide g + wd w     the table below
``weight_decay = wd``       by a positive preconditioner)
weight_decay = 0            grad loss = 0                                flat
AdamW, Adam(decoupled_      wd w_i = -g_i / (|g_i| + eps): the KKT       no prior: the box
weight_decay=True)          conditions of min loss s.t. ||w||_inf <=     ||w||_inf <= 1/wd
                            1/wd as eps -> 0 (Xie & Li, ICML 2024)       (any n, reduction)
decoupled, lr-scaled SGD    w <- w (1 - lr wd) - lr m, m <- mu m +       Gaussian, precision
decay, momentum mu          (1 - tau) g: (1 - tau) g / (1 - mu) +        wd (1 - mu) /
(SGDW-style)                wd w = 0                                     (1 - tau)
L2Decay(coeff) (Paddle),    grad loss + coeff w = 0                      Gaussian, as wd
loss + coeff/2 ||w||^2
loss + coeff ||w||_1        0 in grad loss + coeff d||w||_1              Laplace(0, b)
SGD, momentum, dampening=1  the buffer only decays after step 1          none (stalls)
weights feeding a batch /   loss(a W) = loss(W): <grad, W> = 0, the      none: no minimizer
layer norm (``module``)     penalized objective has no minimizer
==========================  ===========================================  =================

A coefficient kappa (wd, its SGDW equivalent, coeff) on each loss gives, through
:mod:`mapreg.conventions` (the ``torch_*`` conventions, which this module calls):

=================  ==========================  ===========================  ================
loss               mean: (1/n) sum l_i         sum: sum l_i                 canonical lam
=================  ==========================  ===========================  ================
"mse" (r^2)        1/s^2 = n kappa / (2 s_e^2)  1/s^2 = kappa / (2 s_e^2)   n kappa/2, kappa/2
"gaussian_nll"     1/s^2 = n kappa             1/s^2 = kappa                s_e^2 x the same
"bce_with_logits", 1/s^2 = n kappa             1/s^2 = kappa                n kappa, kappa
"cross_entropy",
"poisson_nll"
=================  ==========================  ===========================  ================

(the same with b in place of s^2 for the L1 term; s_e = sigma_eps; "canonical lam" is the
lambda of 1/2 ||r||^2 + lam P(w) for the Gaussian losses and of sum_i l_i + lam P(w) for the
others). E.g. MSELoss(mean) with weight_decay wd: stationarity (2/n) X'(Xw - y) + wd w = 0
is the MAP condition X'(Xw - y)/s_e^2 + w/s^2 = 0 at 1/s^2 = n wd / (2 s_e^2).
Without ``noise_scale`` the "mse" rows give lam and s / s_e = 1/sqrt(lam) only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._validation import check_choice, check_nonnegative, check_positive, check_positive_int
from ._validation import check_scale as _check_scale
from .conventions import from_canonical, to_canonical
from .penalized.batchnorm import scale_invariant_layers
from .penalized.optimizers import LOSSES, REDUCTIONS, make_optimizer, read_param_groups

#: loss -> (likelihood, conventions stem)
_LOSS_LIKELIHOOD = {
    "mse": ("gaussian", "torch_mse"),
    "gaussian_nll": ("gaussian", "torch_nll"),
    "bce_with_logits": ("bernoulli", "torch_bce"),
    "cross_entropy": ("categorical", "torch_ce"),
    "poisson_nll": ("poisson", "torch_poisson"),
}
_LOSS_TORCH = {
    "mse": "MSELoss", "gaussian_nll": "GaussianNLLLoss(var=sigma_eps^2)",
    "bce_with_logits": "BCEWithLogitsLoss", "cross_entropy": "CrossEntropyLoss",
    "poisson_nll": "PoissonNLLLoss(log_input=True, full=False)",
}
KINDS = ("gaussian", "laplace", "flat", "box", "none")
_MEAN_FREE = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


@dataclass(frozen=True)
class GroupPrior:
    """The prior implied for (part of) one parameter group.

    Attributes
    ----------
    group
        Index in ``optimizer.param_groups`` (0 for the penalty / SGDW helpers).
    params
        Parameter names (from ``module.named_parameters()``) or ``"#k shape (..)"``.
    kind
        ``"gaussian"``, ``"laplace"``, ``"flat"``, ``"box"`` (no prior: the box
        ||w||_inf <= radius) or ``"none"`` (no prior and no MAP: see ``formula``).
    weight_decay
        The coefficient as given (weight_decay, L2Decay coeff, L1 coeff).
    precision
        The coupled-equivalent coefficient kappa that multiplies w (or sign(w)) in the
        stationarity condition: weight_decay, or wd (1 - mu)/(1 - tau) for SGDW; None for
        flat / box / none.
    sigma, b
        Gaussian standard deviation / Laplace scale in weight units (None without
        ``noise_scale`` for "mse", or for other kinds).
    scale_over_noise
        sigma / sigma_eps or b / sigma_eps^2 ("mse" without noise_scale: 1/sqrt(lam), 1/lam).
    lam
        The canonical lambda (1/2 ||r||^2 + lam P(w) for Gaussian losses, sum_i l_i +
        lam P(w) otherwise).
    radius
        The box radius 1/weight_decay (kind "box").
    formula
        The formula used.
    sentence
        One sentence saying it.
    """

    group: int
    params: tuple[str, ...]
    kind: str
    weight_decay: float
    precision: float | None
    sigma: float | None
    b: float | None
    scale_over_noise: float | None
    lam: float | None
    radius: float | None
    formula: str
    sentence: str


@dataclass(frozen=True)
class ImpliedPrior:
    """What prior a training set-up assumes, per parameter group (frozen).

    ``str(result)`` gives a sentence per group and the table; :meth:`table` the table alone.
    """

    source: str
    loss: str
    reduction: str
    n: int | None
    noise_scale: float | None
    groups: tuple[GroupPrior, ...]

    def table(self, fmt: str = "markdown") -> str:
        """The groups as a table: ``fmt="markdown"`` or ``"plain"`` (aligned columns)."""
        fmt = check_choice("fmt", fmt, ("markdown", "plain"))
        head = ["group", "parameters", "prior", "sigma / b / R", "lam (canonical)", "formula"]
        rows = [[str(g.group), ", ".join(g.params), _kind_text(g), _scale_text(g),
                 "-" if g.lam is None else f"{g.lam:.6g}", g.formula] for g in self.groups]
        if fmt == "markdown":
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            return "\n".join(lines)
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in [head, *rows])

    def __str__(self) -> str:
        return "\n".join(g.sentence for g in self.groups) + "\n\n" + self.table("plain")


def _kind_text(g: GroupPrior) -> str:
    return {"gaussian": "Gaussian N(0, sigma^2)", "laplace": "Laplace(0, b)", "flat": "flat",
            "box": "no prior: box ||w||_inf <= R", "none": "no prior"}[g.kind]


def _scale_text(g: GroupPrior) -> str:
    if g.kind == "box":
        return f"R = {g.radius:.6g}"
    name = "sigma" if g.kind == "gaussian" else "b"
    value = g.sigma if g.kind == "gaussian" else g.b
    if value is not None:
        return f"{name} = {value:.6g}"
    if g.scale_over_noise is not None:
        unit = "sigma_eps" if g.kind == "gaussian" else "sigma_eps^2"
        return f"{name} = {g.scale_over_noise:.6g} {unit}"
    return "-"


# ----------------------------------------------------------------------- the context


@dataclass(frozen=True)
class _Context:
    loss: str
    reduction: str
    n: int | None
    noise: float | None

    @property
    def likelihood(self) -> str:
        return _LOSS_LIKELIHOOD[self.loss][0]

    def describe(self) -> str:
        parts = [f"{_LOSS_TORCH[self.loss]}(reduction={self.reduction!r})"]
        if self.n is not None:
            parts.append(f"n={self.n}")
        if self.noise is not None:
            parts.append(f"sigma_eps={self.noise:g}")
        return ", ".join(parts)


def _context(loss: str, reduction: str, n: Any, noise_scale: Any,
             need_n: bool = True) -> _Context:
    """The loss, reduction, n and noise scale, checked (``need_n=False``: no group's prior
    depends on n -- AdamW's box, flat groups -- so a mean loss may leave it out)."""
    loss = check_choice("loss", loss, LOSSES)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    if n is None and reduction == "mean" and need_n:
        raise ValueError("n (the number of training samples, an integer >= 1) is required "
                         "for reduction 'mean': the mean loss is (1/n) times the sum")
    if n is not None:
        n = check_positive_int("n", n)
    if noise_scale is not None:
        if loss not in ("mse", "gaussian_nll"):
            raise ValueError(f"noise_scale (sigma_eps) applies to losses 'mse' and "
                             f"'gaussian_nll' only; loss {loss!r} has no noise scale: leave "
                             f"noise_scale=None; got {noise_scale!r}")
        noise_scale = _check_scale("noise_scale", noise_scale, 2)
    elif loss == "gaussian_nll":
        raise ValueError("noise_scale (sigma_eps, a positive finite number) is required for "
                         "loss 'gaussian_nll': the loss is 1/(2 sigma_eps^2) r^2 + const")
    return _Context(loss, reduction, n, noise_scale)


def _canonical_lam(kappa: float, prior: str, ctx: _Context) -> float:
    """lam of the canonical objective for coefficient kappa (via mapreg.conventions)."""
    lik, stem = _LOSS_LIKELIHOOD[ctx.loss]
    if ctx.loss == "gaussian_nll":
        # (1/n) NLL + kappa P(w)  <=>  NLL + n kappa P(w): the "torch_nll" convention
        value = kappa * ctx.n if ctx.reduction == "mean" else kappa
        return to_canonical(value, "torch_nll", prior=prior, noise=ctx.noise, likelihood=lik)
    return to_canonical(kappa, f"{stem}_{ctx.reduction}", prior=prior,
                        n=ctx.n if ctx.reduction == "mean" else None, likelihood=lik)


def _formula(prior: str, kappa_text: str, ctx: _Context) -> str:
    inv = "1/sigma^2" if prior == "gaussian" else "1/b"
    k = f"n {kappa_text}" if ctx.reduction == "mean" else kappa_text
    if ctx.loss == "mse":
        return f"{inv} = {k} / (2 sigma_eps^2)"
    return f"{inv} = {k}"


def _prior_entry(group: int, names: tuple[str, ...], coeff: float, kappa: float,
                 kappa_text: str, prior: str, ctx: _Context, what: str) -> GroupPrior:
    lam = _canonical_lam(kappa, prior, ctx)
    lik = ctx.likelihood
    conv = "sigma" if prior == "gaussian" else "b"
    noise = ctx.noise if lik == "gaussian" else None
    scale = (from_canonical(lam, conv, prior=prior, noise=noise, likelihood=lik)
             if noise is not None or lik != "gaussian" else None)
    # sigma / sigma_eps = 1/sqrt(lam), b / sigma_eps^2 = 1/lam on the 1/2 ||r||^2 scale
    over = (1.0 / math.sqrt(lam) if prior == "gaussian" else 1.0 / lam) if lik == "gaussian" \
        else None
    formula = _formula(prior, kappa_text, ctx)
    if prior == "gaussian":
        shown = (f"sigma = {scale:.6g}" if scale is not None
                 else f"sigma = {over:.6g} sigma_eps (give noise_scale for weight units)")
        sentence = (f"Group {group} ({', '.join(names)}): {what} on {ctx.describe()} -- the "
                    f"fixed point is the MAP under a Gaussian prior N(0, sigma^2) with {shown} "
                    f"({formula}; canonical lam = {lam:.6g}).")
    else:
        shown = (f"b = {scale:.6g}" if scale is not None
                 else f"b = {over:.6g} sigma_eps^2 (give noise_scale for weight units)")
        sentence = (f"Group {group} ({', '.join(names)}): {what} on {ctx.describe()} -- the "
                    f"optimum is the MAP under a Laplace(0, b) prior with {shown} ({formula}; "
                    f"canonical lam = {lam:.6g}); its exact zeros need a proximal step, a "
                    f"subgradient on the term only hovers around them.")
    return GroupPrior(group, names, prior, coeff, kappa,
                      scale if prior == "gaussian" else None,
                      scale if prior == "laplace" else None, over, lam, None, formula, sentence)


def _flat_entry(group: int, names: tuple[str, ...], what: str, ctx: _Context) -> GroupPrior:
    return GroupPrior(group, names, "flat", 0.0, None, None, None, None, None, None,
                      "weight_decay = 0: grad loss = 0",
                      f"Group {group} ({', '.join(names)}): {what} without weight decay on "
                      f"{ctx.describe()} -- a flat prior (maximum likelihood in these "
                      f"parameters).")


def _box_entry(group: int, names: tuple[str, ...], wd: float, what: str, ctx: _Context,
               eps: float, amsgrad: bool) -> GroupPrior:
    R = 1.0 / wd
    formula = f"wd w_i = -g_i / (|g_i| + eps), eps = {eps:g}: ||w||_inf <= 1/wd"
    extra = (" With amsgrad the denominator is the running maximum of sqrt(v): coordinates "
             "at the box stop short of it by |g_i| / max sqrt(v_i), a path-dependent point."
             if amsgrad else "")
    sentence = (f"Group {group} ({', '.join(names)}): {what} is decoupled weight decay -- no "
                f"prior: with a convex loss and a decaying learning rate, full-batch training "
                f"converges to the minimum of the loss inside the box ||w||_inf <= 1/wd = "
                f"{R:.6g} (Xie & Li, ICML 2024), whatever n, the reduction or sigma_eps; "
                f"not to a ridge/MAP point.{extra}")
    return GroupPrior(group, names, "box", wd, None, None, None, None, None, R, formula,
                      sentence)


def _none_entry(group: int, names: tuple[str, ...], wd: float, reason: str,
                formula: str) -> GroupPrior:
    return GroupPrior(group, names, "none", wd, None, None, None, None, None, None, formula,
                      f"Group {group} ({', '.join(names)}): {reason}.")


# --------------------------------------------------------------- module inspection


def _names(module: nn.Module | None) -> dict[int, str]:
    if module is None:
        return {}
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    return {id(p): name for name, p in module.named_parameters()}


def _scale_invariant(module: nn.Module | None) -> dict[int, str]:
    """id(parameter) -> reason, for Linear/Conv parameters feeding a norm layer directly
    (:func:`~mapreg.penalized.batchnorm.scale_invariant_layers`)."""
    if module is None:
        return {}
    out: dict[int, str] = {}
    for _, layer, norm_layer in scale_invariant_layers(module):
        norm = type(norm_layer).__name__
        reason = (f"no prior: the loss is scale invariant in these weights ({norm} "
                  f"follows), the penalized objective has no minimizer")
        out[id(layer.weight)] = reason
        if layer.bias is not None:
            if isinstance(norm_layer, _MEAN_FREE):
                out.setdefault(id(layer.bias), f"no data term: the loss does not depend on "
                               f"this bias ({norm} subtracts the mean it adds): decay "
                               f"alone sets it (to 0), without decay it is undetermined")
            else:  # layer / group norm: invariant to scaling (W, bias) together
                out[id(layer.bias)] = reason
    return out


def _param_name(p: torch.Tensor, k: int, names: dict[int, str]) -> str:
    return names.get(id(p), f"#{k} shape {tuple(p.shape)}")


# ------------------------------------------------------------------------- public API


def implied_prior(optimizer: torch.optim.Optimizer, loss: str = "mse", reduction: str = "mean",
                  n: int | None = None, noise_scale: float | None = None,
                  module: nn.Module | None = None) -> ImpliedPrior:
    """The prior each parameter group's training fixed point is the MAP of.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        SGD (momentum, dampening, Nesterov), Adam (coupled, or
        ``decoupled_weight_decay=True``), AdamW, RMSprop or Adagrad; any other class raises
        ValueError naming the supported ones. Its ``param_groups`` are read, not changed.
    loss : {"mse", "gaussian_nll", "bce_with_logits", "cross_entropy", "poisson_nll"}
        The torch loss trained on (module docstring): MSELoss is r^2 (not 1/2 r^2);
        "gaussian_nll" is 1/(2 sigma_eps^2) r^2 + const (Pyro's scale).
    reduction : {"mean", "sum"}
        "mean" is (1/n) times "sum" and needs ``n``.
    n : int, optional
        Number of training samples (full batch).
    noise_scale : float, optional
        sigma_eps: required for "gaussian_nll"; for "mse" it turns lam into sigma in weight
        units; refused for the other losses.
    module : nn.Module, optional
        Names the parameters, and flags Linear/Conv weights that feed a batch/layer/group/
        instance norm directly in an ``nn.Sequential`` (their loss is scale invariant).

    Returns
    -------
    ImpliedPrior
        One :class:`GroupPrior` per group (a group is split where ``module`` flags some of
        its parameters).
    """
    groups = read_param_groups(optimizer)
    ctx = _context(loss, reduction, n, noise_scale,
                   need_n=any(g.decay == "coupled" for g in groups))
    names = _names(module)
    flagged = _scale_invariant(module)
    out: list[GroupPrior] = []
    for g in groups:
        labelled = [(p, _param_name(p, k, names)) for k, p in enumerate(g.params)]
        plain = tuple(nm for p, nm in labelled if id(p) not in flagged)
        reasons: dict[str, list[str]] = {}
        for p, nm in labelled:
            if id(p) in flagged:
                reasons.setdefault(flagged[id(p)], []).append(nm)
        if plain:
            out.append(_group_entry(g, plain, ctx))
        for reason, nms in reasons.items():
            out.append(_none_entry(g.index, tuple(nms), g.weight_decay, reason,
                                   "loss(a W) = loss(W), a > 0 (norm eps -> 0): <grad W, W> = 0"
                                   if reason.startswith("no prior") else
                                   "d loss / d bias = 0"))
    return ImpliedPrior(groups[0].optimizer if groups else type(optimizer).__name__, ctx.loss,
                        ctx.reduction, ctx.n, ctx.noise, tuple(out))


def _group_entry(g, names: tuple[str, ...], ctx: _Context) -> GroupPrior:
    s = g.settings
    if g.optimizer == "SGD":
        what = (f"SGD(lr={s['lr']:g}, momentum={s['momentum']:g}, dampening="
                f"{s['dampening']:g}, nesterov={s['nesterov']}) with weight_decay="
                f"{g.weight_decay:g}")
    elif g.decay == "decoupled":
        what = (f"{g.optimizer}(lr={s['lr']:g}, weight_decay={g.weight_decay:g}"
                + (", decoupled_weight_decay=True" if g.optimizer == "Adam" else "") + ")")
    else:
        what = f"{g.optimizer}(lr={s['lr']:g}) with coupled weight_decay={g.weight_decay:g}"
    if g.decay == "stalled":
        return _none_entry(g.index, names, g.weight_decay,
                           "SGD with momentum > 0 and dampening = 1 adds no gradient after its "
                           "first step (buf <- momentum buf): the iterates stall wherever the "
                           "decaying buffer leaves them -- no stationarity condition, no prior",
                           "buf_t = momentum^t buf_1")
    if g.decay == "none":
        return _flat_entry(g.index, names, what.split(" with ")[0], ctx)
    if g.decay == "decoupled":
        return _box_entry(g.index, names, g.weight_decay, what, ctx, float(s["eps"]),
                          bool(s.get("amsgrad", False)))
    return _prior_entry(g.index, names, g.weight_decay, g.weight_decay, "wd", "gaussian", ctx,
                        what)


def implied_prior_from_penalty(coeff: float, norm: str = "l2", *, loss: str = "mse",
                               reduction: str = "mean", n: int | None = None,
                               noise_scale: float | None = None) -> ImpliedPrior:
    """The prior of an explicit penalty term added to the loss.

    ``norm="l2"``: loss + coeff/2 ||w||^2 (its gradient coeff w: the same as Paddle's
    ``L2Decay(coeff)`` regularizer and as coupled ``weight_decay=coeff``) -> Gaussian.
    ``norm="l1"``: loss + coeff ||w||_1 -> Laplace(0, b). The conversion of
    :func:`implied_prior` (module docstring table) with kappa = coeff.
    """
    coeff = check_positive("coeff", coeff)
    norm = check_choice("norm", norm, ("l2", "l1"))
    ctx = _context(loss, reduction, n, noise_scale)
    what = (f"loss + coeff/2 ||w||^2 (= L2Decay(coeff) = weight_decay), coeff={coeff:g}"
            if norm == "l2" else f"loss + coeff ||w||_1, coeff={coeff:g}")
    entry = _prior_entry(0, ("w",), coeff, coeff, "coeff",
                         "gaussian" if norm == "l2" else "laplace", ctx, what)
    return ImpliedPrior(f"penalty {norm}", ctx.loss, ctx.reduction, ctx.n, ctx.noise, (entry,))


def implied_prior_sgdw(weight_decay: float, *, momentum: float = 0.0, dampening: float = 0.0,
                       lr: float | None = None, lr_scaled: bool = True, loss: str = "mse",
                       reduction: str = "mean", n: int | None = None,
                       noise_scale: float | None = None) -> ImpliedPrior:
    """The prior of decoupled SGD decay with momentum (SGDW-style, hand-written loops).

    Update (torch's momentum buffer, decay applied apart from it)::

        m <- mu m + (1 - tau) g,    w <- w - lr m - D w,   D = lr wd (lr_scaled) or wd.

    At a fixed point m = (1 - tau) g / (1 - mu), so lr (1 - tau) g / (1 - mu) + D w = 0:
    grad loss + kappa w = 0 with kappa = wd (1 - mu) / (1 - tau) (``lr_scaled=True``) or
    wd (1 - mu) / ((1 - tau) lr) (``lr_scaled=False``; needs ``lr``). Nesterov's look-ahead
    g + mu m has the same zero. The Gaussian prior then follows from kappa as for coupled
    decay. Momentum shrinks the effective decay: SGDW with mu = 0.9 is a prior 10x weaker
    (sigma sqrt(10)x larger) than its weight_decay read as coupled.
    """
    wd = check_positive("weight_decay", weight_decay)
    mu = check_nonnegative("momentum", momentum)
    tau = check_nonnegative("dampening", dampening)
    if mu >= 1:
        raise ValueError(f"momentum must be a number in [0, 1); got {momentum!r}")
    if tau >= 1:
        raise ValueError(f"dampening must be a number in [0, 1) (1 stalls the buffer); got "
                         f"{dampening!r}")
    ctx = _context(loss, reduction, n, noise_scale)
    if lr_scaled:
        kappa, text = wd * (1 - mu) / (1 - tau), "wd (1 - mu) / (1 - tau)"
    else:
        if lr is None:
            raise ValueError("lr is required when lr_scaled=False (the decay D = wd is not "
                             "multiplied by it)")
        lr = check_positive("lr", lr)
        kappa, text = wd * (1 - mu) / ((1 - tau) * lr), "wd (1 - mu) / ((1 - tau) lr)"
    what = (f"SGDW-style decoupled decay weight_decay={wd:g} (momentum={mu:g}, dampening="
            f"{tau:g}, {'lr-scaled' if lr_scaled else 'not lr-scaled'}; kappa = {kappa:.6g})")
    entry = _prior_entry(0, ("w",), wd, kappa, f"[{text}]", "gaussian", ctx, what)
    return ImpliedPrior("SGDW", ctx.loss, ctx.reduction, ctx.n, ctx.noise, (entry,))


def implied_prior_for(optimizer: str, *, weight_decay: float, loss: str = "mse",
                      reduction: str = "mean", n: int | None = None,
                      noise_scale: float | None = None, **opt_kwargs: Any) -> ImpliedPrior:
    """:func:`implied_prior` of the optimizer named ``optimizer`` ("sgd", "adam", "adamw",
    "rmsprop", "adagrad") built with ``weight_decay`` and ``**opt_kwargs`` (momentum,
    nesterov, decoupled_weight_decay, ...) on one float64 parameter -- what the CLI's
    ``mapreg optim --optimizer adam --weight-decay 0.01 ...`` prints."""
    wd = check_nonnegative("weight_decay", weight_decay)
    holder = nn.Module()
    holder.w = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make_optimizer(optimizer, [holder.w], weight_decay=wd, **opt_kwargs)
    return implied_prior(opt, loss, reduction, n=n, noise_scale=noise_scale, module=holder)


__all__ = ["GroupPrior", "ImpliedPrior", "implied_prior", "implied_prior_for",
           "implied_prior_from_penalty", "implied_prior_sgdw"]
