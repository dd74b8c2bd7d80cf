"""The front door: compare()'s result object, data handling, validation and state hygiene."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pyro
import pytest
import torch
from conftest import make_problem

import mapreg
from mapreg import Gaussian, Laplace, compare
from mapreg.diagnosis import classify, conditioning

# ------------------------------------------------------------------------ the result


def test_default_laplace_shows_zeros_and_non_zeros():
    res = compare(prior="laplace", b=0.5)
    assert res.dataset == "default" and res.noise == 2.0
    assert res.lam == pytest.approx(2.0**2 / 0.5)
    assert 2 <= res.n_zero <= 8
    assert res.agrees and res.support_agree


def test_default_gaussian_is_visibly_shrunk():
    res = compare(prior="gaussian", sigma=0.5)
    assert res.lam == pytest.approx(2.0**2 / 0.5**2)
    ols = mapreg.ridge(res.X, res.y, 0.0)
    assert float(res.map_coef.norm()) < 0.8 * float(ols.coef.norm())
    assert res.n_zero == 0 and res.agrees


def test_result_fields_are_named_as_documented_and_frozen():
    res = compare("laplace", b=0.5)
    for name in ("lam", "map_coef", "map_intercept", "penalized_coef", "penalized_intercept",
                 "max_abs_diff", "X", "y"):
        assert hasattr(res, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.lam = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.map.coef = None


def test_str_is_a_readable_table():
    text = str(compare("laplace", b=0.5))
    assert "MAP (Pyro)" in text and "lasso (exact)" in text
    assert "AGREE" in text and "lam = sigma_eps^2 / b = 8" in text
    assert text.count("\n") > 12


def test_to_dict_is_json_serialisable():
    out = json.loads(json.dumps(compare("gaussian", sigma=0.5).to_dict()))
    assert out["prior"] == "gaussian" and out["sigma"] == 0.5
    assert len(out["map_coef"]) == 10 and out["agrees"] is True
    assert out["conventions"]["canonical"] == pytest.approx(16.0)


def test_plot_returns_a_labelled_figure(tmp_path):
    from matplotlib.figure import Figure

    res = compare("laplace", b=0.5)
    fig = res.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert len(ax.patches) == 10  # one bar per coefficient
    fig.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_plot_draws_into_a_given_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        out = compare("gaussian", sigma=0.5).plot(ax=ax)
        assert out is fig and len(ax.patches) == 10
    finally:
        plt.close(fig)


def test_accepts_numpy_and_torch_and_lists_and_does_not_alias_them():
    p = make_problem(20, 5, seed=0)
    X_np = p.X.copy()
    a = compare("laplace", b=0.1, X=X_np, y=p.y, noise=p.noise)
    b = compare("laplace", b=0.1, X=torch.tensor(p.X), y=torch.tensor(p.y), noise=p.noise)
    c = compare("laplace", b=0.1, X=p.X.tolist(), y=p.y.tolist(), noise=p.noise)
    assert torch.equal(a.map_coef, b.map_coef) and torch.equal(a.map_coef, c.map_coef)
    assert a.X.dtype == torch.float64
    a.X[0, 0] = 123.0  # the result holds a copy
    assert X_np[0, 0] != 123.0


def test_float32_input_is_computed_in_float64():
    p = make_problem(30, 6, seed=1)
    res = compare("gaussian", sigma=0.3, X=p.X.astype(np.float32), y=p.y.astype(np.float32),
                  noise=p.noise)
    assert res.map_coef.dtype == torch.float64 and res.agrees


def test_prior_objects_are_accepted():
    assert compare(Laplace(0.5)).lam == pytest.approx(8.0)
    assert compare(Gaussian(sigma=0.5)).lam == pytest.approx(16.0)


def test_train_reports_how_close_d2l_training_gets():
    res = compare("gaussian", sigma=0.5, train=True)
    assert res.training is not None
    assert res.training_max_abs_diff < 1e-4
    assert "d2l-style training" in str(res)


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prior": "laplace", "b": -1.0}, r"b must be a positive finite number; got -1\.0"),
        ({"prior": "laplace", "b": 0}, r"b must be a positive finite number; got 0"),
        ({"prior": "laplace", "b": math.inf}, r"b must be a positive finite number; got inf"),
        ({"prior": "laplace", "b": math.nan}, r"b must be a positive finite number; got nan"),
        ({"prior": "gaussian", "sigma": -0.1}, r"sigma must be a positive finite number"),
        ({"prior": "gaussian", "sigma": 1.0, "noise": 0.0}, r"noise must be a positive finite"),
        ({"prior": "gaussian", "sigma": 1.0, "noise": -2}, r"noise must be a positive finite"),
        ({"prior": "cauchy", "sigma": 1.0},
         r"prior must be one of 'gaussian', 'laplace', 'elasticnet'; got 'cauchy'"),
        ({"prior": "laplace", "sigma": 1.0}, r"prior 'laplace' takes the scale 'b', not 'sigma'"),
        ({"prior": "gaussian", "b": 1.0}, r"prior 'gaussian' takes the scale 'sigma', not 'b'"),
        ({"prior": "laplace"}, r"b is required for prior 'laplace'"),
        ({"prior": "gaussian", "sigma": 1.0, "dataset": "mnist"},
         r"dataset must be one of 'default', 'd2l', 'two_feature', 'bernoulli', 'categorical', "
         r"'poisson', 'separable'; got 'mnist'"),
        ({"prior": Laplace(0.5), "b": 0.5}, r"not both"),
    ],
)
def test_bad_prior_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(**kwargs)


def test_a_scale_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"sigma must be a positive finite number; got 'big' "
                                        r"\(str\)"):
        compare("gaussian", sigma="big")


def _data(n=10, d=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)), rng.standard_normal(n)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (X, y[:-1]), r"X and y must have the same number of samples; got X with 10 "
                                   r"rows and y with 9"),
        (lambda X, y: (X[:, 0], y), r"X must be a 2-D array .* got shape \(10,\)"),
        (lambda X, y: (X, np.c_[y, y]), r"y must be a 1-D array .* got shape \(10, 2\)"),
        (lambda X, y: (np.where(np.eye(10, 3) > 0, np.nan, X), y),
         r"X must contain only finite values; found 3 NaN/Inf"),
        (lambda X, y: (X, np.r_[y[:-1], np.inf]), r"y must contain only finite values; found 1"),
        (lambda X, y: (X[:0], y[:0]), r"X must have at least one sample and one feature"),
        (lambda X, y: (X[:, :0], y), r"X must have at least one sample and one feature"),
        (lambda X, y: (X, None), r"give both X and y"),
    ],
)
def test_bad_data_raises_clear_errors(make, match):
    X, y = make(*_data())
    with pytest.raises(ValueError, match=match):
        compare("laplace", b=0.5, X=X, y=y, noise=1.0)


def test_data_of_the_wrong_type_is_a_type_error():
    X, y = _data()
    with pytest.raises(TypeError, match=r"X must hold real numbers; got an array of dtype <U1"):
        compare("laplace", b=0.5, X=np.array([["a"] * 3] * 10), y=y, noise=1.0)


def test_own_data_needs_a_noise_scale():
    X, y = _data()
    with pytest.raises(ValueError, match=r"noise .* is required with your own X and y"):
        compare("laplace", b=0.5, X=X, y=y)


# -------------------------------------------------------------------- state hygiene


def test_pyro_param_store_and_global_rng_are_untouched():
    pyro.clear_param_store()
    pyro.param("users_own", torch.tensor(3.0))
    rng_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    compare("laplace", b=0.5, train=True)
    compare("gaussian", sigma=0.5, dataset="d2l")
    assert list(pyro.get_param_store().keys()) == ["users_own"]
    assert float(pyro.param("users_own").detach()) == 3.0
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    pyro.clear_param_store()


def test_default_dtype_is_not_changed():
    torch.set_default_dtype(torch.float32)
    try:
        res = compare("laplace", b=0.5)
        assert torch.get_default_dtype() == torch.float32
        assert res.map_coef.dtype == torch.float64 and res.agrees
    finally:
        torch.set_default_dtype(torch.float64)


# ------------------------------------------------------------------ frozen, comparable


def test_tensor_reads_are_copies_so_the_result_cannot_be_changed():
    res = compare("laplace", b=0.5)
    before = res.map_coef
    w = res.map_coef
    w[0] = 5.0
    res.X[0, 0] = 5.0
    res.penalized_coef.zero_()
    assert torch.equal(res.map_coef, before) and float(res.X[0, 0]) != 5.0
    assert float(res.penalized_coef.abs().max()) > 0
    with pytest.raises(TypeError):
        res.conventions["canonical"] = 1.0  # a read-only mapping
    assert res.conventions["canonical"] == pytest.approx(8.0)


def test_results_compare_by_value():
    res = compare("laplace", b=0.5)
    assert res == dataclasses.replace(res)  # a copy: equal field by field, tensors by value
    assert res != dataclasses.replace(res, map_coef=res.map_coef + 1e-3)
    assert res != dataclasses.replace(res, lam=7.0)
    assert res != "something else"
    with pytest.raises(TypeError):
        hash(res)


# ------------------------------------------------------------------ the promise


def _forced(res, coef=None, intercept=None):
    """``res`` with its MAP point replaced (forced disagreement, exact by construction)."""
    return dataclasses.replace(
        res,
        map_coef=res.penalized_coef if coef is None else coef,
        map_intercept=res.penalized_intercept if intercept is None else intercept,
    )


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e10])
def test_agreement_is_measured_on_each_quantitys_own_scale(offset):
    """A large y offset enlarges the intercept's scale, not the coefficients': w off by
    1e-5 relative must not hide behind max(1, |c|) (the old rule passed it at 1e6 and 1e10)."""
    p = make_problem(30, 6, seed=1)
    with warnings.catch_warnings():  # only the exact solver's point is used below
        warnings.simplefilter("ignore", mapreg.ConvergenceWarning)
        res = compare("gaussian", sigma=0.3, X=p.X, y=p.y + offset, noise=p.noise)
    w, c = res.penalized_coef, res.penalized_intercept
    assert _forced(res, coef=w * (1 + 1e-7)).agrees
    assert not _forced(res, coef=w * (1 + 1e-5)).agrees
    c_scale = abs(float(res.y.mean())) + float((res.X.mean(0) * w).abs().sum())
    assert res.agreement().intercept_scale == pytest.approx(c_scale, rel=1e-12)
    assert _forced(res, intercept=c + 0.5e-6 * c_scale).agrees
    assert not _forced(res, intercept=c + 2e-6 * c_scale).agrees
    text = _forced(res, coef=w * (1 + 1e-5)).verdict()
    assert "max|dw|" in text and "1.0e-05 x |w|_inf" in text


@pytest.mark.parametrize("unit", [1e-6, 1.0])
def test_agreement_does_not_depend_on_the_units_of_y(unit):
    """y in micro-units: the old absolute floor 1e-6 * max(1, ...) accepted coefficients
    50% off; the new rule is relative and the same in every unit."""
    p = make_problem(30, 6, seed=1)
    res = compare("laplace", b=0.05 * unit, X=p.X, y=p.y * unit, noise=p.noise * unit)
    assert res.agrees  # ~1e-15 relative, far inside the promise
    w = res.penalized_coef
    assert _forced(res, coef=w * (1 + 1e-7)).agrees
    assert not _forced(res, coef=w * (1 + 1e-5)).agrees
    assert not _forced(res, coef=w * 1.5).agrees


def test_an_all_zero_optimum():
    """Lasso: both exactly zero. Ridge (no exact zeros; here n = 1 so the closed form is
    exactly 0): the MAP's w must leave the fitted values unchanged to 1e-6 of the fit."""
    p = make_problem(30, 10, seed=4)
    res = compare("laplace", b=1e-9, X=p.X, y=p.y, noise=p.noise)
    assert torch.all(res.penalized_coef == 0) and res.agrees
    tiny = torch.zeros(10, dtype=torch.float64)
    tiny[3] = 1e-300
    assert not _forced(res, coef=tiny).agrees
    ridge = compare("gaussian", sigma=0.5, X=[[0.3, -1.2, 2.0]], y=[0.7], noise=0.5)
    assert float(ridge.penalized_coef.abs().max()) == 0.0 and ridge.agrees
    off = torch.tensor([1e-3, 0.0, 0.0], dtype=torch.float64)
    assert not _forced(ridge, coef=off).agrees
    assert "w_ridge = 0" in _forced(ridge, coef=off).verdict()


