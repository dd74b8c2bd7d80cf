"""Networks as MAP (issue 10, item 3): a lifted MLP's log joint is the penalized training
loss; the engine and full-batch training meet at one stationary point; a Laplace prior gives
the engine exact zeros (KKT holds at them) and subgradient SGD none."""

from __future__ import annotations

import copy

import pytest
import torch

from mapreg.bayes.networks import lift_network, network_log_joint_grad
from mapreg.errors import ConvergenceWarning
from mapreg.networks import compare_network
from mapreg.penalized.networks import mlp, network_objective, stationarity, train_network

D, N = 5, 40


def _data(seed: int, noise: float = 0.1, n: int = N, binary: bool = False):
    """A teacher MLP (8 tanh units, weights x2) plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, D, dtype=torch.float64, generator=g)
    teacher = mlp(D, 8, seed=100 + seed)
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(2.0)
        f = teacher(X).squeeze(-1)
    if binary:
        return X, (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(f)).double()
    return X, f + noise * torch.randn(n, dtype=torch.float64, generator=g)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_log_joint_gradient_is_loss_plus_decay(likelihood, kind):
    X, y = _data(0, binary=likelihood == "bernoulli")
    net = mlp(D, 8, seed=3)
    with torch.no_grad():  # random parameters, no exact zeros (|w| is smooth there)
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64, generator=torch.Generator()
                                .manual_seed(p.numel())))
    sigma_eps, s1, s2 = 0.7, 0.8, 1.3
    model = lift_network(net, {"0.weight": (kind, s1), "2.weight": ("gaussian", s2)},
                         likelihood=likelihood, noise=sigma_eps)
    lw = 1 / sigma_eps ** 2 if likelihood == "gaussian" else 1.0
    # the mapping written out here, independently of the model's own statement
    c1 = (1 / (lw * s1 ** 2)) if kind == "gaussian" else 1 / (lw * s1)
    decay = {"0.weight": ("l2" if kind == "gaussian" else "l1", c1),
             "2.weight": ("l2", 1 / (lw * s2 ** 2))}
    for k in decay:
        assert model.decay[k][0] == decay[k][0]
        assert model.decay[k][1] == pytest.approx(decay[k][1], rel=1e-14)
    assert model.loss_weight == pytest.approx(lw, rel=1e-15)
    values = {k: v.detach() for k, v in net.named_parameters()}
    nlp, g_bayes = network_log_joint_grad(model, X, y, values)
    loss = "mse" if likelihood == "gaussian" else "bce"
    g_train, _ = stationarity(net, X, y, loss=loss, decay=decay)
    # the torch loss's own gradient + the decay term, by autograd on a separate objective
    net.zero_grad()
    network_objective(net, X, y, loss=loss, decay=decay).backward()
    for k, p in net.named_parameters():
        ref = lw * g_train[k]
        assert torch.allclose(g_bayes[k], ref, rtol=1e-10, atol=1e-12 * float(ref.abs().max()))
        assert torch.allclose(lw * p.grad, ref, rtol=1e-10, atol=1e-12 * float(ref.abs().max()))


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_engine_and_training_meet_at_one_stationary_point(optimizer):
    # SGD: torch.optim.SGD(momentum=0.95, weight_decay=wd), biases undecayed
    X, y = _data(1)
    r = compare_network(X, y, hidden=4, prior="gaussian", scale=1.0, noise=0.1, seed=1,
                        optimizer=optimizer)
    assert r.map_converged and r.train_status == "converged"
    assert r.map_residual <= 1e-10 and r.train_residual <= 1e-10
    assert r.max_rel_diff <= 1e-6
    # the penalized objective's gradient (the penalized side's code) vanishes at both points
    # (J's terms are O(1) here: sum over 40 points of 1/2 r^2 and its gradients)
    assert r.map_grad_norm <= 1e-8 and r.train_grad_norm <= 1e-8
    assert r.map_zeros == r.train_zeros == 0


def test_laplace_first_layer_zeros_from_engine_none_from_sgd():
    X, y = _data(3)
    r = compare_network(X, y, hidden=4, prior="laplace", scale=1.0, noise=0.1, seed=3,
                        l1_steps=3000)
    assert r.map_converged and r.map_residual <= 1e-10
    assert r.map_zeros >= 1
    assert r.kkt_zero_margin <= 0  # |dL/dw_j| <= kappa = 1/b (J's scale) at every zero
    assert r.train_zeros == 0
    assert r.train_status == "no_stopping_test"


def test_sgd_with_momentum_and_coupled_decay_reaches_the_lbfgs_point():
    X, y = _data(1)
    net = mlp(D, 4, seed=1)
    decay = {"0.weight": ("l2", 0.01), "2.weight": ("l2", 0.01)}
    with pytest.warns(ConvergenceWarning, match="stationarity residual"):  # a warm start
        train_network(net, X, y, decay=decay, optimizer="sgd", lr=2e-3, momentum=0.9,
                      max_steps=2000, tol=1e-12)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    ra = train_network(a, X, y, decay=decay, optimizer="lbfgs", max_steps=30, inner=100)
    rb = train_network(b, X, y, decay=decay, optimizer="sgd", lr=5e-3, momentum=0.95,
                       max_steps=40_000, tol=1e-9)
    assert ra.converged and rb.converged
    for k in ra.params:
        assert torch.allclose(ra.params[k], rb.params[k], rtol=0,
                              atol=1e-6 * float(ra.params[k].abs().max()))


def test_validation_messages():
    net = mlp(D, 4)
    with pytest.raises(ValueError, match="no prior"):
        lift_network(net, {"0.weight": ("gaussian", 1.0)})
    with pytest.raises(ValueError, match="scale must be a positive"):
        lift_network(net, {"0.weight": ("gaussian", -1.0), "2.weight": ("gaussian", 1.0)})
    with pytest.raises(ValueError, match="likelihood must be one of"):
        lift_network(net, {"0.weight": ("gaussian", 1.0), "2.weight": ("gaussian", 1.0)},
                     likelihood="poisson")
    X, y = _data(0)
    with pytest.raises(ValueError, match="needs optimizer='sgd'"):
        train_network(net, X, y, decay={"0.weight": ("l1", 0.1)}, optimizer="lbfgs")
    with pytest.raises(ValueError, match="not a parameter"):
        train_network(net, X, y, decay={"1.weight": ("l2", 0.1)})
    with pytest.raises(ValueError, match="prior must be one of"):
        compare_network(X, y, prior="horseshoe")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        compare_network(X, y, optimizer="adam")
    with pytest.raises(ValueError, match="noise must be a positive"):
        compare_network(X, y, noise=0.0)


def test_divergence_is_reported():
    X, y = _data(0)
    net = mlp(D, 4, seed=0)
    with pytest.warns(ConvergenceWarning, match="stationarity residual"):
        r = train_network(net, X, y, decay={"0.weight": ("l2", 0.1)}, optimizer="sgd",
                          lr=10.0, momentum=0.0, max_steps=200)
    assert r.status == "diverged" and not r.converged
