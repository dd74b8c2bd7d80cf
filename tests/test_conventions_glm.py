"""Conventions for the bernoulli, categorical and poisson likelihoods (and the statsmodels /
glmnet gaussian rows), each checked against the real tool.

The reference is always the canonical objective written out below, sum_i l_i + lam P(w)
with l_i the exact negative log likelihood, minimized by scipy's L-BFGS-B (the L1 penalty in
the split form w = u - v, u, v >= 0). A tool's fit must (a) satisfy the canonical optimality
conditions at the converted lam -- a residual that cannot be small at a wrong point, e.g. a
lam off by a factor 2 leaves a residual of about lam/2 |w| -- and (b) lie close to the scipy
optimum. Everything is float64.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from scipy import stats
from scipy.optimize import minimize
from scipy.special import expit, logsumexp, softmax
from sklearn.linear_model import LogisticRegression, PoissonRegressor

from mapreg import lasso, ridge
from mapreg.conventions import (
    CONVENTIONS,
    LIKELIHOOD_NAMES,
    all_conventions,
    convention_names,
    convert,
    from_canonical,
    to_canonical,
)

N, D, K = 40, 4, 3
#: Quasi-Newton solvers that stop on the function value (scikit-learn's lbfgs: ftol = 64 eps;
#: torch's strong-Wolfe line search) cannot resolve a decrease below ~eps |f|, and a step
#: along a gradient g lowers f by ~|g|^2 / L: their gradient residual floors near
#: sqrt(64 eps) relative (~1.2e-7), far below the ~lam |w| / 2 that a wrong lam leaves.
FTOL_FLOOR = float(np.sqrt(64 * np.finfo(float).eps))


# ---------------------------------------------------------------------------- problems


def _problem(likelihood: str, separable: bool = False, seed: int = 3):
    """(X, y, k): X (N, D); y in {0, 1}, {0..K-1} or counts; k = number of linear outputs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    w0 = np.array([1.0, -1.5, 0.5, 0.0])
    if likelihood == "bernoulli":
        eta = X @ w0 + 0.3
        y = (eta > 0) if separable else (rng.random(N) < expit(eta))
        return X, y.astype(float), 1
    if likelihood == "categorical":
        W0 = rng.standard_normal((K, D)) * 1.5
        eta = X @ W0.T + np.array([0.2, -0.1, 0.0])
        if not separable:
            eta = eta + rng.gumbel(size=eta.shape)
        return X, eta.argmax(axis=1), K
    assert not separable  # counts are never separable
    y = rng.poisson(np.exp(0.4 * X @ w0 + 0.5)).astype(float)
    return X, y, 1


PROBLEMS = [("bernoulli", False), ("bernoulli", True), ("categorical", False),
            ("categorical", True)]


# ------------------------------------------------- the canonical objective, written out


def _nll(likelihood, X, y, W, c):
    """sum_i l_i and its gradients in W (k, D) and c (k,): the exact negative log likelihood
    (logistic log(1 + e^eta) - y eta; softmax logsumexp(eta_i) - eta_{i, y_i}; Poisson
    e^eta - y eta, log y! dropped)."""
    eta = X @ W.T + c  # (N, k)
    if likelihood == "bernoulli":
        e = eta[:, 0]
        val = np.sum(np.logaddexp(0.0, e) - y * e)
        r = (expit(e) - y)[:, None]
    elif likelihood == "categorical":
        val = np.sum(logsumexp(eta, axis=1) - eta[np.arange(len(y)), y])
        r = softmax(eta, axis=1)
        r[np.arange(len(y)), y] -= 1.0
    else:
        e = eta[:, 0]
        val = np.sum(np.exp(e) - y * e)
        r = (np.exp(e) - y)[:, None]
    return val, r.T @ X, r.sum(axis=0)