def test_str_and_dict_state_the_promise_and_the_evidence():
    res = compare("laplace", b=0.5)
    text = str(res)
    assert "promise: max|dw| <= 1e-6 |w_lasso|_inf, |dc| <= 1e-6 (|mean y| + " in text
    assert res.verdict().startswith("AGREE -- max|dw| = ")
    out = res.to_dict()
    assert out["verdict_kind"] == "agree" and out["verdict"] == res.verdict()
    assert out["coef_rel_diff"] <= 1e-6 and out["intercept_rel_diff"] <= 1e-6


def test_str_shows_at_most_20_coefficient_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2000))
    y = X[:, :5].sum(1) + rng.standard_normal(20)
    res = compare("gaussian", sigma=0.5, X=X, y=y, noise=1.0)
    lines = str(res).splitlines()
    rows = [ln for ln in lines if ln.lstrip().startswith("w") and ln.split()[0][1:].isdigit()]
    assert len(rows) == 20 and len(lines) < 40
    assert any("1980 more rows" in ln and "result.to_dict() has all" in ln for ln in lines)
    assert any(ln.split()[:1] == ["c"] for ln in lines)  # the intercept, always
    assert any(ln.startswith("promise:") for ln in lines) and any("AGREE" in ln for ln in lines)
    assert len(res.to_dict()["map_coef"]) == 2000


