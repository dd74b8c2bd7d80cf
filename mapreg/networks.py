"""Networks as MAP: the engine on a lifted MLP against full-batch training (a bridge).

:func:`compare_network` builds one MLP d -> hidden -> 1 (tanh) from a seed, lifts a copy to
a Pyro model (:func:`mapreg.bayes.networks.lift_network`: priors on both weight matrices,
flat biases, Gaussian likelihood with sigma_eps = ``noise``) and trains another copy
(:func:`mapreg.penalized.networks.train_network`) on

    J = sum_i 1/2 (y_i - f(x_i))^2 + (wd/2) (||W_1||^2 + ||W_2||^2),  wd = noise^2 / scale^2

(prior="gaussian": Normal(0, scale) on both weight matrices), so -log p = J / noise^2 + const.
prior="laplace": Laplace(0, scale) on W_1 (first layer), Normal(0, output_scale) on W_2;
J's first-layer term is kappa ||W_1||_1 with kappa = noise^2 / scale, trained by SGD on the
subgradient (no exact zeros) while the engine's proximal Newton step gives exact ones.

A network's log posterior is not convex: two local methods can end in different basins
(a permutation or sign flip of hidden units, another local minimum). Both start from the
same point: the seeded initialisation after ``warmup`` steps of plain gradient descent with
momentum on J (not a solver: a way into one basin; reported). Whether they met is
measured, never assumed.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import torch

from ._results import FrozenResult
from ._validation import check_choice, check_data, check_positive, check_positive_int
from .bayes.engine import map_model
from .bayes.networks import lift_network
from .errors import ConvergenceWarning
from .penalized.networks import mlp, stationarity, train_network


@dataclass(frozen=True, eq=False)
class NetworkCompareResult(FrozenResult):
    """Both points of :func:`compare_network`, per parameter (frozen; copies on read).

    Attributes
    ----------
    map_params, train_params
        {name: value} from the engine and from training.
    max_rel_diff
        max over parameters of ||theta_map - theta_train||_inf / ||theta_map||_inf.
    map_residual, train_residual
        The engine's KKT residual and training's stationarity residual (each its own).
    map_grad_norm, train_grad_norm
        ||dJ/dtheta||_2 at each point, by the penalized side's :func:`stationarity` (for
        "laplace" the subgradient sign(w), 0 at 0: not the KKT measure at exact zeros).
    map_zeros, train_zeros
        Exact zeros of the first-layer weight at each point.
    kkt_zero_margin
        "laplace": max over the engine's zeros of |dL/dw_j| - kappa (<= 0: KKT holds), with L
        the smooth part of J (its loss and the output layer's decay); NaN otherwise.
    map_time, train_time, warmup_time
        Seconds.
    map_converged, train_status, map_iterations, train_steps
    optimizer
        The training route ("sgd" / "lbfgs").
    """

    _map_params: dict
    _train_params: dict
    prior: str
    max_rel_diff: float
    map_residual: float
    train_residual: float
    map_grad_norm: float
    train_grad_norm: float
    map_zeros: int
    train_zeros: int
    kkt_zero_margin: float
    map_converged: bool
    train_status: str
    map_iterations: int
    train_steps: int
    optimizer: str
    map_time: float = field(compare=False)
    train_time: float = field(compare=False)
    warmup_time: float = field(compare=False)

    @property
    def map_params(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in object.__getattribute__(self, "_map_params").items()}

    @property
    def train_params(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in object.__getattribute__(self, "_train_params").items()}


def compare_network(X, y, *, hidden: int = 4, prior: str = "gaussian", scale: float = 1.0,
                    output_scale: float = 1.0, noise: float = 0.1, seed: int = 0,
                    warmup: int = 2000, warmup_lr: float = 2e-3, optimizer: str = "sgd",
                    sgd_lr: float = 5e-3, sgd_momentum: float = 0.95, sgd_steps: int = 100_000,
                    l1_steps: int = 20_000, tol: float = 1e-10) -> NetworkCompareResult:
    """MAP of a lifted MLP by :func:`mapreg.map_model` against full-batch training.

    Parameters
    ----------
    X, y
        (n, d) inputs, (n,) real targets.
    hidden : int
        Hidden units of d -> hidden -> 1 (tanh).
    prior : {"gaussian", "laplace"}
        "gaussian": Normal(0, scale) on both weight matrices, trained on J with coupled
        weight decay wd = noise^2 / scale^2 (``optimizer``). "laplace": Laplace(0, scale) on
        the first layer, Normal(0, output_scale) on the second; trained by SGD with momentum
        on J with the explicit term kappa ||W_1||_1 (kappa = noise^2 / scale, subgradient)
        and coupled weight decay noise^2 / output_scale^2 on W_2, for ``l1_steps`` steps.
    noise : float
        sigma_eps of the Gaussian likelihood.
    seed : int
        The MLP's initialisation.
    warmup, warmup_lr
        Steps and step size of the shared warm start (momentum 0.9; "gaussian" only:
        SGD with decay on J; "laplace": the same with the L1 term).
    optimizer : {"sgd", "lbfgs"}
        "gaussian": ``torch.optim.SGD(lr=sgd_lr, momentum=sgd_momentum,
        weight_decay=wd)`` (biases: no decay) until the stationarity residual is <= tol or
        ``sgd_steps``; or LBFGS on J with the decay written out, finished by Newton steps
        (:func:`mapreg.penalized.networks.train_network`).
    sgd_lr, sgd_momentum, sgd_steps, l1_steps
        SGD's step size, momentum, step budget ("gaussian") and steps ("laplace").
    tol : float
        Both solvers' relative tolerance.
    """
    X, y = check_data(X, y)
    prior = check_choice("prior", prior, ("gaussian", "laplace"))
    scale = check_positive("scale", scale)
    output_scale = check_positive("output_scale", output_scale)
    noise = check_positive("noise", noise)
    warmup = 0 if warmup == 0 else check_positive_int("warmup", warmup)
    optimizer = check_choice("optimizer", optimizer, ("sgd", "lbfgs"))
    net = mlp(X.shape[1], hidden, seed=seed)
    if prior == "gaussian":
        priors = {"0.weight": ("gaussian", scale), "2.weight": ("gaussian", scale)}
    else:
        priors = {"0.weight": ("laplace", scale), "2.weight": ("gaussian", output_scale)}
    model = lift_network(net, priors, likelihood="gaussian", noise=noise)
    decay = model.decay  # the Bayesian side's own statement of the mapping ...
    expected = {"0.weight": ("l2", noise ** 2 / scale ** 2) if prior == "gaussian"
                else ("l1", noise ** 2 / scale),
                "2.weight": ("l2", noise ** 2 / (scale if prior == "gaussian"
                                                 else output_scale) ** 2)}
    for k, (kind, c) in expected.items():  # ... checked against the formula written here
        if decay[k][0] != kind or abs(decay[k][1] - c) > 1e-14 * c:
            raise AssertionError(f"prior -> penalty mapping disagrees at {k}: {decay[k]} "
                                 f"vs {(kind, c)}")
    start = time.perf_counter()
    if warmup:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            train_network(net, X, y, decay=decay, optimizer="sgd", lr=warmup_lr,
                          momentum=0.9, max_steps=warmup)
    warmup_time = time.perf_counter() - start
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    start = time.perf_counter()
    res = map_model(model, X, y, init=init, tol=tol)
    map_time = time.perf_counter() - start
    trained = copy.deepcopy(net)
    if prior == "gaussian" and optimizer == "lbfgs":
        tr = train_network(trained, X, y, decay=decay, optimizer="lbfgs", tol=tol,
                           max_steps=30, inner=100)
    else:
        tr = train_network(trained, X, y, decay=decay, optimizer="sgd", lr=sgd_lr,
                           momentum=sgd_momentum, tol=tol,
                           max_steps=sgd_steps if prior == "gaussian" else l1_steps)
    train_time = tr.wall_time
    at_map = copy.deepcopy(net)
    with torch.no_grad():
        for k, p in at_map.named_parameters():
            p.copy_(res.values[k])
    g_map, _ = stationarity(at_map, X, y, decay=decay)
    g_tr, _ = stationarity(trained, X, y, decay=decay)
    margin = float("nan")
    if prior == "laplace":
        smooth = {k: v for k, v in decay.items() if v[0] == "l2"}
        g_smooth, _ = stationarity(at_map, X, y, decay=smooth)
        zero = res.values["0.weight"] == 0
        if bool(zero.any()):
            margin = float((g_smooth["0.weight"][zero].abs() - decay["0.weight"][1]).max())
    mp, tp = res.values, tr.params
    diff = max(float((mp[k] - tp[k]).abs().max() / mp[k].abs().max().clamp_min(1e-300))
               for k in mp)

    def norm(g):
        return float(torch.cat([v.reshape(-1) for v in g.values()]).norm())

    return NetworkCompareResult(
        mp, tp, prior, diff, res.kkt_residual, tr.residual, norm(g_map), norm(g_tr),
        int((mp["0.weight"] == 0).sum()), int((tp["0.weight"] == 0).sum()), margin,
        res.converged, tr.status, res.iterations, tr.steps, optimizer, map_time, train_time,
        warmup_time)
