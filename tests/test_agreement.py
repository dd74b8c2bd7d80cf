"""The package's central claim: MAP from Pyro's log joint == penalized optimum.

Three independent references per case: the MAP engine (Pyro), the exact penalized solver
(plain torch), and a numpy/scipy reference written here (closed-form ridge; a KKT
certificate plus scipy.optimize for the lasso).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PRIOR_REGISTRY, make_problem
from scipy.optimize import minimize

from mapreg import compare, lasso_lam_max, map_estimate, neg_log_joint
from mapreg.penalized import canonical_objective


def numpy_ridge(X, y, lam):
    """Canonical ridge in closed form, numpy only."""
    xm, ym = X.mean(0), y.mean()
    Xc, yc = X - xm, y - ym
    w = np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ yc)
    return w, ym - xm @ w


def lasso_kkt_violation(X, y, w, c, lam, lam2=0.0):
    """Largest violation of the lasso (elastic net: + lam2/2 ||w||^2) optimality
    conditions, relative to lam (numpy)."""
    r = y - X @ w - c
    g = X.T @ r - lam2 * w  # = lam * sign(w_j) on the support, |.| <= lam off it
    on = w != 0
    v_on = np.abs(g[on] - lam * np.sign(w[on])).max(initial=0.0)
    v_off = np.maximum(np.abs(g[~on]) - lam, 0).max(initial=0.0)
    return max(v_on, v_off, abs(r.sum())) / lam


def scipy_lasso(X, y, lam, lam2=0.0):
    """Canonical lasso (elastic net with lam2) by L-BFGS-B on the split w = u - v, u, v >= 0
    (a rough reference)."""
    n, d = X.shape

    def fun(z):
        u, v, c = z[:d], z[d : 2 * d], z[-1]
        r = y - X @ (u - v) - c
        val = 0.5 * r @ r + lam * (u.sum() + v.sum()) + 0.5 * lam2 * (u - v) @ (u - v)
        gw = -X.T @ r + lam2 * (u - v)
        return val, np.concatenate([gw + lam, -gw + lam, [-r.sum()]])

    bounds = [(0, None)] * (2 * d) + [(None, None)]
    res = minimize(fun, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 50_000, "maxcor": 30})
    return res.x[:d] - res.x[d : 2 * d], res.x[-1]


def _lam_grid(case, problem):
    """Prior scales covering: many zeros, some zeros, none zero (laplace); strong-weak (gauss)."""
    return case.scales


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
@pytest.mark.parametrize("scale_index", [0, 1, 2])
def test_map_equals_penalized_optimum(prior_name, scale_index, problem):
    case = PRIOR_REGISTRY[prior_name]
    prior = case.make(case.scales[scale_index])
    res = compare(prior, X=problem.X, y=problem.y, noise=problem.noise)

    scale = max(1.0, float(res.penalized_coef.abs().max()))
    assert res.max_abs_diff <= 1e-6 * scale
    assert res.intercept_abs_diff <= 1e-6 * scale
    assert res.map.converged and res.penalized.converged
    if case.sparse:
        assert res.support_agree
    assert res.agrees

    # Both points under both objectives (canonical, and Pyro's -log joint).
    assert res.objective_rel_diff <= 1e-9
    nlj = res.neg_log_joint_penalized
    assert abs(res.neg_log_joint_map - nlj) <= 1e-9 * abs(nlj)
    for obj, nlj_point in ((res.objective_map, res.neg_log_joint_map),
                           (res.objective_penalized, res.neg_log_joint_penalized)):
        from_pyro = (nlj_point - res.log_joint_constant) * problem.noise**2
        assert from_pyro == pytest.approx(obj, rel=1e-9)

    # Third, independent reference written here in numpy / scipy.
    w = res.penalized_coef.numpy()
    if prior_name == "gaussian":
        w_ref, c_ref = numpy_ridge(problem.X, problem.y, res.lam)
        assert np.abs(res.map_coef.numpy() - w_ref).max() <= 1e-8 * scale
        assert abs(res.map_intercept - c_ref) <= 1e-8 * scale
    else:
        assert lasso_kkt_violation(problem.X, problem.y, res.map_coef.numpy(),
                                   res.map_intercept, res.lam, res.lam2) <= 1e-7
        w_ref, c_ref = scipy_lasso(problem.X, problem.y, res.lam, res.lam2)
        assert np.abs(w - w_ref).max() <= 1e-4 * scale


@pytest.mark.parametrize("n, d", [(15, 40), (60, 8)])
def test_laplace_has_a_mix_of_zeros_and_non_zeros_at_moderate_lambda(n, d):
    p = make_problem(n, d, seed=7)
    lam = 0.3 * lasso_lam_max(p.X, p.y)
    res = compare("laplace", b=p.noise**2 / lam, X=p.X, y=p.y, noise=p.noise)
    assert 0 < res.n_zero < d
    assert res.support_agree and res.agrees


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_all_coefficients_zero_when_prior_scale_tiny(prior_name):
    """Metamorphic: prior scale -> 0 gives w -> 0 (exactly 0 for the Laplace prior)."""
    p = make_problem(30, 10, seed=4)
    case = PRIOR_REGISTRY[prior_name]
    res = compare(case.make(1e-9), X=p.X, y=p.y, noise=p.noise)
    if case.sparse:
        assert res.n_zero == 10 and torch.all(res.penalized_coef == 0)
    else:
        assert float(res.map_coef.abs().max()) < 1e-12
    # the intercept is unpenalized: it becomes the mean of y
    assert res.map_intercept == pytest.approx(float(np.mean(p.y)), abs=1e-9)
    assert res.agrees


def test_lam_at_or_above_lam_max_gives_exact_zeros_and_just_below_does_not():
    p = make_problem(25, 12, seed=5)
    lam_max = lasso_lam_max(p.X, p.y)
    # lam = lam_max (up to the rounding of b = noise^2 / lam and back)
    at = compare("laplace", b=p.noise**2 / (lam_max * (1 + 1e-12)), X=p.X, y=p.y, noise=p.noise)
    assert at.n_zero == 12 and at.support_agree
    below = compare("laplace", b=p.noise**2 / (0.999 * lam_max), X=p.X, y=p.y, noise=p.noise)
    assert below.n_zero == 11 and below.support_agree


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_no_coefficient_zero_at_tiny_lambda(prior_name):
    p = make_problem(60, 8, seed=6)
    case = PRIOR_REGISTRY[prior_name]
    res = compare(case.from_lam(1e-6, p.noise), X=p.X, y=p.y, noise=p.noise)
    assert res.n_zero == 0 and res.agrees


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_duplicating_the_data_doubles_the_likelihood_weight(prior_name):
    """Metamorphic: (X; X), (y; y) with noise s is the same posterior as (X, y) with s/sqrt 2."""
    p = make_problem(20, 30, seed=8)
    prior = PRIOR_REGISTRY[prior_name].make(0.2)
    once = map_estimate(p.X, p.y, prior, p.noise / np.sqrt(2.0))
    twice = map_estimate(np.vstack([p.X, p.X]), np.concatenate([p.y, p.y]), prior, p.noise)
    assert torch.allclose(once.coef, twice.coef, atol=1e-9, rtol=0)
    assert once.intercept == pytest.approx(twice.intercept, abs=1e-9)
    assert torch.equal(once.coef == 0, twice.coef == 0)


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_pyro_log_joint_is_the_canonical_objective_over_noise_squared(prior_name):
    """The Pyro model's log joint, at arbitrary points, against the formula (an oracle)."""
    p = make_problem(12, 5, seed=9)
    prior = PRIOR_REGISTRY[prior_name].make(0.7)
    rng = np.random.default_rng(0)
    n, d = p.X.shape
    const = 0.5 * n * np.log(2 * np.pi * p.noise**2) + prior.log_normalizer(d)
    for _ in range(3):
        w, c = rng.standard_normal(d), float(rng.standard_normal())
        lam = prior.lam(p.noise)
        lam2 = prior.lams(p.noise)[1] if prior.penalty_name == "elasticnet" else 0.0
        canon = canonical_objective(p.X, p.y, w, c, prior.penalty_name, lam, lam2)
        pyro_val = neg_log_joint(p.X, p.y, prior, p.noise, w, c)
        assert pyro_val == pytest.approx(canon / p.noise**2 + const, rel=1e-12)


