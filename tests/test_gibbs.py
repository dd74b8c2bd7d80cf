"""The Park-Casella Gibbs sampler against quadrature, its building blocks against formulas."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import mapreg
from mapreg import Laplace
from mapreg.bayes.gibbs import (
    bayesian_lasso_gibbs,
    effective_sample_size,
    inverse_gaussian,
    split_rhat,
)
from mapreg.bayes.quadrature import posterior_moments_quadrature


@pytest.mark.parametrize("b", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("w", [0.0, 0.03, 0.7, 3.0])
def test_laplace_is_a_gaussian_scale_mixture_with_exponential_mixing(b, w):
    # (1/2b) e^{-|w|/b} = int_0^inf N(w; 0, t) Exp(t; rate 1/(2 b^2)) dt
    rate = 1.0 / (2 * b * b)

    def f(s):  # t = s^2 (dt = 2 s ds) removes the 1/sqrt(t) singularity at w = 0
        t = s * s
        return math.exp(-w * w / (2 * t) - rate * t) / math.sqrt(2 * math.pi) * rate * 2

    val = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
    assert abs(val - math.exp(-abs(w) / b) / (2 * b)) < 1e-9 * val


@pytest.mark.parametrize("w", [0.05, 1.3])
def test_the_inverse_tau2_conditional_is_inverse_gaussian(w):
    # p(u | w), u = 1/tau^2, from the joint N(w; 0, 1/u) Exp(1/u; rate 1/(2b^2)) |d tau^2/du|,
    # is proportional to InverseGaussian(mean 1/(b|w|), shape 1/b^2): constant ratio.
    b = 0.4
    u = np.geomspace(1e-2, 1e3, 50)
    tau2 = 1 / u
    log_joint = (-w * w / (2 * tau2) - 0.5 * np.log(2 * np.pi * tau2) - tau2 / (2 * b * b)
                 - 2 * np.log(u))
    mu, lam = 1 / (b * abs(w)), 1 / b**2
    log_ig = stats.invgauss(mu / lam, scale=lam).logpdf(u)
    diff = log_joint - log_ig
    assert np.allclose(diff, diff[0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("mean,shape", [(2.0, 3.0), (1e-3, 100.0), (1e9, 4.0)])
def test_inverse_gaussian_draws_follow_scipy_invgauss(mean, shape):
    rng = np.random.default_rng(7)
    x = inverse_gaussian(rng, np.full(20000, mean), shape)
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    p = stats.kstest(x, stats.invgauss(mean / shape, scale=shape).cdf).pvalue
    assert p > 1e-3  # seeded: a fixed number, well above the level


def test_ess_and_rhat_on_known_processes():
    rng = np.random.default_rng(3)
    iid = rng.standard_normal((4, 2000))
    ess = effective_sample_size(iid)[0]
    assert 0.85 * 8000 < ess < 1.15 * 8000
    # AR(1) with phi: ESS / N -> (1 - phi) / (1 + phi)
    phi = 0.8
    x = np.zeros((4, 4000))
    e = rng.standard_normal((4, 4000))
    for t in range(1, 4000):
        x[:, t] = phi * x[:, t - 1] + math.sqrt(1 - phi**2) * e[:, t]
    ratio = effective_sample_size(x)[0] / 16000
    assert abs(ratio - (1 - phi) / (1 + phi)) < 0.25 * (1 - phi) / (1 + phi)
    assert split_rhat(iid)[0] < 1.01
    shifted = iid + np.arange(4)[:, None]
    assert split_rhat(shifted)[0] > 1.5


def _mcse(draws_j, ess_fn=effective_sample_size):
    """MC standard errors of mean, sd and median of one coordinate (chains, samples)."""
    flat = draws_j.ravel()
    m, sd, med = flat.mean(), flat.std(ddof=1), np.median(flat)
    se_mean = sd / math.sqrt(ess_fn(draws_j)[0])
    sq = (draws_j - m) ** 2
    se_var = sq.ravel().std(ddof=1) / math.sqrt(ess_fn(sq)[0])
    ind = (draws_j <= med).astype(float)
    return m, sd, med, se_mean, se_var / (2 * sd), math.sqrt(0.25 / ess_fn(ind)[0])


def _data(d, seed=1, n=15):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, 0.0][:d], dtype=torch.float64) + 0.5
    return X, y + torch.randn(n, generator=g, dtype=torch.float64)


def test_gibbs_moments_agree_with_quadrature_in_1d_and_2d():
    # 3 statistics x (1 + 2) coordinates = 9 two-sided z-tests; Bonferroni at family level
    # 1e-3 gives k = Phi^-1(1 - 1e-3 / 18) = 3.87
    k = stats.norm.isf(1e-3 / 18)
    b, noise = 0.2, 1.0
    zs = []
    for d in (1, 2):
        X, y = _data(d)
        g = bayesian_lasso_gibbs(X, y, b, noise, num_samples=2500, warmup=200, seed=11,
                                 chains=4)
        q = posterior_moments_quadrature(X, y, Laplace(b=b), noise)
        assert torch.all(g.rhat < 1.01)
        dens_at_med = posterior_moments_quadrature(
            X, y, Laplace(b=b), noise, grid=q.median.numpy()).density.diagonal().numpy()
        for j in range(d):
            m, sd, med, se_m, se_sd, se_p = _mcse(g.draws[:, :, j].numpy())
            assert math.isclose(m, float(g.mean[j])) and math.isclose(sd, float(g.sd[j]))
            # median: P(w <= median) has sd sqrt(1/4 / ESS); divide by the density there
            zs += [(m - float(q.mean[j])) / se_m, (sd - float(q.sd[j])) / se_sd,
                   (med - float(q.median[j])) * dens_at_med[j] / se_p]
    assert len(zs) == 9
    assert max(abs(z) for z in zs) < k, zs


def test_d10_is_reproducible_and_not_sparse_where_the_lasso_is():
    data = mapreg.default_dataset()
    b, noise = 0.5, 2.0
    a = bayesian_lasso_gibbs(data.X, data.y, b, noise, num_samples=300, warmup=100, seed=4,
                             chains=2)
    again = bayesian_lasso_gibbs(data.X, data.y, b, noise, num_samples=300, warmup=100, seed=4,
                                 chains=2)
    assert a == again and torch.equal(a.draws, again.draws)
    other = bayesian_lasso_gibbs(data.X, data.y, b, noise, num_samples=300, warmup=100, seed=5,
                                 chains=2)
    assert not torch.equal(a.draws, other.draws)
    las = mapreg.lasso(data.X, data.y, noise**2 / b)
    assert int((las.coef == 0).sum()) >= 3  # the MAP is sparse ...
    assert not torch.any(a.draws == 0)  # ... no posterior draw is
    assert torch.all(a.median != 0) and torch.all(a.mean != 0)
    assert a.draws.shape == (2, 300, 10) and a.intercept_draws.shape == (2, 300)
    assert torch.all(a.tau2_draws > 0)
    # the intercept draws: c | w ~ N(ybar - xbar.w, noise^2 / n), so their mean over draws
    # matches ybar - xbar . mean(w) within its MC error
    c_ref = float(data.y.mean() - data.X.mean(0) @ a.mean)
    c_se = float(a.intercept_draws.std()) / math.sqrt(float(
        effective_sample_size(a.intercept_draws.numpy())[0]))
    assert abs(float(a.intercept_draws.mean()) - c_ref) < 4 * c_se


def test_inputs_are_validated():
    X, y = _data(2)
    with pytest.raises(ValueError, match="b"):
        bayesian_lasso_gibbs(X, y, -1.0, 1.0)
    with pytest.raises(ValueError, match="noise"):
        bayesian_lasso_gibbs(X, y, 1.0, 0.0)
    with pytest.raises(ValueError, match="warmup must be an integer >= 0; got -1"):
        bayesian_lasso_gibbs(X, y, 1.0, 1.0, warmup=-1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        bayesian_lasso_gibbs(X, y, 1.0, 1.0, seed=-2)
    with pytest.raises(ValueError, match="chains"):
        bayesian_lasso_gibbs(X, y, 1.0, 1.0, chains=0)
