"""The public boundary: every bad or extreme input is refused with a message naming the
parameter, the allowed range and the value; every reasonable spelling of a number or an
array is accepted."""

from __future__ import annotations

import importlib
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import mapreg
from mapreg import Gaussian, Laplace, compare
from mapreg._validation import (
    FLOAT_LIM,
    FLOAT_MIN,
    as_number,
    check_bool,
    check_choice,
    check_data,
    check_positive,
    check_positive_int,
    check_scale,
    power_range,
)

# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, 3.0), (0.5, 0.5), (np.int64(3), 3.0), (np.float32(0.5), 0.5), (np.array(0.5), 0.5),
        (np.array([2]), 2.0), (torch.tensor(0.25), 0.25), (torch.tensor([0.5]), 0.5),
        (torch.tensor([7], dtype=torch.int32), 7.0),
    ],
)
def test_numbers_in_any_spelling_are_accepted(value, expected):
    out = check_positive("b", value)
    assert out == expected and type(out) is float


@pytest.mark.parametrize(
    "value, match",
    [
        (np.int64(-3), r"b must be a positive finite number; got -3$"),
        (np.array(-0.5), r"b must be a positive finite number; got -0\.5$"),
        (torch.tensor([0.0]), r"b must be a positive finite number; got 0\.0$"),
        (10**400, r"b must be a positive finite number; got ~1e400$"),
        (-(10**400), r"got ~-1e400$"),
    ],
)
def test_bad_values_are_shown_as_plain_numbers(value, match):
    """The message shows the number the check saw, never a contradiction such as
    'must be positive; got array(3)'."""
    with pytest.raises(ValueError, match=match):
        check_positive("b", value)


@pytest.mark.parametrize(
    "value, match",
    [
        ("0.5", r"b must be a positive finite number; got '0\.5' \(str\)"),
        (True, r"got True \(bool\)"),
        (np.bool_(True), r"got np\.True_ \(bool\)|got True \(bool"),
        (1j, r"got 1j \(complex\)"),
        (None, r"got None \(NoneType\)"),
        (np.array([0.5, 1.0]), r"a single number; got an array of dtype float64 and shape \(2,\)"),
        (torch.tensor([1.0, 2.0]), r"a single number; got a tensor of dtype torch\.float32"),
        (np.array("x"), r"got an array of dtype <U1"),
    ],
)
def test_wrong_types_raise_type_error(value, match):
    with pytest.raises(TypeError, match=match):
        check_positive("b", value)


def test_integers():
    assert check_positive_int("n", np.int64(3)) == 3
    assert check_positive_int("n", torch.tensor([4])) == 4
    with pytest.raises(TypeError, match=r"n must be an integer >= 1; got 3\.0 \(float\)"):
        check_positive_int("n", 3.0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1; got 0$"):
        check_positive_int("n", np.int64(0))
    with pytest.raises(ValueError, match=r"n must be an integer between 1 and 10; got 11"):
        check_positive_int("n", 11, maximum=10)
    assert as_number("x", np.uint8(5)) == 5


def test_choices():
    assert check_choice("prior", "laplace", ["gaussian", "laplace"]) == "laplace"
    with pytest.raises(ValueError, match=r"prior must be one of 'gaussian', 'laplace'; got 'x'"):
        check_choice("prior", "x", ["gaussian", "laplace"])
    with pytest.raises(TypeError, match=r"prior must be one of 'gaussian', 'laplace', "
                                        r"'elasticnet'; got 3 \(int\)"):
        compare(3, b=0.5)


@pytest.mark.parametrize("value", [True, False, np.bool_(False)])
def test_booleans_are_accepted(value):
    assert check_bool("strict", value) is bool(value)


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, 1.0])
def test_non_booleans_are_refused(value):
    with pytest.raises(TypeError, match=rf"strict must be True or False; got {value!r}"):
        check_bool("strict", value)


# ------------------------------------------------------------------ float64 ranges


