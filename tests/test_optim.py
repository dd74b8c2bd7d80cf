"""implied_prior: the prior a torch optimizer's fixed point is the MAP of, checked on the
fixed-point equation of the real torch loss at the MAP computed by mapreg's engine."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from mapreg import Gaussian, Laplace, convert, make_likelihood, map_estimate, map_glm
from mapreg.optim import (
    implied_prior,
    implied_prior_for,
    implied_prior_from_penalty,
    implied_prior_sgdw,
)
from mapreg.penalized.optimizers import torch_loss

DT = torch.float64
N, D, NOISE = 24, 3, 0.7


def _data(loss: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=DT)
    eta = X @ torch.tensor([0.8, -1.2, 0.4], dtype=DT) + 0.2
    if loss in ("mse", "gaussian_nll"):
        return X, eta + 0.5 * torch.randn(N, generator=g, dtype=DT)
    if loss == "bce_with_logits":
        return X, torch.bernoulli(torch.sigmoid(eta), generator=g)
    if loss == "cross_entropy":
        y = torch.bucketize(eta + 0.5 * torch.randn(N, generator=g, dtype=DT),
                            torch.tensor([-0.5, 0.7], dtype=DT))
        assert set(y.tolist()) == {0, 1, 2}
        return X, y.to(DT)
    return X, torch.poisson(torch.exp(0.5 * eta), generator=g)


def _optimizers(params_w, params_b, wd):
    groups = [{"params": params_w, "weight_decay": wd}, {"params": params_b, "weight_decay": 0}]
    return {
        "sgd": torch.optim.SGD(groups, lr=0.1),
        "sgd_momentum_dampening": torch.optim.SGD(groups, lr=0.1, momentum=0.9, dampening=0.3),
        "sgd_nesterov": torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True),
        "adam": torch.optim.Adam(groups, lr=0.01, amsgrad=True),
        "rmsprop": torch.optim.RMSprop(groups, lr=0.01, momentum=0.5, centered=True),
        "adagrad": torch.optim.Adagrad(groups, lr=0.1, lr_decay=0.01),
    }


def _map(X, y, loss: str, sigma_eff: float):
    """The MAP by mapreg's engine for a prior N(0, sigma^2) (sigma in weight units)."""
    if loss in ("mse", "gaussian_nll"):
        return map_estimate(X, y, Gaussian(sigma=sigma_eff), NOISE)
    name = {"bce_with_logits": "bernoulli", "poisson_nll": "poisson"}.get(loss)
    lik = make_likelihood("categorical", n_classes=3) if name is None else name
    return map_glm(X, y, Gaussian(sigma=sigma_eff), lik)


CASES = [(loss, red) for loss in ("mse", "gaussian_nll", "bce_with_logits", "cross_entropy",
                                  "poisson_nll") for red in ("mean", "sum")]


@pytest.mark.parametrize(("loss", "reduction"), CASES)
def test_coupled_decay_fixed_point_is_the_map(loss, reduction):
    # every coupled optimizer reads the same prior; at the MAP by mapreg's engine under it,
    # the real torch loss's gradient plus wd * w vanishes (the optimizer's fixed point)
    X, y = _data(loss)
    K = 3 if loss == "cross_entropy" else 1
    lin = nn.Linear(D, K, dtype=DT)
    wd = 0.05 if reduction == "mean" else 0.8
    noise = NOISE if loss in ("mse", "gaussian_nll") else None
    sigmas = set()
    for name, opt in _optimizers([lin.weight], [lin.bias], wd).items():
        res = implied_prior(opt, loss, reduction, n=N, noise_scale=noise, module=lin)
        w, b = res.groups
        assert (w.kind, b.kind, w.params, b.params) == ("gaussian", "flat", ("weight",),
                                                        ("bias",)), name
        sigmas.add(w.sigma)
    assert len(sigmas) == 1
    sigma = sigmas.pop()
    est = _map(X, y, loss, sigma)
    with torch.no_grad():
        lin.weight.copy_(est.coef.T if K > 1 else est.coef.reshape(1, -1))
        lin.bias.copy_(torch.as_tensor(est.intercept, dtype=DT).reshape(-1))
    fn = torch_loss(loss, reduction, noise)
    eta = X @ lin.weight.T + lin.bias
    target = y.long() if K > 1 else y
    fn(eta if K > 1 else eta.squeeze(1), target).backward()
    G = lin.weight.grad + wd * lin.weight.detach()
    scale = float(lin.weight.grad.abs().max() + (wd * lin.weight.detach()).abs().max())
    assert float(G.abs().max()) <= 1e-8 * scale
    assert float(lin.bias.grad.abs().max()) <= 1e-8 * scale
    # a prior 10 % off is visibly not the fixed point
    off = _map(X, y, loss, 1.1 * sigma)
    with torch.no_grad():
        lin.weight.copy_(off.coef.T if K > 1 else off.coef.reshape(1, -1))
    lin.weight.grad = None
    eta = X @ lin.weight.T + lin.bias
    fn(eta if K > 1 else eta.squeeze(1), target).backward()
    assert float((lin.weight.grad + wd * lin.weight.detach()).abs().max()) > 1e-4 * scale


