"""Priors on the weight vector, one small frozen class each.

Every prior has the same method set, so adding one is one class here plus one entry in
``PRIORS`` (and one in the tests' registry):

========================  =====================================================
``distribution(d)``       the Pyro distribution of the weight site (event shape ``(d,)``)
``penalty(w)``            P(w), the penalty of the canonical objective
``kappa``                 the weight of P in -log p(w) = kappa * P(w) + log_normalizer(d)
``log_normalizer(d)``     the constant of -log p(w)
``prox(v, step)``         argmin_u  1/2 ||u - v||^2 + step * P(u)  (tensor or float)
``subgradient_distance``  dist(-g, kappa * dP(w)) per coordinate: the KKT residual
``lam(noise)``            canonical lambda = noise^2 * kappa
``from_lam(lam, noise)``  the prior whose canonical lambda is ``lam``
========================  =====================================================

Scales are refused (ValueError) unless ``scale ** scale_power`` and its reciprocal kappa
are normal positive float64 numbers: sigma in ~[1.5e-154, 6.7e153], b in
~[2.2e-308, 4.5e307] (derived from ``sys.float_info`` in :mod:`mapreg._validation`); so is
a ``lam`` outside [FLOAT_MIN, FLOAT_LIM].

With a Gaussian likelihood of scale sigma_eps the negative log posterior is
(1/sigma_eps^2) * [ 1/2 ||y - Xw - c||^2 + lam * P(w) ] + const, lam = sigma_eps^2 * kappa,
which is the canonical penalized objective.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import pyro.distributions as dist
import torch

from .._validation import check_choice, check_derived, check_scale


class Prior(ABC):
    """Interface shared by all priors; see the module docstring for the method set."""

    name: ClassVar[str]
    scale_name: ClassVar[str]
    penalty_name: ClassVar[str]  # name of the penalized problem: "ridge", "lasso"
    scale_power: ClassVar[int]  # kappa = scale ** -scale_power
    smooth: ClassVar[bool]  # is -log p(w) differentiable everywhere?

    @property
    @abstractmethod
    def scale(self) -> float:
        """The prior's scale parameter (sigma or b)."""

    @property
    @abstractmethod
    def kappa(self) -> float:
        """Weight of the penalty in the negative log density: -log p(w) = kappa * P(w) + C."""

    @abstractmethod
    def distribution(self, d: int) -> dist.TorchDistribution:
        """Pyro distribution of the weight vector, i.i.d. over ``d`` coordinates."""

    @abstractmethod
    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        """P(w), the canonical penalty."""

    @abstractmethod
    def prox(self, v: torch.Tensor | float, step: float) -> torch.Tensor | float:
        """Proximal operator, elementwise: argmin_u 1/2 ||u - v||^2 + step * P(u).

        Accepts a tensor or a Python float (the MAP engine's coordinate descent uses floats).
        """

    @abstractmethod
    def subgradient_distance(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Per coordinate, the distance from -g to kappa times the subdifferential of P at w.

        Zero everywhere exactly when w minimises f + kappa * P for a smooth f with gradient g:
        the KKT (subgradient) residual.
        """

    @abstractmethod
    def log_normalizer(self, d: int) -> float:
        """C in -log p(w) = kappa * P(w) + C for a ``d``-dimensional weight vector."""

    def lam(self, noise: float) -> float:
        """Canonical lambda = noise^2 * kappa (see the subclass docstring).

        ``noise`` must lie in :func:`~mapreg._validation.power_range` (2), and so must the
        result lie in [FLOAT_MIN, FLOAT_LIM] (a ValueError names both scales otherwise).
        """
        noise = check_scale("noise", noise, 2)
        scale, p = self.scale, self.scale_power
        power = f"^{p}" if p != 1 else ""
        return check_derived(
            "lam", noise * noise * self.kappa,
            f"noise^2 / {self.scale_name}{power} with noise={noise:g}, {self.scale_name}={scale:g}",
            2 * math.log10(noise) - p * math.log10(scale),
        )

    @classmethod
    def from_lam(cls, lam: float, noise: float) -> Prior:
        """The prior whose canonical lambda at noise scale ``noise`` is ``lam``:
        kappa = lam / noise^2, in [FLOAT_MIN, FLOAT_LIM] like lam and noise^2."""
        lam = check_scale("lam", lam, 1)
        noise = check_scale("noise", noise, 2)
        kappa = check_derived(
            "kappa", lam / (noise * noise), f"lam / noise^2 with lam={lam:g}, noise={noise:g}",
            math.log10(lam) - 2 * math.log10(noise),
        )
        return cls._from_kappa(kappa)

    @classmethod
    @abstractmethod
    def _from_kappa(cls, kappa: float) -> Prior: ...

    def neg_log_density(self, w: torch.Tensor) -> torch.Tensor:
        """-log p(w) = kappa * P(w) + log_normalizer(d), from the formula (not from Pyro)."""
        return self.kappa * self.penalty(w) + self.log_normalizer(w.shape[-1])

    def __str__(self) -> str:
        return f"{self.name}({self.scale_name}={self.scale:g})"


@dataclass(frozen=True)
class Gaussian(Prior):
    """Gaussian prior w_j ~ Normal(0, sigma), i.i.d.

    -log p(w) = (1/(2 sigma^2)) ||w||^2 + (d/2) log(2 pi sigma^2), so with
    P(w) = 1/2 ||w||^2, kappa = 1/sigma^2 and the canonical (ridge / weight decay) objective

        1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2,   lam = sigma_eps^2 / sigma^2.

    Proximal operator of step * P: u = v / (1 + step).
    """

    sigma: float

    name: ClassVar[str] = "gaussian"
    scale_name: ClassVar[str] = "sigma"
    penalty_name: ClassVar[str] = "ridge"
    scale_power: ClassVar[int] = 2
    smooth: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_scale("sigma", self.sigma, 2))

    @property
    def scale(self) -> float:
        return self.sigma

    @property
    def kappa(self) -> float:
        return 1.0 / self.sigma**2

    def distribution(self, d: int) -> dist.TorchDistribution:
        zero = torch.zeros(d, dtype=torch.float64)
        return dist.Normal(zero, self.sigma).to_event(1)

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        return 0.5 * (w * w).sum()

    def prox(self, v: torch.Tensor | float, step: float) -> torch.Tensor | float:
        return v / (1.0 + step)

    def subgradient_distance(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (g + self.kappa * w).abs()

    def log_normalizer(self, d: int) -> float:
        return 0.5 * d * math.log(2 * math.pi * self.sigma**2)

    @classmethod
    def _from_kappa(cls, kappa: float) -> Gaussian:
        return cls(sigma=1.0 / math.sqrt(kappa))


@dataclass(frozen=True)
class Laplace(Prior):
    """Laplace prior w_j ~ Laplace(0, b), i.i.d.

    -log p(w) = (1/b) ||w||_1 + d log(2b), so with P(w) = ||w||_1, kappa = 1/b and the
    canonical (lasso / L1) objective

        1/2 ||y - Xw - c||^2 + lam ||w||_1,   lam = sigma_eps^2 / b.

    Proximal operator of step * P: soft-thresholding, u = sign(v) max(|v| - step, 0).
    """

    b: float

    name: ClassVar[str] = "laplace"
    scale_name: ClassVar[str] = "b"
    penalty_name: ClassVar[str] = "lasso"
    scale_power: ClassVar[int] = 1
    smooth: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "b", check_scale("b", self.b, 1))

    @property
    def scale(self) -> float:
        return self.b

    @property
    def kappa(self) -> float:
        return 1.0 / self.b

    def distribution(self, d: int) -> dist.TorchDistribution:
        zero = torch.zeros(d, dtype=torch.float64)
        return dist.Laplace(zero, self.b).to_event(1)

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        return w.abs().sum()

    def prox(self, v: torch.Tensor | float, step: float) -> torch.Tensor | float:
        if isinstance(v, torch.Tensor):
            return torch.sign(v) * torch.clamp(v.abs() - step, min=0.0)
        return math.copysign(max(abs(v) - step, 0.0), v) if abs(v) > step else 0.0

    def subgradient_distance(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        # w_j != 0: the subdifferential is {kappa sign w_j}; w_j = 0: it is [-kappa, kappa].
        k = self.kappa
        return torch.where(w != 0, (g + k * torch.sign(w)).abs(), torch.clamp(g.abs() - k, min=0.0))

    def log_normalizer(self, d: int) -> float:
        return d * math.log(2 * self.b)

    @classmethod
    def _from_kappa(cls, kappa: float) -> Laplace:
        return cls(b=1.0 / kappa)


PRIORS: dict[str, type[Prior]] = {"gaussian": Gaussian, "laplace": Laplace}


def make_prior(prior: str | Prior, **scales: float | None) -> Prior:
    """Build a prior from its name and its scale keyword (``sigma=`` or ``b=``).

    A :class:`Prior` instance is returned unchanged (giving scales as well is an error).
    Scales that are ``None`` count as not given.
    """
    given = {k: v for k, v in scales.items() if v is not None}
    if isinstance(prior, Prior):
        if given:
            raise ValueError(
                f"give the scale inside the prior object or by name, not both; got {prior} and "
                + ", ".join(f"{k}={v!r}" for k, v in given.items())
            )
        return prior
    name = check_choice("prior", prior, PRIORS)
    cls = PRIORS[name]
    wrong = sorted(set(given) - {cls.scale_name})
    if wrong:
        raise ValueError(
            f"prior {name!r} takes the scale {cls.scale_name!r}, not "
            + ", ".join(repr(k) for k in wrong)
            + f"; got {', '.join(f'{k}={given[k]!r}' for k in wrong)}"
        )
    if cls.scale_name not in given:
        raise ValueError(
            f"{cls.scale_name} is required for prior {name!r} (a positive finite number); got None"
        )
    return cls(given[cls.scale_name])
