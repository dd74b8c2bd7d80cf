"""Batch norm breaks the MAP reading (issue 10, item 6): weights feeding a BatchNorm layer
have a scale-invariant loss, <grad_W L, W> = 0, the penalized objective has no minimizer,
and SGD's weight norm follows ||W'||^2 = (1 - eta lam)^2 ||W||^2 + eta^2 ||g||^2."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mapreg.penalized.batchnorm import (
    scale_invariance_check,
    scale_invariant_parameters,
    sgd_norm_recursion,
)

# torch refuses eps = 0 in training; 1e-300 is absorbed by any batch variance > 1e-284,
# so the layer is exactly BN without eps in float64 (except at W = 0, where it avoids 0/0)
EXACT = 1e-300


def _net(eps: float, seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(5, 8, dtype=torch.float64),
                             nn.BatchNorm1d(8, eps=eps, dtype=torch.float64), nn.Tanh(),
                             nn.Linear(8, 1, dtype=torch.float64))


def _data(n: int = 40):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(n, 5, dtype=torch.float64, generator=g),
            torch.randn(n, dtype=torch.float64, generator=g))


def _loss(out, y):
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


def test_which_parameters_are_scale_invariant():
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(),
                        nn.Sequential(nn.Conv1d(1, 2, 3, bias=False), nn.BatchNorm1d(2)),
                        nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    assert scale_invariant_parameters(net) == ["0.weight", "0.bias", "4.weight", "4.bias",
                                               "3.0.weight"]
    assert scale_invariant_parameters(nn.Sequential(nn.Linear(3, 1))) == []
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        scale_invariant_parameters("net")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_orthogonal_to_weights_and_no_minimizer(seed):
    X, y = _data()
    net = _net(EXACT, seed)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = scale_invariance_check(net, X, y, _loss, lam=1e-2)
    assert abs(r.inner) <= r.tolerance
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # restored
    # L(cW) = L(W) to rounding along the ray ...
    L1 = r.losses[r.scales.index(1.0)]
    assert max(abs(v - L1) for v in r.losses) <= 64 * 2.2e-16 * L1
    # ... so L(cW) + lam/2 c^2 ||W||^2 decreases strictly as c -> 0, towards L(W), never
    # reaching it: the infimum is not attained at any W != 0
    P = r.penalized
    assert all(a > b for a, b in zip(P, P[1:], strict=False))
    assert all(p > L1 - 64 * 2.2e-16 * L1 for p in P)
    # and W = 0 is not the limit: there BN sees a constant batch (0/0 without eps; with
    # eps = 1e-300 its output is 0), and the loss jumps to that of BN's shift alone
    assert abs(r.loss_at_zero - L1) > 1e-3
    # the bias before BN: its gradient is 0 (mean subtraction) to rounding
    net.zero_grad()
    _loss(net(X), y).backward()
    b = net[0].bias.grad
    assert float(b.abs().max()) <= 1e-14 * float(net[0].weight.grad.abs().max())


def test_layer_norm_weight_and_bias_jointly_invariant():
    X, y = _data()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        net = nn.Sequential(nn.Linear(5, 8, dtype=torch.float64),
                            nn.LayerNorm(8, eps=EXACT, dtype=torch.float64), nn.Tanh(),
                            nn.Linear(8, 1, dtype=torch.float64))
    assert scale_invariant_parameters(net) == ["0.weight", "0.bias"]
    _loss(net(X), y).backward()
    W, b = net[0].weight.detach(), net[0].bias.detach()
    gW, gb = net[0].weight.grad, net[0].bias.grad
    inner = float((gW * W).sum() + (gb * b).sum())
    terms = float((gW * W).abs().sum() + (gb * b).abs().sum())
    assert abs(inner) <= 4 * (40 + 5 + 48) * 2.2e-16 * terms
    # W alone is not invariant under LayerNorm (its bias is not removed)
    assert abs(float((gW * W).sum())) > 1e3 * abs(inner)


def test_eps_breaks_the_invariance_near_zero():
    X, y = _data()
    net = _net(1e-5, 0)
    r = scale_invariance_check(net, X, y, _loss)
    # with eps > 0, <g, W> = d/dc L(cW) at c = 1 is not 0 ...
    assert abs(r.inner) > 1e3 * r.tolerance
    # ... and its value is -2 eps dL/deps: L(cW; eps) = L(W; eps / c^2)
    h = 1e-3
    Lp = scale_invariance_check(_net(1e-5 * (1 + h), 0), X, y, _loss).losses[2]
    Lm = scale_invariance_check(_net(1e-5 * (1 - h), 0), X, y, _loss).losses[2]
    dL_deps = (Lp - Lm) / (2 * h * 1e-5)
    assert r.inner == pytest.approx(-2e-5 * dL_deps, rel=1e-4)
    # the loss is defined at W = 0 (BN's output is 0 there) and L(cW) moves toward it
    assert r.loss_at_zero == r.loss_at_zero  # finite, not NaN
    assert abs(r.losses[-1] - r.loss_at_zero) < abs(r.losses[2] - r.loss_at_zero)


def test_sgd_norm_recursion_exact_per_step():
    X, y = _data()
    net = _net(EXACT, 0)
    r = sgd_norm_recursion(net, X, y, _loss, lr=0.5, weight_decay=0.05, steps=300)
    assert r.max_rel_error <= 1e-12
    assert len(r.norms_sq) == 301
    # with eps = 1e-5 the cross term 2 eta (1 - eta lam) <g, W> is no longer 0
    r2 = sgd_norm_recursion(_net(1e-5, 0), X, y, _loss, lr=0.5, weight_decay=0.05, steps=50)
    assert r2.max_rel_error > 1e3 * r.max_rel_error


def test_validation():
    X, y = _data()
    with pytest.raises(ValueError, match="lr must be a positive"):
        sgd_norm_recursion(_net(EXACT), X, y, _loss, lr=-1.0)
    with pytest.raises(ValueError, match="not a parameter"):
        scale_invariance_check(_net(EXACT), X, y, _loss, name="9.weight")
    with pytest.raises(ValueError, match="no weight followed by a normalisation"):
        scale_invariance_check(nn.Sequential(nn.Linear(5, 1, dtype=torch.float64)), X, y,
                               _loss)


def test_with_eps_the_minimizer_along_a_ray_is_set_by_eps_not_by_lam():
    # L(cW; eps) = ell(eps / c^2): along a ray the loss depends on eps / c^2 only. Here ell
    # has its minimum at an effective eps t* > 0, so the penalized minimizer along the ray
    # sits at c* ~ sqrt(eps / t*) (the penalty lam/2 c^2 ||W||^2 is negligible there):
    # BN's numerical constant, not the prior's lam, sets the scale of the "MAP".
    from scipy.optimize import minimize_scalar

    X, y = _data()

    def c_star(eps, lam):
        net = _net(eps, 0)
        W = net[0].weight
        W0 = W.detach().clone()
        n2 = float((W0 ** 2).sum())

        def f(logc):
            with torch.no_grad():
                W.copy_(torch.exp(torch.tensor(logc)) * W0)
                return float(_loss(net(X), y)) + 0.5 * lam * float(torch.exp(
                    torch.tensor(2 * logc))) * n2

        r = minimize_scalar(f, bounds=(-30.0, 5.0), method="bounded",
                            options={"xatol": 1e-10})
        return float(torch.exp(torch.tensor(r.x)))

    c6, c8 = c_star(1e-6, 1e-2), c_star(1e-8, 1e-2)
    assert c6 / c8 == pytest.approx(10.0, rel=1e-2)  # c* proportional to sqrt(eps)
    assert c_star(1e-6, 1e-3) == pytest.approx(c6, rel=1e-2)  # and not moved by lam
