"""The reference lasso on hostile designs, checked against independent references.

Nothing here shares code with :mod:`mapreg.penalized`; the references are numpy, scipy
and scikit-learn:

* ``certificate`` -- the duality-gap test documented in :func:`mapreg.lasso`, written
  again in numpy: gap <= max(tol * P(w), floor);
* ``kkt_ratio`` -- the optimality conditions on the centred data, |Xc_j' r| <= lam off the
  support and Xc_S' r = lam sign(w_S) on it, each violation divided by e ||Xc_j||, the
  documented typical rounding error of the computed Xc_j' r;
* scikit-learn ``Lasso`` (coordinate descent, tight tol) and ``LassoLars`` (homotopy);
* L-BFGS-B (scipy) on the split w = u - v, u, v >= 0;
* a cyclic coordinate descent in numpy, run until its own duality gap is tiny.

Tolerances come from the method, not from what passes:

* objective: P(w) - min P <= gap_tolerance (the certificate), so any other point w_ref
  must satisfy P(w) <= P(w_ref) + gap_tolerance, and |P(w) - P(w_ref)| <= gap_tolerance +
  gap(w_ref);
* coefficients, where P is strongly convex with modulus m = lambda_min(Xc_S' Xc_S) on the
  common support S: ||w - w_ref|| <= sqrt(2 (gap_tolerance + gap(w_ref)) / m);
* optimality conditions: every violation below 10 e ||Xc_j|| (10 times the rounding of
  the computed correlations).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.linear_model import Lasso, LassoLars
from threadpoolctl import threadpool_limits

from mapreg import ConvergenceWarning
from mapreg.penalized import lasso, lasso_lam_max

EPS = np.finfo(float).eps


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS / torch thread: these problems are small, and on a busy machine spinning
    worker threads make them slower by orders of magnitude."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(old)


# ----------------------------------------------------------------------------- references
def centre(X, y):
    X, y = np.array(X, dtype=float), np.array(y, dtype=float)
    for t in (X, y):
        m = t.mean(0)
        t -= m
        t -= t.mean(0)
    return X, y


def objective(X, y, w, lam):
    """P(w) = 1/2 ||yc - Xc w||^2 + lam ||w||_1 (the intercept at its optimum)."""
    Xc, yc = centre(X, y)
    r = yc - Xc @ w
    return 0.5 * r @ r + lam * np.abs(w).sum()


def certificate(X, y, w, lam, tol=1e-12):
    """(gap, bound, e) of the documented test gap <= bound = max(tol * P, floor)."""
    Xc, yc = centre(X, y)
    n = len(yc)
    D = np.linalg.norm(Xc, axis=0)
    r = yc - Xc @ w
    g = Xc.T @ r
    gmax = np.abs(g).max()
    alpha = min(1.0, lam / gmax) if gmax > 0 else 1.0
    gap = 0.5 * (1 - alpha) ** 2 * (r @ r) + np.sum(lam * np.abs(w) - alpha * w * g)
    primal = 0.5 * r @ r + lam * np.abs(w).sum()
    Dw = np.sum(D * np.abs(w))
    nnz = int(np.count_nonzero(w))
    e = EPS * (np.linalg.norm(D * w) + np.sqrt((nnz + 1) / n) * (np.linalg.norm(yc) + Dw)
               + np.sqrt(n) * np.linalg.norm(r))
    boundary = (np.abs(g) >= lam - 2 * e * D) & (D > 0)
    Db = D[boundary].max() if boundary.any() else 0.0
    floor = 4 * e * (Dw + np.abs(w).sum() * Db) + 8 * (e * Db / lam) ** 2 * (r @ r)
    return max(gap, 0.0), max(tol * primal, floor), e


def kkt_ratio(X, y, w, lam):
    """max_j of the optimality-condition violation of column j over e ||Xc_j||."""
    Xc, yc = centre(X, y)
    D = np.linalg.norm(Xc, axis=0)
    g = Xc.T @ (yc - Xc @ w)
    _, _, e = certificate(X, y, w, lam)
    on = w != 0
    viol = np.where(on, np.abs(g - lam * np.sign(w)), np.maximum(np.abs(g) - lam, 0.0))
    assert np.all(w[D == 0] == 0)
    live = D > 0
    if e == 0.0:  # yc = 0 and w = 0: nothing to round, the conditions hold exactly
        return 0.0 if np.all(viol[live] == 0) else np.inf
    return float((viol[live] / (e * D[live])).max(initial=0.0))


def sklearn_cd(X, y, lam, max_iter=20_000):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        return Lasso(alpha=lam / len(y), tol=1e-14, max_iter=max_iter).fit(X, y).coef_


def sklearn_lars(X, y, lam):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LassoLars(alpha=lam / len(y)).fit(X, y).coef_


def lbfgsb(X, y, lam):
    """L-BFGS-B on the split w = u - v, u, v >= 0, on the centred data."""
    Xc, yc = centre(X, y)
    d = Xc.shape[1]

    def fun(z):
        w = z[:d] - z[d:]
        r = yc - Xc @ w
        gw = -Xc.T @ r
        return 0.5 * r @ r + lam * z.sum(), np.concatenate([gw + lam, -gw + lam])

    res = minimize(fun, np.zeros(2 * d), jac=True, method="L-BFGS-B",
                   bounds=[(0, None)] * (2 * d),
                   options={"ftol": 1e-16, "gtol": 1e-14, "maxiter": 3000, "maxcor": 30})
    return res.x[:d] - res.x[d:]


def coordinate_descent(X, y, lam, max_sweeps=20_000):
    """Cyclic coordinate descent on the centred data, until its gap is 1e-14 P."""
    Xc, yc = centre(X, y)
    d = Xc.shape[1]
    norms = (Xc * Xc).sum(0)
    w, r = np.zeros(d), yc.copy()
    for _ in range(max_sweeps):
        for j in range(d):
            if norms[j] == 0:
                continue
            z = w[j] + Xc[:, j] @ r / norms[j]
            new = np.sign(z) * max(abs(z) - lam / norms[j], 0.0)
            if new != w[j]:
                r -= (new - w[j]) * Xc[:, j]
                w[j] = new
        gap, _, _ = certificate(X, y, w, lam)
        if gap <= 1e-14 * objective(X, y, w, lam):
            break
    return w


def strong_convexity(X, support):
    Xc, _ = centre(X, np.zeros(len(X)))
    S = np.flatnonzero(support)
    if S.size == 0:
        return np.inf
    return float(np.linalg.eigvalsh(Xc[:, S].T @ Xc[:, S])[0])


def check(X, y, lam, refs=("cd", "lars", "lbfgsb")):
    """Solve, then check the certificate, the optimality conditions and the objective
    against every reference (ours is never worse than another point beyond its bound)."""
    res = lasso(X, y, lam)
    w = res.coef.numpy()
    assert res.converged and res.duality_gap <= res.gap_tolerance
    gap, bound, _ = certificate(X, y, w, lam)
    assert gap <= bound
    assert kkt_ratio(X, y, w, lam) <= 10.0
    P = objective(X, y, w, lam)
    assert abs(P - res.objective) <= 1e-12 * max(P, 1e-300) + bound
    ref_points = {"cd": sklearn_cd, "lars": sklearn_lars, "lbfgsb": lbfgsb}
    for name in refs:
        w_ref = ref_points[name](X, y, lam)
        assert P <= objective(X, y, w_ref, lam) + bound, name
    return res, w, bound


# ----------------------------------------------------------------------------- designs
def gauss(n, d, seed=0, k=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[: min(k, d)] = rng.choice([-2.0, -1.0, 1.0, 2.0], size=min(k, d))
    return X, X @ w + 0.5 + 0.5 * rng.standard_normal(n)


def equicorrelated(n, d, seed=0):
    """Every pair of columns correlated 0.9: X = sqrt(0.9) z 1' + sqrt(0.1) E."""
    rng = np.random.default_rng(seed)
    X = np.sqrt(0.9) * rng.standard_normal((n, 1)) + np.sqrt(0.1) * rng.standard_normal((n, d))
    w = np.zeros(d)
    w[:5] = [2.0, -1.0, 1.5, -2.0, 1.0]
    return X, X @ w + 0.5 * rng.standard_normal(n)


