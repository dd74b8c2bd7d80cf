"""Pyro models. The MAP engine optimises their log joint; nothing here is a loss formula."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch.distributions import constraints

from .likelihoods import Categorical, GaussianNoise, Likelihood
from .priors import Prior

WEIGHT_SITE = "w"
INTERCEPT_SITE = "c"
OBS_SITE = "y"
ETA_SITE = "eta"  # a pyro.deterministic site of the GLM models: log density 0

# Pyro keeps its handler stack (poutine) and its param store in process-global state, so two
# threads tracing models at once corrupt each other's traces. Every Pyro evaluation in
# mapreg runs inside pyro_session(), which serialises them and gives each its own
# param-store scope.
_PYRO_LOCK = threading.RLock()


@contextmanager
def pyro_session() -> Iterator[None]:
    """Run Pyro traces safely: one thread at a time, in a private param-store scope.

    Holds a process-wide re-entrant lock for the duration (mapreg's fits may be called from
    several threads; they run their Pyro parts one after another) and leaves the user's
    param store as it was. Pyro code of your own running in another thread at the same
    time is not covered by the lock: Pyro itself is not thread-safe.
    """
    with _PYRO_LOCK, pyro.get_param_store().scope():
        yield


@contextmanager
def rng_scope(seed: int) -> Iterator[None]:
    """``pyro.set_rng_seed(seed)`` for the duration; the global torch, numpy and ``random``
    generator states are restored on exit (also on an exception): Pyro's seeding is global,
    and a seeded sampler must not change the caller's random streams."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 (pyro.set_rng_seed seeds this one)
    py_state = random.getstate()
    try:
        pyro.set_rng_seed(seed)
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)


def linear_model(prior: Prior, likelihood: GaussianNoise) -> Callable[..., torch.Tensor]:
    """Bayesian linear regression with an unpenalized intercept, as a Pyro model.

    ::

        w ~ prior.distribution(d)            # e.g. Normal(0, sigma) or Laplace(0, b), i.i.d.
        c ~ ImproperUniform(real)            # flat prior, log p(c) = 0: c is unpenalized
        y_i ~ Normal(x_i . w + c, noise)     # inside pyro.plate("data", n)

    The model broadcasts over leading batch dimensions of ``w`` and ``c`` (one trace then
    holds the log joint at several parameter values, summed). The returned callable takes
    ``(X, y=None)``. Its log joint is
    log p(y | w, c) + log p(w) + 0; the flat intercept prior cannot be sampled, so the model
    is meant to be conditioned on ``w`` and ``c`` (as the MAP engine does).
    """

    priors: dict[int, dist.TorchDistribution] = {}  # the prior of each d, built once
    flat = dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=())

    def model(X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, d = (int(k) for k in X.shape)  # ints also under torch.jit tracing (NUTS's JIT)
        if d not in priors:
            priors[d] = prior.distribution(d)
        w = pyro.sample(WEIGHT_SITE, priors[d])
        c = pyro.sample(INTERCEPT_SITE, flat)
        # Written to broadcast over leading batch dimensions of w (..., d) and c (...),
        # so that one trace can evaluate the log joint at many parameter values.
        mean = w @ X.T + c.unsqueeze(-1)
        with pyro.plate("data", n):
            return likelihood.observe(OBS_SITE, mean, y)

    return model


def glm_model(prior: Prior, likelihood: Likelihood) -> Callable[..., torch.Tensor]:
    """A generalised linear model with an unpenalized intercept, as a Pyro model.

    ::

        w ~ prior.distribution(d)             # (d,), or (d, K) for Categorical(K)
        c ~ ImproperUniform(real)             # shape () or (K,); flat, log p(c) = 0
        eta = X @ w + c                       # recorded as pyro.deterministic("eta")
        y_i ~ likelihood at eta_i             # inside pyro.plate("data", n)

    so its log joint is  -sum_i l_i(eta_i) - constant(y) + log p(w)  with l_i as in
    :mod:`mapreg.bayes.likelihoods` (Bernoulli: log(1 + e^eta) - y eta; Categorical:
    logsumexp(eta_i) - eta_{i, y_i}; Poisson: e^eta - y eta, constant sum log y!). The
    ``"eta"`` site is a masked Delta: its log probability is 0 and it adds nothing to the
    log joint (``tests/test_glm_models.py`` checks it).

    Like :func:`linear_model` the model broadcasts over leading batch dimensions of ``w``
    ((..., d) or (..., d, K)) and ``c`` ((...) or (..., K)): one trace conditioned on a
    batch of parameter values holds the log joint at each of them. The returned callable
    takes ``(X, y=None)``; the flat intercept prior cannot be sampled, so condition the
    model on ``w`` and ``c``. The responses are not validated here (the model is traced
    many times): validate them once with ``likelihood.check_y``.

    A :class:`GaussianNoise` likelihood gives :func:`linear_model` itself (no ``eta``
    site).
    """
    if isinstance(likelihood, GaussianNoise):
        return linear_model(prior, likelihood)
    n_classes = likelihood.n_classes if isinstance(likelihood, Categorical) else None

    def model(X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, d = (int(k) for k in X.shape)  # ints also under torch.jit tracing (NUTS's JIT)
        if n_classes is None:
            w = pyro.sample(WEIGHT_SITE, prior.distribution(d))
            c = pyro.sample(
                INTERCEPT_SITE,
                dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=()),
            )
            eta = w @ X.T + c.unsqueeze(-1)  # (..., n)
        else:
            w = pyro.sample(WEIGHT_SITE, prior.distribution((d, n_classes)))
            c = pyro.sample(
                INTERCEPT_SITE,
                dist.ImproperUniform(constraints.real, batch_shape=(),
                                     event_shape=(n_classes,)),
            )
            eta = X @ w + c.unsqueeze(-2)  # (..., n, K)
        eta = pyro.deterministic(ETA_SITE, eta)
        with pyro.plate("data", n):
            return likelihood.observe(OBS_SITE, eta, y)

    return model


def site_log_probs(model, X: torch.Tensor, y: torch.Tensor, coef: torch.Tensor,
                   intercept: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pyro's log probability of each sample site, at a batch of parameter values.

    ``coef`` has shape (B, d) and ``intercept`` (B,); returns {site name: tensor (B,)} from
    one trace of ``model`` conditioned on them (the model broadcasts over the batch), e.g.
    ``{"w": log p(w), "c": 0, "y": log p(y | w, c)}``.
    """
    from pyro import poutine

    B = coef.shape[0]
    data = {WEIGHT_SITE: coef, INTERCEPT_SITE: intercept}
    with pyro_session(), torch.no_grad():
        tr = poutine.trace(poutine.condition(model, data=data)).get_trace(X, y)
        tr.compute_log_prob()
    out = {}
    for name, site in tr.nodes.items():
        if site["type"] == "sample":
            lp = site["log_prob"]
            lp = lp.reshape(1).expand(B) if lp.numel() == 1 else lp.reshape(B, -1).sum(-1)
            out[name] = lp
    return out
