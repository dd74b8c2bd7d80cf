"""Dropout as a prior: inverted input dropout on linear regression is a Gaussian-prior MAP.

A bridge (it reads both sides). The penalized side (:mod:`mapreg.penalized.dropout`)
marginalizes the dropout masks in closed form::

    1/2 E_m ||y - X (m (.) w) / (1 - p) - c||^2
        = 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2,   lam_j = p/(1-p) sum_i x_ij^2

(x_ij the **raw** inputs: dropout zeroes them, not their deviations from the column mean,
so the sums are over the uncentred columns even though the model has an intercept). Divided
by sigma_eps^2 this is the negative log joint of

    w_j ~ Normal(0, sigma_j),  sigma_j^2 = sigma_eps^2 (1 - p) / (p sum_i x_ij^2),
    c ~ flat,  y_i ~ Normal(x_i.w + c, sigma_eps)

(the Gaussian term 1/2 w_j^2 / sigma_j^2 must equal 1/2 lam_j w_j^2 / sigma_eps^2). Its MAP
does not depend on sigma_eps (the sigma_j scale with it). :func:`dropout_as_prior` computes
that MAP with mapreg's general engine :func:`mapreg.map_model` from a Pyro model written the
way a user would (:func:`dropout_prior_model`), checks it against the closed-form
generalized ridge, and against long dropout training with averaged iterates
(:func:`mapreg.penalized.dropout.train_dropout`), whose Monte Carlo error is estimated from
independent chains.

What the prior is a prior *on*, and where the reading stops
-----------------------------------------------------------
* It is a prior on the weights w of the linear predictor of the *undropped* inputs (the
  model used at test time, when dropout is off and the inverted scaling makes E x~ = x);
  the intercept is flat.
* It depends on the data: sigma_j is set by sum_i x_ij^2 of the training inputs (and by n
  through it) -- a feature with a large raw second moment is shrunk harder, which is why
  dropout behaves like ridge on *standardized-by-second-moment* features (Wager, Wang &
  Liang 2013, "Dropout training as adaptive regularization"). A prior that is chosen after
  seeing X is not a prior in the strict Bayesian sense; it is an empirical, data-dependent
  penalty with a Gaussian reading. Scaling a feature by a rescales its weight by 1/a and its
  sigma_j by 1/a: the fit is invariant, unlike plain ridge.
* The identity is exact only because the loss is quadratic in the inputs. For a GLM the
  marginalized loss is approximated to second order (Wager et al. 2013: a penalty weighted
  by the Fisher information, again data dependent); for networks with hidden-unit dropout
  there is no such closed form. Gal & Ghahramani (2016) read dropout in networks as
  variational inference in a deep Gaussian process; Hron, Matthews & Ghahramani (2018,
  "Variational Bayesian dropout: pitfalls and fixes") show that the variational objective
  behind that reading is ill-posed for the usual (improper or continuous) priors, so it is
  not a posterior approximation in the strict sense. Here nothing beyond linear regression
  is claimed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch

from ._centring import centre
from ._results import FrozenResult
from ._validation import DTYPE, check_data, check_positive
from .bayes.engine import ModelMapResult, map_model
from .penalized.dropout import (
    DropoutTrainResult,
    _check_rate,
    dropout_penalty_weights,
    dropout_ridge,
    train_dropout,
)

__all__ = ["DropoutResult", "dropout_as_prior", "dropout_prior_model", "dropout_prior_sigma"]


def dropout_prior_sigma(X, p: float, noise: float = 1.0) -> torch.Tensor:
    """sigma_j = sigma_eps sqrt((1 - p) / (p sum_i x_ij^2)): the Gaussian prior scales whose
    MAP is inverted input dropout with rate p (raw, uncentred columns; module docstring)."""
    noise = check_positive("noise", noise)
    lam = dropout_penalty_weights(X, p)
    return noise / lam.sqrt()  # sigma_j^2 = noise^2 / lam_j = noise^2 (1-p) / (p S_j)


def dropout_prior_model(X: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor,
                        noise: float) -> None:
    """A user-style Pyro model: w ~ Normal(0, sigma) (per feature), c flat, Gaussian noise."""
    w = pyro.sample("w", dist.Normal(torch.zeros_like(sigma), sigma).to_event(1))
    c = pyro.sample("c", dist.ImproperUniform(dist.constraints.real, (), ()))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal(X @ w + c, noise), obs=y)


@dataclass(frozen=True, eq=False)
class DropoutResult(FrozenResult):
    """Outcome of :func:`dropout_as_prior` (frozen; tensors read as copies).

    Attributes
    ----------
    p, noise
        Dropout rate and sigma_eps.
    penalty_weights, prior_sigma
        lam_j = p/(1-p) sum_i x_ij^2 and sigma_j = noise / sqrt(lam_j).
    map_coef, map_intercept, map_result
        The MAP of :func:`dropout_prior_model` by :func:`mapreg.map_model`, and its result.
    ridge_coef, ridge_intercept
        The closed-form generalized ridge (:func:`mapreg.penalized.dropout.dropout_ridge`).
    map_vs_ridge
        max |MAP - ridge| over (w, c), relative to max |ridge|.
    training
        The averaged dropout training (:class:`DropoutTrainResult`), or None.
    train_z
        max over (w, c) of |average - MAP| / SE (SE from the independent chains).
    k
        The acceptance threshold for ``train_z``: Student's t quantile with chains - 1
        degrees of freedom at two-sided level 1e-3 / (d + 1) (Bonferroni over the d + 1
        coordinates).
    within_mc_error
        train_z <= k (False without training).
    ols_z, centred_z
        max |theta - MAP| / SE for the undropped least-squares point (minimum norm when not
        unique) and for the generalized ridge with the penalty wrongly computed on the
        *centred* columns: how far the average would have to be off to land there.
    ols_coef, centred_coef
        Those two points' weights (None without training).
    """

    p: float
    noise: float
    penalty_weights: torch.Tensor
    prior_sigma: torch.Tensor
    map_coef: torch.Tensor
    map_intercept: float
    map_result: ModelMapResult
    ridge_coef: torch.Tensor
    ridge_intercept: float
    map_vs_ridge: float
    training: DropoutTrainResult | None
    train_z: float
    k: float
    within_mc_error: bool
    ols_z: float
    centred_z: float
    ols_coef: torch.Tensor | None = None
    centred_coef: torch.Tensor | None = None

    def summary(self) -> str:
        """A few lines with the numbers."""
        lines = [
            f"dropout p = {self.p:g}: Gaussian prior sigma_j = "
            + ", ".join(f"{s:.3g}" for s in self.prior_sigma.tolist())
            + f" (noise {self.noise:g})",
            f"MAP (map_model) vs closed-form generalized ridge: {self.map_vs_ridge:.1e} relative",
        ]
        if self.training is not None:
            t = self.training
            lines.append(
                f"dropout training ({t.chains} chains x {t.steps} averaged steps, lr {t.lr:.3g}):"
                f" max |avg - MAP| / SE = {self.train_z:.2f} (k = {self.k:.2f}); least squares "
                f"is {self.ols_z:.3g} SE away, the centred-penalty ridge {self.centred_z:.3g} SE")
        return "\n".join(lines)


def _max_z(theta: torch.Tensor, ref: torch.Tensor, se: torch.Tensor) -> float:
    return float(((theta - ref).abs() / se).max())


def dropout_as_prior(
    X,
    y,
    p: float,
    *,
    noise: float = 1.0,
    train: bool = True,
    steps: int = 20_000,
    chains: int = 16,
    lr: float | None = None,
    seed: int = 0,
) -> DropoutResult:
    """Dropout on the inputs of a linear regression as a Gaussian prior, on numbers.

    Computes sigma_j (:func:`dropout_prior_sigma`), the MAP of
    :func:`dropout_prior_model` by :func:`mapreg.map_model` (maximising the log joint
    -[1/2 ||y - Xw - c||^2 / noise^2 + 1/2 sum_j w_j^2 / sigma_j^2] + const), the exact
    minimiser of the marginalized dropout loss 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2
    (closed form), and -- with ``train`` -- averaged full-batch dropout training
    (:func:`mapreg.penalized.dropout.train_dropout` with ``steps``, ``chains``, ``lr``,
    ``seed``) and its distance to the MAP in Monte Carlo standard errors.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    p : float
        Dropout rate in (0, 1).
    noise : float
        sigma_eps (the MAP does not depend on it; sigma_j scales with it).
    """
    X, y = check_data(X, y)
    p = _check_rate(p)
    noise = check_positive("noise", noise)
    n, d = X.shape
    exact = dropout_ridge(X, y, p)
    sigma = dropout_prior_sigma(X, p, noise)
    fit = map_model(dropout_prior_model, X, y, sigma, noise, strict=True)
    w_map, c_map = fit["w"], float(fit["c"])
    ridge_theta = torch.cat([exact.coef, torch.tensor([exact.intercept], dtype=DTYPE)])
    map_theta = torch.cat([w_map, torch.tensor([c_map], dtype=DTYPE)])
    agree = float((map_theta - ridge_theta).abs().max() / ridge_theta.abs().max())

    training, z, k, ols_z, centred_z = None, math.nan, math.nan, math.nan, math.nan
    w_ols = w_c = None
    if train:
        training = train_dropout(X, y, p, lr=lr, steps=steps, chains=chains, seed=seed)
        avg = torch.cat([training.coef, torch.tensor([training.intercept], dtype=DTYPE)])
        se = torch.cat([training.coef_se, torch.tensor([training.intercept_se], dtype=DTYPE)])
        z = _max_z(avg, map_theta, se)
        from scipy import stats  # here: scipy.stats costs ~0.2 s at import

        k = float(stats.t.ppf(1.0 - 1e-3 / (2 * (d + 1)), chains - 1))
        Xc, yc, xm, ym = centre(X, y)
        w_ols = torch.linalg.lstsq(Xc, yc[:, None], driver="gelsd").solution[:, 0]
        ols = torch.cat([w_ols, torch.tensor([float(ym - xm @ w_ols)], dtype=DTYPE)])
        ols_z = _max_z(ols, map_theta, se)
        lam_c = p / (1 - p) * (Xc * Xc).sum(0)  # the wrong, centred penalty
        w_c = torch.linalg.solve(Xc.T @ Xc + torch.diag(lam_c), Xc.T @ yc)
        cen = torch.cat([w_c, torch.tensor([float(ym - xm @ w_c)], dtype=DTYPE)])
        centred_z = _max_z(cen, map_theta, se)
    return DropoutResult(
        p=p,
        noise=noise,
        penalty_weights=exact.penalty_weights,
        prior_sigma=sigma,
        map_coef=w_map,
        map_intercept=c_map,
        map_result=fit,
        ridge_coef=exact.coef,
        ridge_intercept=exact.intercept,
        map_vs_ridge=agree,
        training=training,
        train_z=z,
        k=k,
        within_mc_error=bool(z <= k) if train else False,
        ols_z=ols_z,
        centred_z=centred_z,
        ols_coef=w_ols,
        centred_coef=w_c,
    )