# ----------------------------------------------------------------------------- references
@pytest.mark.parametrize("frac", [0.3, 0.05, 1e-3, 1e-6])
def test_n_greater_than_d_matches_every_reference(frac):
    """Strongly convex (n > d): the coefficients of all four routes agree within
    sqrt(2 (gap_tolerance + gap_ref) / lambda_min)."""
    X, y = gauss(80, 12, seed=1)
    lam = frac * lasso_lam_max(X, y)
    res, w, bound = check(X, y, lam)
    m = strong_convexity(X, np.ones(12, bool))
    for w_ref in (coordinate_descent(X, y, lam), sklearn_cd(X, y, lam), lbfgsb(X, y, lam),
                  sklearn_lars(X, y, lam)):
        gap_ref, _, _ = certificate(X, y, w_ref, lam)
        P, P_ref = objective(X, y, w, lam), objective(X, y, w_ref, lam)
        assert abs(P - P_ref) <= bound + gap_ref
        assert np.linalg.norm(w - w_ref) <= np.sqrt(2 * (bound + gap_ref) / m)


@pytest.mark.parametrize("frac", [0.3, 0.05, 1e-3, 1e-6])
def test_n_less_than_d_matches_lars_and_coordinate_descent(frac):
    """n < d with a Gaussian design: the solution is unique; the supports agree with LARS
    and coordinate descent, the coefficients within the strong-convexity bound on it."""
    X, y = gauss(25, 60, seed=2)
    lam = frac * lasso_lam_max(X, y)
    res, w, bound = check(X, y, lam, refs=("lars", "lbfgsb"))
    assert np.count_nonzero(w) <= 24  # at most rank(Xc) = n - 1 non-zeros
    refs = [sklearn_lars(X, y, lam)]
    if frac >= 0.05:  # coordinate descent crawls near interpolation
        refs.append(coordinate_descent(X, y, lam))
    for w_ref in refs:
        gap_ref, _, _ = certificate(X, y, w_ref, lam)
        assert np.array_equal(w != 0, w_ref != 0)
        m = strong_convexity(X, w != 0)
        assert np.linalg.norm(w - w_ref) <= np.sqrt(2 * (bound + gap_ref) / m)


