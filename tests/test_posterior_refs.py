"""Two independent samplers of one posterior agree: Pyro's NUTS (mapreg.posterior) and the
Park-Casella Gibbs sampler written without Pyro (mapreg.bayesian_lasso_gibbs).

Same data, same Laplace(0, b) prior, same fixed sigma_eps, flat intercept. For every weight,
the posterior mean and variance from the two agree within Monte Carlo error: z = difference /
sqrt(se_1^2 + se_2^2), each se from the effective sample size of the series it averages
(w_j for the mean, (w_j - m_j)^2 for the variance), against a Bonferroni bound at a
family-wise false-alarm probability of 1e-3.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from pyro.ops.stats import effective_sample_size
from scipy.stats import norm

import mapreg

F64 = torch.float64


def _se(chains: torch.Tensor) -> torch.Tensor:
    """Monte Carlo standard error of the mean of each column of (chains, draws, p)."""
    ess = effective_sample_size(chains, chain_dim=0, sample_dim=1)
    return chains.reshape(-1, chains.shape[-1]).std(0) / ess.sqrt()


def test_nuts_and_park_casella_gibbs_agree_on_the_laplace_posterior():
    g = torch.Generator().manual_seed(7)
    X = torch.randn(25, 3, generator=g, dtype=F64)
    y = X @ torch.tensor([1.5, 0.4, 0.0], dtype=F64) + 0.5 + torch.randn(25, generator=g,
                                                                       dtype=F64)
    b, noise = 0.07, 1.0  # the lasso at lam = 1/b zeroes w2 and w3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mapreg.PosteriorWarning)  # R-hat is checked below
        nuts = mapreg.posterior("laplace", b=b, X=X, y=y, noise=noise, num_samples=600,
                                warmup_steps=300, num_chains=2, seed=3, progress=False)
    gibbs = mapreg.bayesian_lasso_gibbs(X, y, b, noise, num_samples=2000, warmup=300, seed=3,
                                        chains=2)
    assert nuts.max_rhat < 1.02 and float(gibbs.rhat.max()) < 1.02
    a = nuts.coef_chains  # (chains, draws, d)
    c = gibbs.draws  # (chains, draws, d)
    ma, mc = a.reshape(-1, 3).mean(0), c.reshape(-1, 3).mean(0)
    za = (ma - mc) / (_se(a) ** 2 + _se(c) ** 2).sqrt()
    sa, sc = (a - ma) ** 2, (c - mc) ** 2
    zv = (sa.reshape(-1, 3).mean(0) - sc.reshape(-1, 3).mean(0)) / (
        _se(sa) ** 2 + _se(sc) ** 2).sqrt()
    k = float(norm.ppf(1 - 1e-3 / (2 * 6)))  # 3 means and 3 variances
    assert float(za.abs().max()) <= k, za
    assert float(zv.abs().max()) <= k, zv
    # the shared MAP (the lasso) has an exact zero; neither sampler ever draws one
    assert int((nuts.map_coef == 0).sum()) >= 1
    assert int((a == 0).sum()) == 0 and int((c == 0).sum()) == 0


def _ess(series: torch.Tensor) -> torch.Tensor:
    return effective_sample_size(series, chain_dim=0, sample_dim=1)


def test_two_feature_laplace_posterior_matches_quadrature():
    """NUTS against numerical quadrature on the built-in two-feature data (the Laplace MAP
    sets w2 to exactly 0): posterior means, medians and the mass below 0 (the marginal
    densities integrated), each z from the ESS of the series it summarises."""
    data = mapreg.load_dataset("two_feature")
    b = 0.05
    prior = mapreg.Laplace(b)
    quad = mapreg.posterior_moments_quadrature(data.X, data.y, prior, data.noise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mapreg.PosteriorWarning)
        nuts = mapreg.posterior("laplace", b=b, X=data.X, y=data.y, noise=data.noise,
                                num_samples=800, warmup_steps=300, num_chains=2, seed=5,
                                progress=False)
    assert nuts.max_rhat < 1.02
    assert float(nuts.map_coef[1]) == 0.0 and torch.allclose(nuts.map_coef, quad.mode, atol=1e-9)
    draws = nuts.coef_chains  # (chains, draws, 2)
    flat = draws.reshape(-1, 2)
    ess = _ess(draws)
    zs = []
    for j in range(2):
        grid, dens = quad.grid[j].numpy(), quad.density[j].numpy()
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
        cdf /= cdf[-1]
        # mean
        zs.append((float(flat[:, j].mean()) - float(quad.mean[j]))
                  / (float(flat[:, j].std()) / float(ess[j].sqrt())))
        # median: se = 1 / (2 f(m) sqrt(ESS)), f the quadrature's marginal density
        f_m = float(np.interp(float(quad.median[j]), grid, dens))
        zs.append((float(flat[:, j].median()) - float(quad.median[j]))
                  / (1.0 / (2.0 * f_m * float(ess[j].sqrt()))))
        # P(w_j <= 0 | y): the marginal density's mass below 0
        p0 = float(np.interp(0.0, grid, cdf))
        below = (draws[..., j] <= 0).to(F64)
        ess_b = float(_ess(below[..., None])[0])
        zs.append((float(below.mean()) - p0) / math.sqrt(p0 * (1 - p0) / ess_b))
    k = float(norm.ppf(1 - 1e-3 / (2 * len(zs))))
    assert max(abs(z) for z in zs) <= k, zs
    # the mode is sparse, the posterior is not: w2's mean is positive, its P(w2 <= 0) < 1/2
    assert float(quad.mean[1]) > 0.05 and float(np.interp(0.0, quad.grid[1].numpy(),
                                                          quad.density[1].numpy())) > 0