def test_ranges_are_derived_from_float64():
    tiny = sys.float_info.min
    assert FLOAT_MIN == tiny and FLOAT_LIM == 1.0 / tiny < sys.float_info.max
    lo, hi = power_range(2)
    assert lo == pytest.approx(math.sqrt(tiny), rel=1e-12)
    assert hi == pytest.approx(1.0 / math.sqrt(tiny), rel=1e-12)
    assert 1.4e-154 < lo < 1.6e-154 and 6.6e153 < hi < 6.8e153
    for power in (1, 2):
        lo, hi = power_range(power)
        for s in (lo, hi):  # the ends themselves are accepted, and so are their kappas
            assert check_scale("s", s, power) == s
            kappa = s ** -power
            assert FLOAT_MIN <= kappa * (1 + 1e-12) and kappa <= FLOAT_LIM * (1 + 1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prior": "gaussian", "sigma": 1e-170},
         r"sigma must be between 1\.49e-154 and 6\.7e\+153 so that sigma\^2 and 1/sigma\^2 "
         r"are finite positive float64 numbers .*; got 1e-170"),
        ({"prior": "gaussian", "sigma": 1e200}, r"sigma must be between .*; got 1e\+200"),
        ({"prior": "laplace", "b": 5e-324},
         r"b must be between 2\.23e-308 and 4\.49e\+307 so that b and 1/b are .*; got 5e-324"),
        ({"prior": "laplace", "b": 1e308}, r"b must be between .*; got 1e\+308"),
        ({"prior": "laplace", "b": 0.5, "noise": 1e300},
         r"noise must be between 1\.49e-154 and 6\.7e\+153 .*; got 1e\+300"),
        ({"prior": "laplace", "b": 0.5, "noise": 1e-160}, r"noise must be between"),
        # each scale in range, but lam = noise^2 / sigma^2 or noise^2 / b is not
        ({"prior": "gaussian", "sigma": 1e-150, "noise": 1e150},
         r"lam = noise\^2 / sigma\^2 with noise=1e\+150, sigma=1e-150 = ~1e600 is outside "
         r"2\.23e-308 \.\. 4\.49e\+307"),
        ({"prior": "laplace", "b": 1e300, "noise": 1e-150},
         r"lam = noise\^2 / b with noise=1e-150, b=1e\+300 = ~1e-600 is outside"),
        ({"prior": "gaussian", "sigma": 1e100, "noise": 1e-100}, r"lam = .* = ~1e-400"),
    ],
)
def test_extreme_scales_are_refused_with_the_allowed_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(**kwargs)


def test_priors_and_lam_conversions_check_the_same_ranges():
    with pytest.raises(ValueError, match=r"sigma must be between"):
        Gaussian(1e-170)
    with pytest.raises(ValueError, match=r"b must be between"):
        Laplace(b=5e-324)
    with pytest.raises(ValueError, match=r"lam = noise\^2 / b .* = 1e-316 is outside"):
        Laplace(1e300).lam(1e-8)
    with pytest.raises(ValueError, match=r"kappa = lam / noise\^2 .* = ~1e500"):
        Gaussian.from_lam(1e300, 1e-100)
    with pytest.raises(ValueError, match=r"lam must be between"):
        Laplace.from_lam(5e-324, 1.0)
    assert Gaussian.from_lam(4.0, 2.0).sigma == pytest.approx(1.0)


def test_in_range_extremes_do_not_crash():
    """Scales near the ends of the range run through: no ZeroDivisionError, OverflowError
    or internal assert. (How well the solvers do there is theirs to report: a
    ConvergenceWarning, and the verdict says whether the points agree.)"""
    cases = (("gaussian", {"sigma": 1e-150}), ("gaussian", {"sigma": 1e150}),
             ("gaussian", {"sigma": 1e-100, "noise": 1e-100}), ("laplace", {"b": 1e-300}))
    for prior, kw in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mapreg.ConvergenceWarning)
            res = compare(prior, **kw)
        assert math.isfinite(res.lam) and res.lam > 0
        assert res.verdict().split(" -- ")[0] in {"AGREE", "DISAGREE", "NOT UNIQUE",
                                                 "DIFFER BY ROUNDING ONLY"}


# ------------------------------------------------------------------ arrays


def _xy(n=20, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X @ np.arange(1.0, d + 1) + 0.5 * rng.standard_normal(n)


def test_pandas_input_is_accepted_whatever_the_labels():
    X, y = _xy()
    ref = compare("laplace", b=0.2, X=X, y=y, noise=0.5)
    for frame in (pd.DataFrame(X), pd.DataFrame(X, columns=list("abcd"), index=range(100, 120))):
        for target in (pd.Series(y), pd.Series(y, index=range(7, 27)), pd.DataFrame(y)):
            res = compare("laplace", b=0.2, X=frame, y=target, noise=0.5)
            assert torch.equal(res.map_coef, ref.map_coef)
            assert torch.equal(res.X, torch.from_numpy(X))


def test_read_only_arrays_are_accepted_without_a_warning():
    X, y = _xy()
    X.flags.writeable = False
    y.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable arrays
        Xt, yt = check_data(X, y)
        res = compare("gaussian", sigma=0.5, X=X, y=y, noise=0.5)
    assert torch.equal(Xt, torch.from_numpy(X.copy())) and res.agrees
    Xt[0, 0] = 99.0  # a writable copy
    assert X[0, 0] != 99.0


def test_tensors_are_copied_and_detached():
    X, y = _xy()
    Xt = torch.tensor(X, requires_grad=True)
    Xc, _ = check_data(Xt, torch.tensor(y, dtype=torch.float32))
    assert not Xc.requires_grad and Xc.dtype == torch.float64
    Xc[0, 0] = 99.0
    assert float(Xt.detach()[0, 0]) != 99.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X: X.astype(object), r"X must hold real numbers; got an array of dtype object "
                                     r"and shape \(20, 4\) \(convert it with \.astype\(float\)"),
        (lambda X: X.astype(str), r"X must hold real numbers; got an array of dtype <U"),
        (lambda X: X > 0, r"X must hold real numbers; got an array of dtype bool"),
        (lambda X: X + 0j, r"X must hold real numbers; got an array of dtype complex128"),
        (lambda X: torch.tensor(X > 0), r"X must hold real numbers; got a tensor of dtype "
                                        r"torch\.bool"),
        (lambda X: [[1.0, 2.0], [3.0]], r"X must be a rectangular array of real numbers; got a "
                                        r"list"),
        (lambda X: pd.DataFrame({"a": X[:, 0], "b": ["x"] * 20}), r"dtype object"),
        (lambda X: None, r"X is required"),
    ],
)
def test_non_numeric_arrays_raise_type_error(make, match):
    X, y = _xy()
    with pytest.raises(TypeError, match=match):
        check_data(make(X), y)


