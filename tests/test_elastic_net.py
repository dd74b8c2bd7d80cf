"""The exact elastic net against scikit-learn's ElasticNet, scipy.optimize on the formula
written here, its optimality conditions, its limits (ridge, lasso) and hostile data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from mapreg import ConvergenceError, ConvergenceWarning
from mapreg.penalized import (
    canonical_objective,
    elastic_net,
    lasso,
    lasso_lam_max,
    ridge,
    solve_penalized,
)


def problem(n, d, seed=0, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale + offset
    w = np.zeros(d)
    w[: min(d, 4)] = [2.0, -1.5, 1.0, 0.5][: min(d, 4)]
    y = X @ w + rng.standard_normal(n) + 3.0
    return X, y


def formula(X, y, w, c, lam1, lam2):
    r = y - X @ w - c
    return 0.5 * r @ r + lam1 * np.abs(w).sum() + 0.5 * lam2 * w @ w


def kkt_ok(X, y, res, lam1, lam2, rtol=1e-8):
    """|X_j'r - lam2 w_j| <= lam1 at zeros, = lam1 sign(w_j) elsewhere (r at the result)."""
    w = res.coef.numpy()
    r = y - X @ w - res.intercept
    g = X.T @ r - lam2 * w
    scale = np.abs(X).T @ np.abs(r) + lam2 * np.abs(w) + lam1
    zero = w == 0
    assert np.all(np.abs(g[zero]) <= lam1 + rtol * scale[zero])
    np.testing.assert_array_less(np.abs(g[~zero] - lam1 * np.sign(w[~zero])),
                                 rtol * scale[~zero] + 1e-300)
    assert abs(r.sum()) <= rtol * np.abs(r).sum() + 1e-300


@pytest.mark.parametrize(("n", "d"), [(60, 10), (20, 50)])
def test_matches_sklearn_elastic_net(n, d):
    from sklearn.linear_model import ElasticNet

    X, y = problem(n, d, seed=1)
    lam1, lam2 = 0.1 * lasso_lam_max(X, y), 4.0
    alpha = (lam1 + lam2) / n
    model = ElasticNet(alpha=alpha, l1_ratio=lam1 / (lam1 + lam2), tol=1e-12,
                       max_iter=1_000_000).fit(X, y)
    res = elastic_net(X, y, lam1, lam2)
    assert res.converged and res.penalty == "elasticnet" and res.lam2 == lam2
    # sklearn's tol=1e-12 bounds its duality gap relative to ||y||^2 / n (its scale)
    np.testing.assert_allclose(res.coef.numpy(), model.coef_, atol=1e-7)
    assert res.intercept == pytest.approx(model.intercept_, abs=1e-7)
    assert np.array_equal(res.coef.numpy() == 0, model.coef_ == 0)
    ours = formula(X, y, res.coef.numpy(), res.intercept, lam1, lam2)
    assert ours <= formula(X, y, model.coef_, model.intercept_, lam1, lam2) * (1 + 1e-13)


@pytest.mark.parametrize(("n", "d"), [(40, 8), (12, 25)])
def test_matches_scipy_on_the_formula(n, d):
    X, y = problem(n, d, seed=2)
    lam1, lam2 = 0.2 * lasso_lam_max(X, y), 1.5

    def fun(z):  # w = w+ - w-, w+- >= 0, intercept free
        wp, wm, c = z[:d], z[d:2 * d], z[-1]
        w = wp - wm
        r = y - X @ w - c
        g = -X.T @ r + lam2 * w
        f = 0.5 * r @ r + lam1 * (wp + wm).sum() + 0.5 * lam2 * w @ w
        return f, np.concatenate([g + lam1, -g + lam1, [-r.sum()]])

    sp = minimize(fun, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B",
                  bounds=[(0, None)] * (2 * d) + [(None, None)],
                  options=dict(maxiter=100_000, ftol=0.0, gtol=1e-13, maxcor=50))
    w_sp = sp.x[:d] - sp.x[d:2 * d]
    res = elastic_net(X, y, lam1, lam2)
    w = res.coef.numpy()
    np.testing.assert_allclose(w, w_sp, atol=1e-6 * max(1.0, np.abs(w).max()))
    assert np.array_equal(w == 0, np.abs(w_sp) <= 1e-8)
    f_sp = formula(X, y, w_sp, sp.x[-1], lam1, lam2)
    assert res.objective == pytest.approx(formula(X, y, w, res.intercept, lam1, lam2),
                                          rel=1e-12)
    assert res.objective <= f_sp * (1 + 1e-13)
    kkt_ok(X, y, res, lam1, lam2)