def test_feature_scaling_and_a_constant_feature():
    """A zero column gets weight 0; a badly scaled column still agrees."""
    p = make_problem(40, 6, seed=10)
    X = p.X.copy()
    X[:, 2] = 0.0
    X[:, 3] *= 100.0
    for prior in ("gaussian", "laplace"):
        kw = {"sigma": 0.3} if prior == "gaussian" else {"b": 0.05}
        res = compare(prior, X=X, y=p.y, noise=p.noise, **kw)
        assert res.agrees
        assert float(res.map_coef[2]) == 0.0


def test_d2l_dataset_agrees_for_both_priors():
    for prior, kw in (("gaussian", {"sigma": 0.01}), ("laplace", {"b": 0.001})):
        res = compare(prior, dataset="d2l", **kw)
        assert res.X.shape == (20, 200)
        assert res.agrees


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
@pytest.mark.parametrize("n, d, seed", [(1, 3, 0), (2, 5, 1), (3, 1, 2), (4, 11, 3)])
def test_tiny_and_rank_deficient_problems(prior_name, n, d, seed):
    """n = 1 (nothing to fit), n = 2 (centred X has rank 1), d = 1, n << d."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    for scale in PRIOR_REGISTRY[prior_name].scales:
        res = compare(PRIOR_REGISTRY[prior_name].make(scale), X=X, y=y, noise=0.5)
        assert res.agrees and res.map.converged


def test_non_unique_lasso_optimum_is_reported_as_such():
    """Duplicated columns: the lasso objective has a segment of minimisers; both solvers
    reach the same objective value, possibly at different points, and the table says so."""
    rng = np.random.default_rng(4)
    X = np.repeat(rng.standard_normal((15, 2)), 2, axis=1)
    y = rng.standard_normal(15)
    res = compare("laplace", b=0.5, X=X, y=y, noise=0.5)
    assert res.same_objective
    w, v = res.map_coef.numpy(), res.penalized_coef.numpy()
    assert np.allclose(w[0] + w[1], v[0] + v[1]) and np.allclose(w[2] + w[3], v[2] + v[3])
    if not res.agrees:
        assert "not unique" in str(res)
