"""Hostile data through ``mapreg.compare(..., likelihood=...)``: 378 GLM problems, tallied.

3 likelihoods x 7 kinds of data x 2 shapes (n > d, n < d) x 3 prior scales (1e-3, 0.5, 1e3)
x 3 priors (Gaussian, Laplace, elastic net with sigma = b). Kinds: plain, equicorrelated
columns, a duplicated column, a column offset of 1e6, column units 1e-4 ... 1e4, X x 1e-6,
X x 1e6. Every warning is an error here, so a problem is one of:

* ``agree`` / ``not_unique`` -- the verdict (``GLMCompareResult``);
* ``disagree`` -- both solvers claim convergence and the points differ (must not happen);
* ``floor`` -- the MAP engine warned that it stopped at the rounding floor of Pyro's float64
  log joint (saturated predictions: p - y is rounding there);
* ``map_not_converged`` / ``penalized_not_converged`` -- a solver warned with its residual;
* ``no_map`` -- refused up front (a class or count pattern with no MAP).

Run: ``.venv/bin/python benchmarks/hostile_glm.py``; exit status 1 on any ``disagree``.
"""

from __future__ import annotations

import collections
import itertools
import sys
import time
import warnings

import torch

import mapreg
from mapreg import ElasticNet, Gaussian, Laplace, compare

FAMILIES = ("bernoulli", "categorical", "poisson")
KINDS = ("plain", "equicorr", "dup", "offset", "units", "tiny", "huge")
SHAPES = ((40, 6), (12, 30))
SCALES = (1e-3, 0.5, 1e3)
PRIORS = ("gaussian", "laplace", "elasticnet")


def data(family: str, n: int, d: int, seed: int, kind: str):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    if kind == "equicorr":
        X = 0.1 * X + torch.randn(n, 1, generator=g, dtype=torch.float64)
    if kind == "dup":
        X[:, 1] = X[:, 0]
    w = torch.zeros(d, dtype=torch.float64)
    w[:3] = torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64)
    eta = X @ w
    if family == "categorical":
        W = torch.randn(d, 3, generator=g, dtype=torch.float64)
        y = torch.multinomial(torch.softmax(X @ W, 1), 1, generator=g)[:, 0].double()
    elif family == "poisson":
        y = torch.poisson(torch.exp(0.5 * eta), generator=g)
    else:
        y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(eta)).double()
    scale = {"offset": None, "units": torch.logspace(-4, 4, d, dtype=torch.float64),
             "tiny": 1e-6, "huge": 1e6}.get(kind)
    if kind == "offset":
        X = X + 1e6
    elif scale is not None:
        X = X * scale
    return X, y


def classify(family, kind, n, d, scale, prior_name, seed) -> tuple[str, str]:
    X, y = data(family, n, d, seed, kind)
    prior = {"gaussian": Gaussian(scale), "laplace": Laplace(scale),
             "elasticnet": ElasticNet(scale, scale)}[prior_name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", mapreg.ConvergenceWarning)
            res = compare(prior, X=X, y=y, likelihood=family)
    except mapreg.ConvergenceWarning as w:
        text = str(w)
        if "stopped at the rounding floor" in text:
            return "floor", text
        if text.startswith("penalized_glm"):
            return "penalized_not_converged", text
        return "map_not_converged", text
    except ValueError as e:
        return "no_map", str(e)
    if res.agrees:
        return "agree", ""
    return ("not_unique" if res.not_unique else "disagree"), res.verdict()


def main() -> int:
    start = time.perf_counter()
    tally: collections.Counter = collections.Counter()
    details = []
    cases = itertools.product(FAMILIES, KINDS, SHAPES, SCALES, PRIORS)
    for seed, (family, kind, (n, d), scale, prior) in enumerate(cases):
        kind_out, text = classify(family, kind, n, d, scale, prior, seed)
        tally[kind_out] += 1
        if kind_out != "agree":
            details.append(f"{kind_out:24s} {family:11s} {kind:8s} n={n:2d} d={d:2d} "
                           f"scale={scale:g} {prior:10s} {' '.join(text.split())[:110]}")
    print("\n".join(details))
    total = sum(tally.values())
    print(f"{total} problems in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    return 1 if tally["disagree"] else 0


if __name__ == "__main__":
    sys.exit(main())
