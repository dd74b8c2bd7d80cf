"""Priors on the weight vector, one small frozen class each.

Every prior has the same method set, so adding one is one class here plus one entry in
``PRIORS`` (and one in the tests' registry):

========================  =====================================================
``distribution(shape)``   the Pyro distribution of the weight site, i.i.d. over an int ``d``
                          or a shape tuple such as ``(d, K)``; every dimension is an event dim
``penalty(w)``            P(w), the penalty of the canonical objective
``kappa``                 the weight of P in -log p(w) = kappa * P(w) + log_normalizer(d)
``log_normalizer(d)``     the constant of -log p(w)
``prox(v, step)``         argmin_u  1/2 ||u - v||^2 + step * P(u)  (tensor or float)
``subgradient_distance``  dist(-g, kappa * dP(w)) per coordinate: the KKT residual
``lam(noise)``            canonical lambda = noise^2 * kappa
``from_lam(lam, noise)``  the prior whose canonical lambda is ``lam``
``l1_weight``             kappa_1, the weight of ||w||_1 in -log p(w)
``l2_weight``             kappa_2, the weight of 1/2 ||w||^2 in -log p(w)
``lams(noise)``           (lam1, lam2) = (noise^2 kappa_1, noise^2 kappa_2)
========================  =====================================================

Every prior here is of the form -log p(w) = kappa_1 ||w||_1 + (kappa_2 / 2) ||w||^2 + C,
so with a Gaussian likelihood of scale sigma_eps every MAP is the optimum of

    1/2 ||y - Xw - c||^2 + lam1 ||w||_1 + (lam2 / 2) ||w||^2,   (lam1, lam2) = lams(sigma_eps)

(Gaussian: lam1 = 0; Laplace: lam2 = 0; ElasticNet: both positive, the "naive" elastic net).

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
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from .._validation import check_choice, check_derived, check_scale


class Prior(ABC):
    """Interface shared by all priors; see the module docstring for the method set."""

    name: ClassVar[str]
    scale_name: ClassVar[str]  # the scale printed and used by lam(): sigma or b
    scale_names: ClassVar[tuple[str, ...]]  # every scale parameter, in constructor order
    penalty_name: ClassVar[str]  # name of the penalized problem: "ridge", "lasso", ...
    scale_power: ClassVar[int]  # kappa = scale ** -scale_power
    smooth: ClassVar[bool]  # is -log p(w) differentiable everywhere? (l1_weight == 0)

    @property
    @abstractmethod
    def scale(self) -> float:
        """The prior's scale parameter (sigma or b)."""

    @property
    @abstractmethod
    def kappa(self) -> float:
        """Weight of the penalty in the negative log density: -log p(w) = kappa * P(w) + C."""

    @property
    def l1_weight(self) -> float:
        """kappa_1, the weight of ||w||_1 in -log p(w): 0 for a smooth prior, else kappa.

        (These defaults read P as 1/2 ||w||^2 for a smooth prior and as ||w||_1 plus, for
        the elastic net, a quadratic term; a prior of another form overrides them.)
        """
        return 0.0 if self.smooth else self.kappa

    @property
    def l2_weight(self) -> float:
        """kappa_2, the weight of 1/2 ||w||^2 in -log p(w): kappa for a smooth prior (the
        Gaussian's 1/sigma^2), 0 for the Laplace prior; the elastic net overrides it."""
        return self.kappa if self.smooth else 0.0

    def lams(self, noise: float) -> tuple[float, float]:
        """(lam1, lam2) = (noise^2 kappa_1, noise^2 kappa_2): the weights of the canonical
        objective 1/2 ||r||^2 + lam1 ||w||_1 + (lam2 / 2) ||w||^2 shared by every prior.

        A weight that is 0 stays 0; a positive one must lie in [FLOAT_MIN, FLOAT_LIM]
        (ValueError naming the inputs otherwise), like :meth:`lam`.
        """
        noise = check_scale("noise", noise, 2)
        out = []
        for name, kappa in (("lam1", self.l1_weight), ("lam2", self.l2_weight)):
            if kappa == 0.0:
                out.append(0.0)
                continue
            out.append(check_derived(
                name, noise * noise * kappa,
                f"noise^2 * {kappa:g} with noise={noise:g} ({self})",
                2 * math.log10(noise) + math.log10(kappa),
            ))
        return out[0], out[1]

    @abstractmethod
    def distribution(self, shape: int | tuple[int, ...]) -> dist.TorchDistribution:
        """Pyro distribution of the weights, i.i.d. over every entry of ``shape``.

        ``shape`` is an int ``d`` (a weight vector) or a tuple such as ``(d, K)`` (a weight
        matrix); every dimension is an event dimension, so ``log_prob`` sums over all of them.
        """

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
        return cls._from_kappa(cls._kappa_from_lam(lam, noise))

    @staticmethod
    def _kappa_from_lam(lam: float, noise: float) -> float:
        lam = check_scale("lam", lam, 1)
        noise = check_scale("noise", noise, 2)
        return check_derived(
            "kappa", lam / (noise * noise), f"lam / noise^2 with lam={lam:g}, noise={noise:g}",
            math.log10(lam) - 2 * math.log10(noise),
        )

    @classmethod
    @abstractmethod
    def _from_kappa(cls, kappa: float) -> Prior: ...

    def neg_log_density(self, w: torch.Tensor) -> torch.Tensor:
        """-log p(w) = kappa * P(w) + log_normalizer(d), from the formula (not from Pyro)."""
        return self.kappa * self.penalty(w) + self.log_normalizer(w.numel())

    def __str__(self) -> str:
        return f"{self.name}({self.scale_name}={self.scale:g})"


