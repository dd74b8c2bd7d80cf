"""Constrained vs penalized: the KKT multiplier is lambda, and the solutions coincide."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import CONSTRAINED, PRIOR_REGISTRY, make_problem
from scipy.optimize import minimize

from mapreg import lasso_lam_max, map_estimate
from mapreg.lagrange import prior_from_radius, radius_from_prior
from mapreg.penalized import lasso, ridge
from mapreg.penalized.constrained import (
    constrained_l1,
    constrained_l2,
    lam_from_radius,
    project_l1_ball,
    project_l2_ball,
    radius_from_lam,
    solve_constrained,
)

NORM_OF = {"gaussian": "l2", "laplace": "l1"}


def _lams(p, prior_name):
    if prior_name == "gaussian":
        return (0.3, 5.0, 80.0)
    lmax = lasso_lam_max(p.X, p.y)
    return (0.02 * lmax, 0.2 * lmax, 0.7 * lmax)


@pytest.mark.parametrize("prior_name", CONSTRAINED)
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
        # exact zeros of the projection / soft-thresholding; at these lam every zero has
        # lam - |x_j'r| >= 1e-2 lam and every non-zero |w_j| >= 2e-3 max|w| (measured), so the
        # pattern is the data's, not rounding's
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


@pytest.mark.parametrize("prior_name", CONSTRAINED)
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
    assert res.multiplier == 0.0 and not res.active  # by construction: inside the ball, mu = 0
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
    assert torch.equal(project_l2_ball(v, 100.0), v)  # inside: returned as is, by construction
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
        (lambda X, y: prior_from_radius(X, y, 1.0, "gaussian", -2.0),
         r"noise must be a positive finite number; got -2.0"),
        (lambda X, y: radius_from_prior(X, y, "gaussian", 1.0), r"prior must be a mapreg Prior"),
        (lambda X, y: constrained_l1(X, y, 1.0, strict="yes"),
         r"strict must be True or False; got 'yes'"),
        (lambda X, y: solve_constrained(X, y, "l1", 1.0, maxiter=5),
         r"the l1 solver takes the options \['tol', 'max_iter', 'strict'\]; got \['maxiter'\]"),
        (lambda X, y: solve_constrained(X, y, "l2", 1.0, tol=1e-3),
         r"the l2 solver takes no options; got \['tol'\]"),
        (lambda X, y: project_l1_ball(np.array([1.0, np.nan]), 1.0),
         r"v must contain only finite values; found 1 NaN/Inf entries"),
        (lambda X, y: project_l2_ball(np.ones((2, 2)), 1.0),
         r"v must be a non-empty 1-D array; got shape \(2, 2\)"),
    ],
)
def test_bad_input(call, match):
    p = make_problem(10, 3, seed=0)
    wrong_type = match.startswith("strict must be True or False")  # a str/int for a bool
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
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


def _least_squares_solutions(X, y):
    """w_LS of the centred problem by four backward-stable routes (their norms differ by
    a few ulps: which of them is "the" radius is decided by rounding)."""
    Xc, yc = X - X.mean(0), y - y.mean()
    Q, R = np.linalg.qr(Xc)
    return {
        "ridge(lam=0)": ridge(X, y, 0.0).coef.numpy(),
        "lstsq": np.linalg.lstsq(Xc, yc, rcond=None)[0],
        "normal equations": np.linalg.solve(Xc.T @ Xc, Xc.T @ yc),
        "qr": np.linalg.solve(R, Q.T @ yc),
    }


def test_radius_at_the_least_squares_norm_is_inactive_for_both_norms():
    """theta = ||w_LS||^2 (t = ||w_LS||_1) from any least-squares solver, or a few ulps either
    side, is an inactive ball: mu = 0 *exactly*, by construction (constrained_l2 compares
    with the rounding band tau of ||w_LS||^2; constrained_l1 zeroes a multiplier below the
    gradient's resolution) -- not a multiplier of 1e-14 that rounding happens to produce."""
    p = make_problem(50, 4, seed=5)
    ols = ridge(p.X, p.y, 0.0).coef
    for name, w in _least_squares_solutions(p.X, p.y).items():
        for norm, size in (("l2", float(w @ w)), ("l1", float(np.abs(w).sum()))):
            for ulps in (-8, -1, 0, 1, 8):
                radius = size * (1 + ulps * np.finfo(float).eps)
                res = solve_constrained(p.X, p.y, norm, radius)
                assert res.multiplier == 0.0 and not res.active, (name, norm, ulps)
                assert torch.allclose(res.coef, ols, atol=1e-9)
                c = res.coef
                w_size = float(c @ c) if norm == "l2" else float(c.abs().sum())
                assert w_size <= radius * (1 + 4e-16 * p.X.shape[1])  # feasible, to rounding


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_radius_just_inside_the_least_squares_norm_binds(norm):
    """1e-9 below the least-squares norm is far outside the rounding band (~1e-13 here):
    the ball binds, with the small multiplier the penalized path gives back."""
    p = make_problem(50, 4, seed=5)
    w = ridge(p.X, p.y, 0.0).coef
    size = float(w @ w) if norm == "l2" else float(w.abs().sum())
    res = solve_constrained(p.X, p.y, norm, size * (1 - 1e-9))
    assert res.active and 0 < res.multiplier < 1e-6
    assert radius_from_lam(p.X, p.y, res.multiplier, norm) == pytest.approx(size * (1 - 1e-9),
                                                                            rel=1e-12)


def test_tiny_l1_radius_is_the_first_coordinate_of_the_lasso_path():
    """t -> 0: w = t sign(g_j) e_j for j = argmax |Xc'yc| and mu -> lam_max. The projection
    forms its entries relative to t, so a radius 1e-12 of ||w_LS||_1 is resolved (it used to
    lose 5 digits to cancellation and report an inactive ball with a KKT residual of 64)."""
    p = make_problem(40, 6, seed=0)
    corr = (p.X - p.X.mean(0)).T @ (p.y - p.y.mean())
    j = int(np.argmax(np.abs(corr)))
    for t in (1e-12, 1e-30, 1e-300):
        res = constrained_l1(p.X, p.y, t)
        expected = np.zeros(6)
        expected[j] = np.sign(corr[j]) * t
        assert res.active and res.converged
        assert np.array_equal(res.coef.numpy(), expected)  # soft-thresholding: exact zeros
        assert res.multiplier == pytest.approx(lasso_lam_max(p.X, p.y), rel=1e-9)


def test_tiny_and_huge_l2_radius():
    p = make_problem(40, 6, seed=0)
    Xc, yc = p.X - p.X.mean(0), p.y - p.y.mean()
    g = Xc.T @ yc  # w(mu) -> g / mu as mu -> inf: the direction of the gradient at 0
    res = constrained_l2(p.X, p.y, 1e-200)
    w = res.coef.numpy()
    assert res.active and float(w @ w) == pytest.approx(1e-200, rel=1e-14)
    assert np.allclose(w / np.linalg.norm(w), g / np.linalg.norm(g), atol=1e-12)
    assert res.multiplier == pytest.approx(np.linalg.norm(g) / 1e-100, rel=1e-6)
    big = constrained_l2(p.X, p.y, 1e200)
    assert not big.active and big.multiplier == 0.0


def _shifted(X, y, x_off, y_off):
    """Data moved far from the origin, and the same data moved back: (X + off) - off is
    exact (Sterbenz), so both pairs describe one regression up to a translation, which the
    unpenalized intercept absorbs exactly."""
    Xs, ys = X + x_off, y + y_off
    return (Xs, ys), (Xs - x_off, ys - y_off)


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("n, d", [(40, 6), (10, 25)])
def test_uncentred_columns_and_y_offset_cost_no_accuracy(norm, n, d):
    """Columns ~2000 j +- 1 and y + 1e6: the same w and mu as the translated-back data.

    Tolerance: the two-pass centring leaves errors of a few eps relative to the *centred*
    entries; through least squares that is ~ kappa max(n, d) eps ~ 1e-13 relative here, so
    1e-11 is a factor 100 above it. (One-pass centring left 1'Xc ~ n eps 2000 j: for n <= d
    a spurious n-th singular direction along 1, and an inactive L2 ball returned w off by
    110% of its size.)"""
    p = make_problem(n, d, seed=11)
    (Xs, ys), (Xb, yb) = _shifted(p.X, p.y, 2000.0 * np.arange(1, d + 1), 1e6)
    for frac in (0.05, 0.5, 2.0):
        ls = ridge(Xb, yb, 0.0).coef
        radius = frac * (float(ls @ ls) if norm == "l2" else float(ls.abs().sum()))
        far = solve_constrained(Xs, ys, norm, radius)
        near = solve_constrained(Xb, yb, norm, radius)
        scale = float(near.coef.abs().max())
        assert float((far.coef - near.coef).abs().max()) <= 1e-11 * scale
        assert far.multiplier == pytest.approx(near.multiplier, rel=1e-11, abs=0.0)
        assert far.active == near.active
        # the intercept carries the translation: c_far = c_near + 1e6 - off . w
        assert far.intercept == pytest.approx(
            near.intercept + 1e6 - float(2000.0 * np.arange(1, d + 1) @ near.coef.numpy()),
            rel=1e-12)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_units_rescale_exactly(norm):
    """X -> a X, y -> b y (a = 1e6, b = 1e-6 or 1e6): w -> (b/a) w, radius -> (b/a)^2 theta
    (or (b/a) t), mu -> a^2 mu (l2) or a b mu (l1), since the loss scales by b^2. Scaling
    by powers of ten rounds each entry once, so the agreement is at the solver's rounding
    level (1e-12 relative)."""
    p = make_problem(30, 5, seed=12)
    base = solve_constrained(p.X, p.y, norm, 1.0)
    for a, b in ((1e6, 1e6), (1e6, 1e-6)):
        k = b / a
        radius = k * k if norm == "l2" else k
        res = solve_constrained(a * p.X, b * p.y, norm, radius)
        assert np.allclose(res.coef.numpy(), k * base.coef.numpy(), rtol=1e-12, atol=0)
        mu_scale = a * a if norm == "l2" else a * b
        assert res.multiplier == pytest.approx(mu_scale * base.multiplier, rel=1e-12)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_constant_columns_get_exactly_zero_weight(norm):
    """A column of 0.1s (whose mean rounds an ulp away from 0.1) and one of 2000s: centred to
    exactly 0, so their weights are exactly 0 and the rest is the solution without them."""
    p = make_problem(30, 4, seed=13)
    X = np.c_[p.X[:, :2], np.full(30, 0.1), p.X[:, 2:], np.full(30, 2000.0)]
    for radius in (0.3, 1e3):
        with_const = solve_constrained(X, p.y, norm, radius)
        without = solve_constrained(p.X, p.y, norm, radius)
        w = with_const.coef.numpy()
        assert w[2] == 0.0 and w[5] == 0.0
        assert np.allclose(np.r_[w[:2], w[3:5]], without.coef.numpy(), rtol=0, atol=1e-12)
        assert with_const.multiplier == pytest.approx(without.multiplier, rel=1e-12, abs=0)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_equicorrelated_columns_match_the_penalized_path(norm):
    """Columns z + 0.1 e_j (pairwise correlation 0.99, condition number ~ 50): the multiplier
    maps back to the radius through the exact penalized solver."""
    rng = np.random.default_rng(14)
    z = rng.standard_normal((40, 1))
    X = z + 0.1 * rng.standard_normal((40, 6))
    y = X @ np.array([1.0, -1.0, 0.5, 0, 0, 0]) + 0.3 * rng.standard_normal(40)
    ls = ridge(X, y, 0.0).coef
    size = float(ls @ ls) if norm == "l2" else float(ls.abs().sum())
    res = solve_constrained(X, y, norm, 0.3 * size)
    assert res.active and res.converged
    assert radius_from_lam(X, y, res.multiplier, norm) == pytest.approx(0.3 * size, rel=1e-8)


@pytest.mark.parametrize("prior_name", CONSTRAINED)
@pytest.mark.parametrize("kind", ["uncentred", "equicorrelated"])
@pytest.mark.parametrize("n, d", [(40, 6), (10, 25)])
def test_prior_radius_round_trip_on_hostile_data(prior_name, kind, n, d):
    """sigma (b) -> theta (t) -> sigma (b) on columns ~2000 j with y + 1e6, and on columns
    with pairwise correlation ~0.99; n > d and n < d. Measured round-trip error <= 6e-15;
    1e-10 is the slack for the two solvers' stopping tests (duality gap 1e-12 relative,
    KKT residual at rounding), which bound the radius's error far below it."""
    p = make_problem(n, d, seed=11)
    if kind == "uncentred":
        X, y = p.X + 2000.0 * np.arange(1, d + 1), p.y + 1e6
    else:
        X, y = np.random.default_rng(1).standard_normal((n, 1)) + 0.1 * p.X, p.y
    prior = PRIOR_REGISTRY[prior_name].make(0.3 if prior_name == "gaussian" else 0.05)
    r = radius_from_prior(X, y, prior, 0.5)
    back = prior_from_radius(X, y, r, prior_name, 0.5)
    assert back.scale == pytest.approx(prior.scale, rel=1e-10)


def test_constrained_result_is_frozen_and_compares_by_value():
    p = make_problem(20, 4, seed=15)
    res = constrained_l2(p.X, p.y, 0.5)
    coef = res.coef
    coef[0] = 1e9  # a copy: the result keeps its own
    assert float(res.coef[0]) != 1e9
    again = constrained_l2(p.X, p.y, 0.5)
    assert dataclasses.replace(again, wall_time=res.wall_time) == res  # deterministic, by value
    assert dataclasses.replace(res, coef=res.coef + 1e-12) != res
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.multiplier = 0.0


def test_n_less_than_d_l1_inactive_ball_interpolates_with_zero_multiplier():
    """d > n: least squares is not unique; a large ball gives mu = 0 and an interpolant."""
    p = make_problem(8, 20, seed=6)
    res = constrained_l1(p.X, p.y, 1e3)
    # mu = 0 by construction: the gradient at an interior stop is below the multiplier's
    # zero level (sqrt(d) tol ||Xc'yc||_inf plus rounding, see constrained_l1)
    assert res.converged and res.multiplier == 0.0 and not res.active
    r = p.y - p.X @ res.coef.numpy() - res.intercept
    assert np.abs(r).max() < 1e-9 and float(res.coef.abs().sum()) < 1e3
    assert lam_from_radius(p.X, p.y, 1e3, "l1") == 0.0
