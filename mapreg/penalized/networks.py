"""Full-batch training of a small network with coupled weight decay or an explicit L1 term.

Plain torch (no Pyro, no :mod:`mapreg.bayes`). The objective, with *sum* reduction, for a
network f(x; theta) with scalar output::

    J(theta) = sum_i loss_i(theta) + sum_l [ (wd_l / 2) ||W_l||^2   (penalty "l2")
                                              or  kappa_l ||W_l||_1   (penalty "l1") ]

    loss_i = 1/2 (y_i - f(x_i))^2        (loss="mse":  0.5 * MSELoss(reduction="sum"))
    loss_i = BCEWithLogits(f(x_i), y_i)  (loss="bce":  BCEWithLogitsLoss(reduction="sum"))

The named weights carry the penalty; every other parameter (the biases) none. Read as a
posterior: with a Gaussian likelihood of noise sigma_eps, J / sigma_eps^2 is -log p for a
Normal(0, sigma_l) prior on W_l when wd_l = sigma_eps^2 / sigma_l^2 (Laplace(0, b_l):
kappa_l = sigma_eps^2 / b_l); with a Bernoulli likelihood J itself is -log p, wd_l = 1/sigma_l^2,
kappa_l = 1/b_l.

Optimizers:

* ``"sgd"``: ``torch.optim.SGD`` with momentum and ``weight_decay=wd_l`` in each weight's
  parameter group (coupled decay: wd_l W_l is added to the gradient, the gradient of
  (wd_l/2)||W_l||^2), biases in a group with weight_decay 0. For "l1" the term kappa ||W||_1
  is written into the loss and autograd's subgradient sign(W) (0 at 0) is used: the plain
  subgradient method, which never produces exact zeros and has no stopping test.
* ``"lbfgs"``: ``torch.optim.LBFGS`` (strong Wolfe line search) on J with the decay written
  as the explicit term (LBFGS has no ``weight_decay``); "l2" only. Near the optimum the line
  search, which compares values of J, stalls on J's rounding (residual ~1e-8): LBFGS goes on
  without it, and if ``tol`` is still not met, Newton steps on J (Hessian by
  :func:`torch.autograd.functional.hessian`, plain torch, kept only while the residual drops
  and the Hessian is positive definite) resolve the last digits; the result reports both.

Stop test ("l2"): the stationarity residual max_j |dJ/dtheta_j| / s_j, with
s_j = sum_i |d loss_i / d theta_j| + |wd_j theta_j| the absolute values of the terms of
condition j (per-sample gradients by :func:`torch.func.jacrev`), must reach ``tol``; the
achieved value is reported either way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from .._results import FrozenResult
from .._validation import (
    DTYPE,
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from ..errors import report_nonconvergence

_LOSSES = ("mse", "bce")
_OPTIMIZERS = ("lbfgs", "sgd")
_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def mlp(d: int, hidden: int, *, activation: str = "tanh", seed: int = 0) -> nn.Sequential:
    """``nn.Sequential(Linear(d, hidden), activation, Linear(hidden, 1))`` in float64,
    initialised by torch's default (Kaiming-uniform) rule in float64 from
    ``torch.manual_seed(seed)`` (in a forked RNG state: the caller's is left as it was).
    Parameters: "0.weight" (hidden, d), "0.bias", "2.weight" (1, hidden), "2.bias"."""
    d = check_positive_int("d", d)
    hidden = check_positive_int("hidden", hidden)
    act = check_choice("activation", activation, tuple(_ACTIVATIONS))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return nn.Sequential(nn.Linear(d, hidden, dtype=DTYPE), _ACTIVATIONS[act](),
                             nn.Linear(hidden, 1, dtype=DTYPE))


def _check_decay(module: nn.Module, decay: Mapping) -> dict[str, tuple[str, float]]:
    params = dict(module.named_parameters())
    out = {}
    for name, spec in dict(decay).items():
        if name not in params:
            raise ValueError(f"decay names {name!r}, which is not a parameter of the module; "
                             f"its parameters: {sorted(params)}")
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(f"decay[{name!r}] must be a pair ('l2' | 'l1', coefficient); "
                             f"got {spec!r}")
        kind = check_choice(f"decay[{name!r}] penalty", spec[0], ("l2", "l1"))
        out[name] = (kind, check_nonnegative(f"decay[{name!r}] coefficient", spec[1]))
    for name, p in params.items():
        if p.dtype != DTYPE:
            raise ValueError(f"the module's parameter {name!r} must be float64; got {p.dtype}")
    return out


def _losses(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    f = out.reshape(y.shape)
    if loss == "mse":
        return 0.5 * (y - f) ** 2
    return nn.functional.binary_cross_entropy_with_logits(f, y, reduction="none")


def _penalty(params: Mapping[str, torch.Tensor], decay: Mapping) -> torch.Tensor:
    total = torch.zeros((), dtype=DTYPE)
    for name, (kind, c) in decay.items():
        w = params[name]
        total = total + (0.5 * c * (w * w).sum() if kind == "l2" else c * w.abs().sum())
    return total


def network_objective(module: nn.Module, X: torch.Tensor, y: torch.Tensor, *,
                      loss: str = "mse",
                      decay: Mapping[str, tuple[str, float]] | None = None) -> torch.Tensor:
    """J(theta) of the module docstring at the module's current parameters (a scalar with
    autograd history): sum_i loss_i + the named penalties."""
    loss = check_choice("loss", loss, _LOSSES)
    decay = _check_decay(module, decay or {})
    return _losses(module(X), y, loss).sum() + _penalty(dict(module.named_parameters()), decay)


def stationarity(module: nn.Module, X: torch.Tensor, y: torch.Tensor, *, loss: str = "mse",
                 decay: Mapping[str, tuple[str, float]] | None = None
                 ) -> tuple[dict[str, torch.Tensor], float]:
    """({name: dJ/dtheta}, max_j |dJ/dtheta_j| / s_j) at the module's parameters.

    s_j = sum_i |d loss_i / d theta_j| + |d penalty / d theta_j|: the absolute values of the
    terms of optimality condition j (for an "l1" weight the subgradient sign(theta_j), 0 at
    0, is used, so the residual of an L1 problem is that of autograd's subgradient). NaN
    when a parameter or gradient is not finite."""
    loss = check_choice("loss", loss, _LOSSES)
    decay = _check_decay(module, decay or {})
    names = [n for n, _ in module.named_parameters()]
    params = {n: p.detach().clone() for n, p in module.named_parameters()}

    def per_sample(ps):
        out = torch.func.functional_call(module, ps, (X,))
        return _losses(out, y, loss)

    jac = torch.func.jacrev(per_sample)(params)  # {name: (n, *shape)}
    grads, worst = {}, 0.0
    for n in names:
        p = params[n]
        a = jac[n].reshape(X.shape[0], -1)
        pen = torch.zeros_like(p).reshape(-1)
        if n in decay:
            kind, c = decay[n]
            pen = (c * p if kind == "l2" else c * torch.sign(p)).reshape(-1)
        g = a.sum(0) + pen
        s = a.abs().sum(0) + pen.abs()
        grads[n] = g.reshape(p.shape)
        rel = torch.where(s > 0, g.abs() / torch.where(s > 0, s, 1.0),
                          torch.where(g == 0, 0.0, math.inf))
        top = float(rel.max())
        worst = math.nan if math.isnan(top) or math.isnan(worst) else max(worst, top)
    return grads, worst


def _newton_polish(module, X, y, loss, decay, tol, residual, max_steps=20):
    """Newton steps on J (Hessian by torch.autograd.functional.hessian, solved by Cholesky),
    each kept only if the stationarity residual drops: the last digits that LBFGS's line
    search, comparing values of J, cannot resolve. Stops at an indefinite Hessian."""
    names = [n for n, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    sizes = [s.numel() for s in shapes]
    params = dict(module.named_parameters())

    def unflat(v):
        return {n: t.reshape(s) for n, t, s in zip(names, torch.split(v, sizes), shapes,
                                                       strict=True)}

    def J(v):
        ps = unflat(v)
        out = torch.func.functional_call(module, ps, (X,))
        return _losses(out, y, loss).sum() + _penalty(ps, decay)

    k = 0
    for _ in range(max_steps):
        v = torch.cat([params[n].detach().reshape(-1) for n in names])
        H = torch.autograd.functional.hessian(J, v)
        g = torch.autograd.functional.jacobian(J, v)
        L, info = torch.linalg.cholesky_ex(0.5 * (H + H.T))
        if int(info):
            break
        new = v - torch.cholesky_solve(g[:, None], L)[:, 0]
        with torch.no_grad():
            for n, t in unflat(new).items():
                params[n].copy_(t)
        _, trial = stationarity(module, X, y, loss=loss, decay=decay)
        if not trial < residual:
            with torch.no_grad():
                for n, t in unflat(v).items():
                    params[n].copy_(t)
            break
        residual, k = trial, k + 1
        if residual <= tol:
            break
    return residual, k


@dataclass(frozen=True, eq=False)
class NetworkTrainResult(FrozenResult):
    """Outcome of :func:`train_network` (frozen; tensors are read as copies).

    Attributes
    ----------
    params
        {parameter name: trained value}.
    objective
        J at the end (module docstring).
    residual
        The stationarity residual max_j |dJ/dtheta_j| / s_j at the end (:func:`stationarity`).
    grad_norm
        ||dJ/dtheta||_2 at the end.
    n_zero
        {name: exact zeros} of every parameter with an "l1" penalty.
    converged, status
        ``residual <= tol`` ("converged") or not ("max_steps"; "diverged": a non-finite
        parameter, e.g. a step size too large); "l1": always False,
        ``"no_stopping_test"`` (the subgradient method ran its steps).
    optimizer, steps
        "lbfgs" / "sgd" and the optimizer steps (LBFGS: outer ``step`` calls, each up to
        ``inner`` iterations).
    lbfgs_residual, newton_steps
        LBFGS: the residual LBFGS itself reached, and the Newton steps on J that followed
        (:func:`train_network`); SGD: inf and 0.
    """

    _params: dict
    objective: float
    residual: float
    grad_norm: float
    n_zero: dict
    converged: bool
    status: str
    optimizer: str
    steps: int
    lbfgs_residual: float
    newton_steps: int
    wall_time: float = field(compare=False)

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in object.__getattribute__(self, "_params").items()}


def train_network(module: nn.Module, X: torch.Tensor, y: torch.Tensor, *,
                  loss: str = "mse", decay: Mapping[str, tuple[str, float]] | None = None,
                  optimizer: str = "lbfgs", lr: float | None = None, momentum: float = 0.9,
                  tol: float = 1e-10, max_steps: int = 20_000, inner: int = 200,
                  strict: bool = False) -> NetworkTrainResult:
    """Train ``module`` in place, full batch, on J (module docstring).

    Parameters
    ----------
    module : nn.Module
        Float64; trained in place from its current parameters.
    X, y : tensors
        (n, d) inputs and (n,) targets (0/1 for ``loss="bce"``).
    loss : {"mse", "bce"}
        1/2 (y - f)^2 summed, or BCE-with-logits summed.
    decay : mapping
        {parameter name: ("l2", wd) or ("l1", kappa)}; unnamed parameters are unpenalized.
    optimizer : {"lbfgs", "sgd"}
        See the module docstring. "l1" penalties need "sgd" (subgradient).
    lr : float, optional
        Step size (default 1.0 for LBFGS, 1e-2 for SGD).
    momentum : float
        SGD's heavy-ball momentum in [0, 1).
    tol : float
        Stop when the stationarity residual is <= tol ("l2" only).
    max_steps : int
        SGD steps, or LBFGS ``step`` calls (each up to ``inner`` iterations).
    strict : bool
        Raise instead of warning when ``tol`` is not reached.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    X, y = check_data(X, y)
    loss = check_choice("loss", loss, _LOSSES)
    optimizer = check_choice("optimizer", optimizer, _OPTIMIZERS)
    decay = _check_decay(module, decay or {})
    tol = check_positive("tol", tol)
    max_steps = check_positive_int("max_steps", max_steps)
    inner = check_positive_int("inner", inner)
    momentum = check_nonnegative("momentum", momentum)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
    has_l1 = any(k == "l1" for k, _ in decay.values())
    if has_l1 and optimizer != "sgd":
        raise ValueError("an 'l1' penalty needs optimizer='sgd' (the subgradient method); "
                         f"got optimizer={optimizer!r}")
    lr = check_positive("lr", lr if lr is not None else (1.0 if optimizer == "lbfgs" else 1e-2))
    start = time.perf_counter()
    params = dict(module.named_parameters())
    l1 = {n: c for n, (k, c) in decay.items() if k == "l1"}
    steps = 0
    residual = lbfgs_residual = math.inf
    newton_steps = 0
    check_every = 50
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(list(params.values()), lr=lr, max_iter=inner,
                                tolerance_grad=0.0, tolerance_change=0.0, history_size=50,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            J = _losses(module(X), y, loss).sum() + _penalty(params, decay)
            J.backward()
            return J

        plain = False  # True once the line search has stalled (below)
        best = (math.inf, None)
        previous = math.inf
        while steps < max_steps:
            before = {n: p.detach().clone() for n, p in params.items()}
            opt.step(closure)
            steps += 1
            _, residual = stationarity(module, X, y, loss=loss, decay=decay)
            moved = any(not torch.equal(before[n], p.detach()) for n, p in params.items())
            if residual < best[0]:
                best = (residual, {n: p.detach().clone() for n, p in params.items()})
            if residual <= tol:
                break
            if plain and not residual < 0.5 * previous:
                break  # plain steps no longer halve the residual: over to Newton
            previous = residual
            if moved and math.isfinite(residual) or plain:
                continue
            # The strong-Wolfe line search compares values of J; near the optimum their
            # differences drown in J's rounding and it stops moving. Go on with plain
            # quasi-Newton steps (unit step, no line search): they need gradients only.
            plain = True
            opt = torch.optim.LBFGS(list(params.values()), lr=lr, max_iter=inner,
                                    tolerance_grad=0.0, tolerance_change=0.0,
                                    history_size=50, line_search_fn=None)
        if best[1] is not None and best[0] < residual:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(best[1][n])
            residual = best[0]
        lbfgs_residual = residual
        if residual > tol:
            residual, newton_steps = _newton_polish(module, X, y, loss, decay, tol, residual)
    else:
        groups = []
        for n, p in params.items():
            wd = decay[n][1] if n in decay and decay[n][0] == "l2" else 0.0
            groups.append({"params": [p], "weight_decay": wd})
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum)
        while steps < max_steps:
            opt.zero_grad()
            J = _losses(module(X), y, loss).sum()
            for n, c in l1.items():
                J = J + c * params[n].abs().sum()
            J.backward()
            opt.step()
            steps += 1
            if not has_l1 and steps % check_every == 0:
                _, residual = stationarity(module, X, y, loss=loss, decay=decay)
                if not math.isfinite(residual) and not all(
                        bool(torch.isfinite(p).all()) for p in params.values()):
                    break
                if residual <= tol:
                    break
    grads, residual = stationarity(module, X, y, loss=loss, decay=decay)
    with torch.no_grad():
        J = float(network_objective(module, X, y, loss=loss, decay=decay))
    grad_norm = float(torch.cat([g.reshape(-1) for g in grads.values()]).norm())
    wall = time.perf_counter() - start
    n_zero = {n: int((params[n] == 0).sum()) for n in l1}
    if has_l1:
        converged, status = False, "no_stopping_test"
    else:
        converged = residual <= tol
        finite = all(bool(torch.isfinite(p).all()) for p in params.values())
        status = "converged" if converged else ("max_steps" if finite else "diverged")
        if not converged:
            report_nonconvergence(
                f"network training ({optimizer}) stopped after {steps} steps with stationarity "
                f"residual {residual:.3e} > tol {tol:.3e}", strict)
    return NetworkTrainResult({n: p.detach().clone() for n, p in params.items()}, J, residual,
                              grad_norm, n_zero, converged, status, optimizer, steps,
                              lbfgs_residual, newton_steps, wall)