def _canonical_fit(likelihood, X, y, k, lam, prior, tau=0.0):
    """argmin sum_i l_i + lam P(W) + (tau/2)||c||^2 by L-BFGS-B; returns (W, c)."""
    d = X.shape[1]
    m = k * d
    opts = {"gtol": 1e-14, "ftol": 0.0, "maxiter": 20_000, "maxcor": 30}
    if prior == "gaussian":
        def fun(z):
            W, c = z[:m].reshape(k, d), z[m:]
            val, gW, gc = _nll(likelihood, X, y, W, c)
            return (val + lam / 2 * np.sum(W * W) + tau / 2 * c @ c,
                    np.r_[(gW + lam * W).ravel(), gc + tau * c])

        z = minimize(fun, np.zeros(m + k), jac=True, method="L-BFGS-B", options=opts).x
        return z[:m].reshape(k, d), z[m:]

    def fun(z):  # W = u - v, u, v >= 0: lam ||W||_1 = lam sum(u + v) on the feasible set
        u, v, c = z[:m], z[m: 2 * m], z[2 * m:]
        W = (u - v).reshape(k, d)
        val, gW, gc = _nll(likelihood, X, y, W, c)
        g = gW.ravel()
        return (val + lam * (u.sum() + v.sum()) + tau / 2 * c @ c,
                np.r_[g + lam, -g + lam, gc + tau * c])

    bounds = [(0.0, None)] * (2 * m) + [(None, None)] * k
    z = minimize(fun, np.zeros(2 * m + k), jac=True, method="L-BFGS-B", bounds=bounds,
                 options=opts).x
    return (z[:m] - z[m: 2 * m]).reshape(k, d), z[2 * m:]


def _kkt(likelihood, X, y, lam, prior, W, c, tau=0.0):
    """Largest violation of the canonical optimality conditions at (W, c), relative to the
    gradient scale max(1, max |grad of sum_i l_i at 0|)."""
    W, c = np.atleast_2d(W), np.atleast_1d(c)
    _, gW, gc = _nll(likelihood, X, y, W, c)
    _, g0, _ = _nll(likelihood, X, y, np.zeros_like(W), np.zeros_like(c))
    scale = max(1.0, np.abs(g0).max())
    if prior == "gaussian":
        rw = np.abs(gW + lam * W)
    else:  # w_j != 0: g_j + lam sign(w_j) = 0;  w_j = 0: |g_j| <= lam
        rw = np.where(W != 0, np.abs(gW + lam * np.sign(W)),
                      np.maximum(np.abs(gW) - lam, 0.0))
    return max(rw.max(), np.abs(gc + tau * c).max()) / scale


def _centred(c):
    """Intercepts up to a common shift (only their differences are identified for the
    categorical likelihood; a no-op for one output)."""
    c = np.atleast_1d(np.asarray(c, dtype=float))
    return c - c.mean() if c.size > 1 else c


