"""MAP of mapreg's own generalized linear models (Bernoulli, Categorical, Poisson).

The model is :func:`mapreg.bayes.models.glm_model`::

    W ~ prior (i.i.d., shape (d,) or (d, K)),  c ~ flat,  y_i ~ Lik(eta_i),  eta = X W + c

and the estimate is :func:`mapreg.bayes.engine.map_model` on it -- Pyro's log joint, exact
second-order information, exact zeros for a Laplace or elastic-net prior.

Evaluation on centred columns: the log joint depends on X, W and c only through
eta = X W + c, and X W + c = Xc W + a with Xc = X - mean(X), a = c + mean(X) W, so the
engine traces the same model on Xc and moves in (W, a); the intercept decouples from the
weights, and column offsets (a year around 2000, a unit of 1e4) cost no accuracy. The
reported c = a - mean(X) W and -log p(y, W, c) (a Pyro trace on the raw X).

For the softmax model the likelihood is invariant to adding one constant to every
intercept, and the flat prior on c does not fix it: the reported intercepts are the MAP
normalised to sum to zero (every other choice has the same log joint).
"""

from __future__ import annotations

import torch
from pyro import poutine

from .._centring import centre
from .._validation import check_data
from .engine import map_model
from .likelihoods import GaussianNoise
from .map import MapResult, _check_prior, map_estimate
from .models import INTERCEPT_SITE, WEIGHT_SITE, glm_model, pyro_session
from .priors import Prior


def map_glm(X, y, prior: Prior, likelihood, *, tol: float = 1e-10, max_iter: int = 100,
            strict: bool = False) -> MapResult:
    """MAP of a generalized linear model with an unpenalized intercept, from Pyro's log joint.

    With likelihood Bernoulli (logit link), Categorical (softmax: a (d, K) weight matrix
    with the prior on every entry) or Poisson (log link), the MAP minimises::

        sum_i l_i(eta_i) + kappa_1 ||W||_1 + (kappa_2 / 2) ||W||_F^2 + const

    (l_i the exact negative log likelihood, kappa_1 = prior.l1_weight, kappa_2 =
    prior.l2_weight), i.e. the canonical penalized GLM at lam = 1/sigma^2 or 1/b -- but the
    formula is nowhere used: values and derivatives come from Pyro traces of
    :func:`~mapreg.bayes.models.glm_model` (see the module docstring). A
    :class:`~mapreg.bayes.likelihoods.GaussianNoise` likelihood is handed to
    :func:`~mapreg.bayes.map.map_estimate`.

    Returns
    -------
    MapResult
        ``coef`` of shape (d,) or (d, K), ``intercept`` a float or a (K,) tensor (summing
        to zero), ``working_set_size`` the number of non-zero weights.
    """
    if isinstance(likelihood, GaussianNoise):
        return map_estimate(X, y, prior, likelihood.noise, tol=tol, max_iter=max_iter,
                            strict=strict)
    _check_prior(prior)
    X, y = check_data(X, y)
    y = likelihood.check_y(y)
    Xc, _, x_mean, _ = centre(X, torch.zeros(X.shape[0], dtype=X.dtype))
    model = glm_model(prior, likelihood)
    res = map_model(model, Xc, y, tol=tol, max_iter=max_iter, strict=strict, vectorized=True)
    W, a = res[WEIGHT_SITE], res[INTERCEPT_SITE]
    c = a - x_mean @ W
    if c.dim():
        c = c - c.mean()
    with pyro_session():
        nlj = neg_log_joint_glm(model, X, y, W, c)
    intercept = c if c.dim() else float(c)
    return MapResult(W, intercept, nlj, res.kkt_residual, res.kkt_tol, res.converged,
                     res.iterations, res.pyro_traces + 1, int((W != 0).sum()), res.wall_time,
                     res.method, res.kkt_floor)


def neg_log_joint_glm(model, X: torch.Tensor, y: torch.Tensor, coef: torch.Tensor,
                      intercept) -> float:
    """-log p(y, W, c) of a GLM at a given point, from one Pyro trace on the raw data."""
    c = torch.as_tensor(intercept, dtype=X.dtype)
    with torch.no_grad():
        data = {WEIGHT_SITE: coef, INTERCEPT_SITE: c}
        tr = poutine.trace(poutine.condition(model, data=data)).get_trace(X, y)
        return float(-tr.log_prob_sum())


def glm_neg_log_joint(X, y, prior: Prior, likelihood, coef, intercept) -> float:
    """-log p(y, W, c) of :func:`~mapreg.bayes.models.glm_model` at any point (W, c), from
    one Pyro trace: used to evaluate the penalized optimum under Pyro's objective."""
    _check_prior(prior)
    X, y = check_data(X, y)
    y = likelihood.check_y(y)
    W = torch.as_tensor(coef, dtype=X.dtype)
    with pyro_session():
        return neg_log_joint_glm(glm_model(prior, likelihood), X, y, W, intercept)
