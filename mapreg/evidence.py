"""Marginal likelihood (evidence) of Bayesian ridge regression, and its maximisation.

Model: w ~ N(0, sigma^2 I_d), c flat (improper, density 1), y | w, c ~ N(Xw + c 1, noise^2 I_n).
Integrating c out projects onto the centred data (P = I - 11'/n): with Xc = P X = U S V' and
yc = P y (both orthogonal to 1, so the problem lives in n - 1 dimensions)::

    log p(y | sigma, noise) = -1/2 log n - (n-1)/2 log(2 pi)
                              - 1/2 [ (n-1-r) log noise^2 + sum_i log(noise^2 + sigma^2 s_i^2) ]
                              - 1/2 [ (||yc||^2 - ||U'yc||^2) / noise^2
                                      + sum_i (u_i'yc)^2 / (noise^2 + sigma^2 s_i^2) ]

with r the rank of Xc. Maximising it over (sigma, noise) is "empirical Bayes" (type-II
maximum likelihood): it picks the prior scale -- hence lambda = noise^2 / sigma^2 -- from the
training data alone, without a validation split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_data, check_positive
from .errors import report_nonconvergence


@dataclass(frozen=True)
class EvidenceResult:
    """The evidence maximiser: sigma, noise, lam = noise^2 / sigma^2 and the log evidence."""

    sigma: float
    noise: float
    lam: float
    log_evidence: float
    converged: bool


def _spectrum(X, y):
    X, y = check_data(X, y)
    Xc = X - X.mean(0)
    yc = y - y.mean()
    U, s, _ = torch.linalg.svd(Xc, full_matrices=False)
    keep = s > s.max() * max(Xc.shape) * torch.finfo(X.dtype).eps if s.numel() else s > 0
    s, U = s[keep], U[:, keep]
    z = U.T @ yc
    rest = float(yc @ yc) - float(z @ z)
    return X.shape[0], s.numpy() ** 2, z.numpy() ** 2, max(rest, 0.0)


def log_evidence(X, y, sigma: float, noise: float) -> float:
    """log p(y | sigma, noise) of Bayesian ridge regression with a flat intercept prior.

    See the module docstring for the formula (it is exact, computed from the SVD of the
    centred X).
    """
    sigma = check_positive("sigma", sigma)
    noise = check_positive("noise", noise)
    n, s2, z2, rest = _spectrum(X, y)
    return _log_ev(n, s2, z2, rest, math.log(sigma), math.log(noise))


def _log_ev(n, s2, z2, rest, log_sigma, log_noise):
    v_noise = math.exp(2 * log_noise)
    v = v_noise + math.exp(2 * log_sigma) * s2
    r = s2.size
    logdet = (n - 1 - r) * math.log(v_noise) + float(np.log(v).sum())
    quad = rest / v_noise + float((z2 / v).sum())
    return -0.5 * math.log(n) - 0.5 * (n - 1) * math.log(2 * math.pi) - 0.5 * (logdet + quad)


def maximize_evidence(
    X, y, *, sigma0: float = 1.0, noise0: float | None = None, strict: bool = False
) -> EvidenceResult:
    """Type-II maximum likelihood: argmax over (sigma, noise) of :func:`log_evidence`.

    Optimised over (log sigma, log noise) by scipy's L-BFGS-B. The evidence can have more
    than one local maximum (e.g. sigma -> 0 with all variance explained as noise, versus a
    small noise with sizeable weights), so it starts from (sigma0, noise0) and from a grid of
    9 points around the data's own scales -- noise in sd(y) x {0.03, 0.3, 1}, sigma in
    sd(y) / (||X||_F / sqrt(n)) x {0.03, 0.3, 1} -- and keeps the best. ``noise0`` defaults to
    sd(y). Needs n >= 3.
    """
    from scipy.optimize import minimize

    n, s2, z2, rest = _spectrum(X, y)
    if n - 1 <= 1:
        raise ValueError(f"maximize_evidence needs at least 3 samples; got n={n}")
    sigma0 = check_positive("sigma0", sigma0)
    if noise0 is None:
        noise0 = float(torch.as_tensor(y, dtype=torch.float64).std()) or 1.0
    noise0 = check_positive("noise0", noise0)

    def neg(p):
        return -_log_ev(n, s2, z2, rest, p[0], p[1])

    sd_y = math.sqrt((rest + float(z2.sum())) / n) or 1.0
    x_scale = math.sqrt(float(s2.sum()) / n) or 1.0
    starts = [(sigma0, noise0)] + [(sd_y / x_scale * a, sd_y * e)
                                   for a in (0.03, 0.3, 1.0) for e in (0.03, 0.3, 1.0)]
    res = None
    for s0, e0 in starts:
        r = minimize(neg, np.log([s0, e0]), method="L-BFGS-B",
                     bounds=[(-30.0, 30.0), (-30.0, 30.0)],
                     options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000})
        if res is None or r.fun < res.fun:
            res = r
    sigma, noise = float(np.exp(res.x[0])), float(np.exp(res.x[1]))
    # L-BFGS-B may stop "ABNORMAL" (a failed line search) at a maximum it cannot improve in
    # floating point; judge convergence by the gradient in (log sigma, log noise) instead.
    grad = float(np.abs(res.jac).max())
    converged = bool(res.success) or grad <= 1e-6 * max(1.0, abs(float(res.fun)))
    if not converged:
        report_nonconvergence(
            f"evidence maximisation did not converge: {res.message}; gradient {grad:.3e}", strict
        )
    return EvidenceResult(sigma, noise, noise**2 / sigma**2, -float(res.fun), converged)
