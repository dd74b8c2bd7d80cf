"""Inverted input dropout on linear regression = a ridge with per-feature, data-dependent
weights = the MAP under a per-feature Gaussian prior.

References: exact enumeration over every mask (tiny n, d), scipy.optimize on the enumerated
expectation, numpy's least squares on the augmented system, mapreg.map_model on a Pyro
model, and long dropout training whose Monte Carlo error is measured from independent
chains.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize

from mapreg.dropout import (
    DropoutResult,
    dropout_as_prior,
    dropout_prior_model,
    dropout_prior_sigma,
)
from mapreg.penalized.dropout import (
    dropout_expected_loss,
    dropout_penalty_weights,
    dropout_ridge,
    train_dropout,
)


def data(n, d, seed, shift=(1.0, -0.5, 0.0, 2.0)):
    """Inputs with non-zero column means (centred and raw second moments differ)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + np.resize(np.asarray(shift), d)
    y = X @ np.resize(np.array([1.0, -2.0, 0.5, 0.0]), d) + 0.5 + 0.5 * rng.standard_normal(n)
    return X, y


def enumerated_loss(X, y, w, c, p, shared=False):
    """1/2 E_m ||y - X (m (.) w) / (1 - p) - c||^2 by summing over every mask."""
    n, d = X.shape
    k = d if shared else n * d
    total = 0.0
    for bits in itertools.product((0, 1), repeat=k):
        m = np.array(bits, dtype=float)
        m = np.tile(m, (n, 1)) if shared else m.reshape(n, d)
        prob = np.prod(np.where(m == 1, 1 - p, p)) if not shared else \
            np.prod(np.where(m[0] == 1, 1 - p, p))
        r = y - (X * m / (1 - p)) @ w - c
        total += prob * 0.5 * (r @ r)
    return total


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_marginalized_loss_equals_enumeration(p, shared):
    X, y = data(3, 3, seed=1)  # 2^9 = 512 masks per example-and-feature
    rng = np.random.default_rng(2)
    w, c = rng.standard_normal(3), 0.7
    exact = enumerated_loss(X, y, w, c, p, shared)
    assert dropout_expected_loss(X, y, w, c, p) == pytest.approx(exact, rel=1e-12)
    # the penalty is on the raw columns: with the centred columns the formula is wrong
    Xc = X - X.mean(0)
    r = y - X @ w - c
    wrong = 0.5 * r @ r + 0.5 * p / (1 - p) * ((Xc * Xc).sum(0) * w * w).sum()
    assert abs(wrong - exact) > 1e-3 * exact


def test_penalty_weights_formula():
    X, _ = data(7, 4, seed=3)
    p = 0.3
    lam = dropout_penalty_weights(X, p).numpy()
    assert np.allclose(lam, p / (1 - p) * (X**2).sum(0), rtol=1e-15, atol=0)
    sigma = dropout_prior_sigma(X, p, noise=0.5).numpy()
    assert np.allclose(sigma**2, 0.25 * (1 - p) / (p * (X**2).sum(0)), rtol=1e-14, atol=0)


def test_ridge_minimises_the_enumerated_expectation():
    X, y = data(3, 2, seed=4)  # 2^6 masks
    p = 0.4
    res = dropout_ridge(X, y, p)

    def f(theta):
        return enumerated_loss(X, y, theta[:2], theta[2], p)

    opt = optimize.minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-12})
    theta = np.append(res.coef.numpy(), res.intercept)
    assert np.abs(opt.x - theta).max() <= 1e-6 * np.abs(theta).max()
    assert res.objective == pytest.approx(f(theta), rel=1e-12)
    assert res.objective <= opt.fun * (1 + 1e-12)


@pytest.mark.parametrize("n, d", [(40, 4), (6, 10)])
def test_ridge_matches_augmented_least_squares(n, d):
    X, y = data(n, d, seed=5)
    p = 0.3
    lam = p / (1 - p) * (X**2).sum(0)
    A = np.block([[X, np.ones((n, 1))], [np.diag(np.sqrt(lam)), np.zeros((d, 1))]])
    b = np.concatenate([y, np.zeros(d)])
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    res = dropout_ridge(X, y, p)
    theta = np.append(res.coef.numpy(), res.intercept)
    assert np.abs(theta - ref).max() <= 1e-10 * np.abs(ref).max()
    assert res.kkt_residual < 1e-12


def test_ridge_is_invariant_to_feature_scaling():
    """Metamorphic: x_j -> a x_j scales lam_j by a^2, so w_j -> w_j / a and nothing else
    changes (plain ridge does not have this property)."""
    X, y = data(30, 4, seed=6)
    a = np.array([1.0, 10.0, 0.1, 3.0])
    r1, r2 = dropout_ridge(X, y, 0.5), dropout_ridge(X * a, y, 0.5)
    assert np.allclose(r2.coef.numpy() * a, r1.coef.numpy(), rtol=1e-10, atol=0)
    assert r2.intercept == pytest.approx(r1.intercept, rel=1e-10)


@pytest.fixture(scope="module")
def result():
    X, y = data(40, 4, seed=5)
    return dropout_as_prior(X, y, 0.3, noise=0.5)  # 16 chains x 20000 steps, ~1-2 s


def test_map_equals_generalized_ridge(result):
    assert isinstance(result, DropoutResult)
    assert result.map_result.converged
    assert result.map_vs_ridge <= 1e-9
    theta_map = np.append(result.map_coef.numpy(), result.map_intercept)
    theta_r = np.append(result.ridge_coef.numpy(), result.ridge_intercept)
    assert np.abs(theta_map - theta_r).max() <= 1e-9 * np.abs(theta_r).max()