# ----------------------------------------------------------------------------- hostile
@pytest.mark.parametrize("frac", [1e-2, 1e-4, 1e-6])
def test_equicorrelated_n_less_than_d(frac):
    """The issue-8 design: coordinate descent stalls for 100,000 sweeps at a gap ~1e-2,
    the old homotopy gave up on a singular Gram. Exact, certified, basic (linearly
    independent active columns, so at most rank(Xc) = 39 non-zeros)."""
    X, y = equicorrelated(40, 60, seed=3)
    lam = frac * lasso_lam_max(X, y)
    res, w, bound = check(X, y, lam)
    S = np.flatnonzero(w)
    Xc, _ = centre(X, y)
    assert S.size <= 39 and np.linalg.matrix_rank(Xc[:, S]) == S.size


@pytest.mark.parametrize("frac", [1e-1, 1e-3, 1e-6])
def test_duplicated_columns_reach_the_optimum_of_the_distinct_columns(frac):
    """Each column twice: the optimum is not unique, but its value equals that of the
    problem on the distinct columns, and each pair's coefficients sum to that solution."""
    X1, y = gauss(30, 20, seed=4)
    X = np.repeat(X1, 2, axis=1)
    lam = frac * lasso_lam_max(X, y)
    res, w, bound = check(X, y, lam)
    res1 = lasso(X1, y, lam)
    P, P1 = objective(X, y, w, lam), objective(X1, y, res1.coef.numpy(), lam)
    assert abs(P - P1) <= bound + res1.gap_tolerance
    assert not np.any((w[0::2] != 0) & (w[1::2] != 0))  # independent active columns
    pair = w[0::2] + w[1::2]
    m = strong_convexity(X1, (pair != 0) | (res1.coef.numpy() != 0))
    assert np.linalg.norm(pair - res1.coef.numpy()) <= np.sqrt(
        2 * (bound + res1.gap_tolerance) / m)


@pytest.mark.parametrize("delta", [1e-10, 1e-6])
@pytest.mark.parametrize("frac", [1e-2, 1e-6])
def test_nearly_duplicated_columns(delta, frac):
    """Each odd column = the even one before it + delta * noise: a Gram matrix singular to
    float64 (delta = 1e-10) or with condition number ~1e12 (1e-6)."""
    rng = np.random.default_rng(20)
    X = rng.standard_normal((30, 40))
    X[:, 1::2] = X[:, ::2] + delta * rng.standard_normal((30, 20))
    y = X @ rng.standard_normal(40) + rng.standard_normal(30)
    check(X, y, frac * lasso_lam_max(X, y), refs=("lars", "lbfgsb"))


@pytest.mark.parametrize("frac", [1e-6, 1e-9, 1e-12])
def test_n_greater_than_d_tiny_lambda(frac):
    """Near least squares: the direct route, no sweeping. At 1e-12 lam_max the dual point's
    scaling alpha is known only to ~e / lam, and the floor's quadratic term carries it."""
    X, y = gauss(200, 40, seed=5)
    lam = frac * lasso_lam_max(X, y)
    res, w, bound = check(X, y, lam, refs=("cd", "lbfgsb"))
    assert np.count_nonzero(w) == 40
    # Xc'Xc (w* - w_ls) = -lam sign(w*): ||w* - w_ls|| <= lam sqrt(d) / m
    w_ls = np.linalg.lstsq(*centre(X, y), rcond=None)[0]
    m = strong_convexity(X, w != 0)
    assert np.linalg.norm(w - w_ls) <= lam * np.sqrt(40) / m + np.sqrt(2 * bound / m)


