"""The elastic-net prior: its Pyro density, its normaliser, exact sampling, and its MAP.

References are independent of the package: scipy quadrature of the density written here,
scikit-learn's ElasticNet, scipy.optimize on the negative log posterior written here, and
the Laplace / Gaussian MAPs in the limits sigma -> inf and b -> inf.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_problem
from scipy import integrate, optimize, stats
from sklearn.linear_model import ElasticNet as SkElasticNet

from mapreg.bayes.map import map_estimate, map_optimality
from mapreg.bayes.priors import ElasticNet, Gaussian, Laplace, make_prior

SCALES = [(1.0, 1.0), (10.0, 0.1), (0.1, 10.0), (1e4, 1e-3), (1e-3, 1e4)]


def log_density(w: np.ndarray, sigma: float, b: float) -> np.ndarray:
    """The unnormalised log density, written here: -|w|/b - w^2 / (2 sigma^2)."""
    return -np.abs(w) / b - w * w / (2 * sigma * sigma)


def quad_log_z(sigma: float, b: float) -> float:
    """log of the integral of exp(log_density) over the line, by quadrature (w = s t with
    s the smaller scale, so the integrand lives on t of order 1)."""
    s = min(sigma, b)
    half, _ = integrate.quad(lambda t: math.exp(log_density(np.array(s * t), sigma, b)), 0,
                             np.inf, epsabs=0.0, epsrel=1e-13, limit=200)
    return math.log(2 * s * half)


# --------------------------------------------------------------------- density, normaliser


@pytest.mark.parametrize(("sigma", "b"), SCALES)
def test_log_normalizer_matches_quadrature(sigma, b):
    prior = ElasticNet(sigma, b)
    assert prior.log_normalizer(1) == pytest.approx(quad_log_z(sigma, b), abs=1e-12, rel=1e-12)
    assert prior.log_normalizer(7) == pytest.approx(7 * quad_log_z(sigma, b), rel=1e-12,
                                                    abs=1e-11)


@pytest.mark.parametrize(("sigma", "b"), SCALES)
@pytest.mark.parametrize("shape", [5, (4, 3)])
def test_pyro_log_prob_is_the_formula(sigma, b, shape):
    prior = ElasticNet(sigma, b)
    gen = torch.Generator().manual_seed(7)
    dims = (shape,) if isinstance(shape, int) else shape
    w = torch.randn((6, *dims), generator=gen, dtype=torch.float64) * min(sigma, b) * 3
    w[0].view(-1)[0] = 0.0
    lp = prior.distribution(shape).log_prob(w)  # batch of 6 weight vectors / matrices
    assert lp.shape == (6,)
    m = int(np.prod(dims))
    wn = w.reshape(6, m).numpy()
    expected = log_density(wn, sigma, b).sum(1) - m * quad_log_z(sigma, b)
    magnitude = np.abs(log_density(wn, sigma, b)).sum(1) + m * abs(quad_log_z(sigma, b))
    np.testing.assert_allclose(lp.numpy(), expected, rtol=0, atol=1e-12 * magnitude.max())
    # the prior's own formula (neg_log_density) agrees with Pyro's
    assert float(prior.neg_log_density(w[1])) == pytest.approx(-float(lp[1]), rel=1e-12)


def test_limits_of_the_normaliser():
    # b -> inf: the Gaussian's sigma sqrt(2 pi); sigma -> inf: the Laplace's 2b
    assert ElasticNet(2.0, 1e12).log_normalizer(1) == pytest.approx(
        math.log(2.0 * math.sqrt(2 * math.pi)), abs=1e-11)
    assert ElasticNet(1e12, 0.5).log_normalizer(1) == pytest.approx(math.log(1.0), abs=1e-11)
    # far beyond erfcx's range (sigma / b = 1e140): still finite, still 2b
    assert ElasticNet(1e100, 1e-40).log_normalizer(1) == pytest.approx(
        math.log(2e-40), rel=1e-14)


# --------------------------------------------------------------------------- sampling


def _cdf_by_quadrature(sigma: float, b: float):
    """The CDF of the density written here, by the trapezoid rule on a fine grid."""
    half = min(40 * b, 12 * sigma)
    grid = np.linspace(-half, half, 400_001)
    cum = integrate.cumulative_trapezoid(np.exp(log_density(grid, sigma, b)), grid, initial=0)
    cum /= cum[-1]
    return lambda x: np.interp(x, grid, cum)


@pytest.mark.parametrize(("sigma", "b"), SCALES[:4])
def test_exact_sampler_passes_a_ks_test_against_the_density(sigma, b):
    with torch.random.fork_rng():
        torch.manual_seed(11)
        x = ElasticNet(sigma, b).distribution(4000).sample().numpy()
    assert x.shape == (4000,) and np.isfinite(x).all()
    res = stats.kstest(x, _cdf_by_quadrature(sigma, b))
    assert res.pvalue > 1e-3, res


def test_sampler_in_the_laplace_limit_beyond_erfcx_range():
    sigma, b = 1e100, 1e-40  # sigma / b = 1e140: the density is Laplace(b) to rounding
    with torch.random.fork_rng():
        torch.manual_seed(3)
        x = ElasticNet(sigma, b).distribution((50, 40)).sample().numpy().ravel()
    assert stats.kstest(x, stats.laplace(scale=b).cdf).pvalue > 1e-3


def test_sample_shapes_and_pyro_site():
    import pyro
    from pyro import poutine

    d = ElasticNet(1.0, 0.5).distribution((3, 2))
    assert d.event_shape == (3, 2) and d.batch_shape == ()
    assert d.sample((5,)).shape == (5, 3, 2)
    with torch.random.fork_rng():
        tr = poutine.trace(lambda: pyro.sample("w", d)).get_trace()
    assert tr.nodes["w"]["value"].shape == (3, 2)


# ---------------------------------------------------------------------- prior interface


def test_weights_lams_and_single_lambda_interface():
    en = ElasticNet(sigma=2.0, b=0.5)
    assert en.l1_weight == 2.0 and en.l2_weight == 0.25
    assert en.kappa == 2.0 and en.ratio == pytest.approx(0.125)
    assert en.lams(3.0) == pytest.approx((18.0, 2.25))
    assert en.lam(3.0) == pytest.approx(18.0)
    assert Gaussian(2.0).l1_weight == 0.0 and Gaussian(2.0).l2_weight == 0.25
    assert Laplace(0.5).l1_weight == 2.0 and Laplace(0.5).l2_weight == 0.0
    assert Gaussian(2.0).lams(3.0) == (0.0, pytest.approx(2.25))
    assert Laplace(0.5).lams(3.0) == (pytest.approx(18.0), 0.0)
    back = ElasticNet.from_lam(18.0, 3.0, ratio=0.125)
    assert back.b == pytest.approx(0.5) and back.sigma == pytest.approx(2.0)
    w = torch.tensor([1.0, -2.0, 0.0])
    assert float(en.penalty(w)) == pytest.approx(3.0 + 0.0625 * 5.0)
    assert str(en) == "elasticnet(sigma=2, b=0.5)" and en.scale == 0.5 and en.scale_name == "b"
    assert make_prior("elasticnet", sigma=2.0, b=0.5) == en


@pytest.mark.parametrize("v", [-3.0, -0.2, 0.0, 0.1, 0.7, 5.0])
def test_prox_is_the_argmin_for_tensors_and_floats(v):
    en, step = ElasticNet(sigma=0.8, b=0.3), 0.4
    res = optimize.minimize_scalar(
        lambda u: 0.5 * (u - v) ** 2 + step * (abs(u) + 0.5 * en.ratio * u * u),
        bounds=(-6, 6), method="bounded", options={"xatol": 1e-12})
    as_float = en.prox(v, step)
    as_tensor = float(en.prox(torch.tensor([v]), step)[0])
    assert isinstance(as_float, float) and as_float == pytest.approx(as_tensor, abs=1e-15)
    assert as_float == pytest.approx(res.x, abs=1e-8)


def test_subgradient_distance_is_zero_exactly_at_the_optimum():
    # minimise 1/2 (w - v)^2 + kappa P(w): gradient of the rest g = w - v
    en = ElasticNet(sigma=0.8, b=0.3)
    v = torch.tensor([-3.0, -0.2, 0.1, 2.0])
    w = en.prox(v, en.kappa)
    assert torch.allclose(en.subgradient_distance(w, w - v), torch.zeros(4), atol=1e-14)
    assert bool((en.subgradient_distance(w + 0.01, w + 0.01 - v) > 1e-3).all())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ElasticNet(-1.0, 1.0), r"sigma must be a positive finite number; got -1.0"),
        (lambda: ElasticNet(1.0, 0.0), r"b must be a positive finite number; got 0.0"),
        (lambda: ElasticNet(1e-150, 1e300), r"ratio = b / sigma\^2 with sigma=1e-150"),
        (lambda: make_prior("elasticnet", sigma=1.0), r"b is required for prior 'elasticnet'"),
        (lambda: make_prior("elasticnet"), r"sigma and b are required.*got sigma=None, b=None"),
        (lambda: make_prior("elasticnet", sigma=1, b=1, noise=2),
         r"takes the scales 'sigma' and 'b', not 'noise'"),
        (lambda: ElasticNet.from_lam(1.0, 1.0, ratio=-2.0),
         r"ratio must be a positive finite number; got -2.0"),
        (lambda: ElasticNet(1.0, 1.0).distribution((3, 0)), r"shape must be .*got \(3, 0\)"),
        (lambda: Gaussian(1.0).distribution(-2), r"shape must be .*got -2"),
    ],
)
def test_validation_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ the MAP


def _sklearn(X, y, prior, noise):
    n = X.shape[0]
    lam1, lam2 = prior.lams(noise)
    # alpha l1_ratio = noise^2 / (b n), alpha (1 - l1_ratio) = noise^2 / (sigma^2 n)
    alpha = (lam1 + lam2) / n
    return SkElasticNet(alpha=alpha, l1_ratio=lam1 / (lam1 + lam2), tol=1e-12,
                        max_iter=200_000).fit(X, y)


@pytest.mark.parametrize(("sigma", "b"), [(0.3, 0.05), (1.0, 0.5), (5.0, 0.005)])
def test_map_matches_scikit_learn_elastic_net(problem, sigma, b):
    p = problem
    prior = ElasticNet(sigma, b)
    res = map_estimate(p.X, p.y, prior, p.noise)
    sk = _sklearn(p.X, p.y, prior, p.noise)
    assert res.converged and res.method == "prox-newton"
    w = res.coef.numpy()
    scale = 1.0 + np.abs(sk.coef_).max()
    np.testing.assert_allclose(w, sk.coef_, rtol=0, atol=1e-8 * scale)
    assert res.intercept == pytest.approx(sk.intercept_, abs=1e-8 * (1 + abs(sk.intercept_)))
    # exact zeros, and they are optimal by the KKT condition computed here in numpy:
    # |x_j' r| <= lam1 (centred data) at every zero, strictly below where the margin is clear
    lam1, lam2 = prior.lams(p.noise)
    r = p.y - p.X @ w - res.intercept
    corr = np.abs((p.X - p.X.mean(0)).T @ r)
    zero = w == 0
    if p.name != "60x8":  # n <= d: the L1 part sets some weights exactly to zero
        assert zero.any()
    assert np.all(corr[zero] <= lam1 * (1 + 1e-9))
    clear = np.abs(corr - lam1) > 1e-6 * lam1
    assert np.array_equal(zero[clear], (sk.coef_ == 0)[clear])
    nz = ~zero
    np.testing.assert_allclose((p.X - p.X.mean(0))[:, nz].T @ r,
                               lam1 * np.sign(w[nz]) + lam2 * w[nz], rtol=0,
                               atol=1e-8 * (lam1 + np.abs(p.X).sum(0).max() * np.abs(r).max()))


def test_map_matches_scipy_on_the_negative_log_posterior_and_pyro_value():
    p = make_problem(60, 8, 2)
    sigma, b = 0.4, 0.08
    prior = ElasticNet(sigma, b)
    n, d = p.X.shape

    def neg_log_post(w, c):  # written here, constants included
        r = p.y - p.X @ w - c
        return (0.5 * r @ r / p.noise**2 + 0.5 * n * math.log(2 * math.pi * p.noise**2)
                + np.abs(w).sum() / b + w @ w / (2 * sigma**2) + d * quad_log_z(sigma, b))

    def split(z):  # w = z+ - z-, both >= 0: a smooth bound-constrained problem
        return z[:d] - z[d:2 * d], z[2 * d]

    def fun(z):
        w, c = split(z)
        r = p.y - p.X @ w - c
        g_w = -(p.X.T @ r) / p.noise**2 + w / sigma**2
        val = 0.5 * r @ r / p.noise**2 + z[:2 * d].sum() / b + w @ w / (2 * sigma**2)
        grad = np.concatenate([g_w + 1 / b, -g_w + 1 / b, [-r.sum() / p.noise**2]])
        return val, grad

    bounds = [(0, None)] * (2 * d) + [(None, None)]
    sp = optimize.minimize(fun, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B",
                           bounds=bounds, options={"ftol": 1e-15, "gtol": 1e-12,
                                                   "maxiter": 20_000})
    w_sp, c_sp = split(sp.x)
    res = map_estimate(p.X, p.y, prior, p.noise)
    w = res.coef.numpy()
    np.testing.assert_allclose(w, w_sp, atol=1e-6)
    assert neg_log_post(w, res.intercept) <= neg_log_post(w_sp, c_sp) + 1e-9
    assert res.neg_log_joint == pytest.approx(neg_log_post(w, res.intercept), rel=1e-12)


def test_limits_give_the_laplace_and_gaussian_maps():
    p = make_problem(30, 30, 3)
    lasso = map_estimate(p.X, p.y, Laplace(0.05), p.noise)
    near = map_estimate(p.X, p.y, ElasticNet(1e7, 0.05), p.noise)
    assert (lasso.coef == 0).sum() > 10
    assert np.array_equal(near.coef.numpy() == 0, lasso.coef.numpy() == 0)
    np.testing.assert_allclose(near.coef.numpy(), lasso.coef.numpy(), atol=1e-8)
    ridge = map_estimate(p.X, p.y, Gaussian(0.3), p.noise)
    near = map_estimate(p.X, p.y, ElasticNet(0.3, 1e12), p.noise)
    np.testing.assert_allclose(near.coef.numpy(), ridge.coef.numpy(), atol=1e-8)


def test_map_optimality_accepts_the_map_and_rejects_a_perturbation():
    p = make_problem(15, 40, 1)
    prior = ElasticNet(0.3, 0.05)
    res = map_estimate(p.X, p.y, prior, p.noise)
    assert map_optimality(p.X, p.y, prior, p.noise, res.coef, res.intercept).passes
    w = res.coef.clone()
    j = int(torch.nonzero(w)[0])
    w[j] *= 1 + 1e-6
    assert not map_optimality(p.X, p.y, prior, p.noise, w, res.intercept).passes


@pytest.mark.parametrize("a", [1e-3, 0.5, 3.0, 30.0, 1e3])
def test_sampler_inverse_cdf_matches_an_independent_root_find(a):
    """|w| / sigma = e solves Phi(-(a + e)) / Phi(-a) = U; the reference solves it with
    scipy's log_ndtr and a bracketing root finder."""
    from scipy.special import log_ndtr

    from mapreg.bayes.priors import _truncated_excess

    log_u = np.array([-36.0, -5.0, -1.0, -0.1, -1e-3])
    e = _truncated_excess(torch.ones(5, dtype=torch.float64),
                          torch.full((5,), 1 / a, dtype=torch.float64),
                          torch.from_numpy(log_u)).numpy()
    for ei, lu in zip(e, log_u, strict=True):
        ref = optimize.brentq(lambda t, lu=lu: log_ndtr(-(a + t)) - log_ndtr(-a) - lu,
                              0.0, 20.0, xtol=1e-300, rtol=1e-15)
        # the reference loses ~a^2 eps relative (a + t rounds, t ~ 1/a): 1e-9 at a = 1e3
        assert ei == pytest.approx(ref, rel=1e-12 if a <= 30 else 1e-9)


def test_elastic_net_through_compare_and_the_refusing_pictures():
    import matplotlib

    matplotlib.use("Agg")
    import mapreg

    res = mapreg.compare(prior="elasticnet", sigma=1.0, b=0.5)
    assert res.agrees and res.lam2 == pytest.approx(res.noise**2 / 1.0)
    text = str(res)
    assert "elasticnet" in text and "AGREE" in text
    out = res.to_dict()
    assert out["sigma"] == 1.0 and out["b"] == 0.5
    assert set(out["conventions"]) == {"sklearn_elasticnet_alpha", "sklearn_elasticnet_l1_ratio"}
    assert res.plot() is not None
    msg = r"the 'elasticnet' prior has none; got 'elasticnet'"
    with pytest.raises(ValueError, match=msg):
        res.plot_path()
    with pytest.raises(ValueError, match=msg):
        mapreg.lagrangian_picture("elasticnet", sigma=1.0, b=0.5)
    with pytest.raises(ValueError, match="train=True trains with an L2 or an L1 term"):
        mapreg.compare(prior="elasticnet", sigma=1.0, b=0.5, train=True)