def _assert_close(a, b, tol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    err = np.abs(a - b).max()
    assert err <= tol * max(1.0, np.abs(b).max()), f"max |a - b| = {err:.3g} > {tol:g}"


# ------------------------------------------------------- scikit-learn LogisticRegression


@pytest.mark.parametrize("likelihood, separable", PROBLEMS)
def test_logistic_regression_C_l2(likelihood, separable):
    """lbfgs at gtol 1e-12 (on the mean objective) lands on the canonical optimum at
    lam = 1 / C; separable data included (the MAP is finite, the MLE is not)."""
    X, y, k = _problem(likelihood, separable)
    lam = 1.7
    C = from_canonical(lam, "sklearn_logistic", prior="gaussian", likelihood=likelihood)
    assert C == pytest.approx(1 / lam, rel=1e-15)
    m = LogisticRegression(C=C, l1_ratio=0.0, tol=1e-12, max_iter=10_000).fit(X, y)
    W_ref, c_ref = _canonical_fit(likelihood, X, y, k, lam, "gaussian")
    assert _kkt(likelihood, X, y, lam, "gaussian", W_ref, c_ref) <= 1e-9
    assert _kkt(likelihood, X, y, lam, "gaussian", m.coef_, m.intercept_) <= FTOL_FLOOR
    _assert_close(m.coef_, W_ref, 1e-6)
    _assert_close(_centred(m.intercept_), _centred(c_ref), 1e-6)
    # a lam off by 2 fails the optimality conditions by a wide margin
    assert _kkt(likelihood, X, y, 2 * lam, "gaussian", m.coef_, m.intercept_) > 1e-2
    if likelihood == "categorical":  # free intercepts + L2: class weights sum to zero
        assert np.abs(m.coef_.sum(axis=0)).max() <= 1e-7


@pytest.mark.parametrize("likelihood, separable", PROBLEMS)
def test_logistic_regression_C_l1(likelihood, separable):
    """saga with l1_ratio=1 (penalty= is deprecated since 1.8): C sum l_i + ||w||_1."""
    X, y, k = _problem(likelihood, separable)
    lam = 4.0
    C = from_canonical(lam, "sklearn_logistic", prior="laplace", likelihood=likelihood)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no deprecation
        m = LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-13,
                               max_iter=200_000).fit(X, y)
    W_ref, c_ref = _canonical_fit(likelihood, X, y, k, lam, "laplace")
    assert _kkt(likelihood, X, y, lam, "laplace", m.coef_, m.intercept_) <= 1e-7
    _assert_close(m.coef_, W_ref, 1e-6)
    _assert_close(_centred(m.intercept_), _centred(c_ref), 1e-6)
    assert (m.coef_ == 0).any()  # the L1 optimum is sparse here
    assert _kkt(likelihood, X, y, lam / 2, "laplace", m.coef_, m.intercept_) > 1e-2


@pytest.mark.parametrize("separable", [False, True])
def test_liblinear_puts_a_prior_on_the_intercept(separable):
    """liblinear appends a feature of value s = intercept_scaling and penalizes its weight:
    C sum l_i + 1/2 ||w||^2 + 1/2 (c/s)^2, a N(0, C s^2) prior on c. Its fit is the optimum
    of the canonical objective plus (1/(2 C s^2)) c^2 at every s, differs from lbfgs's
    (intercept free) at small s and approaches it like 1/s^2."""
    X, y, k = _problem("bernoulli", separable)
    lam = 1.7
    C = from_canonical(lam, "sklearn_logistic", prior="gaussian", likelihood="bernoulli")
    free = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    z_free = np.r_[free.coef_[0], free.intercept_]
    gaps = []
    for s in (0.1, 1.0, 10.0, 100.0):
        m = LogisticRegression(C=C, solver="liblinear", intercept_scaling=s, tol=1e-12,
                               max_iter=10_000).fit(X, y)
        tau = 1.0 / (C * s * s)
        W_ref, c_ref = _canonical_fit("bernoulli", X, y, k, lam, "gaussian", tau=tau)
        assert _kkt("bernoulli", X, y, lam, "gaussian", m.coef_, m.intercept_, tau) <= 1e-7
        _assert_close(np.r_[m.coef_[0], m.intercept_], np.r_[W_ref[0], c_ref], 1e-6)
        gaps.append(np.abs(np.r_[m.coef_[0], m.intercept_] - z_free).max())
    assert gaps[0] > 0.1 and gaps[1] > 1e-2  # measurably different at small s
    assert gaps[3] < 1e-4  # and the canonical fit at large s
    # 1/s^2: each factor 10 in s shrinks the gap about 100-fold
    assert 50 < gaps[2] / gaps[3] < 200


# ---------------------------------------------------------------- PoissonRegressor


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cholesky"])
def test_poisson_regressor_alpha(solver):
    """(1/(2n)) sum deviance + (alpha/2)||w||^2 = (1/n)[sum l_i + (n alpha/2)||w||^2] + const."""
    X, y, k = _problem("poisson")
    lam = 6.0
    alpha = from_canonical(lam, "sklearn_poisson", prior="gaussian", n=N, likelihood="poisson")
    assert alpha == pytest.approx(lam / N, rel=1e-15)
    m = PoissonRegressor(alpha=alpha, solver=solver, tol=1e-12, max_iter=10_000).fit(X, y)
    W_ref, c_ref = _canonical_fit("poisson", X, y, k, lam, "gaussian")
    assert _kkt("poisson", X, y, lam, "gaussian", m.coef_, m.intercept_) <= FTOL_FLOOR
    _assert_close(m.coef_, W_ref[0], 1e-6)
    _assert_close(m.intercept_, c_ref[0], 1e-6)
    assert _kkt("poisson", X, y, 2 * lam, "gaussian", m.coef_, m.intercept_) > 1e-2


# ------------------------------------------------------------------------------ torch

TORCH_CASES = [
    ("torch_bce_mean", "bernoulli", lambda: torch.nn.BCEWithLogitsLoss(reduction="mean")),
    ("torch_bce_sum", "bernoulli", lambda: torch.nn.BCEWithLogitsLoss(reduction="sum")),
    ("torch_ce_mean", "categorical", lambda: torch.nn.CrossEntropyLoss(reduction="mean")),
    ("torch_ce_sum", "categorical", lambda: torch.nn.CrossEntropyLoss(reduction="sum")),
    ("torch_poisson_mean", "poisson",
     lambda: torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="mean")),
    ("torch_poisson_sum", "poisson",
     lambda: torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="sum")),
]


def _torch_target(likelihood, y):
    return torch.tensor(y) if likelihood == "categorical" else torch.tensor(y)[:, None]


@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
@pytest.mark.parametrize("convention, likelihood, make_loss", TORCH_CASES)
def test_torch_loss_gradient_is_a_multiple_of_the_canonical_one(convention, likelihood,
                                                                make_loss, prior):
    """One SGD step (lr = 1) with weight_decay=wd on the weight (gaussian prior), or the loss
    plus mu ||w||_1 (laplace), moves the parameters by -m grad(canonical at lam) with m = 1/n
    ("mean") or 1 ("sum"), at random parameters, to rounding."""
    X, y, k = _problem(likelihood)
    lam = 3.0
    v = from_canonical(lam, convention, prior=prior, n=N, likelihood=likelihood)
    mult = 1.0 / N if convention.endswith("_mean") else 1.0
    assert v == pytest.approx(lam * mult, rel=1e-15)

    gen = torch.Generator().manual_seed(5)
    net = torch.nn.Linear(D, k).double()
    with torch.no_grad():
        net.weight.copy_(torch.randn(k, D, generator=gen, dtype=torch.float64))
        net.bias.copy_(0.5 * torch.randn(k, generator=gen, dtype=torch.float64))
    W0, c0 = net.weight.detach().numpy().copy(), net.bias.detach().numpy().copy()
    wd = v if prior == "gaussian" else 0.0
    opt = torch.optim.SGD([{"params": [net.weight], "weight_decay": wd},
                           {"params": [net.bias], "weight_decay": 0.0}], lr=1.0)
    loss = make_loss()(net(torch.tensor(X)), _torch_target(likelihood, y))
    if prior == "laplace":
        loss = loss + v * net.weight.abs().sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    step_W = W0 - net.weight.detach().numpy()
    step_c = c0 - net.bias.detach().numpy()

    _, gW, gc = _nll(likelihood, X, y, W0, c0)
    gW = gW + lam * (W0 if prior == "gaussian" else np.sign(W0))
    got, want = np.r_[step_W.ravel(), step_c], mult * np.r_[gW.ravel(), gc]
    # the step is W0 - W1 of numbers of size |W0|: rounding of order eps |W0| per entry
    bound = 64 * np.finfo(float).eps * max(np.abs(W0).max(), np.abs(want).max())
    assert np.abs(got - want).max() <= max(bound, 1e-12 * np.abs(want).max())


@pytest.mark.parametrize("convention, likelihood, make_loss",
                         [TORCH_CASES[0], TORCH_CASES[2], TORCH_CASES[4]])