def _event_shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` (an int d or a tuple of positive ints) as a tuple, validated."""
    dims = (shape,) if isinstance(shape, int) or not hasattr(shape, "__len__") else tuple(shape)
    if not dims or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                           for k in dims):
        raise ValueError(
            f"shape must be a positive int d or a non-empty tuple of positive ints such as "
            f"(d, K); got {shape!r}"
        )
    return dims


def _iid(base: dist.TorchDistribution, dims: tuple[int, ...]) -> dist.TorchDistribution:
    return base.to_event(len(dims))


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
    scale_names: ClassVar[tuple[str, ...]] = ("sigma",)
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

    def distribution(self, shape: int | tuple[int, ...]) -> dist.TorchDistribution:
        dims = _event_shape(shape)
        zero = torch.zeros(dims, dtype=torch.float64)
        return _iid(dist.Normal(zero, self.sigma), dims)

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
    scale_names: ClassVar[tuple[str, ...]] = ("b",)
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

    def distribution(self, shape: int | tuple[int, ...]) -> dist.TorchDistribution:
        dims = _event_shape(shape)
        zero = torch.zeros(dims, dtype=torch.float64)
        return _iid(dist.Laplace(zero, self.b), dims)

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


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_HALF_LOG_PI = 0.5 * math.log(math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_EPS64 = float(torch.finfo(torch.float64).eps)
_MAX_NEWTON = 100  # Newton steps of the sampler (about 10 suffice in float64; see the tests)
# Above x = e^300, erfcx(x) = 1 / (x sqrt(pi)) * (1 - 1/(2x^2) + ...) to far below eps.
_ERFCX_ASYMPTOTIC = 300.0


def _log_erfcx(log_x: torch.Tensor) -> torch.Tensor:
    """log erfcx(x) for x = exp(log_x) >= 0, without overflow (x may exceed float64)."""
    exact = torch.log(torch.special.erfcx(torch.exp(log_x.clamp(max=_ERFCX_ASYMPTOTIC))))
    return torch.where(log_x < _ERFCX_ASYMPTOTIC, exact, -log_x - _HALF_LOG_PI)


def elastic_net_log_z(sigma: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """log Z, Z = integral of exp(-|w|/b - w^2/(2 sigma^2)) dw over the real line.

    Completing the square, w/b + w^2/(2 sigma^2) = (w + sigma^2/b)^2 / (2 sigma^2)
    - sigma^2 / (2 b^2), so with a = sigma / b::

        Z = 2 exp(a^2/2) * integral_0^inf exp(-(w + sigma^2/b)^2 / (2 sigma^2)) dw
          = 2 sigma sqrt(2 pi) exp(a^2/2) Phi(-a)
          = 2 sigma sqrt(pi/2) erfcx(a / sqrt(2))          (erfcx(x) = exp(x^2) erfc(x)),

    so log Z = log sigma + 1/2 log(2 pi) + log erfcx(sigma / (sqrt(2) b)). Limits:
    b -> inf gives sigma sqrt(2 pi) (Gaussian), sigma -> inf gives 2b (Laplace).
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    log_x = torch.log(sigma) - torch.log(b) - 0.5 * math.log(2.0)
    return torch.log(sigma) + _HALF_LOG_2PI + _log_erfcx(log_x)


class ElasticNetDistribution(dist.TorchDistribution):
    """The elastic-net density on the real line, one coordinate (batched like any torch
    distribution)::

        p(w) = exp(-|w|/b - w^2 / (2 sigma^2)) / Z,   Z = 2 sigma sqrt(pi/2) erfcx(sigma/(sqrt2 b))

    the renormalised product of a Normal(0, sigma) and a Laplace(0, b) density (see
    :func:`elastic_net_log_z`).

    Sampling is exact: |w| has the density of a Normal(-sigma^2/b, sigma) truncated to
    (0, inf), and the sign is a fair coin. With a = sigma / b and |w| = sigma e, the upper
    tail is P(e > t) = Phi(-(a + t)) / Phi(-a) = exp(H(t)),
    H(t) = log erfcx((a + t)/sqrt2) - log erfcx(a/sqrt2) - a t - t^2/2, written without
    the cancellation of (a + t) - a; e solves H(e) = log U (U uniform) by Newton's method,
    which converges monotonically because H is concave (the truncated normal is
    log-concave). Its first step from 0 is the exponential (Laplace) approximation
    e = -log U / hazard(a), exact in the limit sigma / b -> inf.
    """

    arg_constraints = {"sigma": constraints.positive, "b": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, sigma, b, validate_args=None):
        self.sigma, self.b = broadcast_all(sigma, b)
        super().__init__(self.sigma.shape, torch.Size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ElasticNetDistribution, _instance)
        batch_shape = torch.Size(batch_shape)
        new.sigma = self.sigma.expand(batch_shape)
        new.b = self.b.expand(batch_shape)
        super(ElasticNetDistribution, new).__init__(batch_shape, torch.Size(), validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        return torch.zeros_like(self.sigma)

    @property
    def l1_weight(self) -> torch.Tensor:
        """1/b, the weight of |w| in -log p(w): the MAP engines' L1 term
        (:func:`mapreg.bayes.engine.map_model` finds it by this name)."""
        return 1.0 / self.b

    def log_normalizer(self) -> torch.Tensor:
        """log Z per coordinate (batch shape)."""
        return elastic_net_log_z(self.sigma, self.b)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return (-value.abs() / self.b - value * value / (2 * self.sigma * self.sigma)
                - self.log_normalizer())

    def sample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            sigma = self.sigma.expand(shape)
            b = self.b.expand(shape)
            log_u = torch.log1p(-torch.rand(shape, dtype=sigma.dtype, device=sigma.device))
            sign = torch.where(torch.rand(shape, dtype=sigma.dtype, device=sigma.device) < 0.5,
                               -1.0, 1.0)
            return sign * _truncated_excess(sigma, b, log_u)


def _truncated_excess(sigma: torch.Tensor, b: torch.Tensor, log_u: torch.Tensor) -> torch.Tensor:
    """|w| = sigma e with P(e > t) = Phi(-(a + t)) / Phi(-a), a = sigma / b, at the upper-tail
    probability exp(log_u) (see :class:`ElasticNetDistribution`)."""
    log_a = torch.log(sigma) - torch.log(b)
    laplace = log_a > _ERFCX_ASYMPTOTIC  # a > e^300: the Laplace limit |w| = -b log U, exactly
    a = torch.exp(log_a.clamp(max=_ERFCX_ASYMPTOTIC))
    root2 = math.sqrt(2.0)
    log_erfcx_a = torch.log(torch.special.erfcx(a / root2))

    def tail(e):  # H(e) and H'(e) = -hazard(a + e)
        erfcx = torch.special.erfcx((a + e) / root2)
        return torch.log(erfcx) - log_erfcx_a - a * e - 0.5 * e * e, -_SQRT_2_OVER_PI / erfcx

    # e's natural unit is 1 / hazard(a); H is evaluated to ~eps absolute, so e cannot be
    # resolved below ~eps of that unit (|w| to ~eps sigma / max(1, a) absolute)
    unit = torch.exp(log_erfcx_a) / _SQRT_2_OVER_PI
    e = torch.zeros_like(a)
    for _ in range(_MAX_NEWTON):
        h, slope = tail(e)
        new = (e + (log_u - h) / slope).clamp(min=0.0)
        done = (new - e).abs() <= 16 * _EPS64 * (new + unit)
        e = new
        if bool(done.all()):
            break
    return torch.where(laplace, -b * log_u, sigma * e)


@dataclass(frozen=True)
class ElasticNet(Prior):
    """Elastic-net prior: w_j i.i.d. with density exp(-|w_j|/b - w_j^2/(2 sigma^2)) / Z.

    The renormalised product of a Gaussian(0, sigma) and a Laplace(0, b) density::

        -log p(w) = (1/b) ||w||_1 + (1/(2 sigma^2)) ||w||^2 + d log Z,
        Z = 2 sigma sqrt(pi/2) erfcx(sigma / (sqrt(2) b))     (see elastic_net_log_z)

    In the single-lambda interface P(w) = ||w||_1 + (ratio/2) ||w||^2 with
    ratio = b / sigma^2 and kappa = 1/b, so the canonical objective is the naive elastic net

        1/2 ||y - Xw - c||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2,
        lam1 = lam = sigma_eps^2 / b,  lam2 = sigma_eps^2 / sigma^2 = lam * ratio.

    Proximal operator of step * P: u = S(v, step) / (1 + step * ratio), S the
    soft-thresholding. ``scale`` / ``scale_name`` are b (the scale of the L1 part, which
    sets lam); ``scale_names`` is ("sigma", "b"). sigma -> inf gives the Laplace prior,
    b -> inf the Gaussian prior.
    """

    sigma: float
    b: float

    name: ClassVar[str] = "elasticnet"
    scale_name: ClassVar[str] = "b"
    scale_names: ClassVar[tuple[str, ...]] = ("sigma", "b")
    penalty_name: ClassVar[str] = "elasticnet"
    scale_power: ClassVar[int] = 1
    smooth: ClassVar[bool] = False

    def __post_init__(self) -> None:
        sigma = check_scale("sigma", self.sigma, 2)
        b = check_scale("b", self.b, 1)
        check_derived("ratio", b / (sigma * sigma),
                      f"b / sigma^2 with sigma={sigma:g}, b={b:g}",
                      math.log10(b) - 2 * math.log10(sigma))
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "b", b)

    @property
    def scale(self) -> float:
        return self.b

    @property
    def kappa(self) -> float:
        return 1.0 / self.b

    @property
    def ratio(self) -> float:
        """b / sigma^2: the weight of 1/2 ||w||^2 relative to ||w||_1 in P."""
        return self.b / self.sigma**2

    @property
    def l2_weight(self) -> float:
        return 1.0 / self.sigma**2

    def distribution(self, shape: int | tuple[int, ...]) -> dist.TorchDistribution:
        dims = _event_shape(shape)
        sigma = torch.full(dims, self.sigma, dtype=torch.float64)
        return _iid(ElasticNetDistribution(sigma, torch.full(dims, self.b, dtype=torch.float64)),
                    dims)

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        return w.abs().sum() + 0.5 * self.ratio * (w * w).sum()

    def prox(self, v: torch.Tensor | float, step: float) -> torch.Tensor | float:
        shrink = 1.0 + step * self.ratio
        if isinstance(v, torch.Tensor):
            return torch.sign(v) * torch.clamp(v.abs() - step, min=0.0) / shrink
        return math.copysign((abs(v) - step) / shrink, v) if abs(v) > step else 0.0

    def subgradient_distance(self, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        # kappa dP(w_j) = kappa_1 d|w_j| + kappa_2 w_j: {kappa_1 sign w_j + kappa_2 w_j} off
        # zero, [-kappa_1, kappa_1] at zero.
        k1, k2 = self.kappa, self.l2_weight
        return torch.where(w != 0, (g + k1 * torch.sign(w) + k2 * w).abs(),
                           torch.clamp(g.abs() - k1, min=0.0))

    def log_normalizer(self, d: int) -> float:
        return d * float(elastic_net_log_z(self.sigma, self.b))

    @classmethod
    def from_lam(cls, lam: float, noise: float, ratio: float = 1.0) -> ElasticNet:
        """The elastic-net prior with lam1 = ``lam`` and lam2 = ``ratio`` * lam at noise scale
        ``noise``: b = noise^2 / lam, sigma^2 = b / ratio."""
        ratio = check_scale("ratio", ratio, 1)
        return cls._from_kappa(cls._kappa_from_lam(lam, noise), ratio)

    @classmethod
    def _from_kappa(cls, kappa: float, ratio: float = 1.0) -> ElasticNet:
        b = 1.0 / kappa
        return cls(sigma=math.sqrt(b / ratio), b=b)

    def __str__(self) -> str:
        return f"{self.name}(sigma={self.sigma:g}, b={self.b:g})"


PRIORS: dict[str, type[Prior]] = {"gaussian": Gaussian, "laplace": Laplace,
                                  "elasticnet": ElasticNet}


def make_prior(prior: str | Prior, **scales: float | None) -> Prior:
    """Build a prior from its name and its scale keywords (``sigma=`` or ``b=``; both for
    ``"elasticnet"``).

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
    names = cls.scale_names
    takes = (f"the scale {names[0]!r}" if len(names) == 1
             else "the scales " + " and ".join(map(repr, names)))
    wrong = sorted(set(given) - set(names))
    if wrong:
        raise ValueError(
            f"prior {name!r} takes {takes}, not "
            + ", ".join(repr(k) for k in wrong)
            + f"; got {', '.join(f'{k}={given[k]!r}' for k in wrong)}"
        )
    missing = [k for k in names if k not in given]
    if len(names) == 1 and missing:
        raise ValueError(
            f"{names[0]} is required for prior {name!r} (a positive finite number); got None"
        )
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required for prior "
            f"{name!r} ({takes}, positive finite numbers); got "
            + ", ".join(f"{k}=None" for k in missing)
        )
    return cls(**{k: given[k] for k in names})
