"""Likelihoods: the observation site of the Pyro model and the loss it corresponds to."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch

from .._validation import check_scale


@dataclass(frozen=True)
class GaussianNoise:
    """Gaussian observation noise y_i ~ Normal(mean_i, noise), independent over i.

    -log p(y | w, c) = (1/noise^2) * 1/2 ||y - mean||^2 + (n/2) log(2 pi noise^2):
    the half sum of squares with weight ``loss_weight = 1/noise^2``.
    """

    noise: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise", check_scale("noise", self.noise, 2))

    @property
    def loss_weight(self) -> float:
        """Weight of 1/2 ||r||^2 in the negative log-likelihood: 1/noise^2."""
        return 1.0 / self.noise**2

    def observe(self, name: str, mean: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The Pyro observation site; call it inside a ``pyro.plate`` over the observations."""
        return pyro.sample(name, dist.Normal(mean, self.noise), obs=y)

    def log_normalizer(self, n: int) -> float:
        """The constant (n/2) log(2 pi noise^2) of the negative log-likelihood."""
        return 0.5 * n * math.log(2 * math.pi * self.noise**2)
