"""GLM likelihoods and Pyro models: the log joint of a Pyro trace is the formula written
here (negative log-likelihoods and prior terms with their constants), batched and
unbatched; autograd gradients are X'Delta; responses are validated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pyro import poutine
from scipy import integrate
from scipy.special import expit, gammaln, logsumexp, softmax

from mapreg.bayes.likelihoods import (
    LIKELIHOODS,
    Bernoulli,
    Categorical,
    GaussianNoise,
    Poisson,
    make_likelihood,
)
from mapreg.bayes.models import ETA_SITE, glm_model, linear_model
from mapreg.bayes.priors import ElasticNet, Gaussian, Laplace

N, D, K, B = 9, 4, 3, 5


def _responses(name: str, gen: torch.Generator) -> torch.Tensor:
    if name == "bernoulli":
        return torch.randint(0, 2, (N,), generator=gen).double()
    if name == "categorical":
        return torch.tensor([0, 1, 2, 2, 1, 0, 0, 2, 1], dtype=torch.float64)
    if name == "poisson":
        return torch.randint(0, 7, (N,), generator=gen).double()
    return torch.randn(N, generator=gen, dtype=torch.float64)


def _likelihood(name: str):
    return {"bernoulli": Bernoulli(), "categorical": Categorical(K), "poisson": Poisson(),
            "gaussian": GaussianNoise(0.7)}[name]


def nll(name: str, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log p(y | eta) summed over observations, written here (last axis of eta: n, or
    (n, K) for the categorical), constants included."""
    if name == "bernoulli":
        return (np.logaddexp(0.0, eta) - y * eta).sum(-1)
    if name == "categorical":
        picked = eta[..., np.arange(eta.shape[-2]), y.astype(int)]
        return (logsumexp(eta, axis=-1) - picked).sum(-1)
    if name == "poisson":
        return (np.exp(eta) - y * eta + gammaln(y + 1)).sum(-1)
    s = 0.7
    return (0.5 * (y - eta) ** 2 / s**2).sum(-1) + 0.5 * eta.shape[-1] * math.log(
        2 * math.pi * s**2)


def _en_log_z(sigma: float, b: float) -> float:
    half, _ = integrate.quad(lambda t: math.exp(-t / b - t * t / (2 * sigma**2)), 0, np.inf,
                             epsabs=0.0, epsrel=1e-13)
    return math.log(2 * half)


def prior_nll(prior, w: np.ndarray) -> np.ndarray:
    """-log p(w) per batch row (all but the first axis flattened), written here."""
    w = w.reshape(w.shape[0], -1)
    m = w.shape[1]
    if isinstance(prior, Gaussian):
        s = prior.sigma
        return (w**2).sum(1) / (2 * s**2) + 0.5 * m * math.log(2 * math.pi * s**2)
    if isinstance(prior, Laplace):
        return np.abs(w).sum(1) / prior.b + m * math.log(2 * prior.b)
    s, b = prior.sigma, prior.b
    return np.abs(w).sum(1) / b + (w**2).sum(1) / (2 * s**2) + m * _en_log_z(s, b)


def _trace(model, X, y, w, c):
    tr = poutine.trace(poutine.condition(model, data={"w": w, "c": c})).get_trace(X, y)
    tr.compute_log_prob()
    return tr


def _row_log_joint(tr, batch: int) -> torch.Tensor:
    total = 0
    for site in tr.nodes.values():
        if site["type"] == "sample":
            lp = site["log_prob"]
            total = total + (lp.reshape(1).expand(batch) if lp.numel() == 1
                             else lp.reshape(batch, -1).sum(-1))
    return total


def _params(name: str, gen: torch.Generator, batch: tuple[int, ...]):
    wshape = (*batch, D, K) if name == "categorical" else (*batch, D)
    cshape = (*batch, K) if name == "categorical" else batch
    w = torch.randn(wshape, generator=gen, dtype=torch.float64) * 0.8
    c = torch.randn(cshape, generator=gen, dtype=torch.float64)
    return w, c


PRIORS = [Gaussian(0.9), Laplace(0.4), ElasticNet(0.9, 0.4)]
NAMES = ["bernoulli", "categorical", "poisson", "gaussian"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("prior", PRIORS, ids=str)
def test_log_joint_is_the_formula_batched_and_unbatched(name, prior):
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = _responses(name, gen)
    w, c = _params(name, gen, (B,))
    model = glm_model(prior, _likelihood(name))
    batched = _row_log_joint(_trace(model, X, y, w, c), B).numpy()

    Xn, yn, wn, cn = X.numpy(), y.numpy(), w.numpy(), c.numpy()
    if name == "categorical":
        eta = Xn @ wn + cn[:, None, :]  # (B, n, K)
    else:
        eta = wn @ Xn.T + cn[:, None]  # (B, n)
    expected = -(nll(name, eta, yn) + prior_nll(prior, wn))
    magnitude = np.abs(expected).max()
    np.testing.assert_allclose(batched, expected, rtol=0, atol=1e-12 * magnitude)
    for i in (0, B - 1):  # one parameter value per trace gives the same numbers
        tr = _trace(model, X, y, w[i], c[i])
        assert float(tr.log_prob_sum()) == pytest.approx(expected[i], rel=0,
                                                         abs=1e-12 * magnitude)


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "poisson"])
def test_eta_site_records_the_linear_predictor_and_adds_nothing(name):
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = _responses(name, gen)
    w, c = _params(name, gen, (B,))
    tr = _trace(glm_model(Gaussian(1.0), _likelihood(name)), X, y, w, c)
    eta = tr.nodes[ETA_SITE]["value"]
    expected = X @ w + c[:, None, :] if name == "categorical" else w @ X.T + c[:, None]
    assert torch.allclose(eta, expected, rtol=0, atol=1e-14)
    assert not bool(tr.nodes[ETA_SITE]["log_prob"].any())
    without = sum(float(s["log_prob"].sum()) for k, s in tr.nodes.items()
                  if s["type"] == "sample" and k != ETA_SITE)
    assert float(tr.log_prob_sum()) == without


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "poisson"])
def test_gradients_are_x_transpose_delta(name):
    gen = torch.Generator().manual_seed(9)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = _responses(name, gen)
    w, c = _params(name, gen, ())
    sigma = 0.9
    w.requires_grad_(True)
    c.requires_grad_(True)
    tr = _trace(glm_model(Gaussian(sigma), _likelihood(name)), X, y, w, c)
    gw, gc = torch.autograd.grad(-tr.log_prob_sum(), [w, c])
    Xn, yn, wn, cn = X.numpy(), y.numpy(), w.detach().numpy(), c.detach().numpy()
    if name == "categorical":
        eta = Xn @ wn + cn
        delta = softmax(eta, axis=1) - np.eye(K)[yn.astype(int)]
    else:
        eta = Xn @ wn + cn
        delta = expit(eta) - yn if name == "bernoulli" else np.exp(eta) - yn
    np.testing.assert_allclose(gw.numpy(), Xn.T @ delta + wn / sigma**2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gc.numpy(), delta.sum(0), rtol=1e-12, atol=1e-12)