# ------------------------------------------------------------------ the verdict


@pytest.mark.parametrize(
    "evidence, kind",
    [
        ({"agrees": True, "same_objective": False, "unique": False, "cond": 1.0, "rel_diff": 0},
         "agree"),
        ({"agrees": False, "same_objective": True, "unique": False, "cond": math.inf,
          "rel_diff": 1e-2}, "not_unique"),
        ({"agrees": False, "same_objective": False, "unique": False, "cond": math.inf,
          "rel_diff": 1e-2}, "disagree"),
        ({"agrees": False, "same_objective": True, "unique": True, "cond": 1e12,
          "rel_diff": 1e-4}, "rounding"),
        ({"agrees": False, "same_objective": True, "unique": True, "cond": 1e12,
          "rel_diff": 1e-2}, "disagree"),  # more than cond x 1e-15 explains
        ({"agrees": False, "same_objective": True, "unique": True, "cond": 2.6,
          "rel_diff": 1e-5}, "disagree"),  # "ill-conditioned (cond = 2.6)" is no longer said
        ({"agrees": False, "same_objective": False, "unique": True, "cond": 1e14,
          "rel_diff": 1e-5}, "disagree"),  # rounding cannot raise the objective
    ],
)
def test_classify_names_only_causes_with_evidence(evidence, kind):
    assert classify(**evidence) == kind


