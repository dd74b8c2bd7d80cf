"""Benchmark: the whole posterior (Pyro's NUTS) next to its mode (the MAP engine).

On the default data (``mapreg.default_dataset()``: n = 20, d = 10, sigma_eps = 2), for the
Gaussian prior (sigma = 0.5) and the Laplace prior (b = 0.5), in one process:

* ``nuts``  -- ``mapreg.posterior(prior, ..., num_samples=1000, warmup_steps=500,
  num_chains=4)``: Pyro's ``MCMC(NUTS)`` on the MAP engine's own model, JIT-compiled
  potential, chains one after another in this process. Reported: wall time (warm-up
  included), kept draws per second, the smallest effective sample size over all coordinates
  and that ESS per second, the largest split R-hat, divergences.
* ``map``   -- ``mapreg.map_estimate`` on the same model (median of repeats after a warm-up).
* ``gibbs`` -- for the Laplace prior, the Park-Casella Gibbs sampler
  (``mapreg.bayesian_lasso_gibbs``, numpy only, no Pyro) with the same number of chains and
  draws: an independent sampler of the same posterior, as a reference for ESS per second.

Run: ``.venv/bin/python benchmarks/bench_posterior.py [--quick] [--threads N] [--out FILE]``.
The issue's target: 4 chains x 1000 draws after warm-up in under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 chains x 100 draws (smoke test)")
    p.add_argument("--threads", type=int, help="torch and BLAS threads (default: leave as is)")
    p.add_argument("--out", help="also write the Markdown table to this file")
    return p.parse_args(argv)


from _env import pin_threads, settings  # noqa: E402  (benchmarks/_env.py)

ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import mapreg  # noqa: E402


def _median_time(f, repeats: int = 7) -> float:
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict]:
    torch.set_default_dtype(torch.float64)
    ds = mapreg.default_dataset()
    X, y, noise = ds.X, ds.y, ds.noise
    draws, warmup, chains = (100, 100, 2) if quick else (1000, 500, 4)
    rows = []
    for name, kw in (("gaussian", {"sigma": 0.5}), ("laplace", {"b": 0.5})):
        prior = mapreg.make_prior(name, **kw)
        map_s = _median_time(lambda prior=prior: mapreg.map_estimate(X, y, prior, noise))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mapreg.PosteriorWarning)
            res = mapreg.posterior(name, **kw, num_samples=draws, warmup_steps=warmup,
                                   num_chains=chains, seed=0, progress=False)
        row = {"prior": name, "chains": chains, "draws": draws, "warmup": warmup,
               "nuts_s": res.wall_time, "draws_per_s": res.draws_per_second,
               "min_ess": res.min_ess, "ess_per_s": res.ess_per_second,
               "max_rhat": res.max_rhat, "divergences": res.n_divergences, "map_ms": 1e3 * map_s,
               "gibbs_s": None, "gibbs_min_ess": None, "gibbs_ess_per_s": None}
        if name == "laplace":
            start = time.perf_counter()
            gibbs = mapreg.bayesian_lasso_gibbs(X, y, kw["b"], noise, num_samples=draws,
                                                warmup=warmup, seed=0, chains=chains)
            g_s = time.perf_counter() - start
            g_ess = float(np.min(np.asarray(gibbs.ess)))
            row.update(gibbs_s=g_s, gibbs_min_ess=g_ess, gibbs_ess_per_s=g_ess / g_s)
        rows.append(row)
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = ("| prior | chains x draws (warm-up) | NUTS s | draws/s | min ESS | ESS/s | max R-hat "
            "| divergences | MAP ms | NUTS s / MAP s | Gibbs s | Gibbs min ESS | Gibbs ESS/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['prior']} | {r['chains']} x {r['draws']} ({r['warmup']}) | "
            f"{r['nuts_s']:.1f} | {r['draws_per_s']:.0f} | {r['min_ess']:.0f} | "
            f"{r['ess_per_s']:.0f} | {r['max_rhat']:.4f} | {r['divergences']} | "
            f"{r['map_ms']:.1f} | {r['nuts_s'] / (r['map_ms'] / 1e3):.0f}x | "
            f"{_fmt(r['gibbs_s'], '.2f')} | {_fmt(r['gibbs_min_ess'], '.0f')} | "
            f"{_fmt(r['gibbs_ess_per_s'], '.0f')} |")
    return "\n".join(lines)


def main() -> int:
    rows = run(ARGS.quick)
    text = table(rows)
    print(settings())
    print(text)
    if ARGS.out:
        with open(ARGS.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
