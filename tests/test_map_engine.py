"""The MAP engine on hostile data: a stop test that cannot pass at a wrong point, invariance
to linear reparametrizations (centring, offsets, units), bounded cost, thread safety.

The independent reference here is ``hostile.map_kkt_check``: the KKT conditions recomputed
in numpy's extended precision at the returned point (no Pyro, no torch).
"""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch
from conftest import PRIOR_REGISTRY, make_problem, run_concurrently
from hostile import HostileProblem, make_hostile, map_kkt_check, prior_scales

from mapreg import map_estimate, map_optimality
from mapreg.bayes.priors import Gaussian, Laplace, make_prior


def _hostile(X, y, noise, prior) -> HostileProblem:
    lam = prior.lam(noise)
    return HostileProblem(np.asarray(X), np.asarray(y), noise, prior.name, prior.scale, lam, "")


def _check(X, y, noise, prior, **kw):
    res = map_estimate(X, y, prior, noise, **kw)
    ok, worst = map_kkt_check(_hostile(X, y, noise, prior), res.coef.numpy(), res.intercept)
    assert res.converged and ok, f"converged={res.converged}, independent KKT ratio {worst:.2e}"
    return res


# ------------------------------------------------------------------- the stop test


def test_stop_test_rejects_a_wrong_interpolant_the_old_test_accepted():
    """Weak Laplace prior, n < d: the minimum-norm least-squares interpolant fits the data
    exactly but is not the lasso solution (objective far above the optimum). A KKT test
    relative to the gradient at w = 0 accepts it; the test relative to each condition's
    own scale (penalty weight included) does not."""
    p = make_problem(15, 40, seed=1)
    prior = Laplace(b=1e9)  # penalty weight 1e-9: below 1e-10 x the gradient at 0
    Xc, yc = p.X - p.X.mean(0), p.y - p.y.mean()
    w_ls = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    c_ls = p.y.mean() - p.X.mean(0) @ w_ls
    # the old test: residual <= 1e-10 * max |grad at 0|
    grad0 = np.abs(Xc.T @ yc).max() / p.noise**2
    r = p.y - p.X @ w_ls - c_ls
    g = -(Xc.T @ r) / p.noise**2
    old_residual = np.abs(g + np.sign(w_ls) / prior.b).max()
    assert old_residual <= 1e-10 * grad0  # the old test passes at this wrong point
    wrong = map_optimality(p.X, p.y, prior, p.noise, w_ls, c_ls)
    assert not wrong.passes and wrong.kkt_residual > 0.5
    res = _check(p.X, p.y, p.noise, prior)
    right = map_optimality(p.X, p.y, prior, p.noise, res.coef, res.intercept)
    # so weak a prior is resolved to the rounding of Pyro's gradient (the residuals'
    # rounding, ~1e-3 of the penalty weight 1e-9 here): still >= 500x sharper than the
    # wrong point
    assert res.converged and res.kkt_residual <= res.kkt_floor < 2e-3
    assert right.passes and right.kkt_residual < 1e-3
    # the right point has a smaller objective, by far: the wrong one was no near miss
    l1 = float(np.abs(w_ls).sum())
    assert float(res.coef.abs().sum()) < 0.9 * l1


@pytest.mark.parametrize("prior_name", sorted(PRIOR_REGISTRY))
def test_reported_residual_is_the_stop_test_at_the_returned_point(prior_name):
    p = make_problem(40, 15, seed=1)
    prior = PRIOR_REGISTRY[prior_name].make(5.0)
    res = map_estimate(p.X, p.y, prior, p.noise)
    opt = map_optimality(p.X, p.y, prior, p.noise, res.coef, res.intercept)
    # two traces at the same point differ by the rounding of Pyro's gradient (the floor)
    assert opt.passes and abs(opt.kkt_residual - res.kkt_residual) <= res.kkt_floor
    assert res.kkt_floor < res.kkt_tol  # n > d, centred data: the floor is far below tol


def test_a_perturbed_optimum_fails_the_test():
    p = make_problem(30, 8, seed=2)
    for prior in (Gaussian(0.5), Laplace(0.1)):
        res = map_estimate(p.X, p.y, prior, p.noise)
        w = res.coef.clone()
        w[0] += 1e-6 * float(w.abs().max())
        assert not map_optimality(p.X, p.y, prior, p.noise, w, res.intercept).passes


# --------------------------------------------------------- linear reparametrizations


def _base(seed=3, n=25, d=12):
    p = make_problem(n, d, seed=seed)
    return p.X, p.y, p.noise


