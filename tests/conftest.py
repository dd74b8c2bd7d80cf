"""Shared fixtures: float64, seeded problems, and the registry of priors under test.

Adding a prior to the package means adding one entry to ``PRIOR_REGISTRY``; every
parametrized test in the suite then covers it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mapreg.bayes.priors import ElasticNet, Gaussian, Laplace, Prior  # noqa: E402


@dataclass(frozen=True)
class PriorCase:
    """How the tests build a prior of one kind and what they know about it."""

    name: str
    cls: type[Prior]
    scales: tuple[float, ...]  # scales used in parametrized agreement tests
    sparse: bool  # does the MAP have exact zeros?
    build: Callable[[float], Prior] | None = None  # one scale -> prior (default: cls(scale))
    ball: bool = True  # has a norm ball (the constrained / Lagrangian picture)

    def make(self, scale: float) -> Prior:
        return self.build(scale) if self.build is not None else self.cls(scale)

    def from_lam(self, lam: float, noise: float) -> Prior:
        return self.cls.from_lam(lam, noise)


PRIOR_REGISTRY = {
    "gaussian": PriorCase("gaussian", Gaussian, (0.05, 0.5, 5.0), sparse=False),
    "laplace": PriorCase("laplace", Laplace, (0.005, 0.05, 0.5), sparse=True),
    # sigma^2 = b: the L2 weight equals the L1 weight (ElasticNet.from_lam's ratio = 1)
    "elasticnet": PriorCase("elasticnet", ElasticNet, (0.005, 0.05, 0.5), sparse=True,
                            build=lambda s: ElasticNet(sigma=s**0.5, b=s), ball=False),
}
#: The priors with a constraint ball (the Lagrangian picture): ||w||_2^2 <= theta, ||w||_1 <= t.
CONSTRAINED = sorted(name for name, case in PRIOR_REGISTRY.items() if case.ball)


@dataclass(frozen=True)
class Problem:
    X: np.ndarray
    y: np.ndarray
    noise: float
    name: str


def make_problem(n: int, d: int, seed: int, noise: float = 0.5, k: int = 5) -> Problem:
    """Gaussian design, k non-zero true weights, intercept 0.7, noise ``noise``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[: min(k, d)] = rng.choice([-2.0, -1.0, 1.0, 1.5], size=min(k, d))
    y = X @ w + 0.7 + noise * rng.standard_normal(n)
    return Problem(X, y, noise, f"{n}x{d}")


PROBLEMS = {
    "wide": (15, 40, 1),  # n < d
    "tall": (60, 8, 2),  # n > d
    "square": (30, 30, 3),
}


@pytest.fixture(params=sorted(PROBLEMS))
def problem(request) -> Problem:
    n, d, seed = PROBLEMS[request.param]
    return make_problem(n, d, seed)


@pytest.fixture(autouse=True)
def _float64_default():
    """Run every test with float64 as the default dtype, restoring the caller's afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def run_concurrently(call: Callable, jobs: Sequence[tuple], repeats: int = 3):
    """Run ``call(*job)`` for every job, each in its own thread, ``repeats`` times over, all
    threads at once; returns (the last result of each job, the errors raised, as reprs)."""
    results: list = [None] * len(jobs)
    errors: list[str] = []

    def work(i):
        try:
            for _ in range(repeats):
                results[i] = call(*jobs[i])
        except Exception as exc:  # noqa: BLE001 -- collected and reported by the caller
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors
