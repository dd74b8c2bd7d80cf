"""Each conversion is checked against the real optimizer or an independent solve of the
objective it names -- never against its own formula."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.optimize import minimize
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from mapreg import lasso, ridge
from mapreg.conventions import (
    CONVENTIONS,
    all_conventions,
    convention_names,
    convert,
    elasticnet_params,
    from_canonical,
    to_canonical,
)

N, D, NOISE = 50, 5, 0.7


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N, D))
    y = X @ np.array([1.5, -2.0, 0.0, 0.5, 0.0]) + 0.3 + NOISE * rng.standard_normal(N)
    return X, y


def _close(a, b, tol=1e-6):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max())


def _minimize_smooth(fun, z0):
    res = minimize(fun, z0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    return res.x


def _minimize_l1(loss_and_grad, mu, d):
    """argmin loss(w, c) + mu ||w||_1 by L-BFGS-B on w = u - v, u, v >= 0."""

    def fun(z):
        u, v, c = z[:d], z[d : 2 * d], z[-1]
        val, gw, gc = loss_and_grad(u - v, c)
        return val + mu * (u.sum() + v.sum()), np.concatenate([gw + mu, -gw + mu, [gc]])

    res = minimize(fun, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B",
                   bounds=[(0, None)] * (2 * d) + [(None, None)],
                   options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 100_000, "maxcor": 30})
    return res.x[:d] - res.x[d : 2 * d], res.x[-1]


# ------------------------------------------------------------------ scikit-learn


def test_sklearn_ridge_alpha(data):
    X, y = data
    lam = 7.0
    ref = ridge(X, y, lam)
    m = Ridge(alpha=from_canonical(lam, "sklearn_ridge", prior="gaussian")).fit(X, y)
    _close(m.coef_, ref.coef.numpy(), 1e-10)
    _close(m.intercept_, ref.intercept, 1e-10)


def test_sklearn_lasso_alpha(data):
    X, y = data
    lam = 20.0
    ref = lasso(X, y, lam)
    alpha = from_canonical(lam, "sklearn_lasso", prior="laplace", n=N)
    m = Lasso(alpha=alpha, tol=1e-14, max_iter=10**6).fit(X, y)
    _close(m.coef_, ref.coef.numpy(), 1e-8)
    assert np.array_equal(m.coef_ == 0, ref.coef.numpy() == 0)


@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
def test_sklearn_elasticnet_alpha_for_a_single_prior(data, prior):
    X, y = data
    lam = 15.0
    ref = (ridge if prior == "gaussian" else lasso)(X, y, lam)
    alpha = from_canonical(lam, "sklearn_elasticnet", prior=prior, n=N)
    l1_ratio = 0.0 if prior == "gaussian" else 1.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that l1_ratio=0 is better done by Ridge
        m = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=10**6).fit(X, y)
    _close(m.coef_, ref.coef.numpy(), 1e-7)


def test_elasticnet_params_for_the_product_prior(data):
    """Prior exp(-|w|/b - w^2/2 sigma^2): ElasticNet(alpha, rho) vs scipy on the posterior."""
    X, y = data
    sigma, b = 0.4, 0.05
    alpha, rho = elasticnet_params(sigma=sigma, b=b, noise=NOISE, n=N)
    m = ElasticNet(alpha=alpha, l1_ratio=rho, tol=1e-14, max_iter=10**6).fit(X, y)

    def nll(w, c):  # -log posterior without the L1 part, Gaussian likelihood + Gaussian factor
        r = y - X @ w - c
        val = 0.5 * r @ r / NOISE**2 + 0.5 * w @ w / sigma**2
        return val, -X.T @ r / NOISE**2 + w / sigma**2, -r.sum() / NOISE**2

    w_ref, c_ref = _minimize_l1(nll, 1.0 / b, D)
    _close(m.coef_, w_ref, 1e-5)
    _close(m.intercept_, c_ref, 1e-5)
    assert elasticnet_params(b=b, noise=NOISE, n=N)[1] == 1.0
    assert elasticnet_params(sigma=sigma, noise=NOISE, n=N)[1] == 0.0


# ----------------------------------------------------------------------- torch


def _torch_train(X, y, loss_fn, wd, steps=2000):
    """Full-batch SGD on nn.Linear with weight_decay on the weight only (bias not decayed)."""
    Xt, yt = torch.tensor(X), torch.tensor(y)
    net = torch.nn.Linear(X.shape[1], 1).double()
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    # lr = 1/L from the curvature: the loss is s * 1/2 ||r||^2, read s off a unit residual
    n = len(y)
    s = 2.0 * float(loss_fn(torch.ones(n), torch.zeros(n))) / n
    A = np.c_[X, np.ones(len(y))]
    L = s * np.linalg.eigvalsh(A.T @ A).max() + wd
    opt = torch.optim.SGD([{"params": [net.weight], "weight_decay": wd},
                           {"params": [net.bias], "weight_decay": 0.0}], lr=1.0 / L)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(net(Xt).squeeze(1), yt).backward()
        opt.step()
    return net.weight.detach().numpy()[0], float(net.bias.detach())


@pytest.mark.parametrize(
    "convention, loss_fn",
    [
        ("torch_mse_mean", torch.nn.MSELoss(reduction="mean")),
        ("torch_mse_sum", torch.nn.MSELoss(reduction="sum")),
        ("torch_nll", lambda p, t: 0.5 * ((p - t) ** 2).sum() / NOISE**2),
        ("l2decay", lambda p, t: 0.5 * ((p - t) ** 2).mean()),
    ],
)
def test_torch_weight_decay_reaches_the_ridge_optimum(data, convention, loss_fn):
    X, y = data
    lam = 12.0
    wd = from_canonical(lam, convention, prior="gaussian", n=N, noise=NOISE)
    w, c = _torch_train(X, y, loss_fn, wd)
    ref = ridge(X, y, lam)
    _close(w, ref.coef.numpy(), 1e-8)
    _close(c, ref.intercept, 1e-8)


@pytest.mark.parametrize("convention, scale", [("torch_mse_mean", 1.0 / N),
                                               ("torch_mse_sum", 1.0)])
def test_torch_explicit_l1_coefficient(data, convention, scale):
    """(1/n)||r||^2 + mu ||w||_1 (or the sum version), solved by scipy, is the lasso."""
    X, y = data
    lam = 20.0
    mu = from_canonical(lam, convention, prior="laplace", n=N)

    def mse(w, c):
        r = y - X @ w - c
        return scale * r @ r, -2 * scale * X.T @ r, -2 * scale * r.sum()

    w, c = _minimize_l1(mse, mu, D)
    _close(w, lasso(X, y, lam).coef.numpy(), 1e-5)


# ------------------------------------------------ d2l mean, glmnet, prior scales


@pytest.mark.parametrize("convention", ["mean", "d2l", "glmnet"])
def test_mean_type_objectives_by_scipy(data, convention):
    X, y = data
    lam = 9.0
    if convention == "glmnet":  # glmnet's documented objective: exact for sd_y = 1
        with pytest.warns(UserWarning, match=r"lambda_glmnet = lam \* sd_y / n"):
            v = from_canonical(lam, convention, prior="gaussian", n=N)
    else:
        v = from_canonical(lam, convention, prior="gaussian", n=N)

    if convention == "glmnet":  # (1/2n)||r||^2 + v [(1 - a)/2 ||w||^2], a = 0
        def fun(z):
            w, c = z[:-1], z[-1]
            r = y - X @ w - c
            return (r @ r / (2 * N) + v / 2 * w @ w,
                    np.r_[-X.T @ r / N + v * w, -r.sum() / N])
    else:  # d2l: (1/n) sum 1/2 r_i^2 + (v/2) ||w||^2
        def fun(z):
            w, c = z[:-1], z[-1]
            r = y - X @ w - c
            return (0.5 * r @ r / N + v / 2 * w @ w,
                    np.r_[-X.T @ r / N + v * w, -r.sum() / N])

    z = _minimize_smooth(fun, np.zeros(D + 1))
    _close(z[:-1], ridge(X, y, lam).coef.numpy(), 1e-6)

    lam1 = 20.0
    v1 = from_canonical(lam1, convention, prior="laplace", n=N)

    def half_mse(w, c):
        r = y - X @ w - c
        return 0.5 * r @ r / N, -X.T @ r / N, -r.sum() / N

    w, _ = _minimize_l1(half_mse, v1, D)
    _close(w, lasso(X, y, lam1).coef.numpy(), 1e-5)


def test_prior_scales_are_map_estimates_with_scipy_stats_densities(data):
    X, y = data
    sigma, b = 0.3, 0.02

    def neg_log_post(z, logprior):
        w, c = z[:-1], z[-1]
        return -(stats.norm.logpdf(y, X @ w + c, NOISE).sum() + logprior(w).sum())

    z = minimize(neg_log_post, np.zeros(D + 1), args=(lambda w: stats.norm.logpdf(w, 0, sigma),),
                 method="BFGS", options={"gtol": 1e-10}).x
    lam = to_canonical(sigma, "sigma", prior="gaussian", noise=NOISE)
    _close(z[:-1], ridge(X, y, lam).coef.numpy(), 1e-5)

    def laplace_part(w, c):
        r = y - X @ w - c
        return 0.5 * r @ r / NOISE**2, -X.T @ r / NOISE**2, -r.sum() / NOISE**2

    # the Laplace density's log is -|w|/b - log 2b: check it against scipy.stats, then solve
    w_test = np.array([0.3, -0.1])
    assert np.allclose(-stats.laplace.logpdf(w_test, 0, b), np.abs(w_test) / b + np.log(2 * b))
    w, _ = _minimize_l1(laplace_part, 1.0 / b, D)
    lam_b = to_canonical(b, "b", prior="laplace", noise=NOISE)
    _close(w, lasso(X, y, lam_b).coef.numpy(), 1e-5)


# ------------------------------------------------------------ algebra & validation


@pytest.mark.parametrize("prior", ["gaussian", "laplace"])
def test_round_trips_between_every_pair(prior):
    names = convention_names(prior)
    for a, b in itertools.product(names, names):
        v = 0.37
        back = convert(convert(v, a, b, prior=prior, n=N, noise=NOISE, sd_y=1.3), b, a,
                       prior=prior, n=N, noise=NOISE, sd_y=1.3)
        assert back == pytest.approx(v, rel=1e-12)


def test_all_conventions_lists_the_applicable_ones():
    g = all_conventions(16.0, prior="gaussian", n=20, noise=2.0)
    assert g["canonical"] == 16.0 and g["sklearn_ridge"] == 16.0
    assert g["mean"] == pytest.approx(0.8) and g["sigma"] == pytest.approx(0.5)
    assert g["torch_mse_mean"] == pytest.approx(1.6) and g["torch_nll"] == pytest.approx(4.0)
    assert "sklearn_lasso" not in g and "b" not in g
    lap = all_conventions(8.0, prior="laplace", n=20, noise=2.0)
    assert lap["b"] == pytest.approx(0.5) and lap["sklearn_lasso"] == pytest.approx(0.4)
    assert set(all_conventions(8.0, prior="laplace")) == {"canonical", "torch_mse_sum"}
    assert set(CONVENTIONS) >= {"glmnet", "l2decay", "sklearn_elasticnet"}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: convert(1.0, "canonical", "nope", prior="gaussian"),
         r"convention must be one of .*'sklearn_ridge'.*; got 'nope'"),
        (lambda: convert(1.0, "canonical", "sklearn_lasso", prior="gaussian", n=3),
         r"convention 'sklearn_lasso' does not apply to prior 'gaussian'; conventions for"),
        (lambda: convert(1.0, "canonical", "b", prior="cauchy"),
         r"prior must be one of 'gaussian', 'laplace'; got 'cauchy'"),
        (lambda: convert(1.0, "canonical", "mean", prior="gaussian"),
         r"n \(number of samples\) is required for convention 'mean'"),
        (lambda: convert(1.0, "canonical", "mean", prior="gaussian", n=0),
         r"n must be an integer between 1 and 9_007_199_254_740_992; got 0"),
        (lambda: convert(1.0, "canonical", "sigma", prior="gaussian"),
         r"noise .* is required for convention 'sigma'"),
        (lambda: convert(1.0, "canonical", "sigma", prior="gaussian", noise=-1),
         r"noise must be a positive finite number; got -1"),
        (lambda: convert(0.0, "canonical", "mean", prior="gaussian", n=3),
         r"value must be a positive finite number; got 0"),
        (lambda: convert(math.inf, "canonical", "mean", prior="gaussian", n=3),
         r"value must be a positive finite number; got inf"),
        (lambda: from_canonical(-2.0, "mean", prior="laplace", n=3),
         r"lam must be a positive finite number; got -2\.0"),
        (lambda: elasticnet_params(noise=1.0, n=3), r"give sigma, b or both"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ float64 edges


@pytest.mark.parametrize(
    "call, match",
    [
        # results that would overflow / underflow float64 (they used to come back as inf or 0)
        (lambda: convert(1e308, "canonical", "torch_mse_sum", prior="gaussian"),
         r"value must be between 2\.23e-308 and 4\.49e\+307 so that value and 1/value are "
         r"finite positive float64 numbers .*; got 1e\+308"),
        (lambda: convert(4e307, "canonical", "torch_mse_sum", prior="gaussian"),
         r"lam must be between 2\.23e-308 and 2\.25e\+307 here: its value in convention "
         r"'torch_mse_sum' would be 8e\+307, outside 2\.23e-308 \.\. 4\.49e\+307 .*; got 4e\+307"),
        (lambda: convert(1e-307, "canonical", "mean", prior="gaussian", n=1000),
         r"lam must be between 2\.23e-305 and .*'mean' would be 1e-310"),
        (lambda: convert(1e-300, "b", "canonical", prior="laplace", noise=1e100),
         r"value must be between 2\.23e-108 and 4\.49e\+307 here: its canonical lam \(from "
         r"convention 'b'\) would be ~1e500"),
        (lambda: convert(1e-10, "canonical", "sigma", prior="gaussian", noise=1e150),
         r"lam must be between 2\.23e-08 and .*'sigma' would be 1e\+155, outside 1\.49e-154"),
        # prior scales keep the priors' own ranges
        (lambda: convert(1e-170, "sigma", "canonical", prior="gaussian", noise=1.0),
         r"value must be between 1\.49e-154 and 6\.7e\+153 so that value\^2 and 1/value\^2"),
        (lambda: convert(5e-324, "b", "canonical", prior="laplace", noise=1.0),
         r"value must be between 2\.23e-308"),
        (lambda: convert(1.0, "canonical", "torch_nll", prior="gaussian", noise=1e300),
         r"noise must be between 1\.49e-154 and 6\.7e\+153"),
        (lambda: convert(1.0, "canonical", "mean", prior="gaussian", n=10**400),
         r"n must be an integer between 1 and 9_007_199_254_740_992; got ~1e400"),
        (lambda: from_canonical(5e-324, "mean", prior="gaussian", n=3), r"lam must be between"),
        (lambda: all_conventions(1e308, prior="gaussian"), r"lam must be between"),
        (lambda: elasticnet_params(b=1e-300, noise=1e100, n=1),
         r"alpha = noise\^2 \(1/b \+ 1/sigma\^2\) / n .* = ~1e500 is outside"),
    ],
)
def test_conversions_at_the_float64_edges_raise_instead_of_inf_or_zero(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match=r"n must be an integer between 1 and .*; got 3\.0"):
        convert(1.0, "canonical", "mean", prior="gaussian", n=3.0)
    with pytest.raises(TypeError, match=r"value must be a positive finite number; got '1'"):
        convert("1", "canonical", "mean", prior="gaussian", n=3)


def test_numpy_numbers_and_the_range_ends_convert():
    assert convert(np.float64(8.0), "canonical", "sklearn_lasso", prior="laplace",
                   n=np.int64(20)) == pytest.approx(0.4)
    assert convert(2e307, "canonical", "torch_mse_sum", prior="gaussian") == pytest.approx(4e307)
    lo = 1e-150
    assert convert(lo, "sigma", "sigma", prior="gaussian", noise=1.0) == pytest.approx(lo)
