"""audit: full-batch training with a real torch optimizer lands on the exact target of its
implied prior -- the MAP for coupled decay, the box least-squares point for AdamW."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mapreg import ConvergenceError, ConvergenceWarning
from mapreg.audit import audit
from mapreg.penalized import constrained_linf

DT = torch.float64


def _data(seed: int = 0, n: int = 30):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=DT)
    y = X @ torch.tensor([1.5, -2.0, 0.5], dtype=DT) + 0.3 + 0.5 * torch.randn(
        n, generator=g, dtype=DT)
    return X, y


@pytest.mark.parametrize(("name", "kwargs"), [
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("adagrad", {"lr": 0.5}),
])
def test_coupled_decay_lands_on_the_map(name, kwargs):
    X, y = _data()
    res = audit(name, X, y, loss="mse", reduction="mean", noise_scale=0.5, weight_decay=0.05,
                **kwargs)
    assert res.target_kind == "map" and res.converged
    assert res.distance <= 1e-6
    assert res.posterior_residual <= 1e-6  # Pyro's log posterior is stationary there too
    assert res.implied.groups[0].sigma == pytest.approx((2 * 0.25 / (30 * 0.05)) ** 0.5)
    assert "distance to the MAP" in str(res)


@pytest.mark.parametrize(("loss", "reduction", "make_y", "kwargs"), [
    ("bce_with_logits", "mean", lambda y: (y > 0.3).to(DT), {"lr": 0.1}),
    ("cross_entropy", "sum",
     lambda y: torch.bucketize(y, torch.tensor([-1.0, 1.0], dtype=DT)).to(DT),
     {"lr": 0.02, "momentum": 0.9}),
])
def test_glm_losses_land_on_the_map(loss, reduction, make_y, kwargs):
    X, y = _data()
    name = "adam" if loss == "bce_with_logits" else "sgd"
    res = audit(name, X, make_y(y), loss=loss, reduction=reduction, weight_decay=0.05,
                **kwargs)
    assert res.converged and res.distance <= 1e-6


def test_adamw_lands_on_the_box_not_on_the_ridge_map():
    X, y = _data()
    wd = 1.0
    ls = np.linalg.lstsq(np.c_[X.numpy(), np.ones(30)], y.numpy(), rcond=None)[0][:3]
    assert np.abs(ls).max() > 1 / wd  # the box is active
    res = audit("adamw", X, y, loss="mse", reduction="mean", lr=0.05, weight_decay=wd,
                betas=(0.9, 0.99), tol=1e-4)
    assert res.target_kind == "box"
    assert res.distance <= 1e-3
    assert res.naive_distance >= 0.05  # measurably away from what "weight decay" suggests
    assert res.posterior_residual > 1e-2
    assert float(res.coef.abs().max()) <= 1 / wd
    assert "not that prior" in str(res)


def test_constrained_linf_against_lbfgsb_on_the_formula():
    X, y = _data(seed=2)
    R = 0.8
    res = constrained_linf(X, y, R)
    Xn, yn = X.numpy(), y.numpy()

    def f(theta):  # 1/2 ||y - Xw - c||^2, theta = (w, c)
        r = yn - Xn @ theta[:3] - theta[3]
        return 0.5 * r @ r, -np.r_[Xn.T @ r, r.sum()]

    ref = minimize(f, np.zeros(4), jac=True, method="L-BFGS-B",
                   bounds=[(-R, R)] * 3 + [(None, None)],
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    assert np.allclose(res.coef.numpy(), ref.x[:3], atol=1e-7)
    assert res.intercept == pytest.approx(ref.x[3], abs=1e-7)
    assert res.converged and res.active and res.multiplier > 0 and res.norm == "linf"
    assert res.objective <= ref.fun * (1 + 1e-12)
    # a box that holds the least-squares point: inactive, multiplier 0, the OLS fit
    big = constrained_linf(X, y, 100.0)
    ls = np.linalg.lstsq(np.c_[Xn, np.ones(30)], yn, rcond=None)[0]
    assert not big.active and big.multiplier == 0.0
    assert np.allclose(big.coef.numpy(), ls[:3], atol=1e-10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.radius = 1.0
    with pytest.raises(ValueError, match="radius must be a positive finite number; got -1"):
        constrained_linf(X, y, -1)


def test_nonconvergence_is_reported_with_the_residual():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match=r"relative stationarity residual \d"):
        res = audit("adam", X, y, lr=0.1, weight_decay=0.05, max_epochs=5)
    assert not res.converged and res.epochs == 5 and res.distance > 1e-6
    with pytest.raises(ConvergenceError, match="residual"):
        audit("sgd", X, y, lr=0.1, weight_decay=0.05, max_epochs=5, strict=True)


def test_audit_validation():
    X, y = _data()
    with pytest.raises(ValueError, match="audit needs weight decay on the weight group"):
        audit("sgd", X, y, lr=0.1)
    with pytest.raises(ValueError, match="supports losses 'mse' and 'gaussian_nll'"):
        audit("adamw", X, (y > 0).to(DT), loss="bce_with_logits", weight_decay=0.1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        audit("lbfgs", X, y, weight_decay=0.1)
    with pytest.raises(ValueError, match=r"weight_decay must be a finite number >= 0; got -1"):
        audit("adam", X, y, weight_decay=-1)
    with pytest.raises(ValueError, match=r"lr must be a positive finite number; got 0"):
        audit("adam", X, y, weight_decay=0.1, lr=0)
    with pytest.raises(ValueError, match="optimizer options .* go into the factory"):
        audit(lambda groups: torch.optim.SGD(groups, lr=0.1), X, y, weight_decay=0.1)
    res = audit(lambda groups: torch.optim.SGD(groups, lr=0.1, weight_decay=0.05), X, y)
    assert res.distance <= 1e-6
