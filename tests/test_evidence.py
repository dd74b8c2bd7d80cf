"""Marginal likelihood: the closed form against a direct Gaussian log density."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_problem

from mapreg.datasets import d2l_weight_decay
from mapreg.evidence import log_evidence, maximize_evidence


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
    ],
)
def test_bad_input(call, match):
    p = make_problem(10, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        call(p.X, p.y)


def test_multistart_finds_the_better_of_two_local_maxima():
    """On d2l's data the evidence has a maximum at sigma -> 0 (all noise) and a better one
    near the true weight scale 0.01; a single start from sd(y) finds the worse one."""
    data = d2l_weight_decay()
    res = maximize_evidence(data.X, data.y)
    assert res.sigma == pytest.approx(0.01, rel=0.1)
    assert res.log_evidence > log_evidence(data.X, data.y, 1e-6, float(data.y.std()))
