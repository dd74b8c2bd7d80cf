"""Figures. Every function takes ``ax=None`` and returns the Figure; none calls ``plt.show()``.

matplotlib is imported lazily, inside the functions, so ``import mapreg`` stays light.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .compare import CompareResult


#: Formats matplotlib lists but cannot write without an external program (LaTeX).
_NEEDS_EXTERNAL = frozenset({"pgf"})


def figure_formats() -> tuple[str, ...]:
    """File extensions a figure can be saved to: matplotlib's supported formats, less
    those that need an external program (pgf needs LaTeX)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted(set(FigureCanvasBase.get_supported_filetypes()) - _NEEDS_EXTERNAL))


def check_figure_path(name: str, path: str | os.PathLike) -> str:
    """``path`` if a figure can be written there, else ValueError naming ``name``.

    The format follows the extension (case-insensitive), which must be one of
    :func:`figure_formats`; the path must not be a directory, and its directory must exist.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{name} must name a file, not a directory; got {path!r}")
    ext = os.path.splitext(path)[1][1:].lower()
    formats = figure_formats()
    if ext not in formats:
        what = f"extension {ext!r}" if ext else "a name without an extension"
        raise ValueError(f"{name} must end in a figure extension: {', '.join(formats)} (the "
                         f"format follows it; {what} is not supported); got {path!r}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ValueError(f"{name}: No such file or directory: {parent!r} (for {path!r})")
    return path


def _new_axes(ax: Axes | None, figsize=(7.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def plot_coefficients(result: CompareResult, ax: Axes | None = None) -> Figure:
    """MAP coefficients (Pyro) as bars, the penalized optimum as markers on top of them.

    Features on the x axis (the intercept is not drawn, it is in the title); exact zeros
    are marked with a hollow circle on the axis; the d2l-style training result, when
    present, is drawn as small crosses.
    """
    import numpy as np

    ax = _new_axes(ax)
    d = result.map_coef.shape[0]
    j = np.arange(d)
    m = result.map_coef.numpy()
    p = result.penalized_coef.numpy()
    pen = result.prior.penalty_name
    ax.bar(j, m, width=0.6, color="tab:blue", alpha=0.55, label="MAP (Pyro log joint)")
    ax.plot(j, p, "D", color="tab:red", markersize=5, label=f"{pen} optimum (exact solver)")
    zeros = j[m == 0]
    if zeros.size:
        ax.plot(zeros, np.zeros(zeros.size), "o", mfc="none", mec="black", markersize=9,
                label=f"exact zeros ({zeros.size})")
    if result.training is not None:
        ax.plot(j, result.training.coef.numpy(), "x", color="tab:green", markersize=6,
                label="nn.Linear + SGD (d2l training)")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("feature j")
    ax.set_ylabel("coefficient $w_j$")
    if d <= 30:
        ax.set_xticks(j)
    prior = result.prior
    ax.set_title(
        f"{prior.name} prior {prior.scale_name}={prior.scale:g}, "
        f"$\\sigma_\\varepsilon$={result.noise:g}  $\\Rightarrow$  $\\lambda$={result.lam:.4g}\n"
        f"max|$\\Delta w$|={result.max_abs_diff:.1e}, intercept {result.map_intercept:.4g}",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    return ax.figure


def plot_glm_coefficients(result, ax: Axes | None = None) -> Figure:
    """:func:`plot_coefficients` for a :class:`~mapreg.compare_glm.GLMCompareResult`: MAP
    bars and penalized-optimum markers for every weight (a softmax matrix W (d, K) drawn
    row by row, entry (j, k) at position j K + k)."""
    import numpy as np

    ax = _new_axes(ax)
    m = result.map_coef.numpy().reshape(-1)
    p = result.penalized_coef.numpy().reshape(-1)
    j = np.arange(m.size)
    ax.bar(j, m, width=0.6, color="tab:blue", alpha=0.55, label="MAP (Pyro log joint)")
    ax.plot(j, p, "D", color="tab:red", markersize=5, label="penalized GLM optimum")
    zeros = j[m == 0]
    if zeros.size:
        ax.plot(zeros, np.zeros(zeros.size), "o", mfc="none", mec="black", markersize=9,
                label=f"exact zeros ({zeros.size})")
    ax.axhline(0.0, color="black", linewidth=0.8)
    K = result.map_coef.shape[1] if result.map_coef.dim() == 2 else 1
    ax.set_xlabel("weight $W_{jk}$ at position $jK + k$" if K > 1 else "feature j")
    ax.set_ylabel("coefficient")
    ax.set_title(f"{result.prior} prior, {result.likelihood} likelihood  $\\Rightarrow$  "
                 f"$\\lambda_1$={result.lam1:.4g}, $\\lambda_2$={result.lam2:.4g}\n"
                 f"max|$\\Delta W$|={result.max_abs_diff:.1e}", fontsize=10)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    return ax.figure
