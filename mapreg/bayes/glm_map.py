"""MAP of mapreg's own generalized linear models (Bernoulli, Categorical, Poisson).

The model is :func:`mapreg.bayes.models.glm_model`::

    W ~ prior (i.i.d., shape (d,) or (d, K)),  c ~ flat,  y_i ~ Lik(eta_i),  eta = X W + c

and the estimate is :func:`mapreg.bayes.engine.map_model`'s method on it -- Pyro's log
joint, exact zeros for a Laplace or elastic-net prior -- with the model's linear predictor
declared (:class:`~mapreg.bayes.engine.LinearPredictor`): the exact Hessian is J' D J + P
with D and P from Pyro's trace by autograd and J = d eta / d(W, c), one trace per iterate.

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
from .._validation import check_bool, check_data, check_positive, check_positive_int
from .engine import LinearPredictor, _fit
from .likelihoods import Categorical, GaussianNoise, make_likelihood
from .map import MapResult, _check_prior, map_estimate
from .models import ETA_SITE, INTERCEPT_SITE, WEIGHT_SITE, glm_model, pyro_session
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
    likelihood = make_likelihood(likelihood)  # an instance, or a name (not "categorical")
    if isinstance(likelihood, GaussianNoise):
        return map_estimate(X, y, prior, likelihood.noise, tol=tol, max_iter=max_iter,
                            strict=strict)
    _check_prior(prior)
    X, y = check_data(X, y, copy=False)  # only read: the engine works on a centred copy
    y = likelihood.check_y(y)
    _check_mode_exists(y, likelihood)
    Xc, _, x_mean, _ = centre(X, torch.zeros(X.shape[0], dtype=X.dtype))
    model = glm_model(prior, likelihood)
    K = likelihood.n_classes if isinstance(likelihood, Categorical) else None
    predictor = LinearPredictor(ETA_SITE, Xc, WEIGHT_SITE, INTERCEPT_SITE, K)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    res = _fit(model, (Xc, y), {}, tol, max_iter, strict, {}, True, predictor)
    W, a = res[WEIGHT_SITE], res[INTERCEPT_SITE]
    c = a - x_mean @ W
    if c.dim():
        c = c - c.mean()
    with pyro_session():
        nlj = _neg_log_joint_glm(model, X, y, W, c)
    intercept = c if c.dim() else float(c)
    return MapResult(W, intercept, nlj, res.kkt_residual, res.kkt_tol, res.converged,
                     res.iterations, res.pyro_traces + 1, int((W != 0).sum()), res.wall_time,
                     res.method, res.kkt_floor)


def _check_mode_exists(y: torch.Tensor, likelihood) -> None:
    """The flat intercept needs data on both sides: without it log p increases without
    bound as c goes to -inf or +inf, and there is no MAP (a ValueError says why)."""
    name = likelihood.name
    if name == "bernoulli" and torch.unique(y).numel() < 2:
        raise ValueError(f"y must contain both 0 and 1 for the bernoulli likelihood: with a flat "
                         f"intercept a single class has no MAP (c -> +-inf); got only "
                         f"{float(y[0]):g}")
    if name == "poisson" and not bool((y > 0).any()):
        raise ValueError("y must contain a positive count for the poisson likelihood: with a "
                         "flat intercept all-zero counts have no MAP (c -> -inf)")
    if name == "categorical":
        seen = set(torch.unique(y).long().tolist())
        missing = sorted(set(range(likelihood.n_classes)) - seen)
        if missing:
            raise ValueError(f"every class 0..{likelihood.n_classes - 1} must occur in y for the "
                             f"categorical likelihood: the flat intercept of an absent class has "
                             f"no MAP (c_k -> -inf); classes {missing[:6]} never occur")


def _neg_log_joint_glm(model, X: torch.Tensor, y: torch.Tensor, coef: torch.Tensor,
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
    X, y = check_data(X, y, copy=False)  # only read: the engine works on a centred copy
    y = likelihood.check_y(y)
    W = torch.as_tensor(coef, dtype=X.dtype)
    with pyro_session():
        return _neg_log_joint_glm(glm_model(prior, likelihood), X, y, W, intercept)
