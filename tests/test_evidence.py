"""Marginal likelihood: the closed form against a direct Gaussian log density."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_problem

from mapreg import ConvergenceError, ConvergenceWarning
from mapreg.bayes.evidence import log_evidence, maximize_evidence
from mapreg.datasets import d2l_weight_decay


@pytest.mark.parametrize("n, d", [(12, 4), (8, 20)])
def test_log_evidence_equals_wide_intercept_prior_limit(n, d):
    """With c ~ N(0, tau^2), y ~ N(0, noise^2 I + sigma^2 XX' + tau^2 11'); as tau -> inf,
    log p(y) + log(sqrt(2 pi) tau) -> the flat-intercept evidence."""
    p = make_problem(n, d, seed=n + d)
    sigma, noise, tau = 0.7, 0.4, 1e3
    cov = noise**2 * np.eye(n) + sigma**2 * p.X @ p.X.T + tau**2 * np.ones((n, n))
    _, logdet = np.linalg.slogdet(cov)
    logpdf = -0.5 * (n * math.log(2 * math.pi) + logdet + p.y @ np.linalg.solve(cov, p.y))
    ref = logpdf + math.log(math.sqrt(2 * math.pi) * tau)
    assert log_evidence(p.X, p.y, sigma, noise) == pytest.approx(ref, abs=1e-5)


def test_maximize_evidence_finds_a_stationary_maximum():
    p = make_problem(40, 6, seed=3)
    res = maximize_evidence(p.X, p.y)
    assert res.converged
    assert res.lam == pytest.approx(res.noise**2 / res.sigma**2)
    for ds, dn in ((1.01, 1.0), (0.99, 1.0), (1.0, 1.01), (1.0, 0.99)):
        assert log_evidence(p.X, p.y, res.sigma * ds, res.noise * dn) < res.log_evidence
    assert res.noise == pytest.approx(p.noise, rel=0.3)  # recovers the true noise roughly


def test_d2l_setting_evidence_is_finite_and_prefers_strong_shrinkage():
    data = d2l_weight_decay()
    res = maximize_evidence(data.X, data.y, sigma0=0.1, noise0=0.1)
    assert np.isfinite(res.log_evidence) and res.lam > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: log_evidence(X, y, 0.0, 1.0), r"sigma must be a positive finite number"),
        (lambda X, y: log_evidence(X, y, 1.0, -1.0), r"noise must be a positive finite number"),
        (lambda X, y: maximize_evidence(X[:2], y[:2]), r"needs at least 3 samples; got n=2"),
        (lambda X, y: maximize_evidence(X, y, noise0=-1.0),
         r"noise0 must be a positive finite number; got -1.0"),
        (lambda X, y: maximize_evidence(X, y, sigma0=float("nan")),
         r"sigma0 must be a positive finite number; got nan"),
        (lambda X, y: maximize_evidence(X, y, strict=1), r"strict must be True or False; got 1"),
        (lambda X, y: log_evidence(X, y[:-1], 1.0, 1.0), r"X and y must have the same number"),
    ],
)
def test_bad_input(call, match):
    p = make_problem(10, 3, seed=0)
    wrong_type = match.startswith("strict must be True or False")  # a str/int for a bool
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
        call(p.X, p.y)


def test_multistart_finds_the_better_of_two_local_maxima():
    """On d2l's data the evidence has a maximum at sigma -> 0 (all noise) and a better one
    near the true weight scale 0.01; a single start from sd(y) finds the worse one."""
    data = d2l_weight_decay()
    res = maximize_evidence(data.X, data.y)
    assert res.sigma == pytest.approx(0.01, rel=0.1)
    assert res.log_evidence > log_evidence(data.X, data.y, 1e-6, float(data.y.std()))


# ----------------------------------------------------------------- fixed point, sklearn


def _posterior_summary(X, y, sigma, noise):
    """gamma, ||m||^2 and ||yc - Xc m||^2 at the posterior mean m (the ridge optimum at
    lam = noise^2 / sigma^2 on centred data); gamma = sum_i q_i / (noise^2 + q_i) with
    q_i = sigma^2 s_i^2."""
    Xc, yc = X - X.mean(0), y - y.mean()
    s = np.linalg.svd(Xc, compute_uv=False)
    s = s[s > s.max() * max(X.shape) * np.finfo(float).eps]
    m = np.linalg.solve(Xc.T @ Xc + (noise / sigma) ** 2 * np.eye(X.shape[1]), Xc.T @ yc)
    gamma = float(np.sum(sigma**2 * s**2 / (noise**2 + sigma**2 * s**2)))
    return gamma, float(m @ m), float(np.sum((yc - Xc @ m) ** 2))


def _equicorrelated(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1)) + 0.1 * rng.standard_normal((n, d))
    return X, X[:, :3] @ np.array([1.0, -1.0, 0.5]) + 0.3 * rng.standard_normal(n)


@pytest.mark.parametrize("case", ["40x6", "12x4", "d2l", "equicorrelated"])
def test_maximiser_is_the_mackay_fixed_point_with_n_minus_1_degrees_of_freedom(case):
    """Setting the gradient of the flat-intercept evidence to zero gives MacKay's updates

        sigma^2 = ||m||^2 / gamma,    noise^2 = ||yc - Xc m||^2 / (n - 1 - gamma),

    n - 1 because the intercept integrates one dimension out. scikit-learn's BayesianRidge
    iterates alpha = (n - gamma) / sse: n in place of n - 1. The maximiser's gradient is at
    rounding (~1e-15 of its terms), so both identities hold to ~1e-13; checked to 1e-11."""
    if case == "d2l":
        data = d2l_weight_decay()
        X, y = data.X.numpy(), data.y.numpy()
    elif case == "equicorrelated":
        X, y = _equicorrelated(40, 6, 4)
    else:
        n, d = map(int, case.split("x"))
        p = make_problem(n, d, seed=n + d)
        X, y = p.X, p.y
    res = maximize_evidence(X, y)
    assert res.converged and res.limit is None
    gamma, m2, sse = _posterior_summary(X, y, res.sigma, res.noise)
    assert res.sigma**2 == pytest.approx(m2 / gamma, rel=1e-11)
    assert res.noise**2 == pytest.approx(sse / (X.shape[0] - 1 - gamma), rel=1e-11)


@pytest.mark.parametrize("n, d, seed", [(40, 6, 3), (12, 4, 16), (200, 50, 5)])
def test_bayesian_ridge_without_hyperpriors_is_this_evidence_with_one_more_row(n, d, seed):
    """BayesianRidge (fit_intercept: centred data, counted as n observations) with the Gamma
    hyperpriors switched off maximises this evidence for the data plus the row (mean(X),
    mean(y)): that row leaves Xc and yc unchanged and adds the one dimension sklearn counts.
    Tolerance: sklearn stops when the coefficients move < 1e-15 (L1) in an iteration that
    contracts fast here (n_iter_ ~ 10), ours at gradient rounding; both within ~1e-14 of the
    fixed point, checked to 1e-12. Without the extra row the noise differs by the n vs n - 1
    of the noise update (0.3 - 6% on these data)."""
    from sklearn.linear_model import BayesianRidge

    p = make_problem(n, d, seed)
    br = BayesianRidge(alpha_1=0.0, alpha_2=0.0, lambda_1=0.0, lambda_2=0.0, tol=1e-15,
                       max_iter=100_000).fit(p.X, p.y)
    assert br.n_iter_ < 100_000
    sigma_br, noise_br = 1 / math.sqrt(br.lambda_), 1 / math.sqrt(br.alpha_)
    aug = maximize_evidence(np.vstack([p.X, p.X.mean(0)]), np.r_[p.y, p.y.mean()])
    assert sigma_br == pytest.approx(aug.sigma, rel=1e-12)
    assert noise_br == pytest.approx(aug.noise, rel=1e-12)
    res = maximize_evidence(p.X, p.y)
    gamma, _, sse = _posterior_summary(p.X, p.y, sigma_br, noise_br)
    assert noise_br**2 == pytest.approx(sse / (n - gamma), rel=1e-11)  # sklearn: n dof
    assert 1e-3 < 1 - noise_br / res.noise < 0.1  # ours: n - 1, a larger noise


def test_bayesian_ridge_objective_is_unbounded_for_n_at_most_d():
    """n <= d: sklearn's extra dimension (along 1, where yc is 0) is a noise dimension with
    zero residual, so without hyperpriors its evidence grows without bound as noise -> 0
    (its default Gamma(1e-6, 1e-6) hyperpriors are then what sets its noise). Ours has no
    such dimension; the augmented data show the difference."""
    data = d2l_weight_decay()
    X, y = data.X.numpy(), data.y.numpy()
    assert maximize_evidence(X, y).converged
    with pytest.raises(ValueError, match=r"increases without bound as noise -> 0"):
        maximize_evidence(np.vstack([X, X.mean(0)]), np.r_[y, y.mean()])


# -------------------------------------------------------------- where no maximum exists


def test_noiseless_y_is_unbounded_and_says_so():
    """y = Xw + c exactly (n - 1 > rank): the evidence increases without bound as
    noise -> 0. It used to return the optimizer's bound exp(-30) with converged=True."""
    p = make_problem(30, 4, seed=21)
    w = np.array([1.0, -2.0, 0.5, 3.0])
    for X, y in ((p.X, p.X @ w + 0.7),
                 (p.X + 2000.0, (p.X + 2000.0) @ w + 1e6)):  # far from the origin as well
        with pytest.raises(ValueError, match=r"increases without bound as noise -> 0: y is "
                                             r"fitted exactly by a linear function of X"):
            maximize_evidence(X, y)
    with pytest.raises(ValueError, match=r"y is constant"):
        maximize_evidence(p.X, np.full(30, 3.3))
    with pytest.raises(ValueError, match=r"every column is constant"):
        maximize_evidence(np.full((30, 2), 0.1), p.y)


