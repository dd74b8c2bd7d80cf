"""Likelihoods: the observation site of the Pyro model and the loss it corresponds to.

Each is a small frozen class with the same method set:

=====================  ==========================================================
``name``               registry name ("gaussian", "bernoulli", "categorical", "poisson")
``observe(name, eta, y)``  the Pyro observation site at linear predictor ``eta``; call it
                       inside a ``pyro.plate`` over the observations
``loss_weight``        the weight of the canonical loss in -log p(y | eta)
``check_y(y)``         the responses validated, as a new float64 tensor
``constant(y)``        the part of -log p(y | eta) that does not depend on eta
=====================  ==========================================================

The canonical objective of a GLM is  sum_i l_i(eta_i) + lam * P(w),  with l_i the negative
log-likelihood of observation i (constants dropped) and lam = prior.kappa: there is no
noise scale, ``loss_weight`` is 1. For the Gaussian likelihood the canonical loss is
1/2 ||r||^2 with weight 1/noise^2 (so lam = noise^2 kappa).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import pyro
import pyro.distributions as dist
import torch

from .._validation import (
    _as_array,
    _check_finite,
    check_choice,
    check_positive_int,
    check_scale,
)


def _responses(y: Any) -> torch.Tensor:
    """``y`` as a new 1-D finite float64 tensor (a column (n, 1) is flattened)."""
    t = _as_array("y", y)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t.reshape(-1)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(
            f"y must be a non-empty 1-D array of shape (n_samples,); got shape {tuple(t.shape)}"
        )
    _check_finite("y", t)
    return t


def _first_bad(y: torch.Tensor, ok: torch.Tensor) -> str:
    i = int((~ok).nonzero()[0])
    return f"got y[{i}] = {float(y[i])!r} ({int((~ok).sum())} invalid entries)"


@dataclass(frozen=True)
class GaussianNoise:
    """Gaussian observation noise y_i ~ Normal(mean_i, noise), independent over i.

    -log p(y | w, c) = (1/noise^2) * 1/2 ||y - mean||^2 + (n/2) log(2 pi noise^2):
    the half sum of squares with weight ``loss_weight = 1/noise^2``.
    """

    noise: float

    name: ClassVar[str] = "gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise", check_scale("noise", self.noise, 2))

    @property
    def loss_weight(self) -> float:
        """Weight of 1/2 ||r||^2 in the negative log-likelihood: 1/noise^2."""
        return 1.0 / self.noise**2

    def observe(self, name: str, mean: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The Pyro observation site; call it inside a ``pyro.plate`` over the observations."""
        return pyro.sample(name, dist.Normal(mean, self.noise), obs=y)

    def check_y(self, y: Any) -> torch.Tensor:
        """Any finite real responses, as a new 1-D float64 tensor."""
        return _responses(y)

    def log_normalizer(self, n: int) -> float:
        """The constant (n/2) log(2 pi noise^2) of the negative log-likelihood."""
        return 0.5 * n * math.log(2 * math.pi * self.noise**2)

    def constant(self, y: torch.Tensor) -> float:
        """The eta-free part of -log p(y | eta): (n/2) log(2 pi noise^2)."""
        return self.log_normalizer(int(y.shape[-1]))


