"""Constrained vs penalized: the KKT multiplier is lambda, and the solutions coincide."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PRIOR_REGISTRY, make_problem
from scipy.optimize import minimize

from mapreg import lasso_lam_max, map_estimate
from mapreg.constrained import (
    constrained_l1,
    constrained_l2,
    lam_from_radius,
    prior_from_radius,
    project_l1_ball,
    project_l2_ball,
    radius_from_lam,
    radius_from_prior,
    solve_constrained,
)
from mapreg.penalized import lasso, ridge

NORM_OF = {"gaussian": "l2", "laplace": "l1"}


def _lams(p, prior_name):
    if prior_name == "gaussian":
        return (0.3, 5.0, 80.0)
    lmax = lasso_lam_max(p.X, p.y)
    return (0.02 * lmax, 0.2 * lmax, 0.7 * lmax)


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
@pytest.mark.parametrize("which", [0, 1, 2])
def test_constrained_optimum_is_penalized_optimum_and_map(prior_name, which, problem):
    p = problem
    lam = _lams(p, prior_name)[which]
    norm = NORM_OF[prior_name]
    radius = radius_from_lam(p.X, p.y, lam, norm)
    con = solve_constrained(p.X, p.y, norm, radius)
    pen = (ridge if norm == "l2" else lasso)(p.X, p.y, lam)
    mp = map_estimate(p.X, p.y, PRIOR_REGISTRY[prior_name].from_lam(lam, p.noise), p.noise)
    scale = max(1.0, float(pen.coef.abs().max()))
    assert con.converged and con.active
    assert float((con.coef - pen.coef).abs().max()) <= 1e-6 * scale
    assert float((con.coef - mp.coef).abs().max()) <= 1e-6 * scale
    assert abs(con.intercept - pen.intercept) <= 1e-6 * scale
    assert con.multiplier == pytest.approx(lam, rel=1e-6)
    if norm == "l1":
        assert torch.equal(con.coef == 0, pen.coef == 0)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_radius_strictly_decreases_in_lambda_and_round_trips(norm):
    p = make_problem(40, 10, seed=3)
    top = lasso_lam_max(p.X, p.y) if norm == "l1" else 1e3
    lams = np.geomspace(1e-3 * top, 0.9 * top, 12)
    radii = [radius_from_lam(p.X, p.y, lam, norm) for lam in lams]
    assert all(a > b for a, b in zip(radii, radii[1:], strict=False))
    for lam, r in zip(lams[::3], radii[::3], strict=True):
        assert lam_from_radius(p.X, p.y, r, norm) == pytest.approx(lam, rel=1e-6)


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_prior_scale_to_radius_and_back(prior_name):
    p = make_problem(30, 6, seed=4)
    case = PRIOR_REGISTRY[prior_name]
    prior = case.make(0.05 if prior_name == "laplace" else 0.2)
    r = radius_from_prior(p.X, p.y, prior, p.noise)
    back = prior_from_radius(p.X, p.y, r, prior_name, p.noise)
    assert back.scale == pytest.approx(prior.scale, rel=1e-6)


def test_inactive_l2_constraint_gives_least_squares_and_zero_multiplier():
    p = make_problem(50, 4, seed=5)
    ols = ridge(p.X, p.y, 0.0).coef
    theta = 1.5 * float(ols @ ols)
    res = constrained_l2(p.X, p.y, theta)
    assert res.multiplier == 0.0 and not res.active
    assert torch.allclose(res.coef, ols, atol=1e-10)
    with pytest.raises(ValueError, match=r"theta=.* does not bind: .* lambda = 0"):
        prior_from_radius(p.X, p.y, theta, "gaussian", p.noise)


def test_n_less_than_d_l2_inactive_gives_the_minimum_norm_interpolant():
    p = make_problem(8, 20, seed=6)
    mn = ridge(p.X, p.y, 0.0).coef  # minimum-norm least squares
    res = constrained_l2(p.X, p.y, 2.0 * float(mn @ mn))
    assert res.multiplier == 0.0 and torch.allclose(res.coef, mn, atol=1e-9)
    r = p.y - p.X @ res.coef.numpy() - res.intercept
    assert np.abs(r).max() < 1e-9  # it interpolates


def test_inactive_l1_constraint():
    p = make_problem(50, 4, seed=5)
    ols = ridge(p.X, p.y, 0.0).coef
    res = constrained_l1(p.X, p.y, 2.0 * float(ols.abs().sum()))
    assert res.multiplier == 0.0 and not res.active
    assert torch.allclose(res.coef, ols, atol=1e-6)


def test_projections():
    v = torch.tensor([3.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    p2 = project_l2_ball(v, 2.0)
    assert float(p2 @ p2) == pytest.approx(2.0) and torch.allclose(p2 / p2.norm(), v / v.norm())
    assert torch.equal(project_l2_ball(v, 100.0), v)
    p1 = project_l1_ball(v, 2.0)
    assert float(p1.abs().sum()) == pytest.approx(2.0)
    ref = minimize(lambda u: 0.5 * np.sum((u - v.numpy()) ** 2), np.zeros(4), method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda u: 2.0 - np.abs(u).sum()}],
                   options={"ftol": 1e-14}).x
    assert np.allclose(p1.numpy(), ref, atol=1e-5)
    assert torch.equal(project_l1_ball(v, 10.0), v)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: constrained_l2(X, y, 0.0), r"theta must be a positive finite number; got 0"),
        (lambda X, y: constrained_l2(X, y, -1), r"theta must be a positive finite number"),
        (lambda X, y: constrained_l1(X, y, 0.0), r"t must be a positive finite number; got 0"),
        (lambda X, y: solve_constrained(X, y, "linf", 1.0),
         r"norm must be one of 'l2', 'l1'; got 'linf'"),
        (lambda X, y: radius_from_lam(X, y, 0.0, "l2"), r"lam must be a positive finite number"),
        (lambda X, y: prior_from_radius(X, y, 1.0, "cauchy", 1.0), r"prior must be one of"),
    ],
)
def test_bad_input(call, match):
    p = make_problem(10, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        call(p.X, p.y)


def _scipy_constrained(X, y, norm, radius):
    """Independent reference: SLSQP on the centred problem (L1 by the split w = u - v)."""
    Xc, yc = X - X.mean(0), y - y.mean()
    d = X.shape[1]

    def f(w):
        return 0.5 * np.sum((yc - Xc @ w) ** 2)

    def g(w):
        return -Xc.T @ (yc - Xc @ w)

    opts = {"ftol": 1e-16, "maxiter": 5000}
    if norm == "l2":
        cons = [{"type": "ineq", "fun": lambda w: radius - w @ w, "jac": lambda w: -2 * w}]
        return minimize(f, np.zeros(d), jac=g, method="SLSQP", constraints=cons,
                        options=opts).x
    cons = [{"type": "ineq", "fun": lambda z: radius - z.sum(),
             "jac": lambda z: -np.ones(2 * d)}]
    z = minimize(lambda z: f(z[:d] - z[d:]), np.zeros(2 * d),
                 jac=lambda z: np.r_[g(z[:d] - z[d:]), -g(z[:d] - z[d:])], method="SLSQP",
                 bounds=[(0, None)] * (2 * d), constraints=cons, options=opts).x
    return z[:d] - z[d:]


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("n, d, seed", [(40, 5, 0), (10, 25, 2), (8, 3, 5)])
def test_constrained_solution_agrees_with_scipy(norm, n, d, seed):
    """The solvers against a general-purpose NLP solver, no penalized solver involved."""
    p = make_problem(n, d, seed)
    Xc, yc = p.X - p.X.mean(0), p.y - p.y.mean()
    ref_ls = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    size = float(ref_ls @ ref_ls) if norm == "l2" else float(np.abs(ref_ls).sum())
    for frac in (0.05, 0.5):
        radius = frac * size
        con = solve_constrained(p.X, p.y, norm, radius)
        ref = _scipy_constrained(p.X, p.y, norm, radius)
        w = con.coef.numpy()
        norm_w = float(w @ w) if norm == "l2" else float(np.abs(w).sum())
        assert con.converged and con.active and con.multiplier > 0
        assert norm_w == pytest.approx(radius, rel=1e-9)
        assert np.abs(w - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
        # SLSQP may end a hair outside the ball; it never does better than the solver there
        loss = 0.5 * np.sum((yc - Xc @ w) ** 2)
        assert loss <= 0.5 * np.sum((yc - Xc @ ref) ** 2) + 1e-8 * max(1.0, loss)


def test_radius_at_the_least_squares_norm_is_inactive_for_both_norms():
    p = make_problem(50, 4, seed=5)
    ols = ridge(p.X, p.y, 0.0).coef
    for norm, radius in (("l2", float(ols @ ols)), ("l1", float(ols.abs().sum()))):
        res = solve_constrained(p.X, p.y, norm, radius)
        assert res.multiplier == 0.0 and not res.active
        assert torch.allclose(res.coef, ols, atol=1e-9)


def test_n_less_than_d_l1_inactive_ball_interpolates_with_zero_multiplier():
    """d > n: least squares is not unique; a large ball gives mu = 0 and an interpolant."""
    p = make_problem(8, 20, seed=6)
    res = constrained_l1(p.X, p.y, 1e3)
    assert res.converged and res.multiplier == 0.0 and not res.active
    r = p.y - p.X @ res.coef.numpy() - res.intercept
    assert np.abs(r).max() < 1e-9 and float(res.coef.abs().sum()) < 1e3
    assert lam_from_radius(p.X, p.y, 1e3, "l1") == 0.0