def test_no_maximum_at_positive_noise_returns_the_limit_with_a_warning():
    """n - 1 = rank(Xc): every y is interpolated and here the evidence keeps rising as
    noise -> 0 to a finite limit. It used to stop wherever L-BFGS-B stalled (noise ~ 1e-5)
    and call it converged."""
    p = make_problem(15, 40, seed=1)
    with pytest.warns(ConvergenceWarning, match=r"no maximum at noise > 0"):
        res = maximize_evidence(p.X, p.y)
    assert res.limit == "noise -> 0" and not res.converged
    assert res.noise == 0.0 and res.lam == 0.0 and res.sigma > 0
    values = [log_evidence(p.X, p.y, res.sigma, e) for e in (1e-1, 1e-3, 1e-6)]
    assert values[0] < values[1] < values[2] < res.log_evidence
    assert log_evidence(p.X, p.y, res.sigma, 1e-9) == pytest.approx(res.log_evidence, rel=1e-12)
    with pytest.raises(ConvergenceError, match=r"no maximum at noise > 0"):
        maximize_evidence(p.X, p.y, strict=True)


def test_no_signal_returns_the_sigma_to_zero_limit_with_a_warning():
    """y independent of X: the evidence is largest as sigma -> 0 (lam = inf, w = 0)."""
    rng = np.random.default_rng(22)
    X, y = rng.standard_normal((30, 5)), rng.standard_normal(30)
    with pytest.warns(ConvergenceWarning, match=r"no maximum at sigma > 0"):
        res = maximize_evidence(X, y)
    assert res.limit == "sigma -> 0" and not res.converged
    assert res.sigma == 0.0 and res.lam == math.inf
    assert res.noise == pytest.approx(np.std(y, ddof=1), rel=1e-14)  # ||yc||^2 / (n - 1)
    assert log_evidence(X, y, 1e-9, res.noise) == pytest.approx(res.log_evidence, rel=1e-12)
    for s in (1e-2, 1e-1, 1.0):
        assert log_evidence(X, y, s, res.noise) < res.log_evidence


