"""Hostile but legal regression problems, and independent checks of a solver's claims.

Used by ``tests/test_property.py`` (a fast seeded subset) and ``benchmarks/sweep.py`` (the
full sweep, >= 1,500 problems). Every problem is a linear reparametrization, a bad
conditioning or a degenerate design that the solvers must handle exactly:

* designs: Gaussian, equicorrelated (rho 0.9 / 0.99), uncentred columns (a "year" around
  2000, an offset of 1e5), columns on scales 1e-3..1e3, duplicated columns, integer-valued
  low-rank X, a constant column; n < d, n > d, n tiny;
* responses: an offset in y (up to 1e6), units (y and the noise scaled by 10^k);
* priors: Gaussian, Laplace or elastic net (sigma^2 = b), lambda from 1e-6 to 2 x lambda_max
  (Laplace, elastic net), or spanning the
  spectrum of the centred Gram matrix (Gaussian).

The checks are independent of the package's numerics: KKT conditions in numpy's extended
precision (``np.longdouble``, 64-bit mantissa on x86) at the returned point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DESIGNS = ("gaussian", "equicorrelated", "uncentred", "badly_scaled", "duplicated",
           "low_rank_integer", "constant_column")


@dataclass(frozen=True)
class HostileProblem:
    X: np.ndarray
    y: np.ndarray
    noise: float
    prior: str  # "gaussian", "laplace" or "elasticnet"
    scale: float  # sigma or b (the elastic net: b, with sigma^2 = b as in the tests' registry)
    lam: float  # canonical lambda = noise^2 / sigma^2 or noise^2 / b
    label: str


def make_design(rng: np.random.Generator, kind: str, n: int, d: int) -> np.ndarray:
    """An (n, d) design of the given kind."""
    Z = rng.standard_normal((n, d))
    if kind == "gaussian":
        return Z
    if kind == "equicorrelated":
        rho = rng.choice([0.9, 0.99])
        return np.sqrt(rho) * rng.standard_normal((n, 1)) + np.sqrt(1 - rho) * Z
    if kind == "uncentred":
        X = Z.copy()
        X[:, 0] += 2000.0  # a "year" column
        if d > 1:
            X[:, 1] += rng.choice([1e3, 1e5])
        return X
    if kind == "badly_scaled":
        return Z * 10.0 ** rng.uniform(-3, 3, size=d)
    if kind == "duplicated":
        half = (d + 1) // 2
        base = Z[:, :half]
        return np.concatenate([base, base[:, : d - half]], axis=1)
    if kind == "low_rank_integer":
        r = max(1, min(n, d) // 2)
        return np.rint(3 * rng.standard_normal((n, r))) @ np.rint(rng.standard_normal((r, d)))
    if kind == "constant_column":
        X = Z.copy()
        X[:, rng.integers(d)] = rng.choice([0.0, 1.0, 7.5])
        return X
    raise ValueError(kind)


def make_hostile(seed: int) -> HostileProblem:
    """One random hostile problem, determined by ``seed``."""
    rng = np.random.default_rng(seed)
    kind = DESIGNS[seed % len(DESIGNS)]
    n = int(rng.choice([1, 2, 3, 5, 10, 20, 40, 80]))
    d = int(rng.choice([1, 2, 5, 10, 30, 60, 120]))
    X = make_design(rng, kind, n, d)
    w = np.zeros(d)
    k = min(d, int(rng.integers(1, 6)))
    w[rng.choice(d, size=k, replace=False)] = rng.choice([-2.0, -1.0, 0.5, 1.0, 3.0], size=k)
    w /= np.maximum(X.std(0), 1e-3)  # signal comparable across column scales
    noise = 0.5
    y = X @ w + 0.7 + noise * rng.standard_normal(n)
    units = 10.0 ** int(rng.choice([-6, -3, 0, 0, 0, 3, 6]))
    y = y * units
    noise *= units
    if rng.random() < 0.25:
        y = y + units * float(rng.choice([1e3, 1e6]))  # offset relative to the signal
    u = rng.random()
    prior = "laplace" if u < 0.35 else "elasticnet" if u < 0.5 else "gaussian"
    Xc, yc = X - X.mean(0), y - y.mean()
    if prior != "gaussian":
        lam_max = float(np.abs(Xc.T @ yc).max())
        if lam_max == 0.0:
            lam_max = noise**2
        lam = lam_max * 10.0 ** rng.uniform(-6, 0.3)
        scale = noise**2 / lam
    else:
        top = float(np.linalg.norm(Xc, 2)) ** 2 or noise**2
        lam = top * 10.0 ** rng.uniform(-8, 2)
        scale = noise / np.sqrt(lam)
    label = f"seed={seed} {kind} n={n} d={d} {prior} lam={lam:.3g} units={units:g}"
    return HostileProblem(X, y, noise, prior, float(scale), float(lam), label)


def prior_scales(p: HostileProblem) -> dict[str, float]:
    """The keyword scales of ``p``'s prior for :func:`mapreg.compare` / ``make_prior``."""
    if p.prior == "gaussian":
        return {"sigma": p.scale}
    if p.prior == "laplace":
        return {"b": p.scale}
    return {"sigma": math.sqrt(p.scale), "b": p.scale}