@pytest.mark.parametrize("frac", [1e-1, 1e-3, 1e-6])
def test_badly_scaled_columns(frac):
    """Column scales 10^-3 .. 10^3: the solver works on unit columns."""
    X, y = gauss(60, 30, seed=6)
    X = X * np.logspace(-3, 3, 30)
    lam = frac * lasso_lam_max(X, y)
    check(X, y, lam, refs=("lars", "lbfgsb"))


@pytest.mark.parametrize("frac", [1e-1, 1e-4])
def test_uncentred_columns_and_offsets_cost_nothing(frac):
    """A column 2000 +- 1, a column shifted by 1e5, y shifted by 1e6 or 1e10: the same
    solution as on the data the shifted values represent (the shifts removed again, which
    is exact), within the strong-convexity bound."""
    X, y = gauss(80, 10, seed=7)
    lam = frac * lasso_lam_max(X, y)
    m = strong_convexity(X, np.ones(10, bool))
    col_shift = np.zeros(10)
    col_shift[:2] = [2000.0, 1e5]
    for cs, shift in ((col_shift, 0.0), (0.0 * col_shift, 1e6), (0.0 * col_shift, 1e10)):
        Xs, ys = X + cs, y + shift
        res, w, bound = check(Xs, ys, lam, refs=("lars",))
        ref = lasso(Xs - cs, ys - shift, lam)  # exact subtractions (Sterbenz)
        assert np.linalg.norm(w - ref.coef.numpy()) <= np.sqrt(
            2 * (bound + ref.gap_tolerance) / m)
        scale = abs(ys.mean()) + np.abs(Xs.mean(0)) @ np.abs(w)
        assert abs(res.intercept - (ys.mean() - Xs.mean(0) @ w)) <= 1e-12 * scale


def test_units_times_a_million():
    """y and lam in other units: w scales with them, the certificate is unchanged."""
    X, y = gauss(50, 70, seed=8)
    lam = 1e-3 * lasso_lam_max(X, y)
    r1 = lasso(X, y, lam)
    r2, w2, bound2 = check(X, 1e6 * y, 1e6 * lam, refs=("lars",))
    w1 = r1.coef.numpy()
    assert np.abs(w1[w1 != 0]).min() > 1e-6 * np.abs(w1).max()  # no rounding-level entries
    assert np.array_equal(w1 != 0, w2 != 0)
    m = strong_convexity(X, w1 != 0)
    assert np.linalg.norm(w2 / 1e6 - w1) <= np.sqrt(2 * (bound2 / 1e12 + r1.gap_tolerance) / m)
    assert r2.gap_tolerance / 1e12 == pytest.approx(r1.gap_tolerance, rel=1e-6)


@pytest.mark.parametrize(
    "X, y",
    [
        (np.array([[1.0, -2.0, 3.0]]), np.array([4.0])),  # n = 1: Xc = 0
        (np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 0.25]]), np.array([1.0, 3.0])),  # n = 2
        (np.arange(12.0)[:, None] ** 1.5, np.sin(np.arange(12.0))),  # d = 1
        (np.c_[np.random.default_rng(9).standard_normal((15, 3)), np.zeros(15)],
         np.random.default_rng(10).standard_normal(15)),  # an all-zero column
        (np.c_[np.random.default_rng(11).standard_normal((15, 3)), np.full(15, 7.0)],
         np.random.default_rng(12).standard_normal(15)),  # a constant column
        (np.random.default_rng(13).standard_normal((15, 4)), np.full(15, 2.5)),  # constant y
    ],
    ids=["n=1", "n=2", "d=1", "zero-column", "constant-column", "constant-y"],
)
@pytest.mark.parametrize("frac", [0.5, 1e-6])
def test_degenerate_shapes(X, y, frac):
    lam_max = lasso_lam_max(X, y)
    lam = frac * lam_max if lam_max > 0 else 1.0
    res = lasso(X, y, lam)
    w = res.coef.numpy()
    assert res.converged
    gap, bound, _ = certificate(X, y, w, lam)
    assert gap <= bound and kkt_ratio(X, y, w, lam) <= 10.0
    if lam >= lam_max:
        assert np.all(w == 0) and res.intercept == pytest.approx(np.mean(y))
    if X.shape[1] == 1 and lam < lam_max:  # closed form: soft-thresholding
        Xc, yc = centre(X, y)
        z = Xc[:, 0] @ yc
        ref = np.sign(z) * max(abs(z) - lam, 0.0) / (Xc[:, 0] @ Xc[:, 0])
        assert w[0] == pytest.approx(ref, rel=1e-12)


