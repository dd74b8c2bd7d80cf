"""Benchmark: the reference lasso (``mapreg.lasso``) against scikit-learn, in one process.

For each design and lam = frac * lam_max, on the same data:

* ``mapreg``    -- ``mapreg.lasso(X, y, lam)`` (working sets + active set, certified);
* ``Lasso``     -- scikit-learn ``Lasso(alpha=lam/n, tol=1e-10, max_iter=100_000,
  fit_intercept=True)`` (coordinate descent; "converged" = no ConvergenceWarning);
* ``LassoLars`` -- scikit-learn ``LassoLars(alpha=lam/n)`` (LARS homotopy).

Every point is scored on the canonical objective P(w) = 1/2 ||yc - Xc w||^2 + lam ||w||_1
(centred data, numpy): ``dP`` is (P - P_best) / P_best with P_best the lowest of the three
(0 for the best one; mapreg's own certificate bounds its distance to the optimum). Times
are the best of ``--repeats`` runs after a warm-up (a run over ``--slow`` seconds is not
repeated), and the table reports ratios: mapreg / Lasso and mapreg / LassoLars.

Designs: ``gauss`` -- X ~ N(0, 1), 10 non-zero weights in {-2, -1, 1, 2}, intercept 0.5,
noise 0.5 (the sizes of the MAP benchmark); hostile ones at n, d <= 500: ``equicorr``
(X = sqrt(0.9) z 1' + sqrt(0.1) E, every pair of columns correlated 0.9), ``duplicated``
(every column twice), ``scaled`` (column scales 10^U(-3, 3)), ``uncentred`` (a column
2000 + N(0, 1), a column + 1e5), ``y+1e10`` (y offset by 1e10), ``y*1e6`` (y and lam
times 1e6).

Run: ``.venv/bin/python benchmarks/bench_lasso.py [--quick] [--threads 1] [--repeats 5]
[--only gauss,equicorr] [--out benchmarks/LASSO_RESULTS.md]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="two small designs, one repeat (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (1)")
    p.add_argument("--repeats", type=int, default=5, help="timings: best of this many")
    p.add_argument("--slow", type=float, default=2.0, help="no repeats above this (s)")
    p.add_argument("--only", help="comma-separated design names to run (default: all)")
    p.add_argument("--out", help="also write the Markdown report to this file")
    return p.parse_args(argv)


from _env import pin_threads  # noqa: E402  (benchmarks/_env.py)

ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.linear_model import Lasso, LassoLars  # noqa: E402

from mapreg.penalized import lasso, lasso_lam_max  # noqa: E402

FRACS = (1e-1, 1e-2, 1e-4, 1e-6)
SIZES = ((20, 200), (200, 50), (1000, 500), (10000, 1000))


# ----------------------------------------------------------------------------- designs
def gauss(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    k = min(10, d)
    w[:k] = rng.choice([-2.0, -1.0, 1.0, 2.0], size=k)
    return X, X @ w + 0.5 + 0.5 * rng.standard_normal(n)


def equicorr(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.sqrt(0.9) * rng.standard_normal((n, 1)) + np.sqrt(0.1) * rng.standard_normal((n, d))
    w = np.zeros(d)
    w[:5] = [2.0, -1.0, 1.5, -2.0, 1.0]
    return X, X @ w + 0.5 * rng.standard_normal(n)


def duplicated(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = gauss(n, d // 2, seed)
    return np.repeat(X, 2, axis=1), y


def scaled(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = gauss(n, d, seed)
    return X * 10 ** np.random.default_rng(seed + 1).uniform(-3, 3, d), y


def uncentred(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = gauss(n, d, seed)
    X[:, 0] += 2000.0
    X[:, 1] += 1e5
    return X, y


def y_offset(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = gauss(n, d, seed)
    return X, y + 1e10


def y_units(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = gauss(n, d, seed)
    return X, 1e6 * y


HOSTILE = (
    ("equicorr", equicorr, 40, 60), ("equicorr", equicorr, 200, 500),
    ("equicorr", equicorr, 500, 500), ("duplicated", duplicated, 100, 200),
    ("duplicated", duplicated, 300, 100), ("scaled", scaled, 200, 100),
    ("uncentred", uncentred, 200, 100), ("y+1e10", y_offset, 200, 100),
    ("y*1e6", y_units, 200, 100),
)


# ----------------------------------------------------------------------------- timing
def objective(Xc: np.ndarray, yc: np.ndarray, w: np.ndarray, lam: float) -> float:
    r = yc - Xc @ w
    return 0.5 * float(r @ r) + lam * float(np.abs(w).sum())


def timed(fn, repeats: int, slow: float):
    out = fn()  # warm-up (and the result)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        if best > slow:
            break
    return best, out


def sk_fit(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkConvergenceWarning)
        model.fit(X, y)
    ok = not any(issubclass(w.category, SkConvergenceWarning) for w in caught)
    return model.coef_.copy(), ok


def bench(name: str, X: np.ndarray, y: np.ndarray, frac: float, args) -> dict:
    n = X.shape[0]
    lam = frac * lasso_lam_max(X, y)
    xm = X.mean(0)
    Xc = X - xm - (X - xm).mean(0)
    yc = y - y.mean() - (y - y.mean()).mean()
    t_mr, res = timed(lambda: lasso(X, y, lam), args.repeats, args.slow)
    t_cd, (w_cd, ok_cd) = timed(
        lambda: sk_fit(Lasso(alpha=lam / n, tol=1e-10, max_iter=100_000), X, y),
        args.repeats, args.slow)
    t_lars, (w_lars, ok_lars) = timed(lambda: sk_fit(LassoLars(alpha=lam / n), X, y),
                                      args.repeats, args.slow)
    objs = [objective(Xc, yc, w, lam) for w in (res.coef.numpy(), w_cd, w_lars)]
    best = min(objs)
    return {
        "design": name, "n": n, "d": X.shape[1], "frac": frac,
        "t": (t_mr, t_cd, t_lars), "ok": (res.converged, ok_cd, ok_lars),
        "dP": tuple((o - best) / abs(best) if best else 0.0 for o in objs),
        "gap": res.duality_gap / res.gap_tolerance, "steps": res.iterations,
        "nnz": int((res.coef != 0).sum()),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| design | n | d | lam/lam_max | mapreg ms | Lasso ms | LassoLars ms | "
        "mapreg/Lasso | mapreg/LassoLars | dP mapreg | dP Lasso | dP LassoLars | "
        "converged (m/L/LL) | gap/tolerance | steps | nnz |",
        "|" + "---|" * 16,
    ]
    for r in rows:
        t, ok, dp = r["t"], r["ok"], r["dP"]
        lines.append(
            f"| {r['design']} | {r['n']} | {r['d']} | {r['frac']:.0e} | {1e3 * t[0]:.1f} | "
            f"{1e3 * t[1]:.1f} | {1e3 * t[2]:.1f} | {t[0] / t[1]:.2f} | {t[0] / t[2]:.2f} | "
            f"{dp[0]:.0e} | {dp[1]:.0e} | {dp[2]:.0e} | "
            f"{'/'.join('y' if o else 'n' for o in ok)} | {r['gap']:.0e} | {r['steps']} | "
            f"{r['nnz']} |"
        )
    return "\n".join(lines)


def settings(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        from threadpoolctl import threadpool_info
        pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    except ImportError:
        pools = "threadpoolctl not installed"
    return (f"CPU: {cpu} ({os.cpu_count()} logical CPUs); python "
            f"{platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}; "
            f"OMP/MKL/OPENBLAS_NUM_THREADS={threads}; thread pools: {pools or 'none'}")


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    if args.quick:
        designs = [("gauss", gauss, 20, 200), ("equicorr", equicorr, 40, 60)]
        fracs = (1e-2, 1e-6)
        args.repeats = 1
    else:
        designs = [("gauss", gauss, n, d) for n, d in SIZES] + list(HOSTILE)
        fracs = FRACS
    if args.only:
        designs = [dsg for dsg in designs if dsg[0] in args.only.split(",")]
    print(settings(args.threads), flush=True)
    rows = []
    for name, make, n, d in designs:
        X, y = make(n, d)
        for frac in fracs:
            rows.append(bench(name, X, y, frac, args))
            print(f"done {name} {n}x{d} {frac:.0e}", file=sys.stderr, flush=True)
    out = table(rows)
    print(out)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"{settings(args.threads)}\n\n{out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