@pytest.mark.parametrize("prior", [Gaussian(0.3), Laplace(0.05), Laplace(50.0)], ids=str)
@pytest.mark.parametrize("n, d", [(25, 12), (12, 30)])
def test_centring_offsets_and_units_change_neither_answer_nor_cost(prior, n, d):
    """A column offset (a 'year' around 2000, 1e5), an offset in y (1e6) and a change of
    units (y, noise and the prior's scale x 1e6) are linear reparametrizations of the same
    posterior: the MAP moves with them exactly, in the same number of iterations."""
    X, y, noise = _base(n=n, d=d)
    base = _check(X, y, noise, prior)
    w0, c0 = base.coef.numpy(), base.intercept
    scale_w = float(np.abs(w0).max()) or 1.0

    Xs = X.copy()
    Xs[:, 0] += 2000.0
    Xs[:, 1] += 1e5
    shifted = _check(Xs, y, noise, prior)
    # the answer is resolved to the rounding of the raw data: eps * offset relative
    assert np.abs(shifted.coef.numpy() - w0).max() <= 1e-8 * scale_w
    assert shifted.intercept == pytest.approx(c0 - 2000.0 * w0[0] - 1e5 * w0[1], abs=1e-4)

    offset = _check(X, y + 1e6, noise, prior)
    assert np.abs(offset.coef.numpy() - w0).max() <= 1e-8 * scale_w
    assert offset.intercept == pytest.approx(c0 + 1e6, rel=1e-12)

    k = 1e6
    scaled_prior = type(prior)(prior.scale * k)
    units = _check(X, k * y, k * noise, scaled_prior)
    assert np.abs(units.coef.numpy() / k - w0).max() <= 1e-9 * scale_w
    assert units.intercept / k == pytest.approx(c0, rel=1e-9, abs=1e-9 * scale_w)

    for other in (shifted, offset, units):
        assert torch.equal(other.coef == 0, base.coef == 0)
        assert other.iterations <= base.iterations + 1


def test_all_weights_zero_gives_the_mean_of_y_as_intercept():
    """b so small that lam >> lam_max: w = 0 exactly and c = mean(y), on any offset."""
    X, y, noise = _base()
    for shift in (0.0, 1e6, -3e9):
        res = _check(X, y + shift, noise, Laplace(1e-9))
        assert bool((res.coef == 0).all())
        assert res.intercept == pytest.approx(float(np.mean(y + shift)), rel=1e-15, abs=1e-15)


@pytest.mark.parametrize("b", [1e2, 1e4, 1e6])
def test_weak_laplace_prior_with_n_less_than_d_is_exact_and_cheap(b):
    p = make_problem(20, 60, seed=4)
    res = _check(p.X, p.y, p.noise, Laplace(b))
    assert int((res.coef != 0).sum()) <= 19  # at most rank(Xc) = n - 1 non-zeros
    assert res.iterations <= 8 and res.pyro_traces <= 16


def test_hostile_problems_converge_to_independently_checked_kkt_points():
    """A seeded sample of the property sweep (benchmarks/sweep.py runs >= 1,500)."""
    for seed in range(0, 700, 7):
        p = make_hostile(seed)
        res = map_estimate(p.X, p.y, make_prior(p.prior, **prior_scales(p)), p.noise)
        ok, worst = map_kkt_check(p, res.coef.numpy(), res.intercept)
        assert res.converged and ok, f"{p.label}: independent KKT ratio {worst:.2e}"


@pytest.mark.parametrize("max_cg_work", [1.0, 1e9])
def test_conjugate_gradient_path_for_large_smooth_problems(monkeypatch, max_cg_work):
    """Large smooth problems try CG on exact Hessian-vector products before building the
    Hessian; forced here on small data (both when CG suffices and when Newton finishes)."""
    import mapreg.bayes.map as engine

    monkeypatch.setattr(engine, "_CG_MIN_WORK", max_cg_work)
    X, y, noise = _base(n=40, d=25)
    X[:, 0] += 2000.0
    res = _check(X, y + 1e6, noise, Gaussian(0.3))
    assert res.method == ("newton-cg" if max_cg_work == 1.0 else "newton")


# ------------------------------------------------------------------------- state


def test_concurrent_calls_from_threads_give_the_serial_answers():
    rng = np.random.default_rng(5)
    jobs = [(rng.standard_normal((30, 12)), rng.standard_normal(30),
             Laplace(0.3) if i % 2 else Gaussian(0.4)) for i in range(6)]
    serial = [map_estimate(X, y, prior, 0.5) for X, y, prior in jobs]
    pyro.clear_param_store()
    pyro.param("user_param", torch.tensor(3.0))
    results, errors = run_concurrently(lambda X, y, prior: map_estimate(X, y, prior, 0.5), jobs)
    assert not errors
    for got, want in zip(results, serial, strict=True):
        assert torch.equal(got.coef, want.coef) and got.intercept == want.intercept
    assert list(pyro.get_param_store().keys()) == ["user_param"]
    pyro.clear_param_store()


def test_result_is_frozen_and_comparable():
    p = make_problem(20, 5, seed=6)
    a = map_estimate(p.X, p.y, Laplace(0.2), p.noise)
    b = map_estimate(p.X, p.y, Laplace(0.2), p.noise)
    assert a.coef.numpy().tolist() == b.coef.numpy().tolist()
    coef = a.coef
    coef[0] = 123.0
    assert float(a.coef[0]) != 123.0
    assert a == b and a != map_estimate(p.X, p.y, Laplace(0.3), p.noise)  # wall_time aside
