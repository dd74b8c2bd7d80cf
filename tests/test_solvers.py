"""The two solvers on their own: convergence reporting, edge cases, priors' methods."""

from __future__ import annotations

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


def test_lasso_warns_with_the_duality_gap_when_out_of_sweeps():
    p = make_problem(15, 40, seed=1)
    lam = 0.01 * lasso_lam_max(p.X, p.y)
    with pytest.warns(ConvergenceWarning, match=r"duality gap .* > tolerance"):
        res = lasso(p.X, p.y, lam, max_sweeps=1)
    assert not res.converged
    with pytest.raises(ConvergenceError, match=r"duality gap"):
        lasso(p.X, p.y, lam, max_sweeps=1, strict=True)


def test_lasso_duality_gap_is_tiny_and_lam_max_is_exact():
    p = make_problem(30, 20, seed=2)
    lam_max = lasso_lam_max(p.X, p.y)
    res = lasso(p.X, p.y, 0.2 * lam_max)
    assert res.converged and res.duality_gap <= 1e-10
    assert res.lam_max == pytest.approx(lam_max)
    assert torch.all(lasso(p.X, p.y, lam_max).coef == 0)
    assert torch.any(lasso(p.X, p.y, lam_max * (1 - 1e-6)).coef != 0)


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


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: ridge(X, y, -1.0), r"lam must be a finite number >= 0; got -1\.0"),
        (lambda X, y: lasso(X, y, math.nan), r"lam must be a finite number >= 0; got nan"),
        (lambda X, y: lasso(X, y, 1.0, tol=0), r"tol must be a positive finite number"),
        (lambda X, y: lasso(X, y, 1.0, max_sweeps=0), r"max_sweeps must be an integer >= 1"),
        (lambda X, y: solve_penalized(X, y, "elastic", 1.0),
         r"penalty must be one of 'ridge', 'lasso'; got 'elastic'"),
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
    return 0.5 * u**2 if prior.name == "gaussian" else u.abs()


def test_laplace_subgradient_distance():
    prior = PRIOR_REGISTRY["laplace"].make(0.5)  # kappa = 2
    w = torch.tensor([1.0, -1.0, 0.0, 0.0])
    g = torch.tensor([-2.0, 2.5, 1.5, -3.0])
    assert prior.subgradient_distance(w, g).tolist() == [0.0, 0.5, 0.0, 1.0]
