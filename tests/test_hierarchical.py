"""Hierarchical ridge / lasso: the collapsed evidence, NUTS against quadrature, lambda on d2l."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import mapreg
from mapreg.bayes.hierarchical import (
    _TorchEvidence,
    default_hyperscales,
    hyperposterior_quadrature,
    log_hyperposterior,
    sample_hierarchical,
)


@pytest.fixture(scope="module")
def d2l():
    data = mapreg.d2l_weight_decay()
    return data.X, data.y


def test_torch_evidence_is_mapreg_log_evidence(d2l):
    X, y = d2l
    ev = _TorchEvidence(X, y)
    for s, e in [(0.01, 0.04), (0.003, 0.2), (0.1, 0.001)]:
        got = float(ev(torch.tensor(math.log(s)), torch.tensor(math.log(e))))
        assert abs(got - mapreg.log_evidence(X, y, s, e)) < 1e-9 * max(1.0, abs(got))


def test_log_hyperposterior_formula(d2l):
    X, y = d2l
    s1, s2 = default_hyperscales(X, y)
    a, b = np.log([0.01, 0.02]), np.log([0.05, 0.03])
    got = log_hyperposterior(X, y, a, b)
    ref = [mapreg.log_evidence(X, y, math.exp(ai), math.exp(bi))
           + stats.halfcauchy(scale=s1).logpdf(math.exp(ai)) + ai
           + stats.halfcauchy(scale=s2).logpdf(math.exp(bi)) + bi
           for ai, bi in zip(a, b, strict=True)]
    assert np.allclose(got, ref, rtol=0, atol=1e-9)


def test_collapsed_nuts_on_d2l_agrees_with_quadrature_and_contains_the_evidence_lambda(d2l):
    X, y = d2l
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pyro's jit / tracer warnings
        choices = mapreg.lambda_choices(X, y, num_samples=500, warmup=300, chains=2, seed=1)
    r, q = choices.posterior, choices.quadrature
    assert q == hyperposterior_quadrature(X, y)
    # notebook 04: validation picks d2l's lambda 0.001 (the grid's edge), canonical 20 x 0.001
    assert math.isclose(choices.validation_lam, 0.02, rel_tol=1e-12)
    assert choices.evidence_lam == mapreg.maximize_evidence(X, y).lam
    assert "evidence maximiser" in choices.summary()
    assert q.edge_ratio < 1e-14
    assert r.collapsed and r.divergences == 0
    assert all(v < 1.05 for v in r.rhat.values()), r.rhat
    # posterior means of log sigma, log noise, log lam: 3 z-tests, Bonferroni at 1e-3
    k = stats.norm.isf(1e-3 / 6)
    draws = {"log_scale": r.scale.log(), "log_noise": r.noise.log(), "log_lam": r.lam.log()}
    zs = []
    for i, (name, v) in enumerate(draws.items()):
        se = float(q.sd[i]) / math.sqrt(r.ess[name])
        zs.append((float(v.mean()) - float(q.mean[i])) / se)
    assert max(abs(z) for z in zs) < k, zs
    # the evidence maximiser (notebook 04: lam = 15.81) lies inside both 95% intervals of lam
    ev = mapreg.maximize_evidence(X, y)
    assert abs(ev.lam - 15.81) < 0.01
    assert r.lam_interval[0] < ev.lam < r.lam_interval[1]
    assert q.lam_interval[0] < ev.lam < q.lam_interval[1]
    # ... and so does d2l's lam = 3 (canonical 60); validation's grid edge (canonical 0.02)
    # lies below both
    assert q.lam_interval[0] < 60.0 < q.lam_interval[1]
    assert 0.02 < q.lam_interval[0] and 0.02 < r.lam_interval[0]


def test_full_laplace_model_runs_and_is_reproducible():
    data = mapreg.default_dataset()
    X, y = data.X[:, :2], data.y
    kw = dict(num_samples=60, warmup=60, chains=1, seed=3)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sample_hierarchical(X, y, "laplace", **kw)
        b = sample_hierarchical(X, y, "laplace", **kw)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    assert not a.collapsed and a.coef_mean.shape == (2,)
    assert torch.equal(a.lam, b.lam)
    assert torch.allclose(a.lam, a.noise**2 / a.scale)  # lam = noise^2 / b for the Laplace prior
    assert torch.all(torch.isfinite(a.lam)) and torch.all(a.lam > 0)


def test_inputs_are_validated(d2l):
    X, y = d2l
    with pytest.raises(ValueError, match="collapsed=True needs prior='gaussian'"):
        sample_hierarchical(X, y, "laplace", collapsed=True)
    with pytest.raises(ValueError, match="prior"):
        sample_hierarchical(X, y, "cauchy")
    with pytest.raises(ValueError, match=r"level must be a float in \(0, 1\); got 1.5"):
        sample_hierarchical(X, y, level=1.5)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        sample_hierarchical(X, y, seed=-1)
