"""Figures of :func:`mapreg.posterior`: the posterior behind the penalty.

* :func:`plot_marginals` -- one violin per coefficient (the NUTS draws' density), with the
  MAP, the penalized optimum and the posterior mean and central interval marked;
* :func:`plot_posterior_draws` -- a two-feature problem: the contours of
  :func:`mapreg.plot_posterior` (Pyro's log posterior over (w1, w2)) with the NUTS draws on
  top;
* :func:`plot_gaussian_vs_laplace` -- two results' marginals side by side.

matplotlib is imported lazily; every function takes ``ax=None`` (a new figure) or draws
into the caller's Axes, and returns the Figure; none calls ``plt.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .posterior import PosteriorResult

__all__ = ["plot_gaussian_vs_laplace", "plot_marginals", "plot_posterior_draws"]

#: At most this many draws are scattered by :func:`plot_posterior_draws`.
MAX_SCATTER = 2000


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _coordinate_names(shape: tuple[int, ...]) -> list[str]:
    if len(shape) == 1:
        return [f"$w_{{{j}}}$" for j in range(shape[0])]
    return [f"$w_{{{j},{k}}}$" for j in range(shape[0]) for k in range(shape[1])]


def plot_marginals(result: PosteriorResult, ax: Axes | None = None) -> Figure:
    """Marginal posterior of every coefficient, with the MAP and the penalized optimum.

    One violin per coefficient (a kernel density of its NUTS draws, all chains), the
    posterior mean (short bar) and the central credible interval at ``result.level`` (thin
    line); the MAP (red star) and the penalized optimum (black x) sit on top of each other,
    while the posterior mean and median of a Laplace prior's zero coefficients do not sit
    at 0. Returns the Figure.
    """
    w = result.coef_draws
    flat = w.reshape(w.shape[0], -1).numpy()
    p = flat.shape[1]
    ax = _new_axes(ax, (max(6.0, 0.6 * p + 2.0), 4.2))
    pos = np.arange(p)
    parts = ax.violinplot([flat[:, j] for j in range(p)], positions=pos, widths=0.8,
                          showextrema=False)
    for body in parts["bodies"]:
        body.set_facecolor("tab:blue")
        body.set_alpha(0.35)
    lo, hi = result.interval()
    ax.vlines(pos, lo.reshape(-1).numpy(), hi.reshape(-1).numpy(), color="tab:blue",
              linewidth=1.2, label=f"{100 * result.level:g}% credible interval")
    ax.plot(pos, flat.mean(0), linestyle="none", marker="_", markersize=14, mew=2,
            color="tab:blue", label="posterior mean (NUTS)")
    ax.plot(pos, result.penalized_coef.reshape(-1).numpy(), linestyle="none", marker="x",
            markersize=9, mew=2, color="black",
            label=f"{result.prior.penalty_name} optimum (no Pyro)")
    ax.plot(pos, result.map_coef.reshape(-1).numpy(), linestyle="none", marker="*",
            markersize=11, color="tab:red", label="MAP (Pyro)", gid="map")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_xticks(pos, _coordinate_names(tuple(w.shape[1:])))
    ax.set_xlabel("coefficient")
    ax.set_ylabel("value")
    ax.set_title(f"Posterior marginals under a {result.prior} prior, $\\lambda$ = "
                 f"{result.lam:.4g}\nNUTS: {result.num_chains} chains x "
                 f"{result.num_samples} draws", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return ax.figure


def plot_posterior_draws(result: PosteriorResult, ax: Axes | None = None) -> Figure:
    """Two features: Pyro's posterior contours (:func:`mapreg.plot_posterior`) with the NUTS
    draws of (w1, w2) on top.

    ``plot_posterior`` draws log p(w, c(w) | y) with c(w) the intercept's conditional
    maximiser; with Gaussian noise and a flat intercept this profile differs from the
    marginal log p(w | y) (c integrated out) by a constant, so the contours are those of the
    marginal the draws come from. Gaussian likelihood and d = 2 only (ValueError otherwise).
    At most 2,000 draws are shown (evenly thinned). Returns the Figure.
    """
    from .lagrange_plots import _legend, plot_posterior

    d = result.map_coef.numel()
    if result.likelihood != "gaussian" or d != 2:
        raise ValueError("plot_posterior_draws needs a two-feature problem with the gaussian "
                         f"likelihood; got d={d}, likelihood={result.likelihood!r}")
    fig = plot_posterior(result.prior, X=result.X, y=result.y, noise=result.noise, ax=ax)
    target = ax if ax is not None else fig.axes[0]
    w = result.coef_draws.numpy()
    step = max(1, -(-w.shape[0] // MAX_SCATTER))
    shown = w[::step]
    target.scatter(shown[:, 0], shown[:, 1], s=3, color="tab:orange", alpha=0.35, zorder=4,
                   label=f"NUTS draws ({shown.shape[0]} of {w.shape[0]})")
    mean = w.mean(0)
    target.plot(mean[0], mean[1], marker="o", color="tab:orange", markeredgecolor="black",
                markersize=8, linestyle="none", zorder=6, label="posterior mean (NUTS)")
    # plot_posterior's legend (in a panel of its own figure, or below the caller's Axes) is
    # redrawn the same way with the draws' entries added
    panel = next((a for a in fig.axes if a is not target and a.get_legend() is not None),
                 None)
    for holder in (target, panel):
        if holder is not None and holder.get_legend() is not None:
            holder.get_legend().remove()
    _legend(target, panel)
    return fig


def plot_gaussian_vs_laplace(gaussian: PosteriorResult, laplace: PosteriorResult,
                             axes: tuple[Axes, Axes] | None = None) -> Figure:
    """:func:`plot_marginals` of a Gaussian-prior and a Laplace-prior result side by side,
    on a shared value axis. ``axes``: two Axes to draw into (default: a new figure)."""
    if axes is None:
        from matplotlib.figure import Figure

        p = max(gaussian.map_coef.numel(), laplace.map_coef.numel())
        fig = Figure(figsize=(max(10.0, 1.2 * p + 3.0), 4.4), layout="constrained")
        axes = tuple(fig.subplots(1, 2, sharey=True))
    plot_marginals(gaussian, ax=axes[0])
    plot_marginals(laplace, ax=axes[1])
    return axes[0].figure
