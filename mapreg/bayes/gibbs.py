"""The Park-Casella Gibbs sampler for the Bayesian lasso with fixed b and noise -- no Pyro.

Model (mapreg's linear model with a Laplace prior; b and sigma_eps = ``noise`` fixed)::

    w_j ~ Laplace(0, b) i.i.d.,   c ~ flat,   y_i ~ Normal(x_i . w + c, noise^2)

**Scale mixture.** The Laplace density is a Gaussian scale mixture with an exponential
mixing density (Andrews & Mallows 1974)::

    (1 / 2b) exp(-|w| / b) = integral_0^inf N(w; 0, tau^2) Exp(tau^2; rate 1 / (2 b^2)) dtau^2

so the model is the marginal of w_j | tau_j^2 ~ N(0, tau_j^2), tau_j^2 ~ Exp(rate 1/(2b^2)).
(Park & Casella 2008 scale the prior by the noise, w_j | tau_j^2 ~ N(0, sigma^2 tau_j^2);
here the prior is *not* scaled by the noise, so the conditionals below differ from theirs.)

**Intercept.** Integrated out: with the flat prior,
integral p(y | w, c) dc is proportional to exp(-||yc - Xc w||^2 / (2 noise^2)) (Xc, yc the
centred data; the factor sqrt(2 pi noise^2 / n) is a constant), so the sampler runs on
(w, tau^2) with the centred data. Each draw of w is then completed by an exact draw from
c | w, y ~ N(ybar - xbar . w, noise^2 / n), reported as ``intercept_draws``.

**Conditionals** (derived for this exact model).

* w | tau^2, y ~ N(A^-1 Xc'yc, noise^2 A^-1),  A = Xc'Xc + noise^2 D_tau^-1,
  D_tau = diag(tau_j^2): the Gaussian prior N(0, D_tau) times the likelihood
  exp(-||yc - Xc w||^2 / (2 noise^2)) has precision Xc'Xc / noise^2 + D_tau^-1 = A / noise^2.
* 1/tau_j^2 | w ~ InverseGaussian(mean = 1 / (b |w_j|), shape = 1 / b^2), independently:
  with u = 1/tau^2, p(tau^2 | w) is proportional to (tau^2)^(-1/2) exp(-w^2/(2 tau^2) -
  tau^2/(2 b^2)), and the change of variables (|dtau^2/du| = u^-2) gives
  u^(-3/2) exp(-w^2 u / 2 - 1 / (2 b^2 u)), which is the inverse-Gaussian density
  u^(-3/2) exp(-lam u / (2 mu^2) - lam / (2 u)) up to a constant with lam = 1/b^2 and
  lam / mu^2 = w^2, i.e. mu = 1 / (b |w|).

The inverse-Gaussian draws use Michael, Schucany & Haas (1976) in a cancellation-free form:
with Y = mu nu^2 (nu standard normal) and S = sqrt(Y^2 + 4 lam Y), the smaller root
mu + mu / (2 lam) (Y - S) equals 4 lam mu Y / (Y + S)^2 (no subtraction; numpy's ``wald``
subtracts and loses all digits when mu Y / lam is large, i.e. for w_j near 0).

Chains run in lock-step (one batched Cholesky factorisation per sweep); each has its own
stream from ``numpy.random.SeedSequence(seed).spawn(chains)``, so results depend only on
``seed``. Every chain starts from tau_j^2 = 2 b^2 (the prior mean of tau_j^2).

The effective sample size is the rank-free version of Stan's: split chains, autocorrelations
by FFT, summed over Geyer's initial monotone positive sequence (Vehtari et al. 2021, without
the rank normalisation), ESS = chains * draws / tau_hat.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .._centring import centre
from .._results import FrozenResult
from .._validation import check_data, check_positive_int, check_scale

_MIN_ABS_W = 1e-300  # |w_j| below this (probability ~0) would make the IG mean overflow


@dataclass(frozen=True, eq=False)
class GibbsResult(FrozenResult):
    """Draws and summaries of the Park-Casella sampler (see the module docstring).

    Attributes
    ----------
    draws : torch.Tensor of shape (chains, num_samples, d)
        Posterior draws of w after warm-up.
    intercept_draws : torch.Tensor of shape (chains, num_samples)
        Exact draws of c | w, y for each draw of w.
    tau2_draws : torch.Tensor of shape (chains, num_samples, d)
        The latent mixing variances tau_j^2.
    mean, median, sd : torch.Tensor of shape (d,)
        Posterior mean, median and standard deviation of w over all chains.
    ess : torch.Tensor of shape (d,)
        Effective sample size of each w_j (see :func:`effective_sample_size`).
    rhat : torch.Tensor of shape (d,)
        Split R-hat of each w_j.
    b, noise : float
        The fixed prior and noise scales.
    seed : int
    seconds : float
        Wall-clock time of the sampling (not compared by ``==``).
    """

    draws: torch.Tensor
    intercept_draws: torch.Tensor
    tau2_draws: torch.Tensor
    mean: torch.Tensor
    median: torch.Tensor
    sd: torch.Tensor
    ess: torch.Tensor
    rhat: torch.Tensor
    b: float
    noise: float
    seed: int
    seconds: float = field(default=0.0, compare=False)

    @property
    def mcse(self) -> torch.Tensor:
        """Monte Carlo standard error of the posterior mean: sd / sqrt(ESS)."""
        return self.sd / self.ess.sqrt()


def inverse_gaussian(rng: np.random.Generator, mean: np.ndarray, shape: float | np.ndarray
                     ) -> np.ndarray:
    """Draws from InverseGaussian(mean, shape), elementwise, without cancellation.

    Density sqrt(shape / (2 pi x^3)) exp(-shape (x - mean)^2 / (2 mean^2 x)); see the module
    docstring for the form of the Michael-Schucany-Haas transformation used.
    """
    mean = np.asarray(mean, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(shape, dtype=np.float64), mean.shape)
    nu = rng.standard_normal(mean.shape)
    Y = mean * nu * nu
    S = np.sqrt(Y * Y + 4.0 * lam * Y)
    x = 4.0 * lam * mean * Y / (Y + S) ** 2
    x = np.where(Y > 0, x, mean)  # nu = 0: the smaller root is the mean itself
    u = rng.random(mean.shape)
    return np.where(u * (mean + x) <= mean, x, mean * (mean / x))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariances of each row of x (shape (m, n)) at lags 0..n-1, by FFT (biased, /n)."""
    m, n = x.shape
    size = 1 << (2 * n - 1).bit_length()
    xc = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(xc, size, axis=1)
    return np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n] / n


