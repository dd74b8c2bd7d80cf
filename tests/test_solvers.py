"""The two solvers on their own: convergence reporting, edge cases, priors' methods."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import PRIOR_REGISTRY, make_problem

from mapreg import ConvergenceError, ConvergenceWarning, map_estimate
from mapreg.penalized import lasso, lasso_lam_max, ridge, solve_penalized


def test_map_engine_warns_with_the_kkt_residual_when_out_of_iterations():
    p = make_problem(15, 40, seed=1)
    prior = PRIOR_REGISTRY["laplace"].make(5.0)  # needs 4 working-set iterations
    with pytest.warns(ConvergenceWarning, match=r"KKT residual .* > tolerance"):
        res = map_estimate(p.X, p.y, prior, p.noise, max_iter=1)
    assert not res.converged and res.kkt_residual > res.kkt_tol
    with pytest.raises(ConvergenceError, match=r"KKT residual"):
        map_estimate(p.X, p.y, prior, p.noise, max_iter=1, strict=True)


def test_lasso_warns_with_the_duality_gap_when_out_of_steps():
    p = make_problem(15, 40, seed=1)
    lam = 0.01 * lasso_lam_max(p.X, p.y)
    with pytest.warns(ConvergenceWarning, match=r"duality gap .* > tolerance"):
        res = lasso(p.X, p.y, lam, max_iter=1)
    assert not res.converged and res.duality_gap > res.gap_tolerance
    with pytest.raises(ConvergenceError, match=r"duality gap"):
        lasso(p.X, p.y, lam, max_iter=1, strict=True)


def test_lasso_duality_gap_is_tiny_and_lam_max_is_exact():
    p = make_problem(30, 20, seed=2)
    lam_max = lasso_lam_max(p.X, p.y)
    res = lasso(p.X, p.y, 0.2 * lam_max)
    assert res.converged and res.duality_gap <= res.gap_tolerance
    assert res.gap_tolerance <= 1e-12 * res.objective  # tol * P decides at this lam
    assert res.lam_max == pytest.approx(lam_max)
    assert torch.all(lasso(p.X, p.y, lam_max).coef == 0)
    assert torch.any(lasso(p.X, p.y, lam_max * (1 - 1e-6)).coef != 0)


def test_penalized_result_is_frozen_and_compares_by_value():
    p = make_problem(20, 8, seed=6)
    res = lasso(p.X, p.y, 0.1 * lasso_lam_max(p.X, p.y))
    coef = res.coef
    coef[0] = 123.0
    assert float(res.coef[0]) != 123.0  # reads are copies
    assert res == dataclasses.replace(res)
    assert res != dataclasses.replace(res, intercept=res.intercept + 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.lam = 1.0


def test_ridge_lam_zero_is_least_squares_and_n_less_than_d_uses_the_dual():
    p = make_problem(40, 5, seed=3)
    ols = ridge(p.X, p.y, 0.0)
    A = np.c_[p.X, np.ones(40)]
    ref = np.linalg.lstsq(A, p.y, rcond=None)[0]
    assert np.allclose(ols.coef.numpy(), ref[:5], atol=1e-10)
    q = make_problem(10, 30, seed=4)
    w = ridge(q.X, q.y, 2.0).coef.numpy()
    Xc, yc = q.X - q.X.mean(0), q.y - q.y.mean()
    assert np.allclose(w, np.linalg.solve(Xc.T @ Xc + 2.0 * np.eye(30), Xc.T @ yc), atol=1e-10)


@pytest.mark.parametrize("n, d", [(10, 30), (12, 12), (5, 5)])
@pytest.mark.parametrize("lam", [1e-15, 1e-9])
def test_ridge_tiny_lam_with_n_at_most_d_returns_the_svd_answer(n, d, lam):
    """Xc Xc' (n <= d) has rank n - 1, so at lam ~ 1e-15 its Cholesky factor is singular;
    the SVD formula w = V diag(s / (s^2 + lam)) U' yc is exact for every lam >= 0."""
    q = make_problem(n, d, seed=n + d)
    res = ridge(q.X, q.y, lam)
    Xc, yc = q.X - q.X.mean(0), q.y - q.y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    ref = Vt.T @ (s / (s**2 + lam) * (U.T @ yc))
    if lam < 1e-12:  # at 1e-9 the Cholesky route may still be well conditioned
        assert res.method == "svd"
    assert np.abs(res.coef.numpy() - ref).max() <= 1e-8 * max(1.0, np.abs(ref).max())
    # tiny lam: the minimum-norm interpolant, as at lam = 0
    ols = ridge(q.X, q.y, 0.0).coef.numpy()
    assert np.abs(res.coef.numpy() - ols).max() <= 1e-6 * max(1.0, np.abs(ols).max())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: ridge(X, y, -1.0), r"lam must be a finite number >= 0; got -1\.0"),
        (lambda X, y: lasso(X, y, math.nan), r"lam must be a finite number >= 0; got nan"),
        (lambda X, y: lasso(X, y, 0.0), r"lam must be a positive finite number for the lasso "
         r"\(lam = 0 is least squares: use ridge\(X, y, 0\.0\)\); got 0\.0"),
        (lambda X, y: lasso(X, y, 1.0, tol=0), r"tol must be a positive finite number"),
        (lambda X, y: lasso(X, y, 1.0, max_iter=0), r"max_iter must be an integer >= 1; got 0"),
        (lambda X, y: solve_penalized(X, y, "elastic", 1.0),
         r"penalty must be one of 'ridge', 'lasso', 'elasticnet'; got 'elastic'"),
        (lambda X, y: map_estimate(X, y, "laplace", 1.0), r"prior must be a mapreg Prior"),
        (lambda X, y: map_estimate(X, y, PRIOR_REGISTRY["laplace"].make(1.0), 1.0, tol=-1),
         r"tol must be a positive finite number"),
    ],
)
def test_solver_arguments_are_validated(call, match):
    p = make_problem(10, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        call(p.X, p.y)


@pytest.mark.parametrize("name", sorted(PRIOR_REGISTRY))
def test_prior_methods_are_consistent_with_pyro(name):
    """penalty, kappa and log_normalizer reproduce Pyro's own log density of the prior."""
    prior = PRIOR_REGISTRY[name].make(0.7)
    w = torch.tensor([0.3, -1.2, 0.0, 2.5], dtype=torch.float64)
    pyro_lp = float(prior.distribution(4).log_prob(w))
    assert -pyro_lp == pytest.approx(float(prior.neg_log_density(w)), rel=1e-12)
    # prox is the minimiser of 1/2 (u - v)^2 + t P(u), checked on a grid
    v, t = 0.8, 0.5
    grid = torch.linspace(-3, 3, 600_001, dtype=torch.float64)
    vals = 0.5 * (grid - v) ** 2 + t * _penalty_elementwise(prior, grid)
    assert float(prior.prox(torch.tensor([v]), t)[0]) == pytest.approx(
        float(grid[vals.argmin()]), abs=2e-5)
    assert prior.prox(v, t) == pytest.approx(float(prior.prox(torch.tensor([v]), t)[0]))
    # lam <-> scale round trip
    assert PRIOR_REGISTRY[name].from_lam(prior.lam(0.3), 0.3).scale == pytest.approx(0.7)


def _penalty_elementwise(prior, u):
    # P = -log p / kappa, elementwise: 1/2 u^2, |u|, or |u| + (b / sigma^2)/2 u^2
    return (prior.l1_weight * u.abs() + 0.5 * prior.l2_weight * u**2) / prior.kappa


def test_laplace_subgradient_distance():
    prior = PRIOR_REGISTRY["laplace"].make(0.5)  # kappa = 2
    w = torch.tensor([1.0, -1.0, 0.0, 0.0])
    g = torch.tensor([-2.0, 2.5, 1.5, -3.0])
    assert prior.subgradient_distance(w, g).tolist() == [0.0, 0.5, 0.0, 1.0]


def _lasso_kkt(X, y, w, lam):
    """Largest violation of the centred lasso optimality conditions, relative to lam."""
    Xc, yc = X - X.mean(0), y - y.mean()
    g = Xc.T @ (yc - Xc @ w)
    on = w != 0
    v_on = np.abs(g[on] - lam * np.sign(w[on])).max(initial=0.0)
    v_off = np.maximum(np.abs(g[~on]) - lam, 0.0).max(initial=0.0)
    return max(v_on, v_off) / lam


@pytest.mark.parametrize("frac", [1e-2, 1e-4, 1e-6])
def test_lasso_solves_the_small_lambda_n_less_than_d_problems(frac):
    """d2l's n = 20 < d = 200 data at small lam, where coordinate descent would need
    10^4-10^5 sweeps: the active-set solver is exact. The answer is checked against the
    optimality conditions (numpy) and the Pyro MAP."""
    from mapreg import Laplace, load_dataset

    data = load_dataset("d2l")
    X, y = data.X.numpy(), data.y.numpy()
    lam = frac * lasso_lam_max(X, y)
    res = lasso(X, y, lam)
    assert res.converged and res.method == "active-set"
    w = res.coef.numpy()
    assert _lasso_kkt(X, y, w, lam) <= 1e-8
    assert 0 < int((w != 0).sum()) <= 19  # at most rank(Xc) = n - 1 non-zeros
    m = map_estimate(X, y, Laplace(b=data.noise**2 / lam), data.noise)
    assert np.abs(m.coef.numpy() - w).max() <= 1e-6 * max(1.0, np.abs(w).max())
    assert np.array_equal(m.coef.numpy() == 0, w == 0)
