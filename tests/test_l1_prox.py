"""L1 by training: the subgradient method hovers, the proximal step lands on the lasso.

References: mapreg.lasso (duality-gap certified), scikit-learn's coordinate descent, the
Laplace MAP from Pyro's log joint, and the lower bound on the subgradient iterates'
distance derived in mapreg.training_plots (a step from a point with w_j != 0 on the zero
set has length >= lr (||s_Z|| - ||H_Z|| dist), so two consecutive iterates cannot both be
closer than lr ||s_Z|| / (2 + lr ||H_Z||) to the optimum).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import make_problem
from sklearn.linear_model import Lasso

from mapreg import ConvergenceError, ConvergenceWarning, lasso
from mapreg.penalized.training import train_penalized
from mapreg.training_plots import (
    L1TrainingComparison,
    l1_subgradient_vs_prox,
    plot_l1_subgradient_vs_prox,
)


@pytest.fixture(scope="module")
def d2l():
    return l1_subgradient_vs_prox()  # d2l's data, lam = lam_max / 2, lr = 1/L, w0 = 0


def sklearn_zero_set(X, y, lam):
    n = X.shape[0]
    sk = Lasso(alpha=lam / n, tol=1e-14, max_iter=1_000_000).fit(np.asarray(X), np.asarray(y))
    return tuple(int(j) for j in np.flatnonzero(sk.coef_ == 0))


def test_prox_lands_on_the_lasso_with_its_zero_pattern(d2l):
    r = d2l
    assert r.prox.converged and r.prox.status == "converged"
    assert r.prox_rel_error < 1e-6
    assert 0 < len(r.zero_set) < len(r.lasso_coef)
    prox_zeros = tuple(int(j) for j in torch.nonzero(r.prox.coef == 0).squeeze(1))
    assert prox_zeros == r.zero_set == r.map_zero_set
    assert r.map_rel_error < 1e-6


def test_zero_pattern_matches_scikit_learn(d2l):
    from mapreg import d2l_weight_decay

    data = d2l_weight_decay()
    assert sklearn_zero_set(data.X, data.y, d2l.lam) == d2l.zero_set


def test_prox_zeros_are_exact_from_some_epoch_on(d2l):
    r = d2l
    assert r.prox_zero_from is not None and r.prox_zero_from < r.prox.epochs_run
    P = r.prox_abs
    assert P.shape == (r.prox.epochs_run, len(r.zero_set))
    assert (P[r.prox_zero_from - 1:] == 0).all()
    assert (P[r.prox_zero_from - 2] != 0).any()


def test_subgradient_hovers_never_exactly_zero(d2l):
    r = d2l
    n = 20
    assert r.subgradient.status == "no_stopping_test" and not r.subgradient.converged
    assert r.subgradient_exact_zeros == 0
    S = r.subgradient_abs[-r.last:]
    assert (S > 0).all()
    # hovering at the scale of one L1 step, lr lam / n
    assert r.threshold == pytest.approx(r.lr * r.lam / n, rel=1e-15)
    assert r.threshold / 10 < r.subgradient_min_max_abs < 10 * r.threshold
    med = float(S.median())
    assert r.threshold / 100 < med < 10 * r.threshold


def test_subgradient_distance_respects_the_lr_bound(d2l):
    r = d2l
    assert r.distance_bound > 0
    assert r.subgradient_min_distance >= r.distance_bound
    # far from the exact point, where the prox run is within 1e-6
    scale = float(torch.cat([r.lasso_coef, torch.tensor([r.lasso_intercept])]).norm())
    assert r.subgradient_min_distance / scale > 1e3 * r.prox_rel_error


def test_bound_and_distance_shrink_with_lr(d2l):
    """Metamorphic: a quarter of the step, the bound is about a quarter, the distance too
    (it stays above its bound)."""
    small = l1_subgradient_vs_prox(lr=d2l.lr / 4, epochs=4000, last=500)
    assert small.subgradient_exact_zeros == 0
    assert small.subgradient_min_distance >= small.distance_bound > 0
    ratio = small.distance_bound / d2l.distance_bound
    # lr ||s|| / (2 + lr h) with x = lr h in (0, lr L] = (0, 1]: the ratio is
    # (2 + x) / (8 + x) in (1/4, 1/3]
    assert 0.25 < ratio <= 1 / 3 + 1e-12
    assert small.subgradient_min_distance < 0.5 * d2l.subgradient_min_distance
    assert small.prox_rel_error < 1e-6 and small.zero_set == d2l.zero_set


@pytest.mark.parametrize("n, d, seed, frac", [(40, 8, 11, 0.3), (15, 40, 12, 0.2)])
def test_l1_prox_matches_scikit_learn(n, d, seed, frac):
    p = make_problem(n, d, seed)
    n = p.X.shape[0]
    lam = frac * float(np.abs((p.X - p.X.mean(0)).T @ (p.y - p.y.mean())).max())
    res = train_penalized(p.X, p.y, penalty="l1-prox", lam=lam)
    assert res.converged and res.status == "converged"
    sk = Lasso(alpha=lam / n, tol=1e-14, max_iter=1_000_000).fit(p.X, p.y)
    ref = lasso(p.X, p.y, lam)
    w = res.coef.numpy()
    assert np.abs(w - sk.coef_).max() <= 1e-6 * np.abs(sk.coef_).max()
    assert np.array_equal(w == 0, ref.coef.numpy() == 0)
    assert np.array_equal(w == 0, sk.coef_ == 0)
    assert abs(res.intercept - sk.intercept_) <= 1e-6 * (1 + abs(sk.intercept_))


def test_l1_prox_budget_miss_is_reported():
    p = make_problem(40, 8, 11)
    with pytest.warns(ConvergenceWarning, match=r"\(l1-prox\) did not converge in 5 epochs: "
                                                r"proximal-gradient residual"):
        res = train_penalized(p.X, p.y, penalty="l1-prox", lam=1.0, epochs=5)
    assert res.status == "max_epochs" and not res.converged
    with pytest.raises(ConvergenceError, match=r"proximal-gradient residual"):
        train_penalized(p.X, p.y, penalty="l1-prox", lam=1.0, epochs=5, strict=True)


def test_l1_prox_divergence_is_reported():
    from mapreg.penalized.training import curvature_range

    p = make_problem(40, 8, seed=3)
    L = curvature_range(torch.as_tensor(p.X), 0.0)[1]
    with pytest.warns(ConvergenceWarning, match=r"\(l1-prox\) diverged: .* above the stability"):
        res = train_penalized(p.X, p.y, penalty="l1-prox", lam=2.0, lr=2.2 / L, epochs=200)
    assert res.status == "diverged" and not res.converged


def test_l1_prox_quiet_when_converged_and_watch_shapes():
    p = make_problem(30, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train_penalized(p.X, p.y, penalty="l1-prox", lam=2.0, watch=[0, 3])
    assert res.watched.shape == (res.epochs_run, 2)
    assert res.watched_bias.shape == (res.epochs_run,)
    assert torch.equal(res.watched[-1], res.coef[[0, 3]])
    assert res.watched_bias[-1] == res.intercept
    assert train_penalized(p.X, p.y, penalty="l2", lam=2.0).watched is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"momentum": 0.5}, r"momentum must be 0 for penalty 'l1-prox' .*; got 0\.5"),
        ({"watch": [0, 9]}, r"watch must be weight indices in \[0, 5\); got \[0, 9\]"),
        ({"watch": [True]}, r"watch must be weight indices"),
        ({"watch": [1.5]}, r"watch must be weight indices in \[0, 5\); got \[1\.5\]"),
    ],
)
def test_l1_prox_validation(kwargs, match):
    p = make_problem(30, 5, 4)
    with pytest.raises(ValueError, match=match):
        train_penalized(p.X, p.y, penalty="l1-prox", lam=1.0, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lam": -1.0}, r"lam must be a positive finite number; got -1\.0"),
        ({"lr": 0.0}, r"lr must be a positive finite number; got 0\.0"),
        ({"last": 0}, r"last must be an integer >= 1; got 0"),
        ({"epochs": 10, "last": 50}, r"last must be an integer in \[1, epochs = 10\]; got 50"),
    ],
)
def test_comparison_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        l1_subgradient_vs_prox(**kwargs)


def test_plot(d2l):
    ax = plot_l1_subgradient_vs_prox(d2l)
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert f"{len(d2l.zero_set)} of {len(d2l.lasso_coef)}" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("subgradient" in s for s in labels) and any("proximal" in s for s in labels)
    assert any(f"epoch {d2l.prox_zero_from}" in s for s in labels)
    from matplotlib.figure import Figure

    ax2 = Figure().add_subplot()
    assert plot_l1_subgradient_vs_prox(d2l, ax=ax2) is ax2
    with pytest.raises(TypeError, match=r"result must be an L1TrainingComparison"):
        plot_l1_subgradient_vs_prox("nope")
    assert isinstance(d2l, L1TrainingComparison)
