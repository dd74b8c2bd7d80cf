"""map_model: the exact MAP of a user's own Pyro model.

References: scipy.optimize on the formula written here (split-variable L-BFGS-B for L1),
mapreg's linear engine (an independent code path for the Gaussian likelihood), closed forms.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from scipy.optimize import minimize

from mapreg import ConvergenceError, ConvergenceWarning, Gaussian, Laplace, map_estimate
from mapreg.bayes.engine import map_model

FLAT = dist.ImproperUniform(dist.constraints.real, (), ())


def logistic_model(X, y, b=None, sigma=None):
    d = X.shape[1]
    prior = dist.Laplace(torch.zeros(d), b) if b is not None else dist.Normal(torch.zeros(d), sigma)
    w = pyro.sample("w", prior.to_event(1))
    c = pyro.sample("c", FLAT)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Bernoulli(logits=X @ w + c), obs=y)


def _logistic_data(n, d, seed, separable=False, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64)
    w[: min(d, 3)] = torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64)[: min(d, 3)]
    eta = X @ w
    if separable:
        y = (eta > 0).double()
    else:
        y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(eta)).double()
    return X + offset, y


def _scipy_logistic(X, y, lam1=0.0, lam2=0.0):
    """min sum log(1+e^eta) - y eta + lam1 ||w||_1 + lam2/2 ||w||^2 (split variables)."""
    X, y = X.numpy(), y.numpy()
    d = X.shape[1]
    shift = X.mean(0)
    Xc = X - shift

    def F(z):
        wp, wm, a = z[:d], z[d:2 * d], z[2 * d]
        w = wp - wm
        eta = Xc @ w + a
        p = 0.5 * (1 + np.tanh(0.5 * eta))
        f = np.sum(np.logaddexp(0, eta) - y * eta) + lam1 * np.sum(wp + wm) + 0.5 * lam2 * w @ w
        gw = Xc.T @ (p - y) + lam2 * w
        return f, np.concatenate([gw + lam1, -gw + lam1, [np.sum(p - y)]])

    bounds = [(0, None)] * (2 * d) + [(None, None)]
    z = minimize(F, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                 options=dict(ftol=1e-16, gtol=1e-13, maxiter=100000, maxcor=50)).x
    w = z[:d] - z[d:2 * d]
    return w, z[2 * d] - shift @ w, F(z)[0]


def _objective(X, y, w, c, lam1, lam2):
    eta = X.numpy() @ w + c
    return float(np.sum(np.logaddexp(0, eta) - y.numpy() * eta) + lam1 * np.abs(w).sum()
                 + 0.5 * lam2 * w @ w)


@pytest.mark.parametrize("shape", [(40, 6, False), (15, 30, False), (30, 4, True)],
                         ids=["n>d", "n<d", "separable"])
@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_user_logistic_model_matches_scipy(shape, prior):
    n, d, separable = shape
    X, y = _logistic_data(n, d, seed=n + d, separable=separable)
    scale = 0.7
    kw = {"b": scale} if prior == "laplace" else {"sigma": scale}
    lam1, lam2 = (1 / scale, 0.0) if prior == "laplace" else (0.0, 1 / scale**2)
    res = map_model(logistic_model, X, y, **kw)
    assert res.converged and res.kkt_residual <= 1e-10 + res.kkt_floor
    w, c = res["w"].numpy(), float(res["c"])
    w_ref, c_ref, f_ref = _scipy_logistic(X, y, lam1, lam2)
    f = _objective(X, y, w, c, lam1, lam2)
    # the MAP's objective is at least as low as scipy's, and the points agree
    assert f <= f_ref + 1e-12 * abs(f_ref)
    assert np.abs(w - w_ref).max() <= 1e-5 * max(1.0, np.abs(w).max())
    # Pyro's -log p = the formula + the prior's normaliser (d log 2b or d/2 log 2 pi sigma^2)
    const = d * np.log(2 * scale) if prior == "laplace" else 0.5 * d * np.log(2 * np.pi * scale**2)
    assert res.neg_log_joint == pytest.approx(f + const, rel=1e-12)
    if prior == "laplace":
        # exact zeros, and at each: |X_j'(y - p)| <= 1/b
        zero = w == 0
        p = torch.sigmoid(X @ res["w"] + res["c"]).numpy()
        slack = np.abs(X.numpy().T @ (y.numpy() - p))
        assert (slack[zero] <= lam1 * (1 + 1e-9)).all()
        assert (np.abs(w_ref[zero]) <= 1e-6).all()


def test_user_linear_model_equals_the_linear_engine():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(30, 8, generator=g, dtype=torch.float64) + 100.0
    y = X[:, 0] - 2 * X[:, 3] + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)

    def model(X, y, prior):
        w = pyro.sample("w", prior.to_event(1))
        c = pyro.sample("c", FLAT)
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Normal(X @ w + c, 0.3), obs=y)

    for prior, pd in [(Laplace(0.05), dist.Laplace(torch.zeros(8), 0.05)),
                      (Gaussian(0.5), dist.Normal(torch.zeros(8), 0.5))]:
        ref = map_estimate(X, y, prior, 0.3)
        res = map_model(model, X, y, pd)
        assert res.converged
        assert torch.allclose(res["w"], ref.coef, rtol=0, atol=1e-8 * max(1, ref.coef.abs().max()))
        assert torch.equal(res["w"] == 0, ref.coef == 0)
        assert res.neg_log_joint == pytest.approx(ref.neg_log_joint, rel=1e-10)


def softmax_model(X, y, K, sigma):
    W = pyro.sample("W", dist.Normal(torch.zeros(X.shape[1], K), sigma).to_event(2))
    c = pyro.sample("c", dist.ImproperUniform(dist.constraints.real, (), (K,)))
    eta = X @ W + c.unsqueeze(-2)  # broadcasts over leading batch dimensions of W and c
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Categorical(logits=eta), obs=y)


def test_softmax_weight_rows_sum_to_zero_and_vectorized_agrees():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(50, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (50,), generator=g)
    res = map_model(softmax_model, X, y, 3, 0.8)
    vec = map_model(softmax_model, X, y, 3, 0.8, vectorized=True)
    assert res.converged and vec.converged
    W = res["W"]
    assert W.shape == (5, 3)
    # flat intercepts + i.i.d. Gaussian prior: each weight row sums to zero at the optimum
    assert float(W.sum(1).abs().max()) <= 1e-10 * float(W.abs().max())
    assert torch.allclose(vec["W"], W, rtol=0, atol=1e-10)
    assert vec.pyro_traces < res.pyro_traces + 5  # batched Hessian columns: no more traces


def test_constrained_site_is_optimised_as_autodelta_defines_the_map():
    # s ~ HalfNormal(1), y_i ~ N(0, s): the mode of the density of s itself (no Jacobian)
    # solves s^4 + n s^2 - sum y^2 = 0
    y = torch.tensor([0.3, -1.2, 2.0, 0.7, -0.4], dtype=torch.float64)

    def model(y):
        s = pyro.sample("s", dist.HalfNormal(torch.tensor(1.0, dtype=torch.float64)))
        with pyro.plate("data", y.shape[0]):
            pyro.sample("y", dist.Normal(0.0, s), obs=y)

    res = map_model(model, y)
    n, q = y.numel(), float((y * y).sum())
    exact = np.sqrt((-n + np.sqrt(n * n + 4 * q)) / 2)
    assert float(res["s"]) == pytest.approx(exact, rel=1e-12)
    assert res.kinds == {"s": "smooth"}


def test_guide_seeded_at_the_map_and_param_store_untouched():
    X, y = _logistic_data(30, 4, seed=1)
    pyro.clear_param_store()
    pyro.param("users_own", torch.tensor(3.0))
    res = map_model(logistic_model, X, y, b=0.5)
    assert set(pyro.get_param_store().keys()) == {"users_own"}
    with pyro.get_param_store().scope():
        guide = res.guide(logistic_model, "delta")
        guide(X, y, b=0.5)
        med = guide.median(X, y, b=0.5)
        assert torch.equal(med["w"], res["w"])
        normal = res.guide(logistic_model, "normal")
        normal(X, y, b=0.5)
        assert torch.allclose(normal.median(X, y, b=0.5)["w"], res["w"], atol=1e-12)
    assert float(pyro.param("users_own").detach()) == 3.0
    with pytest.raises(ValueError, match="kind must be one of 'delta', 'normal'; got 'x'"):
        res.guide(logistic_model, "x")
    pyro.clear_param_store()


def test_strong_prior_gives_exact_zeros_and_results_are_frozen():
    X, y = _logistic_data(40, 5, seed=2)
    res = map_model(logistic_model, X, y, b=1e-4)
    assert res.n_zero("w") == 5
    v = res.values
    v["w"][0] = 9.0
    assert float(res["w"][0]) == 0.0
    assert res == map_model(logistic_model, X, y, b=1e-4)


def test_not_converged_is_reported():
    X, y = _logistic_data(40, 5, seed=2)
    with pytest.warns(ConvergenceWarning, match="KKT residual"):
        res = map_model(logistic_model, X, y, b=5.0, max_iter=1)
    assert not res.converged and res.kkt_residual > 1e-10
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        map_model(logistic_model, X, y, b=5.0, max_iter=1, strict=True)


def _param_model(y):
    m = pyro.param("m", torch.tensor(0.0))
    pyro.sample("y", dist.Normal(m, 1.0), obs=y)


def _discrete_model(y):
    z = pyro.sample("z", dist.Bernoulli(0.5))
    pyro.sample("y", dist.Normal(z, 1.0), obs=y)


def _shifted_laplace(y):
    w = pyro.sample("w", dist.Laplace(1.0, 1.0))
    pyro.sample("y", dist.Normal(w, 1.0), obs=y)


def _hierarchical(y):
    b = pyro.sample("b", dist.HalfNormal(1.0))
    w = pyro.sample("w", dist.Laplace(0.0, b))
    pyro.sample("y", dist.Normal(w, 1.0), obs=y)


def _nothing_latent(y):
    pyro.sample("y", dist.Normal(0.0, 1.0), obs=y)


@pytest.mark.parametrize("model, match", [
    (_param_model, "pyro.param site 'm'"),
    (_discrete_model, "latent site 'z' is discrete"),
    (_shifted_laplace, "must be centred at 0"),
    (_hierarchical, "depends on other latent sites"),
    (_nothing_latent, "no latent sample sites"),
])
def test_models_the_engine_refuses(model, match):
    with pytest.raises(ValueError, match=match):
        map_model(model, torch.tensor(0.5, dtype=torch.float64))


def test_engine_argument_validation():
    y = torch.tensor(0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match="model must be a callable"):
        map_model("model", y)
    with pytest.raises(ValueError, match="tol must be a positive finite number; got -1"):
        map_model(_shifted_laplace, y, tol=-1.0)
    with pytest.raises(ValueError, match=r"init names sites .*\['nope'\]"):
        map_model(_hierarchical, y, init={"nope": 1.0})


@pytest.mark.parametrize("prior", ["laplace", "gaussian"])
def test_matrix_free_path_for_large_working_sets(monkeypatch, prior):
    # working sets above _MAX_DIRECT get CG / FISTA steps on exact Hessian-vector products;
    # forced here on a small problem, they must reach the same MAP as the direct path
    import mapreg.bayes.engine as engine

    X, y = _logistic_data(120, 40, seed=9)
    kw = {"b": 0.3} if prior == "laplace" else {"sigma": 1.0}
    direct = map_model(logistic_model, X, y, **kw)
    monkeypatch.setattr(engine, "_MAX_DIRECT", 5)
    free = map_model(logistic_model, X, y, max_iter=300, **kw)
    assert free.converged
    assert torch.allclose(free["w"], direct["w"], rtol=0, atol=1e-9)
    assert torch.equal(free["w"] == 0, direct["w"] == 0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "categorical", "poisson"])
def test_declared_linear_predictor_hessian_equals_autograd(likelihood):
    # mapreg's GLMs assemble the Hessian as J' D J + P (D, P from Pyro by autograd); the
    # generic path takes every column by double backward: they must be the same matrix
    import mapreg.bayes.engine as engine
    from mapreg import ElasticNet, make_likelihood
    from mapreg.bayes.models import ETA_SITE, glm_model, pyro_session

    g = torch.Generator().manual_seed(4)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    K = 3 if likelihood == "categorical" else None
    y = {"bernoulli": (X[:, 0] > 0).double(), "poisson": torch.poisson(X[:, 1].exp(), generator=g),
         "categorical": torch.randint(0, 3, (30,), generator=g).double()}[likelihood]
    model = glm_model(ElasticNet(0.8, 0.5), make_likelihood(likelihood, n_classes=K))
    pred = engine.LinearPredictor(ETA_SITE, X, "w", "c", K)
    with pyro_session():
        sites, p, el = engine._discover(model, (X, y), {}, {})
        prob = engine._Problem(model, (X, y), {}, sites, p, True, el, pred)
        u = 0.3 * torch.randn(p, generator=g, dtype=torch.float64)
        point = prob.at(u)
        cols = torch.arange(p)
        assembled = prob.hessian_at(point, cols)
        autograd = prob.hessian(u, cols)[cols]
    if K:  # the softmax's flat intercept direction gets curvature on purpose (see hessian_at)
        c = torch.arange(4 * K, 5 * K)
        ones = torch.zeros(p, dtype=torch.float64)
        ones[c] = 1.0
        autograd = autograd + (assembled - autograd)[c[0], c[0]] * torch.outer(ones, ones)
    assert torch.allclose(assembled, autograd, rtol=1e-12, atol=1e-12 * float(autograd.abs().max()))


def test_floor_bound_optimum_is_reported_not_claimed():
    # X in units of 1e6 and a prior 1000 wide: the MAP sits where every prediction is
    # saturated, and Pyro's float64 gradient (p - y) is rounding there. The engine must
    # say the optimum was resolved only to that floor, never report a clean convergence.
    from mapreg import Bernoulli, map_glm

    g = torch.Generator().manual_seed(0)
    X = 1e6 * torch.randn(12, 30, generator=g, dtype=torch.float64)
    y = (X[:, 0] > 0).double()
    with pytest.warns(ConvergenceWarning, match="rounding floor|did not converge"):
        res = map_glm(X, y, Gaussian(1000.0), Bernoulli())
    assert res.kkt_residual > 1e-6


def test_non_convex_model_reaches_the_closed_form_mode():
    # y ~ N(a b, 1), a, b ~ N(0, 1): the log joint is not concave (a saddle at 0). From a
    # start off the saddle the engine (indefinite Hessian blocks shifted to positive definite,
    # line search on Pyro's value) must reach the mode a = b = sqrt(y - 1).
    def model(y):
        a = pyro.sample("a", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0))
        b = pyro.sample("b", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0))
        pyro.sample("y", dist.Normal(a * b, 1.0), obs=y)

    y = torch.tensor(3.0, dtype=torch.float64)
    res = map_model(model, y, init={"a": -0.2, "b": 0.1})
    assert res.converged
    t = float(np.sqrt(2.0))
    assert abs(float(res["a"])) == pytest.approx(t, rel=1e-10)
    assert float(res["a"]) == pytest.approx(float(res["b"]), rel=1e-10)


def test_vectorized_promise_is_checked():
    # a model written with a plate over the data only does not broadcast over a batch of
    # parameter values: vectorized=True must be refused, not give wrong Hessian columns
    X, y = _logistic_data(30, 4, seed=3)
    with pytest.raises(ValueError, match="does not broadcast over a leading batch"):
        map_model(logistic_model, X, y, b=0.5, vectorized=True)
