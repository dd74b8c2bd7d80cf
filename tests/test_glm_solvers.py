"""Penalized GLMs (Bernoulli, Poisson, categorical x L2, L1, elastic net) against references
that share no code with the solver: scipy.optimize on the formula written here,
scikit-learn's LogisticRegression / PoissonRegressor, and facts (separable data, KKT at
zeros, lam_max, metamorphic relations)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

from mapreg import ConvergenceError, ConvergenceWarning
from mapreg.penalized import GLMResult, glm_lam_max, glm_objective, penalized_glm

FAMILIES = ("bernoulli", "poisson", "categorical")


# ---------------------------------------------------------------- the formula, in numpy
def nll(family, eta, y):
    """sum_i l_i and dl/deta (n, K), written from the definitions."""
    if family == "bernoulli":
        e = eta[:, 0]
        return np.sum(np.logaddexp(0.0, e) - y * e), (expit(e) - y)[:, None]
    if family == "poisson":
        e = eta[:, 0]
        return np.sum(np.exp(e) - y * e), (np.exp(e) - y)[:, None]
    lse = logsumexp(eta, axis=1)
    rows, lab = np.arange(len(y)), y.astype(int)
    G = np.exp(eta - lse[:, None])
    G[rows, lab] -= 1.0
    return np.sum(lse - eta[rows, lab]), G


def scipy_fit(X, y, family, lam1, lam2, K):
    """L-BFGS-B on sum l + lam1 ||W||_1 + lam2/2 ||W||^2; for lam1 > 0 the split form
    W = W+ - W-, W+- >= 0, lam1 sum(W+ + W-)."""
    d = X.shape[1]
    nw, split = d * K, lam1 > 0

    def unpack(z):
        W = (z[:nw] - z[nw:2 * nw]) if split else z[:nw]
        return W.reshape(d, K), z[-K:]

    def fun(z):
        W, c = unpack(z)
        f, G = nll(family, X @ W + c, y)
        gW = (X.T @ G + lam2 * W).ravel()
        f += 0.5 * lam2 * np.sum(W * W)
        if split:
            f += lam1 * np.sum(z[:2 * nw])
            return f, np.concatenate([gW + lam1, -gW + lam1, G.sum(0)])
        return f, np.concatenate([gW, G.sum(0)])

    size = (2 * nw if split else nw) + K
    bounds = [(0, None)] * (2 * nw) + [(None, None)] * K if split else None
    res = minimize(fun, np.zeros(size), jac=True, method="L-BFGS-B", bounds=bounds,
                   options=dict(maxiter=100_000, maxfun=200_000, ftol=0.0, gtol=1e-13,
                                maxcor=50))
    return unpack(res.x)


def make(family, n, d, kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    wt = rng.standard_normal(d)
    sep = kind == "separable"
    if family == "bernoulli":
        y = (X @ wt > 0) if sep else rng.random(n) < expit(X @ wt)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 * X @ wt / np.sqrt(d)))
        if sep:
            y = np.where(X[:, 0] > 0, y + 1, 0)  # zeros on one side of a hyperplane
    else:
        S = X @ rng.standard_normal((d, 3))
        y = np.argmax(S if sep else S + rng.gumbel(size=(n, 3)), 1)
    K = {"bernoulli": 2, "categorical": 3}.get(family, 0)
    assert set(range(K)) <= set(y.astype(int)) and (family != "poisson" or y.max() > 0)
    return X, y.astype(float)


DESIGNS = {"n>d": (40, 6, "plain"), "n<d": (15, 30, "plain"), "separable": (40, 4, "separable")}
PENALTIES = {"L2": (0.0, 1.0), "L1": (0.2, 0.0), "EN": (0.2, 1.0)}  # lam1 as a x lam_max


def as_matrix(coef):
    c = np.asarray(coef)
    return c if c.ndim == 2 else c[:, None]


# ------------------------------------------------------------------------- vs scipy
@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("family", FAMILIES)
def test_agrees_with_scipy_on_the_formula(family, penalty, design):
    n, d, kind = DESIGNS[design]
    X, y = make(family, n, d, kind, seed=len(family) + len(design))
    K = 3 if family == "categorical" else 1
    a, lam2 = PENALTIES[penalty]
    lam1 = a * glm_lam_max(X, y, family)
    res = penalized_glm(X, y, family, lam1, lam2)
    assert res.converged and res.kkt_residual <= res.kkt_tol + res.kkt_floor
    W, c = scipy_fit(X, y, family, lam1, lam2, K)
    w = as_matrix(res.coef.numpy())
    scale = max(1.0, np.abs(w).max())
    assert np.abs(w - W).max() <= 1e-6 * scale
    if lam1 > 0:
        assert np.array_equal(w == 0, np.abs(W) <= 1e-7 * scale)
        assert (w == 0).any()
    # objectives: ours (from the result and from glm_objective) and the test's formula
    f, _ = nll(family, X @ w + np.asarray(res.intercept).reshape(-1), y)
    f += lam1 * np.abs(w).sum() + 0.5 * lam2 * (w * w).sum()
    fs, _ = nll(family, X @ W + c, y)
    fs += lam1 * np.abs(W).sum() + 0.5 * lam2 * (W * W).sum()
    assert res.objective == pytest.approx(f, rel=1e-12)
    assert glm_objective(X, y, family, res.coef, res.intercept, lam1, lam2) == pytest.approx(
        f, rel=1e-12)
    assert f <= fs * (1 + 1e-12) and fs == pytest.approx(f, rel=1e-9)


# ------------------------------------------------------------------- vs scikit-learn
def _converged_sklearn(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning from sklearn fails the test
        return model.fit(X, y)


@pytest.mark.parametrize(("penalty", "solver"), [("l2", "lbfgs"), ("l2", "newton-cholesky"),
                                                 ("l1", "saga")])
def test_binary_logistic_matches_sklearn(penalty, solver):
    from sklearn.linear_model import LogisticRegression

    X, y = make("bernoulli", 200, 5, "plain", seed=3)
    C = 0.5
    # scikit-learn >= 1.8: l1_ratio picks the penalty (``penalty`` is deprecated); it
    # minimises C sum_i l_i + P(w), with the intercept unpenalized for these solvers
    model = LogisticRegression(C=C, l1_ratio=1.0 if penalty == "l1" else 0.0, solver=solver,
                               tol=1e-12, max_iter=100_000)
    _converged_sklearn(model, X, y)
    lam1, lam2 = (1 / C, 0.0) if penalty == "l1" else (0.0, 1 / C)
    res = penalized_glm(X, y, "bernoulli", lam1, lam2)
    # saga's tolerance is on the coefficients' change per epoch, a weaker certificate
    atol = 1e-5 if solver == "saga" else 1e-7
    np.testing.assert_allclose(res.coef.numpy(), model.coef_[0], atol=atol)
    assert res.intercept == pytest.approx(model.intercept_[0], abs=atol)
    if penalty == "l1":
        assert np.array_equal(res.coef.numpy() == 0, np.abs(model.coef_[0]) < 1e-6)


def test_multinomial_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y = make("categorical", 150, 4, "plain", seed=4)
    C = 0.3
    model = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=100_000)
    _converged_sklearn(model, X, y)
    res = penalized_glm(X, y, "categorical", 0.0, 1 / C)
    np.testing.assert_allclose(res.coef.numpy(), model.coef_.T, atol=1e-6)
    c_sk = model.intercept_ - model.intercept_.mean()
    np.testing.assert_allclose(res.intercept.numpy(), c_sk, atol=1e-6)


def test_poisson_matches_sklearn():
    from sklearn.linear_model import PoissonRegressor

    X, y = make("poisson", 120, 5, "plain", seed=5)
    alpha = 0.05
    model = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    _converged_sklearn(model, X, y)
    # (1/2n) deviance + (alpha/2)||w||^2 = (1/n)(sum_i l_i + const + (n alpha/2)||w||^2)
    res = penalized_glm(X, y, "poisson", 0.0, len(y) * alpha)
    np.testing.assert_allclose(res.coef.numpy(), model.coef_, atol=1e-8)
    assert res.intercept == pytest.approx(model.intercept_, abs=1e-8)


# ------------------------------------------------------------------------------ facts
@pytest.mark.parametrize("family", ["bernoulli", "categorical"])
def test_separable_data_mle_warns_and_map_is_finite(family):
    X, y = make(family, 40, 3, "separable", seed=6)
    with pytest.warns(ConvergenceWarning, match=r"KKT residual .* > tolerance"):
        mle = penalized_glm(X, y, family, 0.0, 0.0, max_iter=30)
    assert not mle.converged
    with pytest.raises(ConvergenceError, match="KKT residual"):
        penalized_glm(X, y, family, 0.0, 0.0, max_iter=30, strict=True)
    # with more steps the weights keep growing: there is no optimum to report
    with pytest.warns(ConvergenceWarning):
        mle2 = penalized_glm(X, y, family, 0.0, 0.0, max_iter=60)
    assert np.abs(mle2.coef.numpy()).max() > np.abs(mle.coef.numpy()).max()
    for lam2 in (1e-3, 1.0):
        res = penalized_glm(X, y, family, 0.0, lam2)
        assert res.converged and np.isfinite(res.coef.numpy()).all()


def test_categorical_rows_sum_to_zero_with_l2():
    X, y = make("categorical", 60, 5, "plain", seed=7)
    res = penalized_glm(X, y, "categorical", 0.0, 0.7)
    W = res.coef.numpy()
    assert np.abs(W.sum(1)).max() <= 1e-9 * np.abs(W).max()
    assert abs(float(res.intercept.sum())) <= 1e-12 * float(res.intercept.abs().max())
    assert res.n_classes == 3 and W.shape == (5, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_kkt_at_zeros_and_lam_max(family):
    X, y = make(family, 50, 12, "plain", seed=8)
    lm = glm_lam_max(X, y, family)
    lam1 = 0.3 * lm
    res = penalized_glm(X, y, family, lam1, 0.0)
    w = as_matrix(res.coef.numpy())
    _, G = nll(family, X @ w + np.asarray(res.intercept).reshape(-1), y)
    g = X.T @ G  # = -X_j'(y - p)
    zero = w == 0
    assert zero.any() and (~zero).any()
    assert np.abs(g[zero]).max() <= lam1 * (1 + 1e-9)
    np.testing.assert_allclose(g[~zero], -lam1 * np.sign(w[~zero]), rtol=1e-7, atol=1e-9 * lm)
    for f in (1.0, 1.5):
        at = penalized_glm(X, y, family, f * lm, 0.0)
        assert at.converged and not at.coef.any()
    below = penalized_glm(X, y, family, 0.99 * lm, 0.0)
    assert below.coef.any()


@pytest.mark.parametrize("family", FAMILIES)
def test_duplicating_the_data_equals_halving_both_lambdas(family):
    X, y = make(family, 30, 6, "plain", seed=9)
    lam1, lam2 = 0.2 * glm_lam_max(X, y, family), 0.8
    once = penalized_glm(X, y, family, lam1 / 2, lam2 / 2)
    twice = penalized_glm(np.vstack([X, X]), np.concatenate([y, y]), family, lam1, lam2)
    np.testing.assert_allclose(twice.coef.numpy(), once.coef.numpy(), atol=1e-9, rtol=0)
    assert np.array_equal(twice.coef.numpy() == 0, once.coef.numpy() == 0)
    assert twice.objective == pytest.approx(2 * once.objective, rel=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_column_offsets_do_not_change_the_weights(family):
    X, y = make(family, 40, 5, "plain", seed=10)
    lam1, lam2 = 0.1 * glm_lam_max(X, y, family), 0.5
    base = penalized_glm(X, y, family, lam1, lam2)
    off = np.array([1e4, -1e4, 0.0, 3e3, 1e4])
    shifted = penalized_glm(X + off, y, family, lam1, lam2)
    assert shifted.converged
    np.testing.assert_allclose(shifted.coef.numpy(), base.coef.numpy(), atol=1e-9, rtol=0)
    # c moves by -off . W exactly (up to its rounding: |off . W| eps)
    W = as_matrix(base.coef.numpy())
    c_exp = np.asarray(base.intercept) - off @ W
    if family == "categorical":
        c_exp = c_exp - c_exp.mean()
    np.testing.assert_allclose(np.asarray(shifted.intercept).reshape(-1), np.ravel(c_exp),
                               atol=1e-9 * max(1.0, np.abs(off) @ np.abs(W).max(1)))


@pytest.mark.parametrize("family", FAMILIES)
def test_stop_test_cannot_pass_early(family):
    X, y = make(family, 50, 8, "plain", seed=11)
    lam1 = 0.05 * glm_lam_max(X, y, family)
    with pytest.warns(ConvergenceWarning, match=r"relative KKT residual .* > tolerance"):
        res = penalized_glm(X, y, family, lam1, 0.1, max_iter=1)
    assert not res.converged and res.kkt_residual > res.kkt_tol + res.kkt_floor
    full = penalized_glm(X, y, family, lam1, 0.1)
    assert full.converged and full.objective < res.objective


def test_result_is_frozen_and_compares_by_value():
    X, y = make("bernoulli", 30, 4, "plain", seed=12)
    a = penalized_glm(X, y, "bernoulli", 1.0, 0.5)
    b = penalized_glm(X, y, "bernoulli", 1.0, 0.5)
    assert isinstance(a, GLMResult) and a == b
    with pytest.raises(AttributeError):
        a.coef = None
    assert a.method == "prox-newton" and a.n_classes is None
    assert penalized_glm(X, y, "bernoulli", 0.0, 0.5).method == "newton"


# ------------------------------------------------------------------------- validation
def test_validation_messages():
    X, y = make("bernoulli", 20, 3, "plain", seed=13)
    with pytest.raises(ValueError, match=r"family must be one of 'bernoulli', 'poisson', "
                                         r"'categorical'; got 'gaussian'"):
        penalized_glm(X, y, "gaussian")
    with pytest.raises(ValueError, match=r"only the values 0 and 1 .* got the values 0, 1, 2"):
        penalized_glm(X, np.where(np.arange(20) == 0, 2.0, y), "bernoulli")
    with pytest.raises(ValueError, match="must contain both 0 and 1"):
        penalized_glm(X, np.ones(20), "bernoulli")
    with pytest.raises(ValueError, match=r"non-negative integers .* got the values -1, 0, 1"):
        penalized_glm(X, np.where(np.arange(20) == 0, -1.0, y), "poisson")
    with pytest.raises(ValueError, match=r"non-negative integers .* got the values 0, 0.5, 1"):
        penalized_glm(X, np.where(np.arange(20) == 0, 0.5, y), "poisson")
    with pytest.raises(ValueError, match="at least one positive count"):
        penalized_glm(X, np.zeros(20), "poisson")
    with pytest.raises(ValueError, match=r"class labels 0, 1, \.\.\., K-1"):
        penalized_glm(X, y + 0.5, "categorical")
    with pytest.raises(ValueError, match=r"classes \[2\] never occur"):
        penalized_glm(X, y, "categorical", n_classes=3)
    with pytest.raises(ValueError, match=r"n_classes must be larger than every label"):
        penalized_glm(X, 2 * y, "categorical", n_classes=2)
    with pytest.raises(ValueError, match="n_classes is only for family 'categorical'"):
        penalized_glm(X, y, "bernoulli", n_classes=2)
    with pytest.raises(ValueError, match=r"lam1 must be a finite number >= 0; got -1.0"):
        penalized_glm(X, y, "bernoulli", -1.0)
    with pytest.raises(ValueError, match=r"lam2 must be a finite number >= 0; got inf"):
        penalized_glm(X, y, "bernoulli", 0.0, float("inf"))
    with pytest.raises(ValueError, match=r"tol must be a positive finite number; got 0.0"):
        penalized_glm(X, y, "bernoulli", tol=0.0)
    with pytest.raises(ValueError, match="same number of samples"):
        penalized_glm(X, y[:-1], "bernoulli")
    with pytest.raises(ValueError, match=r"coef must have shape \(n_features,\) = \(3,\)"):
        glm_objective(X, y, "bernoulli", np.zeros(4), 0.0)
    with pytest.raises(ValueError, match=r"coef must have shape \(n_features, n_classes\)"):
        glm_objective(X, y, "categorical", np.zeros(3), np.zeros(2))