# ------------------------------------------------------------------------ hostile data


def test_uncentred_columns_y_offset_and_units():
    """Translation: exactly the same data up to the intercept ((X + off) - off is exact),
    same maximiser to rounding (1e-12). Units: X -> a X, y -> b y gives sigma -> (b/a) sigma,
    noise -> b noise (each entry rounded once: 1e-12)."""
    p = make_problem(40, 6, seed=23)
    off = 2000.0 * np.arange(1, 7)
    Xs, ys = p.X + off, p.y + 1e6
    far, near = maximize_evidence(Xs, ys), maximize_evidence(Xs - off, ys - 1e6)
    assert far.sigma == pytest.approx(near.sigma, rel=1e-12)
    assert far.noise == pytest.approx(near.noise, rel=1e-12)
    base = maximize_evidence(p.X, p.y)
    for a, b in ((1e6, 1e6), (1e-6, 1e6), (1e6, 1e-6)):
        res = maximize_evidence(a * p.X, b * p.y)
        assert res.sigma == pytest.approx(b / a * base.sigma, rel=1e-12)
        assert res.noise == pytest.approx(b * base.noise, rel=1e-12)


def test_constant_columns_change_nothing():
    p = make_problem(30, 4, seed=24)
    X = np.c_[p.X, np.full(30, 0.1), np.full(30, 2000.0)]
    a, b = maximize_evidence(p.X, p.y), maximize_evidence(X, p.y)
    assert b.sigma == pytest.approx(a.sigma, rel=1e-12) and b.noise == pytest.approx(a.noise,
                                                                                    rel=1e-12)
    assert log_evidence(X, p.y, 0.7, 0.4) == pytest.approx(log_evidence(p.X, p.y, 0.7, 0.4),
                                                           rel=1e-13)


def test_evidence_result_is_frozen_and_compares_by_value():
    import dataclasses

    p = make_problem(40, 6, seed=3)
    res = maximize_evidence(p.X, p.y)
    assert res == maximize_evidence(p.X, p.y)
    assert res != dataclasses.replace(res, sigma=res.sigma * (1 + 1e-15))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.sigma = 1.0
