"""Benchmark: the MAP side (Pyro log joint) against the exact solver, scikit-learn and SVI.

For each (n, d) and prior, in one process and on the same data:

* ``map``     -- ``mapreg.map_estimate`` (values and gradients from Pyro traces);
* ``exact``   -- ``mapreg.ridge`` / ``mapreg.lasso`` (plain torch), the accuracy reference;
* ``sklearn`` -- ``Ridge(alpha=lam)`` / ``Lasso(alpha=lam/n, tol=1e-10)``;
* ``svi``     -- Pyro's canonical recipe: ``AutoDelta`` guide + ``Trace_ELBO`` + ``Adam``, for a
  fixed budget of steps; its accuracy is checked every few steps and its time is the time to
  its *best* accuracy (which, for the Laplace prior, is far worse than the MAP's: the ratio
  SVI/MAP is then a lower bound on the speed-up at equal accuracy).

Accuracy is max|w - w_exact| / max(1, |w_exact|_inf). Times are medians of repeats after a
warm-up; the table reports ratios, which are what carries over between machines.

Data: X ~ N(0, 1), 10 non-zero true weights, intercept 0.5, noise 0.5. Lasso:
lam = 0.1 lam_max (b = noise^2 / lam). Ridge: lam = 10 (sigma = noise / sqrt(10)).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_map.py [--quick] [--threads N]
[--sizes 20x200,200x50] [--svi-steps 2000] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few SVI steps (smoke test)")
    p.add_argument("--sizes", default="20x200,200x50,1000x500,10000x1000")
    p.add_argument("--svi-steps", type=int, default=3000)
    p.add_argument("--threads", type=int, help="torch and BLAS threads (default: leave as is)")
    p.add_argument("--out", help="also write the Markdown table to this file")
    return p.parse_args(argv)


from _env import pin_threads, settings  # noqa: E402  (benchmarks/_env.py)

ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import pyro  # noqa: E402
import torch  # noqa: E402
from pyro.infer import SVI, Trace_ELBO  # noqa: E402
from pyro.infer.autoguide import AutoDelta, init_to_value  # noqa: E402
from sklearn.linear_model import Lasso, Ridge  # noqa: E402

from mapreg.bayes.likelihoods import GaussianNoise  # noqa: E402
from mapreg.bayes.map import map_estimate  # noqa: E402
from mapreg.bayes.models import linear_model  # noqa: E402
from mapreg.bayes.priors import Gaussian, Laplace, Prior  # noqa: E402
from mapreg.penalized import lasso, lasso_lam_max, ridge  # noqa: E402

NOISE = 0.5


def make_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    k = min(10, d)
    w[:k] = rng.choice([-2.0, -1.0, 1.0, 2.0], size=k)
    return X, X @ w + 0.5 + NOISE * rng.standard_normal(n)


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def accuracy(w: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(w - ref).max() / max(1.0, np.abs(ref).max()))


def run_svi(X, y, prior: Prior, ref: np.ndarray, steps: int, lr: float) -> dict:
    """Canonical SVI; returns best accuracy, time to it, time to 1e-3 (or None), zeros."""
    Xt, yt = torch.tensor(X), torch.tensor(y)
    d = X.shape[1]
    model = linear_model(prior, GaussianNoise(NOISE))
    check_every = max(1, steps // 100)
    with pyro.get_param_store().scope():
        pyro.clear_param_store()
        init = init_to_value(values={"w": torch.zeros(d, dtype=torch.float64),
                                     "c": torch.tensor(0.0, dtype=torch.float64)})
        guide = AutoDelta(model, init_loc_fn=init)
        svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), Trace_ELBO())
        best, t_best, t_1e3, zeros = float("inf"), None, None, 0
        elapsed = 0.0
        for step in range(1, steps + 1):
            t = time.perf_counter()
            svi.step(Xt, yt)
            elapsed += time.perf_counter() - t
            if step % check_every == 0:
                w = guide.median()["w"].detach().numpy()
                acc = accuracy(w, ref)
                if acc < best:
                    best, t_best, zeros = acc, elapsed, int((w == 0).sum())
                if t_1e3 is None and acc <= 1e-3:
                    t_1e3 = elapsed
    return {"acc": best, "t_best": t_best, "t_1e3": t_1e3, "zeros": zeros, "steps": steps}


def bench(n: int, d: int, prior_name: str, svi_steps: int) -> dict:
    X, y = make_data(n, d)
    repeats = 3 if n * d >= 10**6 else 7
    if prior_name == "laplace":
        lam = 0.1 * lasso_lam_max(X, y)
        prior: Prior = Laplace(NOISE**2 / lam)
        t_exact, ex = timed(lambda: lasso(X, y, lam), repeats)
        sk = Lasso(alpha=lam / n, tol=1e-10, max_iter=10**6)
    else:
        lam = 10.0
        prior = Gaussian(NOISE / np.sqrt(lam))
        t_exact, ex = timed(lambda: ridge(X, y, lam), repeats)
        sk = Ridge(alpha=lam)
    ref = ex.coef.numpy()
    t_map, mp = timed(lambda: map_estimate(X, y, prior, NOISE), repeats)
    t_sk, _ = timed(lambda: sk.fit(X, y), repeats)
    svi = run_svi(X, y, prior, ref, svi_steps, lr=0.02)
    return {
        "prior": prior_name, "n": n, "d": d, "lam": lam,
        "t_map": t_map, "t_exact": t_exact, "t_sk": t_sk,
        "acc_map": accuracy(mp.coef.numpy(), ref), "acc_sk": accuracy(sk.coef_, ref),
        "zeros": (int((mp.coef == 0).sum()), int((ex.coef == 0).sum()),
                  int((sk.coef_ == 0).sum()), svi["zeros"]),
        "map_method": mp.method, "map_traces": mp.pyro_traces, "svi": svi,
    }


def table(rows: list[dict]) -> str:
    head = ("| prior | n | d | MAP ms | exact ms | sklearn ms | SVI ms to best (steps) | "
            "MAP/sklearn | SVI/MAP | MAP acc | sklearn acc | SVI best acc | SVI to 1e-3 ms | "
            "zeros MAP/exact/sklearn/SVI | MAP method (traces) |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        s = r["svi"]
        t1e3 = f"{1e3 * s['t_1e3']:.0f}" if s["t_1e3"] is not None else "never"
        lines.append(
            f"| {r['prior']} | {r['n']} | {r['d']} | {1e3 * r['t_map']:.1f} | "
            f"{1e3 * r['t_exact']:.1f} | {1e3 * r['t_sk']:.1f} | "
            f"{1e3 * s['t_best']:.0f} ({s['steps']}) | {r['t_map'] / r['t_sk']:.1f}x | "
            f"{s['t_best'] / r['t_map']:.0f}x | {r['acc_map']:.0e} | {r['acc_sk']:.0e} | "
            f"{s['acc']:.0e} | {t1e3} | {'/'.join(map(str, r['zeros']))} | "
            f"{r['map_method']} ({r['map_traces']}) |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [(20, 200), (200, 50)] if args.quick else [
        tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    steps = 200 if args.quick else args.svi_steps
    print(settings(), flush=True)
    rows = []
    for n, d in sizes:
        for prior in ("gaussian", "laplace"):
            svi_steps = steps if n * d < 10**6 else max(100, steps // 3)
            rows.append(bench(n, d, prior, svi_steps))
            print(f"done {prior} {n}x{d}", file=sys.stderr, flush=True)
    out = table(rows)
    print(out)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"{settings()}\n\n{out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