@pytest.mark.parametrize(("loss", "reduction", "inv_sigma2"), [
    ("mse", "mean", lambda wd: N * wd / (2 * NOISE**2)),
    ("mse", "sum", lambda wd: wd / (2 * NOISE**2)),
    ("gaussian_nll", "mean", lambda wd: N * wd),
    ("gaussian_nll", "sum", lambda wd: wd),
    ("bce_with_logits", "mean", lambda wd: N * wd),
    ("bce_with_logits", "sum", lambda wd: wd),
    ("cross_entropy", "mean", lambda wd: N * wd),
    ("poisson_nll", "sum", lambda wd: wd),
])
def test_closed_forms_and_conventions(loss, reduction, inv_sigma2):
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    wd = 0.03
    noise = NOISE if loss in ("mse", "gaussian_nll") else None
    g = implied_prior(torch.optim.SGD([p], lr=0.1, weight_decay=wd), loss, reduction, n=N,
                      noise_scale=noise).groups[0]
    assert g.sigma == pytest.approx(1 / math.sqrt(inv_sigma2(wd)), rel=1e-14)
    if loss == "mse":  # the conventions module says the same
        conv = f"torch_mse_{reduction}"
        assert g.sigma == pytest.approx(convert(wd, conv, "sigma", prior="gaussian", n=N,
                                                noise=NOISE), rel=1e-14)
        assert g.lam == pytest.approx(N * wd / 2 if reduction == "mean" else wd / 2, rel=1e-14)


def test_mse_without_noise_scale_gives_lam_and_relative_sigma():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    g = implied_prior(torch.optim.Adam([p], weight_decay=0.01), "mse", "mean", n=20).groups[0]
    assert g.sigma is None and g.lam == pytest.approx(0.1, rel=1e-14)
    assert g.scale_over_noise == pytest.approx(1 / math.sqrt(0.1), rel=1e-14)
    assert "sigma_eps" in str(g.sentence)


def test_cli_example_numbers():
    # mapreg optim --optimizer adam --weight-decay 0.01 --loss mse --reduction mean --n 20
    # --sigma-eps 0.5: 1/sigma^2 = n wd / (2 sigma_eps^2) = 0.2 / 0.5 = 0.4
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    res = implied_prior(torch.optim.Adam([p], weight_decay=0.01), "mse", "mean", n=20,
                        noise_scale=0.5)
    assert res.groups[0].sigma == pytest.approx(1 / math.sqrt(0.4), rel=1e-14)
    text = str(res)
    assert "Gaussian prior" in text and "group  parameters" in text and "1.58114" in text
    flags = implied_prior_for("adam", weight_decay=0.01, loss="mse", reduction="mean", n=20,
                              noise_scale=0.5)
    assert flags.groups[0].sigma == res.groups[0].sigma
    box = implied_prior_for("adam", weight_decay=0.01, decoupled_weight_decay=True,
                            reduction="sum")
    assert box.groups[0].radius == 100.0


@pytest.mark.parametrize("make", [
    lambda ps: torch.optim.AdamW(ps, weight_decay=0.25),
    lambda ps: torch.optim.Adam(ps, weight_decay=0.25, decoupled_weight_decay=True),
])
def test_decoupled_decay_is_a_box_whatever_the_loss_scale(make):
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    for loss, red, noise in (("mse", "mean", None), ("mse", "sum", 2.0),
                             ("bce_with_logits", "mean", None)):
        g = implied_prior(make([p]), loss, red, n=N, noise_scale=noise).groups[0]
        assert g.kind == "box" and g.radius == 4.0 and g.lam is None and g.sigma is None
        assert "1/wd = 4" in g.sentence


