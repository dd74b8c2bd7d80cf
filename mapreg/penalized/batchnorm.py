"""Batch norm breaks the MAP reading of weight decay (plain torch, no Pyro).

Weights W feeding a normalisation layer -- ``nn.BatchNorm*`` in train mode (batch
statistics), or ``nn.LayerNorm`` -- give a loss that is invariant to their scale: with
z = W x + b and BN's output (z - mean_batch z) / sqrt(var_batch z + eps),

* eps = 0: L(c W) = L(W) for every c > 0 (each output row of W even separately, for BN).
  Differentiating at c = 1: <grad_W L, W> = 0 (Euler's theorem for degree-0 functions).
  The bias b is removed by BN's mean subtraction: dL/db = 0.
* eps > 0: scaling W by c is the same as dividing eps by c^2,
  L(c W; eps) = L(W; eps / c^2), so <grad_W L, W> = d/dc L(cW)|_{c=1} = -2 eps dL/deps:
  small where var_batch z >> eps, not zero.

Consequences for "weight decay = Gaussian prior":

* The penalized objective L(W) + lam/2 ||W||^2 has no minimizer (eps = 0): along every ray
  it is L(W) + lam/2 c^2 ||W||^2, strictly decreasing as c -> 0, with infimum L(W) not
  attained; W = 0 itself is excluded (BN divides 0 by 0: the loss is NaN there). With eps > 0
  the loss is defined at 0 (the normalised output is 0: the network sees only BN's shift) but
  no longer scale invariant near 0: once c^2 var_batch z is comparable to eps the loss moves
  towards L(0), and L jumps at W = 0 itself (lim_{c->0} L(cW) = L(W; eps -> 0) != L(0)).
  Along a ray the loss is a function ell(eps / c^2) of the effective eps only, so a minimizer
  of L + lam/2 ||W||^2, when there is one, has its scale set by BN's numerical-stability
  constant: measured (tests/test_batchnorm.py) c* proportional to sqrt(eps) and unmoved by
  lam, where ell has an interior minimum. There is no posterior mode to speak of: weight
  decay on such weights acts on the effective learning rate eta / ||W||^2 (van Laarhoven
  2017), not as a prior.
* Plain SGD with coupled decay, W' = W - eta (g + lam W) = (1 - eta lam) W - eta g with g =
  grad_W L, has ||W'||^2 = (1 - eta lam)^2 ||W||^2 - 2 eta (1 - eta lam) <g, W> + eta^2 ||g||^2,
  and the middle term is 0: ||W'||^2 = (1 - eta lam)^2 ||W||^2 + eta^2 ||g||^2 exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._results import FrozenResult
from .._validation import check_nonnegative, check_positive, check_positive_int

_EPS = torch.finfo(torch.float64).eps
_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
          nn.modules.instancenorm._InstanceNorm)


def scale_invariant_layers(module: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name, layer, norm) for every Linear/Conv layer immediately followed, inside an
    ``nn.Sequential`` (nested ones are searched), by a BatchNorm, LayerNorm, GroupNorm or
    InstanceNorm layer ``norm``: the layers whose parameters the loss is scale invariant in."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    out = []
    for prefix, sub in module.named_modules():
        if not isinstance(sub, nn.Sequential):
            continue
        children = list(sub.named_children())
        for (name, layer), (_, nxt) in zip(children, children[1:], strict=False):
            if isinstance(layer, _WEIGHTED) and isinstance(nxt, _NORMS):
                out.append((f"{prefix}.{name}" if prefix else name, layer, nxt))
    return out


def scale_invariant_parameters(module: nn.Module) -> list[str]:
    """Names of the parameters whose loss is scale invariant (training-mode statistics).

    A Linear/Conv layer immediately followed, inside an ``nn.Sequential`` (nested ones are
    searched), by BatchNorm, LayerNorm, GroupNorm or InstanceNorm: its weight, and its bias
    if any (:func:`scale_invariant_layers`). For BatchNorm each output row of the weight is
    scale invariant on its own and the bias has gradient 0 (BN subtracts the batch mean); for
    LayerNorm/GroupNorm the weight and bias are invariant jointly (scaled by one common c).
    Exact for eps = 0 only (module docstring).
    """
    out = []
    for base, layer, _ in scale_invariant_layers(module):
        out.append(f"{base}.weight")
        if layer.bias is not None:
            out.append(f"{base}.bias")
    return out

def _invariant_weight(module: nn.Module, name: str | None) -> tuple[str, nn.Parameter]:
    """(name, parameter): ``name``, or the first weight :func:`scale_invariant_parameters`
    reports."""
    if name is None:
        found = [n for n in scale_invariant_parameters(module) if n.endswith("weight")]
        if not found:
            raise ValueError("the module has no weight followed by a normalisation layer")
        name = found[0]
    return name, _param(module, name)


def _param(module: nn.Module, name: str) -> nn.Parameter:
    params = dict(module.named_parameters())
    if name not in params:
        raise ValueError(f"{name!r} is not a parameter of the module; its parameters: "
                         f"{sorted(params)}")
    return params[name]


@dataclass(frozen=True, eq=False)
class ScaleInvarianceResult(FrozenResult):
    """Outcome of :func:`scale_invariance_check` for one weight W.

    Attributes
    ----------
    name
        The weight's parameter name.
    inner, tolerance
        <grad_W L, W> and the rounding bound it is tested against:
        tolerance = 4 (n + fan_in + numel(W)) eps sum_j |g_j W_j| (float64 eps; the longest
        sums in the forward and backward passes, and the dot product itself).
    cosine
        <g, W> / (||g|| ||W||).
    scales, losses, penalized
        c, L(c W) and L(c W) + lam/2 c^2 ||W||^2 along the ray.
    loss_at_zero
        L at W = 0 (NaN when the layer divides 0 by 0: BN with eps = 0).
    lam
    """

    name: str
    inner: float
    tolerance: float
    cosine: float
    scales: tuple
    losses: tuple
    penalized: tuple
    loss_at_zero: float
    lam: float


def scale_invariance_check(module: nn.Module, X: torch.Tensor, y: torch.Tensor,
                           loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                           name: str | None = None, lam: float = 1e-2,
                           scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5, 0.1, 1e-2, 1e-3)
                           ) -> ScaleInvarianceResult:
    """<grad_W L, W>, and L(cW) + lam/2 c^2 ||W||^2 along W's ray, for one weight W.

    ``module`` is evaluated in its current mode (train mode: batch statistics) on the batch
    ``X``; L = ``loss(module(X), y)``. ``name`` defaults to the first weight reported by
    :func:`scale_invariant_parameters`. The module's parameters and buffers (BN's running
    statistics, which train-mode forward passes update) are restored afterwards.
    """
    lam = check_nonnegative("lam", lam)
    name, W = _invariant_weight(module, name)
    saved = W.detach().clone()
    state = copy.deepcopy(module.state_dict())
    module.zero_grad()
    loss(module(X), y).backward()
    g = W.grad.detach().clone()
    inner = float((g * saved).sum())
    fan_in = saved[0].numel() if saved.dim() > 1 else 1
    tol = 4 * (X.shape[0] + fan_in + saved.numel()) * _EPS * float((g * saved).abs().sum())
    cosine = inner / max(float(g.norm() * saved.norm()), 1e-300)
    cs, Ls, Ps = [], [], []
    norm2 = float((saved * saved).sum())
    with torch.no_grad():
        for c in scales:
            c = check_positive("scales", c)
            W.copy_(c * saved)
            value = float(loss(module(X), y))
            cs.append(c)
            Ls.append(value)
            Ps.append(value + 0.5 * lam * c * c * norm2)
        W.zero_()
        at_zero = float(loss(module(X), y))
    module.load_state_dict(state)
    module.zero_grad()
    return ScaleInvarianceResult(name, inner, tol, cosine, tuple(cs), tuple(Ls), tuple(Ps),
                                 at_zero, lam)


@dataclass(frozen=True, eq=False)
class NormRecursionResult(FrozenResult):
    """Outcome of :func:`sgd_norm_recursion`.

    Attributes
    ----------
    norms_sq
        ||W_t||^2, t = 0..steps, as SGD produced them.
    predicted
        (1 - lr wd)^2 ||W_t||^2 + lr^2 ||g_t||^2 for t = 0..steps-1 (the prediction of
        ||W_{t+1}||^2 from step t alone).
    inner
        <g_t, W_t> at each step.
    max_rel_error
        max_t |norms_sq[t+1] - predicted[t]| / norms_sq[t+1].
    """

    name: str
    norms_sq: tuple
    predicted: tuple
    inner: tuple
    max_rel_error: float
    lr: float
    weight_decay: float


def sgd_norm_recursion(module: nn.Module, X: torch.Tensor, y: torch.Tensor,
                       loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                       name: str | None = None, lr: float = 0.1, weight_decay: float = 1e-2,
                       steps: int = 200) -> NormRecursionResult:
    """Train ``module`` in place with ``torch.optim.SGD(lr, weight_decay)`` (no momentum),
    full batch, and compare ||W'||^2 with (1 - lr wd)^2 ||W||^2 + lr^2 ||g||^2 per step,
    g the loss gradient (without the decay) torch used for the step."""
    lr = check_positive("lr", lr)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    steps = check_positive_int("steps", steps)
    name, W = _invariant_weight(module, name)
    opt = torch.optim.SGD(module.parameters(), lr=lr, weight_decay=weight_decay)
    norms = [float((W.detach() ** 2).sum())]
    pred, inner = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss(module(X), y).backward()
        g = W.grad.detach()
        w = W.detach()
        pred.append((1 - lr * weight_decay) ** 2 * norms[-1] + lr * lr * float((g * g).sum()))
        inner.append(float((g * w).sum()))
        opt.step()
        norms.append(float((W.detach() ** 2).sum()))
    rel = max(abs(a - b) / a for a, b in zip(norms[1:], pred, strict=True))
    if not math.isfinite(rel):
        rel = math.inf
    return NormRecursionResult(name, tuple(norms), tuple(pred), tuple(inner), rel, lr,
                               weight_decay)