def test_limits_are_ridge_and_lasso():
    X, y = problem(30, 12, seed=3)
    lam = 0.3 * lasso_lam_max(X, y)
    r = ridge(X, y, 2.5)
    e = elastic_net(X, y, 0.0, 2.5)
    np.testing.assert_allclose(e.coef.numpy(), r.coef.numpy(), rtol=0, atol=1e-13)
    assert (e.penalty, e.lam, e.lam2) == ("elasticnet", 0.0, 2.5)
    la = lasso(X, y, lam)
    e = elastic_net(X, y, lam, 0.0)
    np.testing.assert_allclose(e.coef.numpy(), la.coef.numpy(), rtol=0, atol=1e-13)
    # and the augmented route is continuous at both ends
    tiny = elastic_net(X, y, lam, 1e-10)
    np.testing.assert_allclose(tiny.coef.numpy(), la.coef.numpy(), atol=1e-8)
    small = elastic_net(X, y, 1e-9, 2.5)
    np.testing.assert_allclose(small.coef.numpy(), r.coef.numpy(), atol=1e-8)


def test_lam_max_gives_zero_and_kkt_holds():
    X, y = problem(25, 40, seed=4)
    lm = lasso_lam_max(X, y)
    assert not elastic_net(X, y, lm, 3.0).coef.any()
    res = elastic_net(X, y, 0.05 * lm, 3.0)
    assert res.converged and 0 < int((res.coef != 0).sum()) < 40
    kkt_ok(X, y, res, 0.05 * lm, 3.0)


@pytest.mark.parametrize("case", ["offset", "n<d", "duplicated", "tiny", "huge"])
def test_hostile_data(case):
    X, y = problem(30, 8, seed=5)
    lam1, lam2 = 0.1 * lasso_lam_max(X, y), 2.0
    base = elastic_net(X, y, lam1, lam2)
    if case == "offset":  # column offsets are an exact symmetry with a free intercept
        res = elastic_net(X + 1e4, y, lam1, lam2)
        np.testing.assert_allclose(res.coef.numpy(), base.coef.numpy(), atol=1e-9)
    elif case == "n<d":
        X, y = problem(10, 60, seed=6)
        lam1 = 0.01 * lasso_lam_max(X, y)
        res = elastic_net(X, y, lam1, lam2)
        kkt_ok(X, y, res, lam1, lam2)
    elif case == "duplicated":  # the L2 part splits a duplicated column's weight evenly
        res = elastic_net(np.hstack([X, X[:, :1]]), y, lam1, lam2)
        w = res.coef.numpy()
        assert w[0] == pytest.approx(w[-1], rel=1e-9) and w[0] != 0
        kkt_ok(np.hstack([X, X[:, :1]]), y, res, lam1, lam2)
    else:  # X -> s X is w -> w / s with lam1 -> s lam1, lam2 -> s^2 lam2 (same objective)
        s = 1e-6 if case == "tiny" else 1e6
        res = elastic_net(s * X, y, s * lam1, s**2 * lam2)
        np.testing.assert_allclose(s * res.coef.numpy(), base.coef.numpy(), rtol=1e-9,
                                   atol=1e-12)
        assert res.intercept == pytest.approx(base.intercept, rel=1e-9)
    assert res.converged


def test_solve_penalized_and_canonical_objective():
    X, y = problem(30, 6, seed=7)
    res = solve_penalized(X, y, "elasticnet", 2.0, lam2=1.0)
    assert res == elastic_net(X, y, 2.0, 1.0)
    val = canonical_objective(X, y, res.coef, res.intercept, "elasticnet", 2.0, 1.0)
    assert val == pytest.approx(res.objective, rel=1e-12)
    assert val == pytest.approx(formula(X, y, res.coef.numpy(), res.intercept, 2.0, 1.0),
                                rel=1e-12)
    with pytest.raises(TypeError, match="needs the keyword lam2"):
        solve_penalized(X, y, "elasticnet", 2.0)
    with pytest.raises(ValueError, match=r"lam2 must be 0 for the lasso"):
        canonical_objective(X, y, res.coef, res.intercept, "lasso", 2.0, 1.0)


def test_validation_and_convergence_reporting():
    X, y = problem(20, 5, seed=8)
    with pytest.raises(ValueError, match=r"lam1 must be a finite number >= 0; got -1.0"):
        elastic_net(X, y, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"lam2 must be a finite number >= 0; got nan"):
        elastic_net(X, y, 1.0, float("nan"))
    with pytest.raises(ValueError, match=r"tol must be a positive finite number; got -1e-12"):
        elastic_net(X, y, 1.0, 1.0, tol=-1e-12)
    with pytest.raises(TypeError, match=r"strict must be True or False"):
        elastic_net(X, y, 1.0, 1.0, strict="yes")
    X, y = problem(15, 40, seed=1)
    lam1 = 0.01 * lasso_lam_max(X, y)
    with pytest.warns(ConvergenceWarning, match=r"elastic_net did not converge .* duality gap"):
        res = elastic_net(X, y, lam1, 0.1, max_iter=1)
    assert not res.converged and res.duality_gap > res.gap_tolerance
    with pytest.raises(ConvergenceError, match="duality gap"):
        elastic_net(X, y, lam1, 0.1, max_iter=1, strict=True)
