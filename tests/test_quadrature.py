"""Quadrature posterior moments against closed forms and independent optimisers."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special

import mapreg
from mapreg import ElasticNet, Gaussian, Laplace
from mapreg.bayes.quadrature import log_joint_marginal, posterior_moments_quadrature


def _data(d, seed=1, n=15):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, 0.3][:d], dtype=torch.float64) + 0.5
    return X, y + torch.randn(n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 2])
def test_gaussian_prior_gives_the_closed_form_gaussian_posterior(d):
    X, y = _data(d)
    sigma, noise = 0.5, 0.8
    r = posterior_moments_quadrature(X, y, Gaussian(sigma=sigma), noise)
    Xc, yc = X - X.mean(0), y - y.mean()
    lam = noise**2 / sigma**2
    A = Xc.T @ Xc + lam * torch.eye(d, dtype=torch.float64)
    mean = torch.linalg.solve(A, Xc.T @ yc)
    cov = noise**2 * torch.linalg.inv(A)
    assert torch.allclose(r.mean, mean, rtol=0, atol=1e-8)
    assert torch.allclose(r.cov, cov, rtol=0, atol=1e-8 * float(cov.abs().max()))
    assert torch.allclose(r.median, mean, rtol=0, atol=1e-8)  # symmetric posterior
    assert torch.allclose(r.sd, cov.diagonal().sqrt(), rtol=1e-8, atol=0)
    # Z = p(y): the flat intercept's factor sqrt(2 pi noise^2 / n) makes it the evidence
    assert abs(r.log_normalizer - mapreg.log_evidence(X, y, sigma, noise)) < 1e-8
    # marginal densities are the closed-form normal densities
    for j in range(d):
        z = (r.grid[j].numpy() - float(mean[j])) / float(r.sd[j])
        ref = np.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * float(r.sd[j]))
        assert np.allclose(r.density[j].numpy(), ref, rtol=1e-7, atol=1e-10)
    assert r.quadrature_error < 1e-12 and r.truncation_bound < 1e-15


def _laplace_1d_closed_form(x, y, b, noise):
    """Posterior of w in y = x w + c + noise, w ~ Laplace(0, b), c flat (written here).

    With G = xc.xc, w_ls = xc.yc / G, s^2 = noise^2 / G, the posterior is proportional to
    exp(-(w - w_ls)^2 / (2 s^2) - |w| / b): on w > 0 a normal N(mu+, s^2) with
    mu+ = w_ls - s^2 / b, on w < 0 N(mu-, s^2) with mu- = w_ls + s^2 / b, with masses
    proportional to exp((mu+-^2 - w_ls^2) / (2 s^2)) Phi(+-mu+- / s).
    """
    xc, yc = x - x.mean(), y - y.mean()
    G = float(xc @ xc)
    wls, s = float(xc @ yc) / G, noise / math.sqrt(G)
    mp, mm = wls - s * s / b, wls + s * s / b
    logZp = (mp**2 - wls**2) / (2 * s * s) + special.log_ndtr(mp / s)
    logZm = (mm**2 - wls**2) / (2 * s * s) + special.log_ndtr(-mm / s)
    top = max(logZp, logZm)
    Zp, Zm = math.exp(logZp - top), math.exp(logZm - top)
    pp, pm = Zp / (Zp + Zm), Zm / (Zp + Zm)
    # truncated-normal means via the inverse Mills ratio phi/Phi = sqrt(2/pi) / erfcx(-a/sqrt2)
    mills = lambda a: math.sqrt(2 / math.pi) / special.erfcx(-a / math.sqrt(2))  # noqa: E731
    ep = mp + s * mills(mp / s)
    em = mm - s * mills(-mm / s)
    mean = pp * ep + pm * em
    # second moments of the pieces: E[w^2] = mu^2 + s^2 + mu s mills (sign-adjusted)
    e2p = mp**2 + s * s + mp * s * mills(mp / s)
    e2m = mm**2 + s * s - mm * s * mills(-mm / s)
    var = pp * e2p + pm * e2m - mean**2

    def cdf(t):
        if t < 0:
            return pm * special.ndtr((t - mm) / s) / special.ndtr(-mm / s)
        # Phi((t - mp)/s) - Phi(-mp/s) written as Phi(mp/s) - Phi((mp - t)/s): no cancellation
        return pm + pp * (special.ndtr(mp / s) - special.ndtr((mp - t) / s)) / special.ndtr(mp / s)

    median = optimize.brentq(lambda t: cdf(t) - 0.5, wls - 20 * s, wls + 20 * s, xtol=1e-15)

    def density(t):
        t = np.asarray(t)
        piece = np.where(t >= 0, pp * np.exp(-0.5 * ((t - mp) / s) ** 2) / special.ndtr(mp / s),
                         pm * np.exp(-0.5 * ((t - mm) / s) ** 2) / special.ndtr(-mm / s))
        return piece / (s * math.sqrt(2 * math.pi))

    return mean, math.sqrt(var), median, density


@pytest.mark.parametrize("b", [0.02, 0.1, 1.0])
def test_laplace_1d_against_the_two_piece_truncated_gaussian(b):
    X, y = _data(1)
    noise = 0.8
    r = posterior_moments_quadrature(X, y, Laplace(b=b), noise)
    mean, sd, median, density = _laplace_1d_closed_form(X[:, 0].numpy(), y.numpy(), b, noise)
    assert abs(float(r.mean[0]) - mean) < 1e-8
    assert abs(float(r.sd[0]) - sd) < 1e-8
    assert abs(float(r.median[0]) - median) < 1e-8
    assert np.allclose(r.density[0].numpy(), density(r.grid[0].numpy()), rtol=1e-7, atol=1e-9)


def test_elastic_net_1d_against_scipy_quad_on_the_formula():
    X, y = _data(1, seed=3)
    noise, sigma, b = 0.7, 0.4, 0.3
    r = posterior_moments_quadrature(X, y, ElasticNet(sigma=sigma, b=b), noise)
    xc, yc = (X[:, 0] - X[:, 0].mean()).numpy(), (y - y.mean()).numpy()

    def f(w, k):  # unnormalised posterior written here: likelihood x exp(-|w|/b - w^2/(2 s^2))
        return w**k * math.exp(-((yc - xc * w) ** 2).sum() / (2 * noise**2) - abs(w) / b
                               - w * w / (2 * sigma**2) + 30.0)

    kw = dict(points=[0.0], epsabs=0, epsrel=1e-13, limit=200)
    m = [integrate.quad(f, -6, 6, args=(k,), **kw)[0] for k in range(3)]
    assert abs(float(r.mean[0]) - m[1] / m[0]) < 1e-9
    assert abs(float(r.sd[0]) - math.sqrt(m[2] / m[0] - (m[1] / m[0]) ** 2)) < 1e-9


def test_elastic_net_with_huge_sigma_is_the_laplace_posterior():
    X, y = _data(2)
    a = posterior_moments_quadrature(X, y, ElasticNet(sigma=1e6, b=0.2), 0.8)
    c = posterior_moments_quadrature(X, y, Laplace(b=0.2), 0.8)
    # the Gaussian factor exp(-w^2 / 2e12) changes moments by O(w^2 / 1e12)
    assert torch.allclose(a.mean, c.mean, atol=1e-10, rtol=0)
    assert torch.allclose(a.cov, c.cov, atol=1e-10, rtol=0)
    assert torch.allclose(a.median, c.median, atol=1e-10, rtol=0)


def test_posterior_mode_is_the_lasso_and_the_map_in_1d():
    X, y = _data(1)
    noise, b = 0.8, 0.1
    lam = noise**2 / b

    def neg(w):
        return -float(log_joint_marginal(X, y, Laplace(b=b), noise, torch.tensor([w])))

    opt = optimize.minimize_scalar(neg, bounds=(-3, 3), method="bounded",
                                   options={"xatol": 1e-12})
    las = mapreg.lasso(X, y, lam)
    assert abs(opt.x - float(las.coef[0])) < 1e-7
    r = posterior_moments_quadrature(X, y, Laplace(b=b), noise)
    assert abs(float(r.mode[0]) - float(las.coef[0])) < 1e-9
    # the mode is not the mean: the posterior is skewed by the kink
    assert abs(float(r.mean[0]) - float(las.coef[0])) > 1e-4


def test_posterior_mode_is_the_sparse_lasso_in_2d_and_mean_is_not_sparse():
    X, y = _data(2, seed=5)
    noise, b = 1.0, 0.1
    lam = noise**2 / b
    las = mapreg.lasso(X, y, lam)
    assert las.coef[1] == 0.0 and las.coef[0] != 0.0  # the lasso sets w_2 exactly to 0
    prior = Laplace(b=b)
    # fine grid around the lasso (containing 0 exactly), then Nelder-Mead from its best point
    t = np.linspace(-0.5, 0.5, 401)
    W = np.stack(np.meshgrid(float(las.coef[0]) + t, t, indexing="ij"), -1).reshape(-1, 2)
    lp = log_joint_marginal(X, y, prior, noise, torch.from_numpy(W)).numpy()
    best = W[int(np.argmax(lp))]
    assert np.abs(best - las.coef.numpy()).max() <= 0.5 * (t[1] - t[0])
    opt = optimize.minimize(lambda w: -float(log_joint_marginal(X, y, prior, noise,
                                                                torch.from_numpy(w))),
                            best, method="Nelder-Mead",
                            options={"xatol": 1e-11, "fatol": 1e-14, "maxiter": 4000})
    assert np.abs(opt.x - las.coef.numpy()).max() < 1e-7
    r = posterior_moments_quadrature(X, y, prior, noise)
    assert torch.allclose(r.mode, las.coef, atol=1e-9, rtol=0)
    assert torch.allclose(r.mode, mapreg.map_estimate(X, y, prior, noise).coef, atol=1e-9)
    # P(w_2 = 0 | y) = 0: mean and median of w_2 are not 0 (Park & Casella)
    assert abs(float(r.mean[1])) > 1e-3 and abs(float(r.median[1])) > 1e-3
    # the marginal density of w_2 at a few points, integrating w_1 with scipy.quad
    ts = np.array([-0.1, 0.0, 0.05, 0.3])
    at = posterior_moments_quadrature(X, y, prior, noise, grid=ts)

    def q(w1, t):
        w = torch.tensor([w1, t], dtype=torch.float64)
        return math.exp(float(log_joint_marginal(X, y, prior, noise, w)) - r.log_normalizer)

    for t, dens in zip(ts, at.density[1].numpy(), strict=True):
        ref = integrate.quad(q, -5, 5, args=(t,), points=[0.0], epsabs=0, epsrel=1e-11,
                             limit=200)[0]
        assert abs(dens - ref) < 1e-8 * ref


def test_inputs_are_validated():
    X, y = _data(2)
    X3 = torch.cat([X, X[:, :1] ** 2], 1)
    with pytest.raises(ValueError, match="1 or 2 features"):
        posterior_moments_quadrature(X3, y, Laplace(b=1.0), 1.0)
    with pytest.raises(TypeError, match="prior must be a mapreg Prior"):
        posterior_moments_quadrature(X, y, "laplace", 1.0)
    with pytest.raises(ValueError, match="noise"):
        posterior_moments_quadrature(X, y, Laplace(b=1.0), -1.0)
    with pytest.raises(ValueError, match="nodes must be an integer between 4 and 256; got 2"):
        posterior_moments_quadrature(X, y, Laplace(b=1.0), 1.0, nodes=2)
    Xd = torch.cat([X[:, :1], X[:, :1]], 1)  # collinear: a flat direction under Laplace
    with pytest.raises(ValueError, match="positive definite"):
        posterior_moments_quadrature(Xd, y, Laplace(b=1.0), 1.0)
    with pytest.raises(ValueError, match="grid must be finite"):
        posterior_moments_quadrature(X, y, Laplace(b=1.0), 1.0, grid=np.zeros((3, 5)))