def _split(draws: np.ndarray) -> np.ndarray:
    c, n = draws.shape
    half = n // 2
    return np.concatenate([draws[:, :half], draws[:, n - half:]], axis=0)


def effective_sample_size(draws) -> np.ndarray:
    """Effective sample size of each coordinate of ``draws`` (chains, samples[, d]).

    Split chains (each chain halved), autocorrelation rho_t from the FFT autocovariances
    combined across chains as in Stan (rho_t = 1 - (W - mean autocov_t) / var_plus), summed over
    Geyer's initial positive sequence of pair sums made monotone; ESS = M N / (-1 + 2 sum P_k)
    with P_k = rho_{2k} + rho_{2k+1}, capped at M N log10(M N) (antithetic chains).
    """
    a = np.asarray(draws, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    out = np.empty(a.shape[2])
    for j in range(a.shape[2]):
        x = _split(a[:, :, j])
        m, n = x.shape
        acov = _autocov(x)
        W = acov[:, 0].mean() * n / (n - 1)
        var_plus = W * (n - 1) / n + (x.mean(1).var(ddof=1) if m > 1 else 0.0)
        if not var_plus > 0:
            out[j] = float(m * n)
            continue
        rho = 1.0 - (W - acov.mean(0)) / var_plus
        rho[0] = 1.0
        pairs = rho[:-1:2] + rho[1::2]
        k = int(np.argmax(pairs < 0)) if np.any(pairs < 0) else pairs.size
        pos = np.minimum.accumulate(pairs[:k])
        tau = -1.0 + 2.0 * pos.sum() if k else 1.0
        tau = max(tau, 1.0 / math.log10(max(m * n, 10)))
        out[j] = m * n / tau
    return out


def split_rhat(draws) -> np.ndarray:
    """Split R-hat (Gelman et al., BDA3) of each coordinate of ``draws`` (chains, samples[, d])."""
    a = np.asarray(draws, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    out = np.empty(a.shape[2])
    for j in range(a.shape[2]):
        x = _split(a[:, :, j])
        n = x.shape[1]
        W = x.var(axis=1, ddof=1).mean()
        B = n * x.mean(1).var(ddof=1)
        out[j] = math.sqrt(((n - 1) / n * W + B / n) / W) if W > 0 else math.nan
    return out


def bayesian_lasso_gibbs(
    X,
    y,
    b: float,
    noise: float,
    *,
    num_samples: int = 2000,
    warmup: int = 500,
    seed: int = 0,
    chains: int = 4,
) -> GibbsResult:
    """Sample the Bayesian-lasso posterior p(w | y) with fixed b and noise by Gibbs sampling.

    Target: p(w | y) proportional to exp(-||yc - Xc w||^2 / (2 noise^2) - ||w||_1 / b), the
    posterior of w ~ Laplace(0, b), c flat, y ~ N(Xw + c, noise^2) with c integrated out; its
    mode is the lasso with lam = noise^2 / b (canonical objective 1/2 ||y - Xw - c||^2 +
    lam ||w||_1). The sweep alternates w | tau^2, y (Gaussian) and 1/tau^2 | w (inverse
    Gaussian); conditionals and their derivation are in the module docstring.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,)
    b : float
        Laplace prior scale (> 0).
    noise : float
        Fixed noise scale sigma_eps (> 0).
    num_samples, warmup : int
        Draws kept per chain, and sweeps discarded before them (``warmup`` may be 0).
    seed : int
        Seed of ``numpy.random.SeedSequence``; the result depends only on it.
    chains : int
        Independent chains, run in lock-step.
    """
    X, y = check_data(X, y)
    b = check_scale("b", b, 1)
    noise = check_scale("noise", noise, 2)
    num_samples = check_positive_int("num_samples", num_samples, 10**7)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0; got {warmup!r}")
    chains = check_positive_int("chains", chains, 1024)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    n, d = X.shape
    Xc, yc, xm, ym = centre(X, y)
    G = (Xc.T @ Xc).numpy()
    h = (Xc.T @ yc).numpy()
    xbar, ybar = xm.numpy(), float(ym)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(chains)]
    inv_tau2 = np.full((chains, d), 1.0 / (2.0 * b * b))
    draws = np.empty((chains, num_samples, d))
    tau2 = np.empty((chains, num_samples, d))
    cdraws = np.empty((chains, num_samples))
    shape_ig = 1.0 / (b * b)
    s2 = noise * noise
    t0 = time.perf_counter()
    for it in range(int(warmup) + num_samples):
        # w | tau^2: precision P = A / noise^2 = G / noise^2 + diag(1 / tau^2)
        P = G[None] / s2 + inv_tau2[:, :, None] * np.eye(d)[None]
        L = np.linalg.cholesky(P)
        mu = np.linalg.solve(P, np.broadcast_to(h / s2, (chains, d))[..., None])[..., 0]
        z = np.stack([r.standard_normal(d) for r in rngs])
        # w = mu + L^-T z has covariance (L L')^-1 = P^-1
        w = mu + np.linalg.solve(np.swapaxes(L, 1, 2), z[..., None])[..., 0]
        absw = np.maximum(np.abs(w), _MIN_ABS_W)
        inv_tau2 = np.stack([inverse_gaussian(r, 1.0 / (b * absw[k]), shape_ig)
                             for k, r in enumerate(rngs)])
        k = it - int(warmup)
        if k >= 0:
            draws[:, k] = w
            tau2[:, k] = 1.0 / inv_tau2
            noise_c = np.array([r.standard_normal() for r in rngs])
            cdraws[:, k] = ybar - w @ xbar + noise / math.sqrt(n) * noise_c
    seconds = time.perf_counter() - t0
    flat = draws.reshape(-1, d)
    t = torch.from_numpy
    return GibbsResult(
        draws=t(draws), intercept_draws=t(cdraws), tau2_draws=t(tau2),
        mean=t(flat.mean(0)), median=t(np.median(flat, axis=0)), sd=t(flat.std(0, ddof=1)),
        ess=t(effective_sample_size(draws)), rhat=t(split_rhat(draws)), b=b, noise=noise,
        seed=int(seed), seconds=seconds,
    )