def test_gaussian_glm_is_the_linear_model_and_samples_are_valid():
    lik = GaussianNoise(0.5)
    assert glm_model(Gaussian(1.0), lik).__qualname__ == linear_model(Gaussian(1.0),
                                                                      lik).__qualname__
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    for name in ("bernoulli", "categorical", "poisson"):
        lik = _likelihood(name)
        w, c = _params(name, gen, ())
        with torch.random.fork_rng():
            torch.manual_seed(0)
            y = poutine.condition(glm_model(Laplace(1.0), lik), data={"w": w, "c": c})(X)
        assert y.shape == (N,)
        lik.check_y(y)  # the model's own draws are valid responses


def test_loss_weights_constants_and_names():
    y = torch.tensor([0.0, 3.0, 1.0])
    for name, cls in LIKELIHOODS.items():
        assert cls.name == name
    assert Bernoulli().loss_weight == Categorical(4).loss_weight == Poisson().loss_weight == 1.0
    assert Poisson().constant(y) == pytest.approx(math.log(6.0))
    assert Bernoulli().constant(y) == 0.0
    assert GaussianNoise(2.0).loss_weight == 0.25
    assert make_likelihood("categorical", n_classes=4) == Categorical(4)
    assert make_likelihood("gaussian", noise=2.0) == GaussianNoise(2.0)
    assert make_likelihood(Poisson()) == Poisson()


@pytest.mark.parametrize(
    ("lik", "y", "match"),
    [
        (Bernoulli(), [0, 1, 0.5], r"only the values 0 and 1 .*got y\[2\] = 0.5"),
        (Bernoulli(), [0, 2, 1, -1], r"bernoulli likelihood; got y\[1\] = 2.0 \(2 invalid"),
        (Categorical(3), [0, 1, 3], r"integers 0 \.\. 2 .*n_classes=3; got y\[2\] = 3.0"),
        (Categorical(3), [0, 1.5], r"got y\[1\] = 1.5"),
        (Categorical(3), [-1, 0], r"got y\[0\] = -1.0"),
        (Poisson(), [0, 4, -2], r"nonnegative integers .*poisson likelihood; got y\[2\] = -2.0"),
        (Poisson(), [0, 2.5], r"got y\[1\] = 2.5"),
        (Poisson(), [[0, 1], [1, 2]], r"y must be a non-empty 1-D array"),
        (Bernoulli(), [0, float("nan")], r"y must contain only finite values"),
    ],
)
def test_check_y_names_the_allowed_values_and_the_offending_one(lik, y, match):
    with pytest.raises(ValueError, match=match):
        lik.check_y(y)


def test_check_y_accepts_valid_responses_as_float64():
    assert Bernoulli().check_y(np.array([True, False])).dtype == torch.float64
    assert torch.equal(Categorical(3).check_y([2, 0, 1]), torch.tensor([2.0, 0.0, 1.0]))
    assert torch.equal(Poisson().check_y(np.array([[0], [7]])), torch.tensor([0.0, 7.0]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "gaussian"}, ValueError, r"noise is required for the 'gaussian' likelihood"),
        ({"name": "bernoulli", "noise": 1.0},
         ValueError, r"noise is only for the 'gaussian' likelihood, not 'bernoulli'; got "
                     r"noise=1.0"),
        ({"name": "categorical"}, ValueError, r"n_classes is required for the 'categorical'"),
        ({"name": "poisson", "n_classes": 3}, ValueError, r"n_classes is only for the "
                                                          r"'categorical' likelihood"),
        ({"name": "logistic"}, ValueError, r"likelihood must be one of 'gaussian', "
                                           r"'bernoulli', 'categorical', 'poisson'; got "
                                           r"'logistic'"),
        ({"name": Poisson(), "noise": 1.0}, ValueError, r"not both"),
        ({"name": "categorical", "n_classes": 1}, ValueError,
         r"n_classes must be an integer >= 2; got 1"),
        ({"name": "categorical", "n_classes": 2.5}, TypeError,
         r"n_classes must be an integer >= 1; got 2.5"),
        ({"name": "gaussian", "noise": -1.0}, ValueError,
         r"noise must be a positive finite number; got -1.0"),
    ],
)
def test_make_likelihood_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_likelihood(**kwargs)
