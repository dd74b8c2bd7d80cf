"""The numbers behind the Lagrangian picture of a two-feature problem.

For a prior (Gaussian sigma / Laplace b) and noise sigma_eps, with lam = sigma_eps^2 * kappa:

* the penalized optimum w*(lam) of 1/2 ||r||^2 + lam P(w) (exact solver),
* the constrained optimum of 1/2 ||r||^2 s.t. ||w||_2^2 <= theta or ||w||_1 <= t at the radius
  theta = ||w*||_2^2 (t = ||w*||_1), with its KKT multiplier (= lam),
* the MAP from Pyro's log joint,
* the unconstrained least-squares point and the path w*(lam') for lam' from ~0 to lam_max,

all as numbers in a frozen :class:`LagrangePicture`; :mod:`mapreg.lagrange_plots` draws them.
:func:`box_picture` does the same for AdamW's decoupled weight decay, which is no prior: the
l_inf box ||w||_inf <= 1/weight_decay that full-batch AdamW converges to the least-squares
point inside (:class:`BoxPicture`).
The intercept is unpenalized and profiled out: for each w, c(w) = mean(y) - mean(X) . w, so
the loss drawn over the (w1, w2) plane is L(w) = 1/2 ||yc - Xc w||^2 (centred data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._results import FrozenResult
from ._validation import check_bool, check_choice, check_positive, check_positive_int
from .bayes.map import map_estimate
from .bayes.priors import PRIORS, Prior, make_prior
from .datasets import resolve_data
from .penalized.constrained import (
    constrained_linf,
    lam_from_radius,
    radius_from_lam,
    solve_constrained,
)
from .penalized.linear import lasso_lam_max, ridge, solve_penalized

_NORM = {"gaussian": "l2", "laplace": "l1"}
#: The priors with one constraint ball: the L2 disk (Gaussian) and the L1 diamond (Laplace).
BALL_PRIORS = tuple(_NORM)


def ball_prior(name: str) -> str:
    """``name`` if that prior has a constraint ball, else a ValueError that says why."""
    if name not in _NORM:
        raise ValueError(f"prior must be one of {', '.join(map(repr, BALL_PRIORS))} here: the "
                         f"Lagrangian picture and the path draw one norm ball (L2 disk, L1 "
                         f"diamond), and the {name!r} prior has none; got {name!r}")
    return name


@dataclass(frozen=True, eq=False)
class LagrangePicture(FrozenResult):
    """Everything the 2-D figures show, computed (frozen).

    ``radius`` is theta (bound on ||w||_2^2) for the Gaussian prior and t (bound on ||w||_1)
    for the Laplace prior; ``multiplier`` is the constrained solver's KKT multiplier.
    Points are numpy arrays of shape (2,); ``path`` has shape (k, 2) along ``path_lams``.
    Like every result: reading an array or tensor field returns a copy (the picture keeps
    its own), and ``==`` compares field by field, arrays by value.
    """

    prior: Prior
    noise: float
    lam: float
    norm: str
    radius: float
    multiplier: float
    optimum: np.ndarray
    constrained: np.ndarray
    map: np.ndarray
    intercept: float
    ols: np.ndarray
    path_lams: np.ndarray
    path: np.ndarray
    X: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)

    def loss(self, W: np.ndarray) -> np.ndarray:
        """L(w) = 1/2 ||yc - Xc w||^2 at points W of shape (..., 2) (intercept profiled out)."""
        return _profiled_loss(self.X, self.y, W)

    def penalty(self, W: np.ndarray) -> np.ndarray:
        """P(w): 1/2 ||w||^2 (Gaussian) or ||w||_1 (Laplace), at points of shape (..., 2)."""
        return 0.5 * (W**2).sum(-1) if self.norm == "l2" else np.abs(W).sum(-1)

    def objective(self, W: np.ndarray) -> np.ndarray:
        """The penalized objective L(w) + lam P(w)."""
        return self.loss(W) + self.lam * self.penalty(W)


def _profiled_loss(X: torch.Tensor, y: torch.Tensor, W: np.ndarray) -> np.ndarray:
    """L(w) = 1/2 ||yc - Xc w||^2 at points W of shape (..., 2): the least-squares loss with
    the intercept profiled out (c = mean(y) - mean(X) . w)."""
    Xc = (X - X.mean(0)).numpy()
    yc = (y - y.mean()).numpy()
    G, h, k = Xc.T @ Xc, Xc.T @ yc, 0.5 * float(yc @ yc)
    return 0.5 * np.einsum("...i,ij,...j->...", W, G, W) - W @ h + k


def two_feature_data(X, y, noise, dataset: str | None):
    """(X, y, noise) from the user or from a built-in data set; X must have two columns."""
    X, y, noise, _ = resolve_data(X, y, noise, dataset, default="two_feature")
    if X.shape[1] != 2:
        raise ValueError(
            f"the 2-D picture needs exactly two features (X of shape (n, 2)); got X with "
            f"{X.shape[1]} columns -- select two columns, or use plot_path for any d"
        )
    return X, y, noise


def lagrangian_picture(
    prior: str | Prior,
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    n_path: int = 80,
) -> LagrangePicture:
    """Compute the Lagrangian picture for a two-feature problem (see the module docstring)."""
    prior_obj = make_prior(prior, sigma=sigma, b=b)
    ball_prior(prior_obj.name)
    X, y, noise = two_feature_data(X, y, noise, dataset)
    n_path = check_positive_int("n_path", n_path)
    lam = prior_obj.lam(noise)
    norm = _NORM[prior_obj.name]
    pen = solve_penalized(X, y, prior_obj.penalty_name, lam)
    w = pen.coef
    radius = float(w @ w) if norm == "l2" else float(w.abs().sum())
    if radius == 0.0:  # exact: the lasso's soft-thresholding gives w = 0 for lam >= lam_max
        raise ValueError(
            f"at lam = {lam:.6g} every coefficient is 0 (lam >= lam_max = "
            f"{lasso_lam_max(X, y):.6g}), so there is no ball to draw: use a larger "
            f"{prior_obj.scale_name}"
        )
    con = solve_constrained(X, y, norm, radius)
    mp = map_estimate(X, y, prior_obj, noise)
    ols = ridge(X, y, 0.0).coef.numpy()
    if norm == "l1":
        top = lasso_lam_max(X, y)
        lams = np.geomspace(1e-3 * top, top, n_path)
    else:
        s2 = float(torch.linalg.matrix_norm(X - X.mean(0), ord=2)) ** 2
        lams = np.geomspace(1e-3 * s2, 1e3 * s2, n_path)
    path = np.array([solve_penalized(X, y, prior_obj.penalty_name, float(lm)).coef.numpy()
                     for lm in lams])
    path = np.vstack([ols, path, np.zeros(2)])
    lams = np.concatenate([[0.0], lams, [np.inf]])
    return LagrangePicture(
        prior=prior_obj, noise=noise, lam=lam, norm=norm, radius=radius,
        multiplier=con.multiplier, optimum=w.numpy(), constrained=con.coef.numpy(),
        map=mp.coef.numpy(), intercept=pen.intercept, ols=ols, path_lams=lams, path=path,
        X=X, y=y,
    )


# ------------------------------------------------- constraint radius <-> prior (bridge)


def radius_from_prior(X, y, prior, noise: float) -> float:
    """theta (Gaussian prior, sigma) or t (Laplace prior, b) for lam = noise^2 * kappa."""
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a mapreg Prior (e.g. Gaussian(0.5)); got {prior!r}")
    return radius_from_lam(X, y, prior.lam(noise), _NORM[ball_prior(prior.name)])


def prior_from_radius(X, y, radius: float, prior: str, noise: float):
    """The prior (Gaussian sigma or Laplace b) whose MAP is the constrained solution.

    Raises ValueError when the constraint is inactive (multiplier 0): no proper prior of
    this family corresponds, the limit is sigma -> inf (b -> inf), a flat prior.
    """
    prior = ball_prior(check_choice("prior", prior, PRIORS))
    lam = lam_from_radius(X, y, radius, _NORM[prior])
    if lam <= 0.0:
        name = "theta" if prior == "gaussian" else "t"
        raise ValueError(
            f"{name}={radius!r} does not bind: the least-squares solution lies inside the ball, "
            f"so lambda = 0 and the matching {prior} prior has infinite scale (a flat prior)"
        )
    return PRIORS[prior].from_lam(lam, noise)


# ------------------------------------------------------ AdamW: the l_inf box (no prior)


@dataclass(frozen=True, eq=False)
class BoxPicture(FrozenResult):
    """The numbers of the l_inf box picture (frozen): AdamW with ``weight_decay`` wd.

    Attributes
    ----------
    weight_decay, radius
        wd and the box radius R = 1/wd.
    optimum
        argmin 1/2 ||y - Xw - c||^2 s.t. ||w||_inf <= R (:func:`constrained_linf`), the
        point full-batch AdamW converges to (Xie & Li, ICML 2024); (2,) array.
    multiplier
        Its KKT multiplier mu = ||g||_1 (the same point minimises 1/2 ||r||^2 + mu ||w||_inf).
    adamw
        The point ``torch.optim.AdamW(weight_decay=wd)`` reached, trained full batch on
        MSELoss(sum) to a relative stationarity of 1e-6 (None with ``train=False``).
    coupled_lam, coupled
        What "weight decay" suggests: Adam with *coupled* weight_decay = wd on the same loss
        is ridge with canonical lam = wd / 2 (:func:`mapreg.implied_prior_for`), and its
        optimum -- where AdamW does not go.
    ols
        The least-squares point.
    """

    weight_decay: float
    radius: float
    optimum: np.ndarray
    multiplier: float
    adamw: np.ndarray | None
    coupled_lam: float
    coupled: np.ndarray
    ols: np.ndarray
    X: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)

    def loss(self, W: np.ndarray) -> np.ndarray:
        """L(w) = 1/2 ||yc - Xc w||^2 at points W of shape (..., 2) (intercept profiled out)."""
        return _profiled_loss(self.X, self.y, W)


def box_picture(weight_decay: float | None = None, *, X=None, y=None,
                dataset: str | None = None, train: bool = True) -> BoxPicture:
    """The l_inf box picture of AdamW's decoupled weight decay on a two-feature problem.

    ``weight_decay`` defaults to 2 / ||w_LS||_inf (a box of half the least-squares point's
    largest coordinate, so it binds). See :class:`BoxPicture` for what is computed; with
    ``train=True`` AdamW itself is run (lr 0.05, betas (0.9, 0.99), a few seconds at most).
    """
    from .optim import implied_prior_for
    from .penalized.optimizers import train_full_batch

    X, y, _ = two_feature_data(X, y, 1.0, dataset)
    ols = ridge(X, y, 0.0).coef.numpy()
    if weight_decay is None:
        top = float(np.abs(ols).max())
        if top == 0.0:
            raise ValueError("the least-squares point is 0: no box binds; pass weight_decay")
        weight_decay = 2.0 / top
    wd = check_positive("weight_decay", weight_decay)
    radius = 1.0 / wd
    box = constrained_linf(X, y, radius)
    adamw = None
    if check_bool("train", train):
        run = train_full_batch(X, y, "adamw", loss="mse", reduction="sum", weight_decay=wd,
                               lr=0.05, betas=(0.9, 0.99), tol=1e-6)
        adamw = run.coef.numpy().reshape(-1)
    lam = implied_prior_for("adam", weight_decay=wd, loss="mse", reduction="sum").groups[0].lam
    coupled = ridge(X, y, lam).coef.numpy()
    return BoxPicture(weight_decay=wd, radius=radius, optimum=box.coef.numpy(),
                      multiplier=box.multiplier, adamw=adamw, coupled_lam=lam, coupled=coupled,
                      ols=ols, X=X, y=y)
