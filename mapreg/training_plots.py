"""L1 by training: the subgradient method never gives a zero, the proximal step does.

A bridge (it reads both sides): :func:`l1_subgradient_vs_prox` trains d2l's
``nn.Linear`` on the mean lasso objective

    (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) ||w||_1

twice from the same initial point with the same lam and the same step size lr -- once with
the L1 term in the loss (autograd's subgradient sign(w), seed 002's ``l1_penalty`` and d2l's
exercise) and once with a proximal (soft-thresholding) step -- and sets both against the
exact lasso (:func:`mapreg.lasso`) and the MAP under a Laplace prior
(:func:`mapreg.map_estimate`, b = noise^2 / lam). :func:`plot_l1_subgradient_vs_prox` draws
|w_j| against the epoch for the coordinates that are zero at the lasso optimum.

The lower bound on the subgradient iterates' distance to the optimum theta* = (w*, c*):
let g be the gradient of the smooth mean loss, H = A'A/n its Hessian (A = [X, 1]), Z the
coordinates with w*_j = 0 and s_j = lam/n - |g_j(theta*)| >= 0 their KKT slack. A step
from a point theta_k with w_j != 0 for every j in Z moves each of them by
lr |g_j(theta_k) + (lam/n) sign(w_j)| >= lr (s_j - |(H (theta_k - theta*))_j|), so
||theta_{k+1} - theta_k|| >= lr (||s_Z|| - ||H_Z||_2 ||theta_k - theta*||), H_Z the rows Z
of H. With both iterates within delta of theta*, 2 delta >= ||theta_{k+1} - theta_k||, i.e.

    max(||theta_k - theta*||, ||theta_{k+1} - theta*||)  >=  lr ||s_Z|| / (2 + lr ||H_Z||_2)

the subgradient method stays at a distance proportional to lr from the lasso point however
long it runs (the slacks are of order lam / n).
matplotlib is imported inside the plotting function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ._results import FrozenResult
from ._validation import DTYPE, check_data, check_nonnegative, check_positive, check_positive_int
from .bayes.map import map_estimate
from .bayes.priors import Laplace
from .datasets import d2l_weight_decay
from .dropout import DropoutResult
from .penalized.linear import lasso, lasso_lam_max
from .penalized.training import TrainResult, curvature_range, train_penalized

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True, eq=False)
class L1TrainingComparison(FrozenResult):
    """Outcome of :func:`l1_subgradient_vs_prox` (frozen; tensors read as copies).

    Attributes
    ----------
    lam, lr, threshold
        The canonical lambda, the common step size and lr * lam / n (the soft-threshold,
        also the size of one subgradient step of the L1 term).
    zero_set
        Indices j with w*_j == 0 at the exact lasso optimum.
    lasso_coef, lasso_intercept
        The exact lasso (:func:`mapreg.lasso`).
    map_coef, map_zero_set
        The MAP under Laplace(0, noise^2 / lam) and its exact zeros (Pyro's log joint).
    prox, subgradient
        The two :class:`~mapreg.TrainResult` runs (``penalty="l1-prox"`` / ``"l1"``).
    prox_abs, subgradient_abs
        |w_j| for j in ``zero_set`` after every epoch, shape (epochs, len(zero_set)).
    prox_zero_from
        The first epoch from which every w_j, j in ``zero_set``, is exactly 0.0 in the
        proximal run (to its end); None if never.
    last
        K, the number of final epochs the subgradient statistics below cover.
    subgradient_min_max_abs
        min over the last K epochs of max_{j in zero_set} |w_j|: > 0 means no epoch had
        all of them at zero.
    subgradient_exact_zeros
        Number of exact zeros among w_j, j in ``zero_set``, over the last K epochs.
    subgradient_min_distance
        min over consecutive epochs (k, k+1) among the last K of
        max(||theta_k - theta*||, ||theta_{k+1} - theta*||), theta = (w, c).
    distance_bound
        lr ||s_Z|| / (2 + lr ||H_Z||_2) (module docstring): a proven lower bound on
        ``subgradient_min_distance`` when every w_j, j in ``zero_set``, is non-zero.
    prox_rel_error, map_rel_error
        ||theta - theta*|| / ||theta*|| of the proximal run and of the Laplace MAP.
    """

    lam: float
    lr: float
    threshold: float
    zero_set: tuple[int, ...]
    lasso_coef: torch.Tensor
    lasso_intercept: float
    map_coef: torch.Tensor
    map_zero_set: tuple[int, ...]
    prox: TrainResult
    subgradient: TrainResult
    prox_abs: torch.Tensor
    subgradient_abs: torch.Tensor
    prox_zero_from: int | None
    last: int
    subgradient_min_max_abs: float
    subgradient_exact_zeros: int
    subgradient_min_distance: float
    distance_bound: float
    prox_rel_error: float
    map_rel_error: float

    def summary(self) -> str:
        """A few lines with the numbers."""
        z = len(self.zero_set)
        return "\n".join([
            f"lam = {self.lam:.4g}, lr = {self.lr:.4g}, lr lam / n = {self.threshold:.3g}; "
            f"the lasso has {z} zeros out of {len(self.lasso_coef)} weights",
            f"prox (ISTA): {self.prox.status} in {self.prox.epochs_run} epochs, relative error "
            f"{self.prox_rel_error:.2e}; every one of the {z} is exactly 0.0 from epoch "
            f"{self.prox_zero_from}",
            f"subgradient: over the last {self.last} epochs, {self.subgradient_exact_zeros} "
            f"exact zeros; max_j |w_j| never below {self.subgradient_min_max_abs:.3g}; distance "
            f"to the lasso >= {self.subgradient_min_distance:.3g} "
            f"(bound {self.distance_bound:.3g})",
        ])


def l1_subgradient_vs_prox(
    X=None,
    y=None,
    lam: float | None = None,
    *,
    noise: float | None = None,
    lr: float | None = None,
    epochs: int | None = None,
    last: int = 500,
    init_scale: float = 0.0,
    seed: int = 2024,
) -> L1TrainingComparison:
    """Train the lasso by the subgradient method and by proximal steps; compare with the
    exact lasso and the Laplace MAP.

    Both runs minimise (1/n) sum_i 1/2 (y_i - x_i.w - c)^2 + (lam/n) ||w||_1 by full-batch
    steps of size ``lr`` from the same initial point (:func:`mapreg.train_penalized` with
    ``penalty="l1"`` and ``"l1-prox"``); the exact optimum minimises the canonical
    1/2 ||y - Xw - c||^2 + lam ||w||_1 (the same problem times n).

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,), optional
        Default: d2l's weight-decay data (:func:`mapreg.d2l_weight_decay`, n = 20, d = 200)
        with its noise 0.01.
    lam : float, optional
        Canonical lambda > 0; default half of :func:`mapreg.lasso_lam_max`.
    noise : float, optional
        sigma_eps of the Laplace MAP (b = noise^2 / lam; the MAP does not depend on it);
        default the data set's noise, or 1.
    lr : float, optional
        Common step size; default 1/L, L the largest curvature of the mean loss.
    epochs : int, optional
        Subgradient epochs; default max(the proximal run's epochs, 2 * last). The proximal
        run stops on its residual (tolerance 1e-10 relative).
    last : int
        K: the subgradient statistics cover the last K epochs.
    init_scale, seed
        Initial w ~ N(0, init_scale^2) from ``torch.Generator(seed)`` (0: w = 0), bias 0.
    """
    if X is None and y is None:
        data = d2l_weight_decay()
        X, y = data.X, data.y
        noise = data.noise if noise is None else noise
    X, y = check_data(X, y)
    n, d = X.shape
    lam = 0.5 * lasso_lam_max(X, y) if lam is None else check_positive("lam", lam)
    noise = 1.0 if noise is None else check_positive("noise", noise)
    last = check_positive_int("last", last)
    init_scale = check_nonnegative("init_scale", init_scale)
    if lr is None:
        lr = 1.0 / curvature_range(X, 0.0)[1]
    lr = check_positive("lr", lr)

    exact = lasso(X, y, lam, strict=True)
    w_star, c_star = exact.coef, float(exact.intercept)
    zero = torch.nonzero(w_star == 0).squeeze(1)
    every = list(range(d))
    prox = train_penalized(X, y, penalty="l1-prox", lam=lam, lr=lr, init_scale=init_scale,
                           seed=seed, watch=every)
    if epochs is None:
        epochs = max(prox.epochs_run, 2 * last)
    epochs = check_positive_int("epochs", epochs)
    if last > epochs:
        raise ValueError(f"last must be an integer in [1, epochs = {epochs}]; got {last}")
    sub = train_penalized(X, y, penalty="l1", lam=lam, lr=lr, epochs=epochs,
                          init_scale=init_scale, seed=seed, watch=every)

    prior = Laplace(b=noise**2 / lam)
    mp = map_estimate(X, y, prior, noise)
    theta_star = torch.cat([w_star, torch.tensor([c_star], dtype=DTYPE)])
    scale = float(theta_star.norm())

    def rel(w, c) -> float:
        return float((torch.cat([w, torch.tensor([float(c)], dtype=DTYPE)]) - theta_star)
                     .norm()) / scale

    # the proximal run: exact zeros from some epoch on
    P = prox.watched[:, zero].abs()
    nonzero_rows = torch.nonzero((P != 0).any(1)).squeeze(1)
    if len(P) == 0 or (P[-1] != 0).any():
        zero_from = None
    else:
        zero_from = int(nonzero_rows[-1]) + 2 if len(nonzero_rows) else 1

    # the subgradient run: distance to theta* over the last K epochs, and the bound
    W = sub.watched
    S = W[:, zero].abs()
    Wl = W[-last:]
    dist_k = torch.sqrt(((Wl - w_star) ** 2).sum(1) + (sub.watched_bias[-last:] - c_star) ** 2)
    pair = torch.maximum(dist_k[:-1], dist_k[1:]) if last > 1 else dist_k
    A = torch.cat([X, torch.ones(n, 1, dtype=DTYPE)], dim=1)
    H = A.T @ A / n
    g = X.T @ (X @ w_star + c_star - y) / n
    slack = (lam / n - g.abs())[zero].clamp(min=0.0)
    HZ = float(torch.linalg.matrix_norm(H[zero], ord=2)) if len(zero) else 0.0
    bound = lr * float(slack.norm()) / (2.0 + lr * HZ)

    return L1TrainingComparison(
        lam=lam,
        lr=lr,
        threshold=lr * lam / n,
        zero_set=tuple(int(j) for j in zero),
        lasso_coef=w_star.clone(),
        lasso_intercept=c_star,
        map_coef=mp.coef.clone(),
        map_zero_set=tuple(int(j) for j in torch.nonzero(mp.coef == 0).squeeze(1)),
        prox=prox,
        subgradient=sub,
        prox_abs=P,
        subgradient_abs=S,
        prox_zero_from=zero_from,
        last=last,
        subgradient_min_max_abs=float(S[-last:].max(1).values.min()) if len(zero) else 0.0,
        subgradient_exact_zeros=int((S[-last:] == 0).sum()),
        subgradient_min_distance=float(pair.min()),
        distance_bound=bound,
        prox_rel_error=rel(prox.coef, prox.intercept),
        map_rel_error=rel(mp.coef, mp.intercept),
    )


def plot_l1_subgradient_vs_prox(result: L1TrainingComparison, ax: Axes | None = None,
                                n_lines: int = 3) -> Axes:
    """|w_j| against the epoch, log scale, for coordinates that are zero at the lasso optimum.

    Thin lines: ``n_lines`` of those coordinates per method; thick lines: the max over all
    of them. The proximal run's lines end where w_j becomes exactly 0.0 (log scale has no
    zero); a dotted vertical line marks the epoch from which all are 0.0. The dashed
    horizontal line is lr * lam / n. Returns the Axes.
    """
    if not isinstance(result, L1TrainingComparison):
        raise TypeError(f"result must be an L1TrainingComparison; got {type(result).__name__}")
    n_lines = check_positive_int("n_lines", n_lines)
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(7.5, 4.5), layout="constrained").add_subplot()
    z = len(result.zero_set)
    for name, M, color in (("subgradient (L1 term in the loss)", result.subgradient_abs, "C3"),
                           ("proximal step (soft-thresholding)", result.prox_abs, "C0")):
        M = M.numpy().copy()
        M[M == 0] = float("nan")
        ep = range(1, len(M) + 1)
        if z:
            for j in range(min(n_lines, z)):  # a few coordinates, thin
                ax.plot(ep, M[:, j], color=color, lw=0.5, alpha=0.35)
            ax.plot(ep, _nanmax(M), color=color, lw=2.0, label=f"{name}: max over the zeros")
    ax.axhline(result.threshold, color="k", ls="--", lw=1,
               label=r"lr $\lambda$ / n = " + f"{result.threshold:.2g}")
    if result.prox_zero_from is not None:
        ax.axvline(result.prox_zero_from, color="C0", ls=":", lw=1.2,
                   label=f"prox: all exactly 0.0 from epoch {result.prox_zero_from}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (full-batch step)")
    ax.set_ylabel(r"$|w_j|$ for $j$ with $w^*_j = 0$")
    support = [j for j in range(len(result.lasso_coef)) if j not in set(result.zero_set)]
    shown = (", ".join(map(str, support)) if len(support) <= 12
             else ", ".join(map(str, support[:12])) + ", ...")
    ax.set_title(f"L1 at the same lr and lambda: the lasso sets {z} of "
                 f"{len(result.lasso_coef)} weights to 0\n(all but w_j, j in {{{shown}}})",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_dropout_as_prior(result: DropoutResult, ax: Axes | None = None) -> Axes:
    """Per feature: least squares, the dropout MAP (= generalized ridge), the averaged dropout
    training (+- k SE, usually thinner than the marker) and the ridge with the penalty wrongly
    computed on centred columns. Returns the Axes."""
    if not isinstance(result, DropoutResult):
        raise TypeError(f"result must be a DropoutResult; got {type(result).__name__}")
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(7.0, 4.0), layout="constrained").add_subplot()
    d = len(result.map_coef)
    j = torch.arange(d, dtype=DTYPE).numpy()
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.plot(j, result.ols_coef.numpy(), "s", mfc="none", color="0.4",
            label="least squares (no dropout)")
    ax.plot(j, result.map_coef.numpy(), "o", ms=9, color="C0",
            label=f"MAP, prior N(0, sigma_j), by map_model (= ridge to {result.map_vs_ridge:.0e})")
    if result.training is not None:
        t = result.training
        ax.errorbar(j, t.coef.numpy(), yerr=result.k * t.coef_se.numpy(), fmt="x", color="C3",
                    capsize=3, label=f"dropout SGD, averaged ({t.chains} x {t.steps} steps) "
                                     f"+- {result.k:.1f} SE")
        ax.plot(j, result.centred_coef.numpy(), "+", ms=10, color="C2",
                label="ridge with the penalty on centred columns (wrong)")
    ax.set_xticks(j, [f"w{k}" for k in range(d)])
    ax.set_xlabel("feature")
    ax.set_ylabel("coefficient")
    ax.set_title(f"Input dropout p = {result.p:g} on linear regression is a per-feature "
                 f"Gaussian prior", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def _nanmax(M):
    import numpy as np

    out = np.full(len(M), np.nan)
    ok = ~np.isnan(M).all(1)
    out[ok] = np.nanmax(M[ok], axis=1)
    return out
