"""Built-in GLM data sets: reproducible from their seeds, valid responses, and the
separable set really linearly separable (a linear-programming certificate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from mapreg.bayes.likelihoods import make_likelihood
from mapreg.datasets import DATASETS, default_dataset, load_dataset, resolve_data

GLM = {"bernoulli": "bernoulli", "categorical": "categorical", "poisson": "poisson",
       "separable": "bernoulli"}


def _likelihood(kind: str):
    return make_likelihood(kind, n_classes=3 if kind == "categorical" else None)


@pytest.mark.parametrize("name", sorted(GLM))
def test_seeded_reproducible_and_leaves_the_global_rng_alone(name):
    state = torch.get_rng_state()
    a = load_dataset(name)
    assert torch.equal(torch.get_rng_state(), state)
    assert a == load_dataset(name) == load_dataset(name, seed=0)
    other = load_dataset(name, seed=1)
    assert a != other and not torch.equal(a.X, other.X)


@pytest.mark.parametrize("name", sorted(GLM))
def test_shapes_fields_and_valid_responses(name):
    data = load_dataset(name)
    kind = GLM[name]
    assert data.name == name and data.likelihood == kind and data.noise is None
    n, d = data.X.shape
    assert 40 <= n <= 60 and 5 <= d <= 10
    assert data.y.shape == (n,) and data.X.dtype == data.y.dtype == torch.float64
    assert data.X_test.shape == (200, d) and data.y_test.shape == (200,)
    lik = _likelihood(kind)
    for y in (data.y, data.y_test):
        assert torch.equal(lik.check_y(y), y)
    if kind == "categorical":
        assert data.true_coef.shape == (d, 3) and data.true_intercept.shape == (3,)
        assert set(data.y.tolist()) == {0.0, 1.0, 2.0}
    else:
        assert data.true_coef.shape == (d,) and isinstance(data.true_intercept, float)
    if kind == "bernoulli":
        assert 0.2 < float(data.y.mean()) < 0.8  # both classes well represented
    if kind == "poisson":
        assert float(data.y.max()) >= 3  # counts, not just zeros and ones
    assert data.description


def _lp_separates(X: np.ndarray, y: np.ndarray) -> bool:
    """Is there (w, c) with s_i (x_i . w + c) >= 1 for all i (s = 2y - 1)? An LP feasibility
    problem, solved by scipy's HiGHS."""
    s = 2 * y - 1
    A = -s[:, None] * np.hstack([X, np.ones((X.shape[0], 1))])
    res = linprog(np.zeros(X.shape[1] + 1), A_ub=A, b_ub=-np.ones(X.shape[0]),
                  bounds=[(None, None)] * (X.shape[1] + 1), method="highs")
    assert res.status in (0, 2), res.message
    if res.status == 0:  # a certificate: check it here, independently of the solver
        w, c = res.x[:-1], res.x[-1]
        assert np.all(s * (X @ w + c) >= 1 - 1e-7)
    return res.status == 0


def test_separable_set_is_separable_with_the_documented_margin():
    data = load_dataset("separable")
    for X, y in ((data.X, data.y), (data.X_test, data.y_test)):
        X, y = X.numpy(), y.numpy()
        assert _lp_separates(X, y)
        w, c = data.true_coef.numpy(), data.true_intercept
        margin = (2 * y - 1) * (X @ w + c) / np.linalg.norm(w)
        assert margin.min() >= 0.5 - 1e-12
        assert 0.25 < y.mean() < 0.75


def test_noisy_bernoulli_set_is_not_separable():
    data = load_dataset("bernoulli")
    assert not _lp_separates(data.X.numpy(), data.y.numpy())


def test_gaussian_sets_unchanged_and_glm_sets_refused_by_resolve_data():
    assert default_dataset().likelihood == "gaussian" and default_dataset().noise == 2.0
    X, y, noise, name = resolve_data(None, None, None, "d2l")
    assert name == "d2l" and noise == 0.01
    for glm in GLM:
        assert glm in DATASETS
        with pytest.raises(ValueError, match=rf"dataset '{glm}' has {GLM[glm]} responses.*"
                                             r"'default', 'd2l', 'two_feature'"):
            resolve_data(None, None, None, glm)