def map_kkt_check(p: HostileProblem, coef, intercept, tol: float = 1e-10) -> tuple[bool, float]:
    """Is (coef, intercept) a KKT point of -log p(y, w, c) to the MAP engine's own test?

    Recomputes, in extended precision, the gradient in the engine's centred coordinates
    (weights: -Xc' r / s^2 plus the prior's term; intercept: -sum r / s^2, r = y - Xw - c),
    the KKT residual rho_j, the scale s_j (sum of the absolute values of the condition's
    terms) and the rounding floor r_j the engine allows for, and tests
    rho_j <= tol s_j + 2 r_j (the engine's float64 gradient is itself off by up to r_j).
    Returns (passes, worst ratio rho_j / (tol s_j + 2 r_j)).
    """
    ld = np.longdouble
    X, y = p.X.astype(ld), p.y.astype(ld)
    w = np.asarray(coef, dtype=np.float64).astype(ld)
    c = ld(float(intercept))
    s2 = ld(p.noise) ** 2
    xm = X.mean(0)
    Xc = X - xm
    r = y - X @ w - c
    delta = -r / s2
    g = np.concatenate([Xc.T @ delta, [delta.sum()]])
    scale = np.concatenate([np.abs(Xc).T @ np.abs(delta), [np.abs(delta).sum()]])
    nu = (np.abs(y) + np.abs(X) @ np.abs(w) + abs(c)) / s2
    eps = ld(np.finfo(np.float64).eps)
    floor = 32 * eps * np.concatenate([np.abs(X).T @ nu + np.abs(xm) * nu.sum(), [nu.sum()]])
    d = w.shape[0]
    if p.prior == "gaussian":
        kappa = 1 / ld(p.scale) ** 2
        g[:d] += kappa * w
        scale[:d] += kappa * np.abs(w)
        floor[:d] += 32 * eps * kappa * np.abs(w)
        rho = np.abs(g)
    else:
        kappa = 1 / ld(p.scale)
        if p.prior == "elasticnet":  # + w^2 / (2 sigma^2), sigma^2 = b: weight kappa too
            g[:d] += kappa * w
            scale[:d] += kappa * np.abs(w)
            floor[:d] += 32 * eps * kappa * np.abs(w)
        gw = g[:d]
        rho_w = np.where(w != 0, np.abs(gw + kappa * np.sign(w)), np.maximum(np.abs(gw) - kappa, 0))
        rho = np.concatenate([rho_w, [abs(g[d])]])
        scale[:d] += kappa
    allowed = tol * scale + 2 * floor
    safe = np.where(allowed > 0, allowed, 1)
    ratio = np.where(allowed > 0, rho / safe, np.where(rho > 0, np.inf, 0))
    worst = float(ratio.max())
    return worst <= 1.0, worst


def check_compare(p: HostileProblem) -> tuple[list[str], str]:
    """Run ``mapreg.compare`` on a hostile problem and list every broken promise.

    Promised: no exception and no warning; both solvers report convergence; the MAP is a
    KKT point by the independent extended-precision check (:func:`map_kkt_check`), and so
    is the penalized optimum (its own test is a duality gap or a closed form; the same KKT
    conditions hold for it because they are the canonical objective's, divided by
    sigma_eps^2); the verdict is never a bare DISAGREE. Returns the failures (empty: all
    kept) and the verdict's kind ("agree", "not_unique", "rounding", "disagree"; "error" if
    ``compare`` raised).
    """
    import warnings

    from mapreg import compare

    kw = prior_scales(p)
    failures: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            res = compare(p.prior, X=p.X, y=p.y, noise=p.noise, **kw)
        except Exception as exc:  # noqa: BLE001 -- reported as a failure
            return [f"{type(exc).__name__}: {exc}"], "error"
    if not res.map.converged:
        failures.append(f"MAP not converged (KKT {res.map.kkt_residual:.1e})")
    ok, worst = map_kkt_check(p, res.map_coef.numpy(), res.map_intercept)
    if not ok:
        failures.append(f"MAP fails the independent KKT check (ratio {worst:.2e})")
    if not res.penalized.converged:
        failures.append(f"penalized solver not converged (gap {res.penalized.duality_gap:.1e})")
    ok, worst = map_kkt_check(p, res.penalized_coef.numpy(), res.penalized_intercept)
    if not ok:
        failures.append(f"penalized optimum fails the independent KKT check (ratio {worst:.2e})")
    diagnosis = res.diagnosis()
    if diagnosis.kind == "disagree":
        failures.append(str(diagnosis))
    return failures, diagnosis.kind
