"""A small neural network as a Pyro model: priors on its weight matrices, flat biases.

An ``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations (for example
d -> h -> 1 with tanh) is lifted in place of a copy by :func:`pyro.nn.module.to_pyro_module_`:
every weight matrix becomes a :class:`~pyro.nn.PyroSample` site with an i.i.d. prior, every
bias a flat site ``ImproperUniform(real)`` (log p = 0: unpenalized). The sample sites carry
the module's own parameter names (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...), so a
MAP from :func:`mapreg.map_model` is read back into the same ``nn.Module`` by name.

The model, for f(x; theta) the network's scalar output::

    W_l ~ prior_l (i.i.d. Normal(0, sigma_l) or Laplace(0, b_l)),   b_l ~ flat
    y_i ~ Normal(f(x_i), sigma_eps)          (likelihood="gaussian", sigma_eps given)
    y_i ~ Bernoulli(logits = f(x_i))         (likelihood="bernoulli")

Its negative log joint, up to constants, and the training objective it is
(``J`` = the loss a torch training loop minimises, with *sum* reduction):

* Gaussian: -log p = J / sigma_eps^2 + const, with
  J = sum_i 1/2 (y_i - f(x_i))^2 + sum_l [ (wd_l / 2) ||W_l||^2  or  kappa_l ||W_l||_1 ],
  wd_l = sigma_eps^2 / sigma_l^2 (coupled weight decay: torch's ``weight_decay`` on the loss
  ``0.5 * MSELoss(reduction="sum")``), kappa_l = sigma_eps^2 / b_l.
* Bernoulli: -log p = J + const, with J = sum_i BCEWithLogits(f(x_i), y_i) + the same
  penalty with wd_l = 1 / sigma_l^2, kappa_l = 1 / b_l.

So the gradient of -log p is the gradient of J (training loss plus decay term) divided by
``loss_weight = 1 / sigma_eps^2`` (Gaussian) or 1 (Bernoulli); ``NetworkModel.decay`` and
``NetworkModel.loss_weight`` state the mapping for a given model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroSample
from pyro.nn.module import to_pyro_module_
from torch import nn

from .._validation import DTYPE, check_choice, check_positive

_PRIORS = ("gaussian", "laplace")
_LIKELIHOODS = ("gaussian", "bernoulli")


def _prior(kind: str, scale: float, shape: torch.Size) -> dist.Distribution:
    zero = torch.zeros((), dtype=DTYPE)
    s = torch.as_tensor(scale, dtype=DTYPE)
    base = dist.Normal(zero, s) if kind == "gaussian" else dist.Laplace(zero, s)
    return base.expand(shape).to_event(len(shape))


class NetworkModel:
    """A lifted network with a likelihood: a Pyro model ``model(X, y=None)``.

    Meant to be conditioned on its parameters (as the MAP engine and
    :func:`network_log_joint_grad` do): the flat bias sites cannot be sampled.

    Attributes
    ----------
    net
        The lifted copy of the module (a ``PyroModule``); its weight and bias attributes are
        sample sites named like the original module's parameters.
    priors
        {weight name: ("gaussian" | "laplace", scale)}; biases are flat.
    likelihood, noise
        ``"gaussian"`` with sigma_eps = ``noise``, or ``"bernoulli"`` (``noise`` None).
    """

    def __init__(self, net: nn.Module, priors: dict, likelihood: str, noise: float | None):
        self.net = net
        self.priors = priors
        self.likelihood = likelihood
        self.noise = noise

    @property
    def loss_weight(self) -> float:
        """-log p = loss_weight * J + const: 1 / sigma_eps^2 (Gaussian) or 1 (Bernoulli)."""
        return 1.0 / self.noise ** 2 if self.likelihood == "gaussian" else 1.0

    @property
    def decay(self) -> dict[str, tuple[str, float]]:
        """{weight name: ("l2", wd) or ("l1", kappa)}: the penalty of J (module docstring),
        wd = 1 / (loss_weight sigma^2) and kappa = 1 / (loss_weight b)."""
        out = {}
        for name, (kind, scale) in self.priors.items():
            if kind == "gaussian":
                out[name] = ("l2", 1.0 / (self.loss_weight * scale ** 2))
            else:
                out[name] = ("l1", 1.0 / (self.loss_weight * scale))
        return out

    def __call__(self, X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        f = self.net(X).squeeze(-1)
        with pyro.plate("data", X.shape[0]):
            if self.likelihood == "gaussian":
                pyro.sample("y", dist.Normal(f, torch.as_tensor(self.noise, dtype=DTYPE)),
                            obs=y)
            else:
                pyro.sample("y", dist.Bernoulli(logits=f), obs=y)
        return f


def lift_network(module: nn.Module, priors: Mapping[str, tuple[str, float]], *,
                 likelihood: str = "gaussian", noise: float | None = 1.0) -> NetworkModel:
    """A Pyro model from a copy of ``module``: the named weights get priors, biases are flat.

    Parameters
    ----------
    module : nn.Module
        A network mapping X (n, d) to (n, 1) or (n,), float64 (not modified).
    priors : mapping
        {parameter name: ("gaussian", sigma) or ("laplace", b)}, i.i.d. over the tensor's
        elements. Every parameter not named here must be a bias (its name ends in "bias")
        and gets the flat prior ``ImproperUniform(real)`` (log p = 0).
    likelihood : {"gaussian", "bernoulli"}
    noise : float
        sigma_eps of the Gaussian likelihood (ignored for "bernoulli").

    Returns
    -------
    NetworkModel
        Callable as ``model(X, y)``; the objective it stands for is in the module docstring.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    likelihood = check_choice("likelihood", likelihood, _LIKELIHOODS)
    noise = check_positive("noise", noise) if likelihood == "gaussian" else None
    params = dict(module.named_parameters())
    checked = {}
    for name, spec in dict(priors).items():
        if name not in params:
            raise ValueError(f"priors names {name!r}, which is not a parameter of the module; "
                             f"its parameters: {sorted(params)}")
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(f"priors[{name!r}] must be a pair (kind, scale); got {spec!r}")
        kind = check_choice(f"priors[{name!r}] kind", spec[0], _PRIORS)
        checked[name] = (kind, check_positive(f"priors[{name!r}] scale", spec[1]))
    for name, p in params.items():
        if p.dtype != DTYPE:
            raise ValueError(f"the module's parameter {name!r} must be float64; got {p.dtype}")
        if name not in checked and not name.endswith("bias"):
            raise ValueError(f"the weight {name!r} has no prior: name it in priors (a flat "
                             "weight leaves a network's MAP undefined)")
    net = copy.deepcopy(module)
    to_pyro_module_(net)
    for full, p in list(net.named_parameters()):
        owner_name, _, attr = full.rpartition(".")
        owner = net.get_submodule(owner_name) if owner_name else net
        shape = p.shape
        delattr(owner, attr)
        if full in checked:
            kind, scale = checked[full]
            setattr(owner, attr, PyroSample(_prior(kind, scale, shape)))
        else:
            flat = dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=shape)
            setattr(owner, attr, PyroSample(flat))
    return NetworkModel(net, checked, likelihood, noise)


def network_log_joint_grad(model: NetworkModel, X: torch.Tensor, y: torch.Tensor,
                           values: Mapping[str, torch.Tensor]
                           ) -> tuple[float, dict[str, torch.Tensor]]:
    """(-log p(y, theta), {site: d(-log p)/d theta}) at ``values``, from Pyro's trace of the
    model conditioned on them (every site's log prob summed, the flat biases' 0 included)."""
    leaves = {k: torch.as_tensor(v, dtype=DTYPE).detach().clone().requires_grad_(True)
              for k, v in values.items()}
    tr = pyro.poutine.trace(pyro.poutine.condition(model, data=leaves)).get_trace(X, y)
    nlp = -tr.log_prob_sum()
    grads = torch.autograd.grad(nlp, list(leaves.values()))
    return float(nlp.detach()), {k: g.detach() for k, g in zip(leaves, grads, strict=True)}