# ----------------------------------------------------------------------------- metamorphic
def test_duplicating_all_rows_doubles_the_loss_weight():
    X, y = gauss(40, 15, seed=14)
    lam = 0.02 * lasso_lam_max(X, y)
    r1 = lasso(X, y, lam)
    r2 = lasso(np.vstack([X, X]), np.r_[y, y], 2 * lam)
    m = strong_convexity(X, np.ones(15, bool))
    assert np.linalg.norm(r1.coef.numpy() - r2.coef.numpy()) <= np.sqrt(
        2 * (r1.gap_tolerance + r2.gap_tolerance / 2) / m)
    assert r2.objective == pytest.approx(2 * r1.objective, rel=1e-12)


def test_permuting_columns_permutes_the_solution():
    X, y = equicorrelated(30, 45, seed=15)
    lam = 1e-3 * lasso_lam_max(X, y)
    perm = np.random.default_rng(16).permutation(45)
    r1, r2 = lasso(X, y, lam), lasso(X[:, perm], y, lam)
    w1, w2 = r1.coef.numpy()[perm], r2.coef.numpy()
    assert np.array_equal(w1 != 0, w2 != 0)  # unique solution: the same support
    m = strong_convexity(X[:, perm], w2 != 0)
    assert np.linalg.norm(w1 - w2) <= np.sqrt(2 * (r1.gap_tolerance + r2.gap_tolerance) / m)


def test_lam_at_or_above_lam_max_gives_exact_zeros():
    X, y = equicorrelated(20, 30, seed=17)
    lam_max = lasso_lam_max(X, y)
    for lam in (lam_max, 1.5 * lam_max, 1e3 * lam_max):
        res = lasso(X, y, lam)
        assert np.all(res.coef.numpy() == 0) and res.converged
        assert res.duality_gap <= res.gap_tolerance
    assert np.any(lasso(X, y, lam_max * (1 - 1e-9)).coef.numpy() != 0)


# ----------------------------------------------------------------------------- certificate
@pytest.mark.parametrize("design, frac", [("gauss", 1e-2), ("equicorrelated", 1e-6)])
def test_certificate_rejects_points_off_the_optimum(design, frac):
    """Not loose: moving the optimum by 1e-7 relative fails the documented test, also at
    lam = 1e-6 lam_max where the rounding floor, not tol * P, sets the bound."""
    X, y = gauss(50, 20, seed=18) if design == "gauss" else equicorrelated(40, 60, seed=3)
    lam = frac * lasso_lam_max(X, y)
    w = lasso(X, y, lam).coef.numpy()
    gap, bound, _ = certificate(X, y, w, lam)
    assert gap <= bound
    for moved in (w * (1 + 1e-7), w * (1 - 1e-7), w + 1e-7 * np.abs(w).max() * (w == 0)):
        gap, bound, _ = certificate(X, y, moved, lam)
        assert gap > bound


def test_converged_is_never_claimed_at_a_suboptimal_point():
    """Stopped early by max_iter, every result either passes its own test -- and is then
    within gap_tolerance of the optimum -- or warns, with a gap above its tolerance that
    still bounds its distance to the optimum."""
    X, y = equicorrelated(40, 60, seed=19)
    lam = 1e-4 * lasso_lam_max(X, y)
    final = lasso(X, y, lam)
    P_star = final.objective - final.gap_tolerance
    for k in sorted({int(k) for k in np.linspace(1, final.iterations, 12)}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = lasso(X, y, lam, max_iter=k)
        P = objective(X, y, res.coef.numpy(), lam)
        assert P - P_star <= res.duality_gap + final.gap_tolerance + res.gap_tolerance
        if res.converged:
            assert P - P_star <= res.gap_tolerance + final.gap_tolerance
        else:
            assert res.duality_gap > res.gap_tolerance


def test_benchmark_quick_mode_runs_and_writes_the_table(tmp_path):
    """benchmarks/bench_lasso.py keeps working (timings are not asserted)."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lasso.py"
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(bench), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gauss")
            or line.startswith("| equicorr")]
    assert len(rows) == 4 and all("| y/" in row for row in rows)  # mapreg converged