def _duplicated_column_problem():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((30, 3))
    X = np.c_[Z[:, 0], Z]  # column 1 is column 0
    return X, 3.0 * Z[:, 0] + Z[:, 1] + 0.1 * rng.standard_normal(30)


def test_verdict_not_unique_for_a_duplicated_column_with_the_lasso():
    X, y = _duplicated_column_problem()
    res = compare("laplace", b=0.05, X=X, y=y, noise=0.5)
    w = res.penalized_coef
    total = float(w[0] + w[1])
    assert abs(total) > 1.0
    split = w.clone()
    split[0], split[1] = 0.7 * total, 0.3 * total  # another point of the segment of optima
    if torch.equal(split, w):
        split[0], split[1] = 0.4 * total, 0.6 * total
    forced = _forced(res, coef=split)
    diag = forced.diagnosis()
    assert diag.kind == "not_unique"
    c = diag.conditioning
    text = forced.verdict()
    assert text.startswith("NOT UNIQUE -- the lasso optimum is not unique")
    assert f"rank {c.rank} < {len(c.columns)}" in text and "objective rel. diff" in text


def test_verdict_never_says_not_unique_for_the_ridge():
    """The ridge objective is strictly convex: a duplicated column is no excuse."""
    X, y = _duplicated_column_problem()
    res = compare("gaussian", sigma=1.0, X=X, y=y, noise=0.5)
    w = res.penalized_coef
    split = w.clone()
    split[0], split[1] = w[0] + 0.1, w[1] - 0.1
    diag = _forced(res, coef=split).diagnosis()
    assert diag.kind == "disagree"
    assert "not explained: the objectives differ" in str(diag)


