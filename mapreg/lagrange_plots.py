"""Figures of the Lagrangian and Bayesian pictures, drawn from computed numbers.

Every function takes ``ax=None`` (or draws its own figure) and returns the Figure; none calls
``plt.show()``. matplotlib is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ._validation import check_choice
from .bayes.priors import Prior, make_prior
from .lagrange import BoxPicture, LagrangePicture, ball_prior, box_picture, lagrangian_picture

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_SYMBOL = {"gaussian": r"\sigma", "laplace": "b"}


def _figure(ax, figsize):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _with_legend_row(figsize, ncols: int = 1):
    """A figure with ``ncols`` plot axes over a row of axes-less legend panels."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(2, ncols, height_ratios=[6, 1])
    axes = [fig.add_subplot(grid[0, j]) for j in range(ncols)]
    legends = [fig.add_subplot(grid[1, j]) for j in range(ncols)]
    for lax in legends:
        lax.set_axis_off()
    return fig, axes, legends


def _legend(ax, legend_ax, ncol: int = 2):
    """Put ax's legend into ``legend_ax`` (a panel below the plot) or, when drawing into a
    caller's Axes, below that Axes' x label: never over the contours and markers (the 'best'
    placement ignores contour sets and would cover them). Use ``layout="constrained"`` or
    ``savefig(..., bbox_inches="tight")`` to keep it inside the saved image."""
    if legend_ax is None:
        from matplotlib.transforms import ScaledTranslation

        below = ax.transAxes + ScaledTranslation(0, -42 / 72, ax.figure.dpi_scale_trans)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below,
                  ncol=1, fontsize=8, frameon=False)
    else:
        handles, labels = ax.get_legend_handles_labels()
        legend_ax.legend(handles, labels, loc="center", ncol=ncol, fontsize=8, frameon=False)


def _spread_levels(F: np.ndarray, k: int) -> np.ndarray:
    """k contour levels of the convex quadratic-like F on a grid, spread over the window.

    Level j (j = 1..k) is the (j/(k+1))^2 quantile of F over the grid, so the regions below
    the levels cover (j/(k+1))^2 of the window: equally spaced "radii" whatever lambda, the
    data scale or where the minimum sits (a gap-relative spacing leaves the window empty
    when the constraint barely binds).
    """
    q = (np.arange(1, k + 1) / (k + 1)) ** 2
    levels = np.unique(np.quantile(F, q))
    return levels if levels.size else np.array([float(F.min())])


def _extent(pic: LagrangePicture, pad: float = 0.35):
    """A square window (lo, hi) holding the ball, least squares, the optimum and the path."""
    pts = np.vstack([pic.ols, pic.optimum, np.zeros(2), pic.path[1:-1]])
    lo, hi = pts.min(0), pts.max(0)
    r = pic.radius**0.5 if pic.norm == "l2" else pic.radius
    lo, hi = np.minimum(lo, -r), np.maximum(hi, r)
    span = (hi - lo).max()
    mid = 0.5 * (lo + hi)
    half = 0.5 * span * (1 + pad)
    return mid - half, mid + half


def _grid(pic, n=241, extent=None):
    lo, hi = _extent(pic) if extent is None else extent
    g1, g2 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    G1, G2 = np.meshgrid(g1, g2)
    return G1, G2, np.stack([G1, G2], -1)


def _boundary(pic: LagrangePicture) -> np.ndarray:
    """Points (k, 2) on the constraint boundary ||w||^2 = theta or ||w||_1 = t."""
    if pic.norm == "l2":
        a = np.linspace(0, 2 * np.pi, 361)
        return pic.radius**0.5 * np.c_[np.cos(a), np.sin(a)]
    t = pic.radius
    return np.array([[t, 0], [0, t], [-t, 0], [0, -t], [t, 0]], dtype=float)


def _label(pic: LagrangePicture) -> str:
    p = pic.prior
    sym = _SYMBOL[p.name]
    if pic.norm == "l2":
        rad = rf"$\theta=\|w^*\|_2^2$ = {pic.radius:.4g}  (radius {pic.radius**0.5:.4g})"
        lam = rf"$\lambda=\sigma_\varepsilon^2/\sigma^2$ = {pic.lam:.4g}"
    else:
        rad = rf"$t=\|w^*\|_1$ = {pic.radius:.4g}"
        lam = rf"$\lambda=\sigma_\varepsilon^2/b$ = {pic.lam:.4g}"
    return (f"{p.name} prior ${sym}$ = {p.scale:.4g}, $\\sigma_\\varepsilon$ = {pic.noise:.4g}\n"
            f"{lam}\n{rad}\nKKT multiplier $\\mu$ = {pic.multiplier:.6g}\n"
            f"$w^*$ = ({pic.optimum[0]:.4g}, {pic.optimum[1]:.4g})")