def test_torch_lbfgs_full_batch_fit_lands_on_the_canonical_optimum(convention, likelihood,
                                                                   make_loss):
    X, y, k = _problem(likelihood, separable=likelihood == "bernoulli")
    lam = 2.5
    wd = from_canonical(lam, convention, prior="gaussian", n=N, likelihood=likelihood)
    net = torch.nn.Linear(D, k).double()
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-15,
                            tolerance_change=0.0, history_size=30, line_search_fn="strong_wolfe")
    Xt, yt, loss_fn = torch.tensor(X), _torch_target(likelihood, y), make_loss()

    def closure():  # LBFGS has no weight_decay: its gradient, wd * w, written as (wd/2)||w||^2
        opt.zero_grad()
        loss = loss_fn(net(Xt), yt) + wd / 2 * (net.weight**2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    W, c = net.weight.detach().numpy(), net.bias.detach().numpy()
    W_ref, c_ref = _canonical_fit(likelihood, X, y, k, lam, "gaussian")
    assert _kkt(likelihood, X, y, lam, "gaussian", W, c) <= FTOL_FLOOR
    _assert_close(W, W_ref, 1e-6)
    _assert_close(_centred(c), _centred(c_ref), 1e-6)


# ------------------------------------------- mean-loss rows, prior scales (scipy only)


@pytest.mark.parametrize("likelihood", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("convention", ["mean", "glmnet", "l2decay"])
def test_mean_loss_rows_by_scipy(likelihood, convention):
    """(1/n) sum l_i + v P(w) (glmnet binomial/multinomial/poisson, d2l, L2Decay), minimized
    by scipy on that formula, is the canonical optimum at lam = n v."""
    X, y, k = _problem(likelihood)
    lam, m = 2.0, k * D
    v = from_canonical(lam, convention, prior="gaussian", n=N, likelihood=likelihood)

    def fun(z):
        W, c = z[:m].reshape(k, D), z[m:]
        val, gW, gc = _nll(likelihood, X, y, W, c)
        return val / N + v / 2 * np.sum(W * W), np.r_[(gW / N + v * W).ravel(), gc / N]

    z = minimize(fun, np.zeros(m + k), jac=True, method="L-BFGS-B",
                 options={"gtol": 1e-15, "ftol": 0.0, "maxiter": 20_000}).x
    W_ref, c_ref = _canonical_fit(likelihood, X, y, k, lam, "gaussian")
    _assert_close(z[:m].reshape(k, D), W_ref, 1e-6)
    _assert_close(_centred(z[m:]), _centred(c_ref), 1e-6)


def test_prior_scales_are_map_estimates_with_scipy_stats_densities():
    """sigma and b without a noise scale: lam = 1/sigma^2, 1/b (scipy.stats log densities)."""
    X, y, k = _problem("bernoulli")
    sigma = 0.8

    def neg_log_post(z):
        w, c = z[:-1], z[-1]
        return -(stats.bernoulli.logpmf(y, expit(X @ w + c)).sum()
                 + stats.norm.logpdf(w, 0, sigma).sum())

    z = minimize(neg_log_post, np.zeros(D + 1), method="BFGS", options={"gtol": 1e-10}).x
    lam = to_canonical(sigma, "sigma", prior="gaussian", likelihood="bernoulli")
    assert lam == pytest.approx(1 / sigma**2, rel=1e-15)
    W_ref, c_ref = _canonical_fit("bernoulli", X, y, k, lam, "gaussian")
    _assert_close(z, np.r_[W_ref[0], c_ref], 1e-5)

    # Poisson + Laplace(0, b): -log p(w) = |w|/b + log 2b (checked against scipy.stats)
    X, y, k = _problem("poisson")
    b = 0.25
    w_test = np.array([0.3, -0.1])
    assert np.allclose(-stats.laplace.logpdf(w_test, 0, b), np.abs(w_test) / b + np.log(2 * b))

    def split(z):
        u, v, c = z[:D], z[D: 2 * D], z[-1]
        eta = X @ (u - v) + c
        val = -stats.poisson.logpmf(y, np.exp(eta)).sum() + (u.sum() + v.sum()) / b
        r = np.exp(eta) - y
        return val, np.r_[X.T @ r + 1 / b, -X.T @ r + 1 / b, r.sum()]

    z = minimize(split, np.zeros(2 * D + 1), jac=True, method="L-BFGS-B",
                 bounds=[(0, None)] * (2 * D) + [(None, None)],
                 options={"gtol": 1e-14, "ftol": 0.0, "maxiter": 20_000}).x
    lam_b = to_canonical(b, "b", prior="laplace", likelihood="poisson")
    W_ref, c_ref = _canonical_fit("poisson", X, y, k, lam_b, "laplace")
    _assert_close(np.r_[z[:D] - z[D: 2 * D], z[-1]], np.r_[W_ref[0], c_ref], 1e-6)


# ------------------------------------------------------- statsmodels OLS.fit_regularized


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((50, 5))
    y = X @ np.array([1.5, -2.0, 0.0, 0.5, 0.0]) + 3.0 + 0.7 * rng.standard_normal(50)
    return X, y


def test_statsmodels_ridge_with_a_free_constant(gauss):
    """alpha as a vector with 0 at the constant column is the canonical ridge; a scalar
    alpha penalizes the constant too (the scipy optimum with lam/2 c^2 added)."""
    X, y = gauss
    n, lam = len(y), 9.0
    a = from_canonical(lam, "statsmodels_ols", prior="gaussian", n=n)
    assert a == pytest.approx(lam / n, rel=1e-15)
    exog = sm.add_constant(X)
    free = sm.OLS(y, exog).fit_regularized(alpha=np.r_[0.0, np.full(5, a)], L1_wt=0.0).params
    ref = ridge(X, y, lam)
    _assert_close(free[1:], ref.coef.numpy(), 1e-10)
    _assert_close(free[0], ref.intercept, 1e-10)

    both = sm.OLS(y, exog).fit_regularized(alpha=a, L1_wt=0.0).params

    def fun(z):  # 1/2 ||y - Xw - c||^2 + lam/2 (||w||^2 + c^2)
        r = y - exog @ z
        return 0.5 * r @ r + lam / 2 * z @ z, -exog.T @ r + lam * z

    z = minimize(fun, np.zeros(6), jac=True, method="L-BFGS-B",
                 options={"gtol": 1e-13, "ftol": 0.0}).x
    _assert_close(both, z, 1e-8)
    assert abs(both[0] - ref.intercept) > 0.1  # the constant is shrunk measurably


def test_statsmodels_lasso_with_a_free_constant(gauss):
    X, y = gauss
    n, lam = len(y), 20.0
    a = from_canonical(lam, "statsmodels_ols", prior="laplace", n=n)
    fit = sm.OLS(y, sm.add_constant(X)).fit_regularized(
        alpha=np.r_[0.0, np.full(5, a)], L1_wt=1.0, maxiter=2000, cnvrg_tol=1e-14,
        zero_tol=1e-12).params
    ref = lasso(X, y, lam)
    _assert_close(fit[1:], ref.coef.numpy(), 1e-7)
    _assert_close(fit[0], ref.intercept, 1e-7)
    assert np.array_equal(fit[1:] == 0, ref.coef.numpy() == 0)


# ------------------------------------------------------------------------- glmnet ridge


def test_glmnet_ridge_sd_y_makes_the_conversion_exact(gauss):
    """glmnet(alpha=0) on y: solves (1/(2n))||y/s - Xw'||^2 + (lambda/s)/2 ||w'||^2 and
    returns w = s w', s = sd_y (stats.stackexchange.com/q/129179). Emulated here with scipy
    (no R): its fit is the canonical ridge at to_canonical(lambda, sd_y=s) = n lambda / s."""
    X, y = gauss
    n, s = len(y), float(np.std(y))
    lam_g = 0.3

    def glmnet_ridge_emulated():  # alpha = 0, standardize = FALSE, intercept = TRUE
        ys = y / s
        lam_s = lam_g / s

        def fun(z):
            w, c = z[:-1], z[-1]
            r = ys - X @ w - c
            return (r @ r / (2 * n) + lam_s / 2 * w @ w,
                    np.r_[-X.T @ r / n + lam_s * w, -r.sum() / n])

        z = minimize(fun, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-15, "ftol": 0.0}).x
        return s * z[:-1]

    lam = to_canonical(lam_g, "glmnet", prior="gaussian", n=n, sd_y=s)
    assert lam == pytest.approx(n * lam_g / s, rel=1e-15)
    _assert_close(glmnet_ridge_emulated(), ridge(X, y, lam).coef.numpy(), 1e-8)
    # the recipe in the other direction, and the lasso row needs no sd_y
    assert from_canonical(lam, "glmnet", prior="gaussian", n=n, sd_y=s) == pytest.approx(lam_g)
    assert to_canonical(lam_g, "glmnet", prior="laplace", n=n, sd_y=s) == pytest.approx(n * lam_g)
    with pytest.warns(UserWarning, match=r"lambda_glmnet = lam \* sd_y / n for canonical lam; "
                      r"pass sd_y=\.\.\. to convert exactly"):
        assert to_canonical(lam_g, "glmnet", prior="gaussian", n=n) == pytest.approx(n * lam_g)
    # all_conventions lists glmnet's ridge only with sd_y (no warning from it)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "glmnet" not in all_conventions(lam, prior="gaussian", n=n, noise=1.0)
        assert all_conventions(lam, prior="gaussian", n=n, sd_y=s)["glmnet"] == \
            pytest.approx(lam_g)
        assert "glmnet" in all_conventions(lam, prior="laplace", n=n)


# --------------------------------------------------------------- algebra & validation


@pytest.mark.parametrize("likelihood", LIKELIHOOD_NAMES)
@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
def test_round_trips_between_every_pair(likelihood, prior):
    names = convention_names(prior, likelihood=likelihood)
    noise = 0.7 if likelihood == "gaussian" else None
    sd_y = 1.3 if likelihood == "gaussian" else None
    kw = dict(prior=prior, n=N, noise=noise, likelihood=likelihood, sd_y=sd_y)
    for a, b in itertools.product(names, names):
        for v in (0.37, 2.9e3):
            lam = to_canonical(v, a, **kw)
            assert to_canonical(from_canonical(lam, b, **kw), b, **kw) == pytest.approx(lam,
                                                                                       rel=1e-13)
            assert convert(convert(v, a, b, **kw), b, a, **kw) == pytest.approx(v, rel=1e-13)


def test_all_conventions_for_bernoulli_lists_only_the_applicable_rows():
    g = all_conventions(4.0, prior="gaussian", n=20, likelihood="bernoulli")
    assert set(g) == {"canonical", "mean", "l2decay", "glmnet", "sklearn_logistic",
                      "torch_bce_mean", "torch_bce_sum", "sigma"}
    assert g["sklearn_logistic"] == pytest.approx(0.25) and g["sigma"] == pytest.approx(0.5)
    assert g["torch_bce_mean"] == pytest.approx(0.2) and g["glmnet"] == pytest.approx(0.2)
    lap = all_conventions(4.0, prior="laplace", likelihood="bernoulli")
    assert set(lap) == {"canonical", "sklearn_logistic", "torch_bce_sum", "b"}
    assert lap["b"] == pytest.approx(0.25)
    poi = all_conventions(4.0, prior="gaussian", n=20, likelihood="poisson")
    assert poi["sklearn_poisson"] == pytest.approx(0.2) and "sklearn_logistic" not in poi
    cat = convention_names("laplace", likelihood="categorical")
    assert "torch_ce_sum" in cat and "sklearn_poisson" not in cat and "sigma" not in cat
    # every convention names the likelihoods it applies to, and the lists partition cleanly
    assert set(convention_names(None, likelihood=None)) == set(CONVENTIONS)
    for c in CONVENTIONS.values():
        assert c.likelihoods and set(c.likelihoods) <= set(LIKELIHOOD_NAMES)
    # the default likelihood keeps the gaussian-only list
    assert "sklearn_logistic" not in convention_names("gaussian")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: convert(1.0, "canonical", "mean", prior="gaussian", n=3,
                         likelihood="binomial"),
         r"likelihood must be one of 'gaussian', 'bernoulli', 'categorical', 'poisson'; "
         r"got 'binomial'"),
        (lambda: to_canonical(1.0, "sklearn_logistic", prior="gaussian"),
         r"convention 'sklearn_logistic' does not apply to likelihood 'gaussian'; it applies "
         r"to likelihood 'bernoulli', 'categorical'; conventions for 'gaussian' with prior "
         r"'gaussian': canonical, mean"),
        (lambda: from_canonical(1.0, "sklearn_ridge", prior="gaussian", likelihood="poisson"),
         r"convention 'sklearn_ridge' does not apply to likelihood 'poisson'; it applies to "
         r"likelihood 'gaussian'; .*sklearn_poisson"),
        (lambda: from_canonical(1.0, "sklearn_poisson", prior="laplace", n=3,
                                likelihood="poisson"),
         r"convention 'sklearn_poisson' does not apply to prior 'laplace'"),
        (lambda: convert(1.0, "canonical", "torch_ce_mean", prior="gaussian", n=3,
                         likelihood="bernoulli"),
         r"'torch_ce_mean' does not apply to likelihood 'bernoulli'; it applies to "
         r"likelihood 'categorical'"),
        (lambda: convert(1.0, "sigma", "canonical", prior="gaussian", noise=2.0,
                         likelihood="bernoulli"),
         r"noise \(sigma_eps\) applies only to likelihood 'gaussian'; likelihood 'bernoulli' "
         r"has no noise scale: leave noise=None; got noise=2\.0"),
        (lambda: all_conventions(1.0, prior="gaussian", noise=2.0, likelihood="poisson"),
         r"noise \(sigma_eps\) applies only to likelihood 'gaussian'"),
        (lambda: convert(1.0, "canonical", "glmnet", prior="gaussian", n=3, sd_y=1.0,
                         likelihood="poisson"),
         r"sd_y .* applies only to likelihood 'gaussian'; got sd_y=1\.0 with likelihood "
         r"'poisson'"),
        (lambda: convert(1.0, "canonical", "glmnet", prior="gaussian", n=3, sd_y=-1.0),
         r"sd_y must be a positive finite number; got -1\.0"),
        (lambda: to_canonical(0.0, "sklearn_logistic", prior="gaussian",
                              likelihood="bernoulli"),
         r"value must be a positive finite number; got 0\.0"),
        (lambda: convert(1.0, "canonical", "torch_bce_mean", prior="gaussian",
                         likelihood="bernoulli"),
         r"n \(number of samples\) is required for convention 'torch_bce_mean'"),
        (lambda: convention_names("gaussian", likelihood="logistic"),
         r"likelihood must be one of .*; got 'logistic'"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match=r"likelihood must be one of .*; got 1 \(int\)"):
        to_canonical(1.0, "canonical", prior="gaussian", likelihood=1)
    with pytest.raises(TypeError, match=r"sd_y must be a positive finite number; got '1'"):
        to_canonical(1.0, "glmnet", prior="gaussian", n=3, sd_y="1")


def test_C_at_the_float64_edges_raises_instead_of_inf_or_zero():
    kw = dict(prior="gaussian", likelihood="bernoulli")
    assert to_canonical(1e-300, "sklearn_logistic", **kw) == pytest.approx(1e300)
    with pytest.raises(ValueError, match=r"value must be between 2\.23e-308 and 4\.49e\+307"):
        to_canonical(1e-310, "sklearn_logistic", **kw)
    with pytest.raises(ValueError, match=r"lam must be between 2\.23e-305 and .*'glmnet' "
                       r"would be 1e-310"):
        from_canonical(1e-307, "glmnet", prior="laplace", n=1000, likelihood="poisson")