@dataclass(frozen=True)
class Bernoulli:
    """Binary responses y_i in {0, 1}, y_i ~ Bernoulli(sigmoid(eta_i)) (logit link).

    -log p(y_i | eta_i) = l_i = log(1 + e^eta_i) - y_i eta_i  (no constant), so the
    canonical objective is sum_i l_i + lam P(w), ``loss_weight`` 1.
    """

    name: ClassVar[str] = "bernoulli"
    loss_weight: ClassVar[float] = 1.0

    def observe(self, name: str, eta: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``pyro.sample(name, Bernoulli(logits=eta), obs=y)``; inside a ``pyro.plate``."""
        return pyro.sample(name, dist.Bernoulli(logits=eta), obs=y)

    def check_y(self, y: Any) -> torch.Tensor:
        """Responses that are all 0 or 1 (or booleans), as a new 1-D float64 tensor."""
        if isinstance(y, torch.Tensor) and y.dtype == torch.bool:
            y = y.double()
        elif getattr(y, "dtype", None) is not None and getattr(y.dtype, "kind", "") == "b":
            y = y.astype(float)
        t = _responses(y)
        ok = (t == 0) | (t == 1)
        if not bool(ok.all()):
            raise ValueError(
                f"y must hold only the values 0 and 1 for the bernoulli likelihood; "
                f"{_first_bad(t, ok)}"
            )
        return t

    def constant(self, y: torch.Tensor) -> float:
        """The eta-free part of -log p(y | eta): 0."""
        return 0.0


@dataclass(frozen=True)
class Categorical:
    """Class labels y_i in {0, ..., K-1}, y_i ~ Categorical(softmax(eta_i)), eta_i in R^K.

    -log p(y_i | eta_i) = l_i = logsumexp_k(eta_ik) - eta_{i, y_i}  (no constant), so the
    canonical objective is sum_i l_i + lam P(W), W the (d, K) weight matrix, ``loss_weight``
    1. The softmax is invariant to adding the same number to every eta_ik: with a flat
    prior on the K intercepts, they are determined only up to a common shift.
    """

    n_classes: int

    name: ClassVar[str] = "categorical"
    loss_weight: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        k = check_positive_int("n_classes", self.n_classes)
        if k < 2:
            raise ValueError(f"n_classes must be an integer >= 2; got {k}")
        object.__setattr__(self, "n_classes", k)

    def observe(self, name: str, eta: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``pyro.sample(name, Categorical(logits=eta), obs=y)`` with ``eta`` of shape
        (..., n, K); inside a ``pyro.plate`` over the n observations."""
        return pyro.sample(name, dist.Categorical(logits=eta), obs=y)

    def check_y(self, y: Any) -> torch.Tensor:
        """Integer labels 0 .. K-1 (stored as floats or ints), as a new 1-D float64 tensor."""
        t = _responses(y)
        ok = (t == t.round()) & (t >= 0) & (t <= self.n_classes - 1)
        if not bool(ok.all()):
            raise ValueError(
                f"y must hold only the integers 0 .. {self.n_classes - 1} (class labels) for the "
                f"categorical likelihood with n_classes={self.n_classes}; {_first_bad(t, ok)}"
            )
        return t

    def constant(self, y: torch.Tensor) -> float:
        """The eta-free part of -log p(y | eta): 0."""
        return 0.0


@dataclass(frozen=True)
class Poisson:
    """Counts y_i in {0, 1, 2, ...}, y_i ~ Poisson(e^eta_i) (log link).

    -log p(y_i | eta_i) = l_i + log y_i!,  l_i = e^eta_i - y_i eta_i, so the canonical
    objective is sum_i l_i + lam P(w) (``loss_weight`` 1) and ``constant(y)`` is
    sum_i log y_i!. Pyro's Poisson takes a rate, so the site is Poisson(rate=exp(eta)):
    eta above ~709 overflows the rate to inf.
    """

    name: ClassVar[str] = "poisson"
    loss_weight: ClassVar[float] = 1.0

    def observe(self, name: str, eta: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``pyro.sample(name, Poisson(rate=exp(eta)), obs=y)``; inside a ``pyro.plate``."""
        return pyro.sample(name, dist.Poisson(rate=eta.exp()), obs=y)

    def check_y(self, y: Any) -> torch.Tensor:
        """Nonnegative integer counts, as a new 1-D float64 tensor."""
        t = _responses(y)
        ok = (t == t.round()) & (t >= 0)
        if not bool(ok.all()):
            raise ValueError(
                f"y must hold only nonnegative integers (counts 0, 1, 2, ...) for the poisson "
                f"likelihood; {_first_bad(t, ok)}"
            )
        return t

    def constant(self, y: torch.Tensor) -> float:
        """The eta-free part of -log p(y | eta): sum_i log y_i!."""
        return float(torch.lgamma(y + 1).sum())


Likelihood = GaussianNoise | Bernoulli | Categorical | Poisson

LIKELIHOODS: dict[str, type] = {
    "gaussian": GaussianNoise,
    "bernoulli": Bernoulli,
    "categorical": Categorical,
    "poisson": Poisson,
}


def make_likelihood(name: str | Likelihood, noise: float | None = None,
                    n_classes: int | None = None) -> Likelihood:
    """Build a likelihood from its name.

    ``noise`` (sigma_eps) is required for, and only accepted by, ``"gaussian"``;
    ``n_classes`` (K >= 2) is required for, and only accepted by, ``"categorical"``. A
    likelihood instance is returned unchanged (giving ``noise`` or ``n_classes`` as well is
    an error).
    """
    given = {k: v for k, v in (("noise", noise), ("n_classes", n_classes)) if v is not None}
    if isinstance(name, tuple(LIKELIHOODS.values())):
        if given:
            raise ValueError(
                f"give the parameters inside the likelihood object or by name, not both; got "
                f"{name} and " + ", ".join(f"{k}={v!r}" for k, v in given.items())
            )
        return name
    name = check_choice("likelihood", name, LIKELIHOODS)
    takes = {"gaussian": "noise", "categorical": "n_classes"}.get(name)
    wrong = sorted(set(given) - {takes})
    if wrong:
        only = {"noise": "'gaussian'", "n_classes": "'categorical'"}
        raise ValueError(
            "; ".join(f"{k} is only for the {only[k]} likelihood, not {name!r}; got "
                      f"{k}={given[k]!r}" for k in wrong)
        )
    if takes is None:
        return LIKELIHOODS[name]()
    if takes not in given:
        what = ("the noise scale sigma_eps, a positive finite number" if takes == "noise"
                else "the number of classes, an integer >= 2")
        raise ValueError(f"{takes} is required for the {name!r} likelihood ({what}); got None")
    return LIKELIHOODS[name](given[takes])