def _badly_scaled(seed=0, n=40, d=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.logspace(-3, 3, d)  # column scales 1e-3 .. 1e3
    return X, X @ rng.standard_normal(d) + 1.0 + 0.5 * rng.standard_normal(n)


def test_verdict_rounding_names_the_column_scales():
    """A weak Gaussian prior on columns 1e-3 .. 1e3: cond ~ 1e12. The MAP point is moved by
    3e-6 relative along the flattest direction of the Hessian (the intercept re-optimised),
    which leaves the objective unchanged to ~1e-13 -- what rounding does."""
    X, y = _badly_scaled()
    res = compare("gaussian", sigma=100.0, X=X, y=y, noise=0.5)
    w, c = res.penalized_coef, res.penalized_intercept
    Xc = res.X - res.X.mean(0)
    v = torch.linalg.eigh(Xc.T @ Xc + res.lam * torch.eye(8, dtype=torch.float64))[1][:, 0]
    dw = 3e-6 * float(w.abs().max()) * v / float(v.abs().max())
    forced = _forced(res, coef=w + dw, intercept=c - float(res.X.mean(0) @ dw))
    assert res.hessian_condition > 1e11
    diag = forced.diagnosis()
    assert diag.kind == "rounding" and diag.objective_rel_diff < 1e-11
    text = forced.verdict()
    assert text.startswith("DIFFER BY ROUNDING ONLY -- ill-conditioned: cond(Xc'Xc + lam I) = ")
    assert "standardize the columns of X" in text and "x 1e-15 = " in text
    assert re.search(r"columns of X on scales \d\.\de\+06 apart", text)


def test_verdict_disagree_on_a_standardized_well_conditioned_problem():
    """The same data standardized: a forced 1e-5 difference is DISAGREE, not rounding, and
    nothing suggests standardizing."""
    X, y = _badly_scaled()
    Xs = (X - X.mean(0)) / X.std(0)
    for prior, kw in (("gaussian", {"sigma": 100.0}), ("laplace", {"b": 0.05})):
        res = compare(prior, X=Xs, y=y, noise=0.5, **kw)
        w = res.penalized_coef
        diag = _forced(res, coef=w * (1 + 1e-5)).diagnosis()
        assert diag.kind == "disagree"
        text = str(diag)
        assert text.startswith("DISAGREE -- max|dw|") and "standardize the" not in text
        assert "not explained" in text and "MAP KKT residual" in text


def test_conditioning_names_near_collinear_columns_and_rank():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 4))
    X[:, 2] = X[:, 0] + 1e-7 * rng.standard_normal(50)
    cond = conditioning(torch.tensor(X), torch.ones(4, dtype=torch.bool))
    assert cond.cond > 1e12 and not cond.rank_deficient and cond.scale_ratio < 10
    text = cond.causes(1e-5)
    assert "near-collinear columns w0, w2" in text and "standardize the" not in text
    wide = conditioning(torch.tensor(rng.standard_normal((5, 8))),
                        torch.ones(8, dtype=torch.bool), ridge_lam=1e-3)
    assert wide.rank == 4 and wide.rank_deficient
    assert "rank 4 on 8 columns: in 4 directions only the prior's curvature lam = 0.001" in \
        wide.causes(1e-5)


def test_a_zero_pattern_difference_at_rounding_level_is_named_as_such():
    """One solver leaves 1e-18 where the other has an exact 0: rounding decides that on a
    well-conditioned problem; 1e-9 is far above rounding there and is DISAGREE."""
    res = compare("laplace", b=0.5)
    w = res.penalized_coef
    j = int(torch.nonzero(w == 0)[0])
    for value, kind in ((1e-18, "rounding"), (1e-9, "disagree")):
        moved = w.clone()
        moved[j] = value
        forced = _forced(res, coef=moved)
        diag = forced.diagnosis()
        assert not forced.agrees and diag.kind == kind
        assert diag.conditioning.cond < 1e3  # well-conditioned: never called ill-conditioned
        assert "ill-conditioned" not in str(diag)
    assert "whether a coefficient at the lasso threshold is exactly 0" in str(
        _forced(res, coef=torch.where(torch.arange(10) == j, 1e-18, w)).diagnosis())
