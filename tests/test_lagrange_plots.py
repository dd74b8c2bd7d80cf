"""The 2-D Lagrangian / posterior figures and the path figure: drawn from computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_problem

import mapreg
from mapreg import lagrangian_picture, plot_l1_vs_l2, plot_lagrangian, plot_path, plot_posterior
from mapreg.cli import main


def _by_gid(ax, gid):
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return np.c_[line.get_xdata(), line.get_ydata()]


@pytest.mark.parametrize("prior, kw", [("gaussian", {"sigma": 0.5}), ("laplace", {"b": 0.05})])
def test_lagrangian_figure_marks_the_computed_tangency_and_radius(prior, kw, tmp_path):
    pic = lagrangian_picture(prior, **kw)
    fig = plot_lagrangian(prior, **kw)
    ax = fig.axes[0]
    assert np.allclose(_by_gid(ax, "tangency")[0], pic.optimum, atol=1e-12)
    assert np.allclose(_by_gid(ax, "map")[0], pic.optimum, atol=1e-6)
    bnd = _by_gid(ax, "boundary")
    if prior == "gaussian":
        assert np.allclose(np.linalg.norm(bnd, axis=1), np.sqrt(pic.radius))
        assert pic.radius == pytest.approx(float(pic.optimum @ pic.optimum))
    else:
        assert np.allclose(np.abs(bnd).sum(1), pic.radius)
        assert pic.radius == pytest.approx(float(np.abs(pic.optimum).sum()))
        # the tangency sits on a corner of the diamond: an exact zero of soft-thresholding
        assert pic.optimum[1] == 0.0
    assert pic.multiplier == pytest.approx(pic.lam, rel=1e-6)
    assert np.allclose(pic.constrained, pic.optimum, atol=1e-6)
    assert ax.get_xlabel() == "$w_1$" and ax.get_ylabel() == "$w_2$"
    assert ax.get_aspect() == 1.0
    text = " ".join(t.get_text() for t in ax.texts)
    assert "KKT multiplier" in text and "lambda" in text
    # the path runs from least squares (lambda = 0) to the origin (lambda = inf)
    path = _by_gid(ax, "path")
    assert np.allclose(path[0], pic.ols) and np.allclose(path[-1], 0.0)
    out = tmp_path / f"{prior}.png"
    fig.savefig(out)
    assert out.stat().st_size > 10_000


def test_picture_is_frozen_and_compares_by_value():
    """Reads of arrays and tensors are copies; two computations of one picture are equal."""
    import dataclasses

    pic = lagrangian_picture("laplace", b=0.05)
    opt, X = pic.optimum, pic.X
    opt[0], X[0, 0] = 1e9, 1e9
    assert pic.optimum[0] != 1e9 and float(pic.X[0, 0]) != 1e9
    assert pic == lagrangian_picture("laplace", b=0.05)
    assert pic != dataclasses.replace(pic, optimum=pic.optimum + 1e-12)
    assert pic != lagrangian_picture("laplace", b=0.06)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pic.lam = 1.0


def test_loss_contour_through_the_tangency_touches_the_ball():
    """No point of the L2 ball has a smaller loss than the tangency point (a real tangency)."""
    pic = lagrangian_picture("gaussian", sigma=0.5)
    a = np.linspace(0, 2 * np.pi, 20001)
    circle = np.sqrt(pic.radius) * np.c_[np.cos(a), np.sin(a)]
    assert pic.loss(circle).min() >= pic.loss(pic.optimum) - 1e-9


def test_l1_vs_l2_side_by_side():
    fig = plot_l1_vs_l2()
    main_axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(main_axes) == 2
    l1_tangency = _by_gid(main_axes[1], "tangency")[0]
    assert np.sum(l1_tangency == 0.0) == 1 and np.all(_by_gid(main_axes[0], "tangency")[0] != 0)


def _thin_loss_contours(ax):
    """The first contour set drawn by draw_lagrangian: the thin loss contours."""
    from matplotlib.contour import ContourSet

    return [c for c in ax.collections if isinstance(c, ContourSet)][0]


@pytest.mark.parametrize("prior, kw", [("gaussian", {"sigma": 3.0}), ("gaussian", {"sigma": 0.1}),
                                       ("laplace", {"b": 0.5}), ("laplace", {"b": 0.025})])
def test_loss_contours_fill_the_window_whatever_lambda(prior, kw):
    """A barely binding ball (sigma = 3: L(w*) - L_min ~ 1e-3) still shows the loss ellipses."""
    fig = plot_lagrangian(prior, **kw)
    ax = fig.axes[0]
    cs = _thin_loss_contours(ax)
    verts = [p.vertices for p in cs.get_paths() if len(p.vertices)]
    assert len(verts) >= 6  # at least six non-empty levels
    pts = np.vstack(verts)
    width = np.subtract(*ax.get_xlim()[::-1])
    assert np.ptp(pts[:, 0]) >= 0.5 * width


def test_legend_stays_off_the_data_when_drawing_into_a_given_axes(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    axes = fig.subplots(1, 3)
    plot_lagrangian("gaussian", sigma=0.5, ax=axes[0])
    plot_lagrangian("laplace", b=0.05, ax=axes[1])
    plot_posterior("laplace", b=0.05, ax=axes[2])
    fig.savefig(tmp_path / "three.png")  # runs the layout engine
    fig.draw_without_rendering()
    for ax in axes:
        leg, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert leg.y1 <= box.y0  # entirely below the plotting area
        assert leg.y0 >= 0 and leg.x0 >= 0 and leg.x1 <= fig.bbox.x1  # and not clipped


def test_l1_vs_l2_panels_share_one_window():
    fig = plot_l1_vs_l2()
    left, right = [ax for ax in fig.axes if ax.get_lines()]
    assert left.get_xlim() == right.get_xlim() and left.get_ylim() == right.get_ylim()
    assert np.array_equal(_thin_loss_contours(left).levels, _thin_loss_contours(right).levels)
    for ax in (left, right):
        assert ax.get_aspect() == 1.0
        text = " ".join(t.get_text() for t in ax.texts)
        assert "sigma_\\varepsilon" in text and "lambda" in text and "KKT multiplier" in text


def test_posterior_figure_uses_pyro_densities_and_marks_the_map():
    pic = lagrangian_picture("laplace", b=0.05)
    fig = plot_posterior("laplace", b=0.05)
    ax = fig.axes[0]
    assert np.allclose(_by_gid(ax, "map")[0], pic.map)
    (cbar,) = [a for a in fig.axes if "log posterior" in a.get_ylabel()]  # the colorbar
    assert cbar.get_ylim()[1] == 0.0  # relative to the maximum, at the MAP
    assert "lambda" in ax.get_title() and "sigma_\\varepsilon" in ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel()


def test_draw_into_a_given_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert plot_lagrangian("laplace", b=0.05, ax=ax) is fig
        assert ax.get_legend() is not None
        assert plot_path("gaussian", ax=ax) is fig
    finally:
        plt.close(fig)


@pytest.mark.parametrize("prior, kw", [("gaussian", {"sigma": 0.5}), ("laplace", {"b": 0.5})])
def test_path_figure_overlays_map_on_the_penalized_path(prior, kw):
    fig = plot_path(prior, **kw)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 2]
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata()) > 2]
    assert len(lines) == 10 and len(markers) == 10
    for line, mk in zip(lines, markers, strict=True):
        xs, ys = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        mx, my = np.asarray(mk.get_xdata()), np.asarray(mk.get_ydata())
        assert np.allclose(xs[::2], mx) and np.allclose(ys[::2], my, atol=1e-6)
    assert ax.get_xscale() == "log" and "lambda" in ax.get_xlabel()
    assert {t.get_text() for t in ax.texts} == {f"$w_{{{j}}}$" for j in range(10)}
    assert len(ax.child_axes) == 1  # the prior-scale axis on top
    res = mapreg.compare(prior, **kw)
    assert any(np.allclose(ln.get_xdata(), res.lam) for ln in ax.get_lines()
               if ln.get_linestyle() == "--")


def test_compare_result_draws_its_path():
    fig = mapreg.compare("laplace", b=0.5).plot_path()
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: plot_lagrangian("gaussian", sigma=0.5, X=make_problem(20, 3, 0).X,
                                 y=make_problem(20, 3, 0).y, noise=1.0),
         r"needs exactly two features \(X of shape \(n, 2\)\); got X with 3 columns"),
        (lambda: plot_lagrangian("cauchy", sigma=0.5), r"prior must be one of"),
        (lambda: plot_lagrangian("laplace", b=1e-6), r"every coefficient is 0"),
        (lambda: plot_lagrangian("laplace", b=-1.0), r"b must be a positive finite number"),
        (lambda: plot_posterior("gaussian", sigma=0.5, X=np.ones((5, 2))), r"give both X and y"),
        (lambda: plot_path("laplace", lams=[1.0]), r"lams must be a 1-D array of at least two"),
        (lambda: plot_path("laplace", lams=[1.0, -2.0]), r"lams must be.*; got \[1.0, -2.0\]"),
        (lambda: plot_path("gaussian", n_lams=1), r"n_lams must be an integer >= 2; got 1"),
        (lambda: plot_path("gaussian", n_lams=2.5), r"n_lams must be an integer >= 2; got 2.5"),
        (lambda: plot_l1_vs_l2(X=make_problem(20, 3, 0).X, y=make_problem(20, 3, 0).y,
                               noise=1.0), r"needs exactly two features"),
        (lambda: plot_posterior("laplace", b=0.05, X=make_problem(20, 1, 0).X,
                                y=make_problem(20, 1, 0).y, noise=1.0),
         r"needs exactly two features .*got X with 1 columns"),
        (lambda: plot_path("ridge"), r"prior must be one of 'gaussian', 'laplace'"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("argv", [
    ["lagrange", "--prior", "laplace", "--b", "0.05"],
    ["lagrange", "--prior", "gaussian", "--sigma", "0.5", "--view", "posterior"],
    ["lagrange", "--prior", "laplace", "--view", "l1-vs-l2"],
    ["path", "--prior", "laplace", "--b", "0.5"],
])
@pytest.mark.parametrize("ext", ["png", "pdf", "svg"])
def test_cli_writes_figures_by_extension(argv, ext, tmp_path, capsys):
    out = tmp_path / f"f.{ext}"
    assert main([*argv, "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert "figure written" in capsys.readouterr().out


def test_cli_figure_errors_exit_2(tmp_path, capsys):
    assert main(["lagrange", "--prior", "laplace", "--b", "1e-9", "--out",
                 str(tmp_path / "f.png")]) == 2
    assert "every coefficient is 0" in capsys.readouterr().err
    assert main(["path", "--prior", "laplace", "--out", str(tmp_path / "f.xyz")]) == 2
    assert "not supported" in capsys.readouterr().err


# ----------------------------------------------- AdamW's l_inf box: a constraint, no prior


def _box_reference(X, y, radius):
    """Independent reference: L-BFGS-B with bounds on the formula 1/2 ||y - Xw - c||^2 in
    (w, c), the intercept free -- no centring, no bvls."""
    from scipy.optimize import minimize

    X, y = np.asarray(X), np.asarray(y)
    A = np.c_[X, np.ones(len(y))]

    def f(t):
        r = y - A @ t
        return 0.5 * r @ r, -(A.T @ r)

    d = X.shape[1]
    bounds = [(-radius, radius)] * d + [(None, None)]
    sol = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    return sol.x[:d]


def test_box_picture_numbers_against_an_independent_solver_and_adamw():
    pic = mapreg.box_picture()  # default: a binding box, AdamW trained
    ref = _box_reference(pic.X, pic.y, pic.radius)
    assert np.abs(pic.optimum - ref).max() <= 1e-6 * max(1.0, np.abs(ref).max())
    assert np.abs(pic.optimum).max() == pytest.approx(pic.radius, rel=1e-12)  # it binds
    assert pic.multiplier > 0
    # AdamW lands in the box, on its optimum (stationarity 1e-6 relative), ...
    assert np.abs(pic.adamw - pic.optimum).max() <= 1e-4 * pic.radius
    # ... not on the ridge point of coupled decay with the same weight_decay
    assert np.abs(pic.coupled - pic.optimum).max() > 0.1 * pic.radius
    # coupled Adam on MSELoss(sum): 2 X'(Xw - y) + wd w = 0, i.e. canonical lam = wd / 2
    assert pic.coupled_lam == pytest.approx(pic.weight_decay / 2, rel=1e-14)


def test_a_box_that_does_not_bind_gives_least_squares():
    pic = mapreg.box_picture(1e-3, train=False)  # R = 1000
    assert pic.adamw is None and pic.multiplier == 0.0
    assert np.allclose(pic.optimum, pic.ols, rtol=1e-9, atol=1e-12)


def test_balls_figure_has_the_disk_the_diamond_and_the_box_on_one_window():
    fig = mapreg.plot_balls(weight_decay=1.0, train=False)
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(axes) == 3
    box = _by_gid(axes[2], "boundary")
    assert np.allclose(np.abs(box).max(1), 1.0)  # the box ||w||_inf = 1 / weight_decay
    pic = mapreg.box_picture(1.0, train=False)
    assert np.allclose(_by_gid(axes[2], "tangency")[0], pic.optimum, atol=1e-12)
    assert axes[2].get_xlabel() == "$w_1$" and axes[2].get_ylabel() == "$w_2$"
    assert {ax.get_xlim() for ax in axes} == {axes[0].get_xlim()}


@pytest.mark.parametrize("call, match", [
    (lambda: mapreg.box_picture(-1.0), "weight_decay must be a positive finite number"),
    (lambda: mapreg.box_picture(1.0, X=np.ones((5, 3)), y=np.ones(5)), "exactly two features"),
])
def test_box_picture_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cli_draws_the_balls(tmp_path, capsys):
    out = tmp_path / "balls.png"
    assert main(["lagrange", "--view", "balls", "--weight-decay", "1", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert main(["lagrange", "--view", "lagrange", "--prior", "laplace", "--weight-decay", "1",
                 "--out", str(out)]) == 2
    assert "--weight-decay is for --view balls" in capsys.readouterr().err