def test_adamw_fixed_point_equation():
    # one-parameter problem: loss (w - 3)^2, AdamW wd = 0.5 (box radius 2): the fixed point
    # satisfies wd w = -g / (|g| + eps), i.e. w = 2 (1 - eps/|g|) -- inside the box
    w = torch.zeros(1, dtype=DT, requires_grad=True)
    opt = torch.optim.AdamW([w], lr=0.1, weight_decay=0.5, eps=1e-3, betas=(0.5, 0.9))
    for _ in range(3000):  # g keeps its sign here: no oscillation, a constant lr settles
        opt.zero_grad()
        ((w - 3.0) ** 2).sum().backward()
        opt.step()
    w = float(w.detach())
    g = 2 * (w - 3.0)
    assert 0.5 * w == pytest.approx(-g / (abs(g) + 1e-3), abs=1e-12)
    assert implied_prior(opt, "mse", "sum").groups[0].radius == 2.0
    assert w < 2.0


def test_sgdw_precision_by_a_hand_written_loop():
    # SGDW-style: m <- mu m + g; w <- w - lr m - lr wd w (bias: no decay). Its fixed point is
    # the MAP at coupled-equivalent decay wd (1 - mu), not wd.
    X, y = _data("mse", seed=3)
    wd, mu, lr = 0.2, 0.9, 0.02
    res = implied_prior_sgdw(wd, momentum=mu, loss="mse", reduction="mean", n=N,
                             noise_scale=NOISE).groups[0]
    assert res.precision == pytest.approx(wd * (1 - mu), rel=1e-14)
    w = torch.zeros(D, dtype=DT)
    c = torch.zeros((), dtype=DT)
    mw, mc = torch.zeros_like(w), torch.zeros_like(c)
    for _ in range(4000):
        r = X @ w + c - y
        gw, gc = 2 * X.T @ r / N, 2 * r.mean()
        mw, mc = mu * mw + gw, mu * mc + gc
        w, c = w - lr * mw - lr * wd * w, c - lr * mc
    target = map_estimate(X, y, Gaussian(sigma=res.sigma), NOISE)
    assert float((w - target.coef).norm()) <= 1e-9 * float(target.coef.norm())
    coupled = implied_prior_sgdw(wd, momentum=0.0, n=N, noise_scale=NOISE).groups[0]
    wrong = map_estimate(X, y, Gaussian(sigma=coupled.sigma), NOISE)
    assert float((w - wrong.coef).norm()) > 1e-3 * float(target.coef.norm())
    # not lr-scaled: the decay D = wd, kappa = wd (1 - mu) / lr
    g2 = implied_prior_sgdw(wd, momentum=mu, lr=lr, lr_scaled=False, n=N).groups[0]
    assert g2.precision == pytest.approx(wd * (1 - mu) / lr, rel=1e-14)


def test_penalty_terms():
    X, y = _data("mse", seed=4)
    l2 = implied_prior_from_penalty(0.05, "l2", loss="mse", reduction="mean", n=N,
                                    noise_scale=NOISE).groups[0]
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    wd = implied_prior(torch.optim.SGD([p], lr=0.1, weight_decay=0.05), "mse", "mean", n=N,
                       noise_scale=NOISE).groups[0]
    assert l2.sigma == wd.sigma  # L2Decay(coeff) == coeff/2 ||w||^2 == weight_decay=coeff
    coeff = 1.0
    l1 = implied_prior_from_penalty(coeff, "l1", loss="mse", reduction="mean", n=N,
                                    noise_scale=NOISE).groups[0]
    assert l1.kind == "laplace" and l1.b == pytest.approx(2 * NOISE**2 / (N * coeff), rel=1e-14)
    est = map_estimate(X, y, Laplace(b=l1.b), NOISE)
    assert (est.coef == 0).any()  # a zero, so the subgradient condition is tested too
    w = est.coef.clone().requires_grad_(True)
    nn.MSELoss()(X @ w + est.intercept, y).backward()
    g = w.grad
    nz = est.coef != 0
    scale = float(g.abs().max()) + coeff
    assert float((g[nz] + coeff * torch.sign(est.coef[nz])).abs().max()) <= 1e-8 * scale
    assert float(g[~nz].abs().max()) <= coeff * (1 + 1e-8)
    lap = implied_prior_from_penalty(2.0, "l1", loss="bce_with_logits", reduction="sum")
    assert lap.groups[0].b == pytest.approx(0.5, rel=1e-14)