# ------------------------------------------------------------------ compare()'s flags


@pytest.mark.parametrize("flag, value", [("strict", "no"), ("strict", 1), ("train", "yes"),
                                         ("train", None)])
def test_flags_must_be_real_booleans(flag, value):
    with pytest.raises(TypeError, match=rf"{flag} must be True or False; got {value!r}"):
        compare("laplace", b=0.5, **{flag: value})


def test_numbers_in_any_spelling_reach_compare():
    assert compare("laplace", b=np.int64(2)).lam == pytest.approx(2.0)
    assert compare("laplace", b=np.array(0.5)).lam == pytest.approx(8.0)
    assert compare("gaussian", sigma=torch.tensor([0.5]), noise=np.float32(2.0)).lam == \
        pytest.approx(16.0)


def test_dataset_and_user_data_are_exclusive():
    X, y = _xy()
    with pytest.raises(ValueError, match=r"give either dataset='d2l' or your own X and y, not "
                                         r"both: drop dataset= .*, or X= and y="):
        compare("laplace", b=0.5, X=X, y=y, noise=0.5, dataset="d2l")
    with pytest.raises(ValueError, match=r"give either dataset='default'"):
        compare("laplace", b=0.5, X=X, y=y, noise=0.5, dataset="default")
    with pytest.raises(ValueError, match=r"dataset must be one of 'default', 'd2l', "
                                         r"'two_feature', 'bernoulli', 'categorical', 'poisson', "
                                         r"'separable'; got 'mnist'"):
        compare("laplace", b=0.5, X=X, y=y, noise=0.5, dataset="mnist")
    assert compare("laplace", b=0.5, dataset="d2l").dataset == "d2l"
    assert compare("laplace", b=0.5).dataset == "default"


def test_strict_reaches_the_training(monkeypatch):
    training = importlib.import_module("mapreg.penalized.training")
    seen = {}
    real = training.train_penalized

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_penalized", spy)
    compare("gaussian", sigma=0.5, train=True, strict=True)
    assert seen["strict"] is True
    compare("gaussian", sigma=0.5, train=True)
    assert seen["strict"] is False


def test_package_version_is_exposed():
    assert isinstance(mapreg.__version__, str) and mapreg.__version__.count(".") >= 1


@pytest.mark.parametrize("kind", ["numpy", "readonly", "fortran", "tensor", "strided"])
def test_map_estimate_reads_the_callers_data_without_changing_it(kind):
    """map_estimate validates without a copy (check_data(copy=False)) where it can; the
    caller's arrays must come back bit for bit, whatever their layout."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6)) + 1e3
    y = rng.standard_normal(30) + 5.0
    Xa, ya = X.copy(), y.copy()
    if kind == "readonly":
        Xa.setflags(write=False)
    elif kind == "fortran":
        Xa = np.asfortranarray(Xa)
    elif kind == "tensor":
        Xa, ya = torch.from_numpy(Xa), torch.from_numpy(ya)
    elif kind == "strided":
        Xa = np.repeat(Xa, 2, axis=1)[:, ::2]
    ref = mapreg.map_estimate(X.copy(), y.copy(), Laplace(0.5), 0.5)
    res = mapreg.map_estimate(Xa, ya, Laplace(0.5), 0.5)
    assert np.array_equal(np.asarray(Xa), X) and np.array_equal(np.asarray(ya), y)
    # the same problem (BLAS may round differently with another memory alignment)
    assert torch.allclose(res.coef, ref.coef, rtol=1e-9, atol=1e-12)
    assert res.intercept == pytest.approx(ref.intercept, rel=1e-9)