def test_map_does_not_depend_on_noise():
    X, y = data(40, 4, seed=5)
    a = dropout_as_prior(X, y, 0.3, noise=0.1, train=False)
    b = dropout_as_prior(X, y, 0.3, noise=3.0, train=False)
    assert torch.allclose(a.map_coef, b.map_coef, rtol=1e-9, atol=0)
    assert torch.allclose(b.prior_sigma, 30 * a.prior_sigma, rtol=1e-14, atol=0)
    assert a.training is None


def test_training_average_lands_on_the_map_within_mc_error(result):
    t = result.training
    assert t.burn_in_factor < 1e-12  # the start's pull is gone before averaging
    assert 4.0 < result.k < 6.0
    assert result.within_mc_error and result.train_z <= result.k
    # and measurably away from the undropped least-squares point and from the ridge with the
    # penalty computed on centred columns
    assert result.ols_z > 100 * result.k
    assert result.centred_z > 20 * result.k
    assert t.stationarity < 1e-3


def test_mc_error_is_honest(result):
    """Two independent runs (other seeds) differ by what their standard errors say, and four
    times the steps halve the standard error."""
    X, y = data(40, 4, seed=5)
    t1 = result.training
    t2 = train_dropout(X, y, 0.3, steps=80_000, seed=1)
    diff = np.append((t1.coef - t2.coef).numpy(), t1.intercept - t2.intercept)
    se = np.sqrt(np.append((t1.coef_se**2 + t2.coef_se**2).numpy(),
                           t1.intercept_se**2 + t2.intercept_se**2))
    assert np.abs(diff / se).max() <= result.k
    # 1/2, up to the SE estimates' own noise (16 chains: ~18 % each, ~6 % on the mean of
    # the four coordinates' ratios)
    ratio = float(np.mean(t2.coef_se.numpy() / t1.coef_se.numpy()))
    assert 0.35 < ratio < 0.7


def test_pyro_model_log_joint_is_the_penalized_objective():
    """The user-style model's negative log joint is (1/noise^2) times the marginalized
    dropout loss, up to a constant: differences between two points agree."""
    import pyro

    X, y = data(10, 3, seed=7)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    p, noise = 0.25, 0.7
    sigma = dropout_prior_sigma(X, p, noise)

    def nlj(w, c):
        cond = pyro.condition(dropout_prior_model, data={"w": torch.as_tensor(w),
                                                        "c": torch.tensor(c)})
        tr = pyro.poutine.trace(cond).get_trace(Xt, yt, sigma, noise)
        return -float(tr.log_prob_sum())

    w1, w2 = np.array([0.3, -1.0, 2.0]), np.array([-0.5, 0.2, 0.1])
    lhs = nlj(w1, 0.4) - nlj(w2, -1.0)
    rhs = (dropout_expected_loss(X, y, w1, 0.4, p) - dropout_expected_loss(X, y, w2, -1.0, p))
    assert lhs == pytest.approx(rhs / noise**2, rel=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: dropout_penalty_weights(X, 0.0), r"p must be a dropout rate in \(0, 1\); "
                                                       r"got 0\.0"),
        (lambda X, y: dropout_ridge(X, y, 1.0), r"p must be a dropout rate in \(0, 1\); got 1\.0"),
        (lambda X, y: dropout_ridge(X, y, True), r"p must be a dropout rate .*; got True"),
        (lambda X, y: train_dropout(X, y, 0.5, chains=1), r"chains must be an integer >= 2 .*"
                                                          r"got 1"),
        (lambda X, y: train_dropout(X, y, 0.5, steps=0), r"steps must be an integer >= 1; got 0"),
        (lambda X, y: train_dropout(X, y, 0.5, seed=-1), r"seed must be an integer >= 0; got -1"),
        (lambda X, y: train_dropout(X, y, 0.5, lr=-1.0), r"lr must be a positive finite number;"
                                                         r" got -1\.0"),
        (lambda X, y: train_dropout(X, y, 0.5, burn_in=-2), r"burn_in must be an integer >= 0; "
                                                            r"got -2"),
        (lambda X, y: dropout_expected_loss(X, y, [1.0], 0.0, 0.5), r"w must have 3 entries"),
        (lambda X, y: dropout_as_prior(X, y, 0.5, noise=0.0), r"noise must be a positive finite"
                                                              r" number; got 0\.0"),
    ],
)
def test_validation(call, match):
    X, y = data(8, 3, seed=8)
    with pytest.raises(ValueError, match=match):
        call(X, y)


def test_all_zero_column_is_refused():
    X, y = data(8, 3, seed=8)
    X[:, 1] = 0.0
    with pytest.raises(ValueError, match=r"all-zero columns \[1\]"):
        dropout_ridge(X, y, 0.5)


def test_plot(result):
    from matplotlib.figure import Figure

    from mapreg.training_plots import plot_dropout_as_prior

    ax = plot_dropout_as_prior(result)
    assert ax.get_xlabel() == "feature" and ax.get_ylabel() == "coefficient"
    assert "p = 0.3" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("MAP" in s for s in labels) and any("dropout SGD" in s for s in labels)
    ax2 = Figure().add_subplot()
    assert plot_dropout_as_prior(result, ax=ax2) is ax2
    with pytest.raises(TypeError, match=r"result must be a DropoutResult"):
        plot_dropout_as_prior(None)