def test_batch_norm_and_layer_norm_flagged():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, eps=1e-30), nn.ReLU(),
                        nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 1)).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    res = implied_prior(opt, "mse", "mean", n=16, noise_scale=1.0, module=net)
    kinds = {name: g.kind for g in res.groups for name in g.params}
    assert kinds["5.weight"] == kinds["5.bias"] == kinds["1.weight"] == "gaussian"
    for name in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert kinds[name] == "none", name
    text = str(res)
    assert "scale invariant in these weights (BatchNorm1d follows)" in text
    assert "(LayerNorm follows)" in text
    # the reason on numbers: <grad W, W> = 0 for the weight before the batch norm (exactly
    # as eps -> 0; torch's default eps = 1e-5 breaks it by ~eps / var, and eps = 0 is refused)
    X = torch.randn(16, 3, dtype=DT)
    nn.MSELoss()(net(X).squeeze(1), torch.randn(16, dtype=DT)).backward()
    W = net[0].weight.detach()
    W.grad = net[0].weight.grad
    assert abs(float((W.grad * W).sum())) <= 1e-12 * float(W.grad.norm() * W.norm())
    assert float(net[0].bias.grad.abs().max()) <= 1e-12


def test_groups_without_decay_stalled_sgd_and_unnamed_params():
    a = torch.zeros(2, dtype=DT, requires_grad=True)
    b = torch.zeros(1, dtype=DT, requires_grad=True)
    opt = torch.optim.SGD([{"params": [a], "weight_decay": 0.1}, {"params": [b]}], lr=0.1,
                          momentum=0.5, dampening=1.0)
    res = implied_prior(opt, "bce_with_logits", "sum")
    assert [g.kind for g in res.groups] == ["none", "none"]
    assert "stall" in res.groups[0].sentence
    opt = torch.optim.RMSprop([{"params": [a], "weight_decay": 0.1}, {"params": [b]}])
    res = implied_prior(opt, "bce_with_logits", "sum")
    assert [g.kind for g in res.groups] == ["gaussian", "flat"]
    assert res.groups[0].params == ("#0 shape (2,)",)
    assert res.table("plain").splitlines()[0].startswith("group")


def test_result_is_frozen():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    res = implied_prior(torch.optim.Adagrad([p], weight_decay=0.1), "mse", "sum")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.loss = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.groups[0].sigma = 1.0


def test_validation():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    sgd = torch.optim.SGD([p], lr=0.1, weight_decay=0.1)
    with pytest.raises(ValueError, match=r"optimizer Adamax is not supported.*AdamW, RMSprop"):
        implied_prior(torch.optim.Adamax([p]), "mse", "sum")
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        implied_prior("adam", "mse", "sum")
    with pytest.raises(ValueError, match="maximize=True"):
        implied_prior(torch.optim.Adam([p], maximize=True), "mse", "sum")
    with pytest.raises(ValueError, match="n .* is required for reduction 'mean'"):
        implied_prior(sgd, "mse", "mean")
    with pytest.raises(ValueError, match="n must be an integer >= 1; got 0"):
        implied_prior(sgd, "mse", "mean", n=0)
    with pytest.raises(ValueError, match="loss must be one of .*; got 'l2'"):
        implied_prior(sgd, "l2", "sum")
    with pytest.raises(ValueError, match="reduction must be one of .*; got 'none'"):
        implied_prior(sgd, "mse", "none")
    with pytest.raises(ValueError, match="noise_scale .* 'bce_with_logits' has no noise"):
        implied_prior(sgd, "bce_with_logits", "sum", noise_scale=1.0)
    with pytest.raises(ValueError, match="noise_scale .* is required for loss 'gaussian_nll'"):
        implied_prior(sgd, "gaussian_nll", "sum")
    with pytest.raises(ValueError, match="noise_scale must be a positive finite number"):
        implied_prior(sgd, "mse", "sum", noise_scale=-1.0)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        implied_prior(sgd, "mse", "sum", module="net")
    with pytest.raises(ValueError, match="coeff must be a positive finite number; got 0"):
        implied_prior_from_penalty(0, "l1", loss="mse", reduction="sum")
    with pytest.raises(ValueError, match="norm must be one of 'l2', 'l1'; got 'linf'"):
        implied_prior_from_penalty(1.0, "linf", loss="mse", reduction="sum")
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\); got 1.0"):
        implied_prior_sgdw(0.1, momentum=1.0, reduction="sum")
    with pytest.raises(ValueError, match="lr is required when lr_scaled=False"):
        implied_prior_sgdw(0.1, lr_scaled=False, reduction="sum")