def draw_lagrangian(
    pic: LagrangePicture,
    ax: Axes | None = None,
    penalized: bool = True,
    legend_ax=None,
    *,
    extent: tuple[np.ndarray, np.ndarray] | None = None,
) -> Axes:
    """Draw the Lagrangian picture of ``pic`` into ``ax``; returns the Axes.

    Loss contours L(w) (thin ones spread over the window, the bold one L(w) = L(w*) through
    the tangency point), the constraint set of the computed radius, contours of the
    penalized objective L(w) + lam P(w) (dashed), the least-squares point, the path
    w*(lam), and the tangency point (= constrained optimum = penalized optimum = MAP).
    ``extent`` = (lo, hi) fixes the (w1, w2) window (default: fitted to ``pic``). Artists
    carry ``gid`` tags for tests: "boundary", "tangency", "map", "ols", "path".
    """
    if ax is None:
        _, (ax,), (legend_ax,) = _with_legend_row((6.7, 7.0))
    G1, G2, W = _grid(pic, extent=extent)
    L = pic.loss(W)
    L_star = float(pic.loss(pic.optimum))
    ax.contour(G1, G2, L, levels=_spread_levels(L, 8), colors="tab:blue", linewidths=0.8,
               alpha=0.6, linestyles="solid")
    ax.contour(G1, G2, L, levels=[L_star], colors="tab:blue", linewidths=2.0, linestyles="solid")
    if penalized:
        J = pic.objective(W)
        ax.contour(G1, G2, J, levels=_spread_levels(J, 4), colors="tab:purple",
                   linewidths=0.8, linestyles="dashed", alpha=0.7)
    bnd = _boundary(pic)
    ax.fill(bnd[:, 0], bnd[:, 1], color="tab:orange", alpha=0.18, zorder=1)
    name = r"$\|w\|_2^2 \leq \theta$" if pic.norm == "l2" else r"$\|w\|_1 \leq t$"
    ax.plot(bnd[:, 0], bnd[:, 1], color="tab:orange", linewidth=2, label=f"constraint {name}",
            gid="boundary")
    ax.plot(pic.path[:, 0], pic.path[:, 1], color="0.35", linewidth=1.2,
            label=r"path $w^*(\lambda)$, $\lambda$: 0 $\to \infty$", gid="path")
    ax.plot(*pic.ols, "kx", markersize=9, mew=2, label="least squares (unconstrained)",
            gid="ols")
    ax.plot(*pic.optimum, marker="*", color="tab:red", markersize=17, linestyle="none",
            label="tangency = constrained = penalized optimum", gid="tangency", zorder=5)
    ax.plot(*pic.map, marker="o", mfc="none", mec="black", markersize=13, mew=1.5,
            linestyle="none", label="MAP (Pyro log joint)", gid="map", zorder=6)
    ax.plot([], [], color="tab:blue", linewidth=2, label=r"loss contour $L(w)=L(w^*)$")
    if penalized:
        ax.plot([], [], color="tab:purple", linestyle="dashed",
                label=r"$L(w)+\lambda P(w)$ contours")
    ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.axvline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.set_xlim(G1.min(), G1.max())
    ax.set_ylim(G2.min(), G2.max())
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    kind = "L2 ball (ridge / weight decay)" if pic.norm == "l2" else "L1 ball (lasso)"
    ax.set_title(f"{kind}:\nconstrained vs penalized", fontsize=11)
    ax.text(0.02, 0.98, _label(pic), transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    _legend(ax, legend_ax)
    return ax


def plot_lagrangian(
    prior: str | Prior = "gaussian",
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The constrained-vs-penalized picture for a two-feature problem, from computed numbers.

    ``plot_lagrangian(prior="gaussian", sigma=0.5)`` or ``(prior="laplace", b=0.05)``; the
    built-in ``two_feature`` data unless X (n, 2), y and noise are given. Returns the Figure.
    Drawn into a given ``ax``, the legend goes below that Axes (give the figure
    ``layout="constrained"`` or save with ``bbox_inches="tight"``).
    """
    pic = lagrangian_picture(prior, sigma=sigma, b=b, X=X, y=y, noise=noise, dataset=dataset)
    return draw_lagrangian(pic, ax=ax).figure


def plot_l1_vs_l2(
    *,
    sigma: float = 0.5,
    b: float = 0.05,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
) -> Figure:
    """L2 disk and L1 diamond side by side on the same data: "why L1 gives zeros".

    Both panels share one (w1, w2) window and the same loss contours; the left one is the
    Gaussian prior ``sigma`` (lam = sigma_eps^2 / sigma^2), the right one the Laplace prior
    ``b`` (lam = sigma_eps^2 / b). Returns the Figure.
    """

    pics = [lagrangian_picture("gaussian", sigma=sigma, X=X, y=y, noise=noise, dataset=dataset),
            lagrangian_picture("laplace", b=b, X=X, y=y, noise=noise, dataset=dataset)]
    # one window for both panels, so the loss contours are literally the same curves
    boxes = [_extent(pic) for pic in pics]
    lo = np.minimum(boxes[0][0], boxes[1][0])
    hi = np.maximum(boxes[0][1], boxes[1][1])
    half = 0.5 * float((hi - lo).max())
    mid = 0.5 * (lo + hi)
    fig, axes, legends = _with_legend_row((12.8, 7.0), ncols=2)
    for ax, lax, pic in zip(axes, legends, pics, strict=True):
        draw_lagrangian(pic, ax=ax, legend_ax=lax, extent=(mid - half, mid + half))
    fig.suptitle("The same loss, two priors: the L1 tangency sits on a corner (an exact zero)",
                 fontsize=12)
    return fig


def _box_extent(pic: BoxPicture, pad: float = 0.35):
    """A square window (lo, hi) holding the box, least squares and the points."""
    pts = [pic.ols, pic.optimum, pic.coupled, np.full(2, pic.radius), np.full(2, -pic.radius)]
    if pic.adamw is not None:
        pts.append(pic.adamw)
    pts = np.vstack(pts)
    lo, hi = pts.min(0), pts.max(0)
    half = 0.5 * float((hi - lo).max()) * (1 + pad)
    mid = 0.5 * (lo + hi)
    return mid - half, mid + half


def draw_box(
    pic: BoxPicture,
    ax: Axes | None = None,
    legend_ax=None,
    *,
    extent: tuple[np.ndarray, np.ndarray] | None = None,
) -> Axes:
    """Draw AdamW's l_inf box picture into ``ax``; returns the Axes.

    Loss contours L(w) = 1/2 ||yc - Xc w||^2 (the bold one through the box optimum), the box
    ||w||_inf <= 1/weight_decay, the box-constrained least-squares point (computed by
    :func:`~mapreg.penalized.constrained.constrained_linf`), the point AdamW reached, and the
    ridge point of *coupled* decay with the same weight_decay (where AdamW does not go).
    Artists carry ``gid`` tags: "boundary", "tangency", "adamw", "coupled", "ols".
    """
    if ax is None:
        _, (ax,), (legend_ax,) = _with_legend_row((6.7, 7.0))
    lo, hi = _box_extent(pic) if extent is None else extent
    g1, g2 = np.linspace(lo[0], hi[0], 241), np.linspace(lo[1], hi[1], 241)
    G1, G2 = np.meshgrid(g1, g2)
    L = pic.loss(np.stack([G1, G2], -1))
    ax.contour(G1, G2, L, levels=_spread_levels(L, 8), colors="tab:blue", linewidths=0.8,
               alpha=0.6, linestyles="solid")
    ax.contour(G1, G2, L, levels=[float(pic.loss(pic.optimum))], colors="tab:blue",
               linewidths=2.0, linestyles="solid")
    R = pic.radius
    bnd = np.array([[R, R], [-R, R], [-R, -R], [R, -R], [R, R]])
    ax.fill(bnd[:, 0], bnd[:, 1], color="tab:orange", alpha=0.18, zorder=1)
    ax.plot(bnd[:, 0], bnd[:, 1], color="tab:orange", linewidth=2,
            label=r"box $\|w\|_\infty \leq R = 1/\mathrm{wd}$", gid="boundary")
    ax.plot(*pic.ols, "kx", markersize=9, mew=2, label="least squares (unconstrained)",
            gid="ols")
    ax.plot(*pic.coupled, marker="D", color="tab:green", markersize=8, linestyle="none",
            label=f"Adam, coupled decay: ridge, $\\lambda$ = {pic.coupled_lam:.4g}",
            gid="coupled", zorder=4)
    ax.plot(*pic.optimum, marker="*", color="tab:red", markersize=17, linestyle="none",
            label="box optimum (least squares in the box)", gid="tangency", zorder=5)
    if pic.adamw is not None:
        ax.plot(*pic.adamw, marker="o", mfc="none", mec="black", markersize=13, mew=1.5,
                linestyle="none", label="AdamW, trained full batch", gid="adamw", zorder=6)
    ax.plot([], [], color="tab:blue", linewidth=2, label="loss contour through the optimum")
    ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.axvline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.set_xlim(g1[0], g1[-1])
    ax.set_ylim(g2[0], g2[-1])
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_title("$L_\\infty$ box (AdamW's decoupled decay):\nno prior, a constraint",
                 fontsize=11)
    text = (f"weight_decay = {pic.weight_decay:.4g}, R = 1/wd = {R:.4g}\n"
            f"KKT multiplier $\\mu$ = {pic.multiplier:.6g}\n"
            f"box optimum = ({pic.optimum[0]:.4g}, {pic.optimum[1]:.4g})")
    if pic.adamw is not None:
        text += f"\nAdamW = ({pic.adamw[0]:.4g}, {pic.adamw[1]:.4g})"
    ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    _legend(ax, legend_ax)
    return ax


def plot_balls(
    *,
    sigma: float = 0.5,
    b: float = 0.05,
    weight_decay: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    train: bool = True,
) -> Figure:
    """Three panels on one loss: the L2 disk (Gaussian prior ``sigma``), the L1 diamond
    (Laplace prior ``b``) and AdamW's l_inf box (``weight_decay``; default 2/||w_LS||_inf,
    see :func:`mapreg.lagrange.box_picture`) -- two priors and one constraint that is no
    prior. Returns the Figure."""
    pics = [lagrangian_picture("gaussian", sigma=sigma, X=X, y=y, noise=noise, dataset=dataset),
            lagrangian_picture("laplace", b=b, X=X, y=y, noise=noise, dataset=dataset)]
    box = box_picture(weight_decay, X=X, y=y, dataset=dataset, train=train)
    boxes = [_extent(pic) for pic in pics] + [_box_extent(box)]
    lo = np.min([bx[0] for bx in boxes], 0)
    hi = np.max([bx[1] for bx in boxes], 0)
    half = 0.5 * float((hi - lo).max())
    mid = 0.5 * (lo + hi)
    window = (mid - half, mid + half)
    fig, axes, legends = _with_legend_row((18.0, 7.4), ncols=3)
    for ax, lax, pic in zip(axes[:2], legends[:2], pics, strict=True):
        draw_lagrangian(pic, ax=ax, legend_ax=lax, extent=window)
    draw_box(box, ax=axes[2], legend_ax=legends[2], extent=window)
    fig.suptitle("The same loss: L2 disk and L1 diamond are priors; AdamW's box is not",
                 fontsize=12)
    return fig


def plot_posterior(
    prior: str | Prior = "gaussian",
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The same geometry as a posterior: Pyro's log-likelihood, log-prior and log-posterior.

    Contours over (w1, w2) of log p(y | w, c(w)), log p(w) and their sum, all evaluated by
    one batched trace of the Pyro model (c(w) = mean(y) - mean(X) . w, the intercept's
    conditional maximiser), with the MAP marked. The log-posterior is filled relative to its
    maximum (log p(w | y) - log p(w_MAP | y), so the unknown log p(y) cancels), with a colorbar.
    """
    from .bayes.likelihoods import GaussianNoise
    from .bayes.models import linear_model, site_log_probs

    prior_obj = make_prior(prior, sigma=sigma, b=b)
    pic = lagrangian_picture(prior_obj, X=X, y=y, noise=noise, dataset=dataset)
    legend_ax = None
    if ax is None:
        _, (ax,), (legend_ax,) = _with_legend_row((7.8, 6.8))
    G1, G2, W = _grid(pic, n=161)
    Wt = torch.from_numpy(W.reshape(-1, 2))
    c = pic.y.mean() - Wt @ pic.X.mean(0)
    model = linear_model(prior_obj, GaussianNoise(pic.noise))
    lp = site_log_probs(model, pic.X, pic.y, Wt, c)
    shape = G1.shape
    loglik = lp["y"].reshape(shape).numpy()
    logprior = lp["w"].reshape(shape).numpy()
    logpost = loglik + logprior

    # drawn relative to its maximum (the MAP): the normaliser log p(y) drops out and the
    # colorbar reads in plain units of log density (0, -5, ..., -40)
    rel = logpost - float(logpost.max())
    cf = ax.contourf(G1, G2, rel, levels=np.linspace(-40.0, 0.0, 17), cmap="Greys",
                     alpha=0.55, extend="min")
    ax.figure.colorbar(cf, ax=ax, label="log posterior − its max (Pyro)", shrink=0.85,
                       ticks=np.arange(-40.0, 1.0, 5.0))
    ax.contour(G1, G2, rel, levels=-np.array([20.0, 10.0, 5.0, 2.0, 0.5]),
               colors="black", linewidths=0.7, linestyles="solid")
    lmax = float(loglik.max())
    ax.contour(G1, G2, loglik, levels=lmax - np.array([30, 10, 3, 0.5]), colors="tab:blue",
               linewidths=1.0, linestyles="solid")
    pmax = float(logprior.max())
    ax.contour(G1, G2, logprior, levels=pmax - np.array([20, 10, 5, 2]), colors="tab:green",
               linewidths=1.0, linestyles="solid")
    ax.plot(*pic.ols, "kx", markersize=9, mew=2, label="max likelihood (least squares)")
    ax.plot(*pic.map, marker="*", color="tab:red", markersize=16, linestyle="none",
            label="MAP (Pyro)", gid="map", zorder=5)
    ax.plot([], [], color="tab:blue", label="log-likelihood contours")
    ax.plot([], [], color="tab:green", label="log-prior contours")
    ax.plot([], [], color="black", linewidth=0.7, label="log-posterior contours")
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    sym = _SYMBOL[prior_obj.name]
    ax.set_title(f"Posterior $\\propto$ likelihood $\\times$ {prior_obj.name} prior\n"
                 f"${sym}$ = {prior_obj.scale:.4g}, $\\sigma_\\varepsilon$ = {pic.noise:.4g}, "
                 f"$\\lambda$ = {pic.lam:.4g}; MAP = ({pic.map[0]:.4g}, {pic.map[1]:.4g})",
                 fontsize=10)
    _legend(ax, legend_ax)
    return ax.figure


def _label_lines(ax, lams: np.ndarray, coefs: np.ndarray, colors) -> None:
    """Write w_0..w_{d-1} (the indices of ``coef``, as in compare's table) left of the
    smallest lambda, nudged apart so that labels of nearly equal coefficients do not overlap
    (a gap of 5.5% of the coefficient range)."""
    first = int(np.argmin(lams))
    lam0, y0 = float(lams[first]), coefs[first]
    order = np.argsort(y0)
    ys = y0[order].astype(float)
    gap = 0.055 * max(float(coefs.max() - coefs.min()), 1e-12)
    for i in range(1, ys.size):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    ys -= (ys - y0[order]).mean()
    for j, yl in zip(order, ys, strict=True):
        ax.text(lam0 / 1.15, yl, f"$w_{{{j}}}$", color=colors[j], ha="right", va="center",
                fontsize=9)
    ax.set_xlim(lam0 / 3.5, float(lams.max()) * 1.3)


def plot_path(
    prior: str | Prior = "laplace",
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    lams=None,
    n_lams: int = 40,
    ax: Axes | None = None,
) -> Figure:
    """Regularization path: coefficients vs lambda (log axis), penalized solver and MAP.

    Lines: the exact penalized optimum on a fine lambda grid (named w_0..w_{d-1} at their
    left end when d <= 10, indexed as the coef tensors); markers: the MAP from Pyro at every
    other grid point. The top axis
    shows the matching prior scale (sigma = sigma_eps / sqrt(lam) or b = sigma_eps^2 / lam).
    With ``sigma``/``b`` given, that lambda is marked. ``prior`` may be a name without a
    scale; ``n_lams`` >= 2 sets the default grid, ``lams`` replaces it.
    """
    from .bayes.map import map_estimate
    from .bayes.priors import PRIORS
    from .datasets import resolve_data
    from .penalized.linear import lasso_lam_max, solve_penalized

    if isinstance(prior, Prior):
        prior_cls, marked = type(prior), make_prior(prior, sigma=sigma, b=b)
    else:
        prior_cls = PRIORS[check_choice("prior", prior, PRIORS)]
        marked = None if sigma is None and b is None else make_prior(prior, sigma=sigma, b=b)
    ball_prior(prior_cls.name)
    X, y, noise, _ = resolve_data(X, y, noise, dataset, default="default")
    if isinstance(n_lams, bool) or not isinstance(n_lams, int) or n_lams < 2:
        raise ValueError(f"n_lams must be an integer >= 2; got {n_lams!r}")
    if lams is None:
        if prior_cls.name == "laplace":
            top = lasso_lam_max(X, y)
            lams = np.geomspace(1e-3 * top, 1.2 * top, n_lams)
        else:
            s2 = float(torch.linalg.matrix_norm(X - X.mean(0), ord=2)) ** 2
            lams = np.geomspace(1e-3 * s2, 1e2 * s2, n_lams)
    given = lams
    try:
        lams = np.asarray(lams, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lams must be a 1-D array of at least two positive finite numbers; "
                         f"got {given!r}") from exc
    if lams.ndim != 1 or lams.size < 2 or not np.all(np.isfinite(lams)) or np.any(lams <= 0):
        raise ValueError(f"lams must be a 1-D array of at least two positive finite numbers; "
                         f"got {given!r}")
    penalty = prior_cls.penalty_name
    pen = np.array([solve_penalized(X, y, penalty, float(lm)).coef.numpy() for lm in lams])
    sub = lams[::2]
    mp = np.array([map_estimate(X, y, prior_cls.from_lam(float(lm), noise), noise).coef.numpy()
                   for lm in sub])

    ax = _figure(ax, (7.5, 4.8))
    colors = [f"C{j % 10}" for j in range(pen.shape[1])]
    for j in range(pen.shape[1]):
        ax.plot(lams, pen[:, j], color=colors[j], linewidth=1.4)
        ax.plot(sub, mp[:, j], "o", color=colors[j], mfc="none", markersize=4.5)
    ax.plot([], [], color="0.3", label=f"{penalty} optimum (exact solver)")
    ax.plot([], [], "o", color="0.3", mfc="none", label="MAP (Pyro), every other $\\lambda$")
    ax.set_xscale("log")
    if pen.shape[1] <= 10:  # name each line at its small-lambda end (colours repeat past 10)
        _label_lines(ax, lams, pen, colors)
    ax.axhline(0, color="0.5", linewidth=0.6)
    ax.set_xlabel(r"$\lambda$ (canonical: $\frac{1}{2}\|r\|^2 + \lambda P(w)$)")
    ax.set_ylabel("coefficient $w_j$")
    if marked is not None:
        lam_m = marked.lam(noise)
        ax.axvline(lam_m, color="tab:red", linestyle="--", linewidth=1,
                   label=f"{marked}: $\\lambda$ = {lam_m:.4g}")
    sym = _SYMBOL[prior_cls.name]
    if prior_cls.name == "gaussian":
        fwd = lambda lam: noise / np.sqrt(np.clip(lam, 1e-300, None))  # noqa: E731
        inv = lambda s: noise**2 / np.clip(s, 1e-150, None) ** 2  # noqa: E731
    else:
        fwd = lambda lam: noise**2 / np.clip(lam, 1e-300, None)  # noqa: E731
        inv = lambda s: noise**2 / np.clip(s, 1e-300, None)  # noqa: E731
    top_ax = ax.secondary_xaxis("top", functions=(fwd, inv))
    top_ax.set_xlabel(f"prior scale ${sym}$ ($\\sigma_\\varepsilon$ = {noise:.3g})")
    ax.set_title(f"Regularization path, {prior_cls.name} prior", fontsize=11)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    ax.grid(alpha=0.3)
    return ax.figure


__all__ = ["draw_lagrangian", "plot_l1_vs_l2", "plot_lagrangian", "plot_path", "plot_posterior"]
