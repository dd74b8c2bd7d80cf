"""compare(likelihood=...): the MAP of a Bernoulli / Categorical / Poisson GLM (Pyro) against
the penalized GLM (no Pyro) and scikit-learn, and the facts the issue lists.

The numbers promised: max|dW| <= 1e-6 max(1, ||W||_inf), identical zero patterns, both
objectives equal to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import mapreg
from mapreg import ElasticNet, Gaussian, Laplace, compare, map_glm, map_model
from mapreg.bayes.likelihoods import make_likelihood
from mapreg.penalized.glm import glm_lam_max

PRIORS = {
    "gaussian": lambda s: Gaussian(s),
    "laplace": lambda s: Laplace(s),
    "elasticnet": lambda s: ElasticNet(1.0, s),
}


def _data(family: str, n: int, d: int, seed: int, separable: bool = False):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    k = min(d, 3)
    if family == "categorical":
        W = torch.zeros(d, 3, dtype=torch.float64)
        W[:k] = torch.randn(k, 3, generator=g, dtype=torch.float64)
        eta = X @ W
        y = torch.multinomial(torch.softmax(eta, 1), 1, generator=g)[:, 0]
        return X, y.double()
    w = torch.zeros(d, dtype=torch.float64)
    w[:k] = torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64)[:k]
    eta = X @ w
    if family == "poisson":
        return X, torch.poisson(torch.exp(0.5 * eta), generator=g)
    if separable:
        return X, (eta > 0).double()
    return X, (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(eta)).double()


CASES = [(f, shape) for f in ("bernoulli", "categorical", "poisson")
         for shape in ((60, 5, False), (15, 25, False))] + [("bernoulli", (30, 4, True))]


@pytest.mark.parametrize("prior", sorted(PRIORS))
@pytest.mark.parametrize("family, shape", CASES,
                         ids=[f"{f}-{'sep' if s[2] else f'{s[0]}x{s[1]}'}" for f, s in CASES])
def test_map_equals_penalized_glm(family, shape, prior):
    n, d, separable = shape
    X, y = _data(family, n, d, seed=n * d, separable=separable)
    res = compare(PRIORS[prior](0.5), X=X, y=y, likelihood=family)
    assert res.map.converged and res.penalized.converged
    assert res.agrees, res.verdict()
    assert res.coef_rel_diff <= 1e-6 and res.support_agree and res.objective_rel_diff <= 1e-9
    # Pyro's -log p at the two points differs by what the objectives differ by
    assert res.neg_log_joint_map == pytest.approx(res.neg_log_joint_penalized, rel=1e-9)
    if prior != "gaussian":
        assert res.n_zero > 0 or d < 10  # n < d with an L1 part: sparse


def test_separable_mle_diverges_but_the_map_is_finite():
    X, y = _data("bernoulli", 30, 4, seed=1, separable=True)
    res = compare("gaussian", sigma=1.0, X=X, y=y, likelihood="bernoulli")
    assert res.agrees and float(res.map_coef.abs().max()) < 50
    # weaker priors: the MAP grows without bound as the prior flattens (no MLE exists)
    norms = [float(compare("gaussian", sigma=s, X=X, y=y, likelihood="bernoulli")
                   .map_coef.norm()) for s in (1.0, 10.0, 100.0)]
    assert norms[0] < norms[1] < norms[2]
    with pytest.warns(mapreg.ConvergenceWarning):
        mapreg.penalized.glm.penalized_glm(X, y, "bernoulli", 0.0, 0.0, max_iter=50)


def test_softmax_rows_sum_to_zero_with_a_gaussian_prior_and_flat_intercepts():
    X, y = _data("categorical", 60, 4, seed=3)
    res = compare("gaussian", sigma=0.7, X=X, y=y, likelihood="categorical")
    W = res.map_coef
    assert W.shape == (4, 3)
    assert float(W.sum(1).abs().max()) <= 1e-12 * max(1.0, float(W.abs().max())) * 10
    assert abs(float(torch.as_tensor(res.map_intercept).sum())) <= 1e-12


def test_laplace_zero_coefficients_satisfy_the_threshold():
    X, y = _data("bernoulli", 40, 8, seed=4)
    b = 0.3
    res = compare("laplace", b=b, X=X, y=y, likelihood="bernoulli")
    w, c = res.map_coef, res.map_intercept
    p = torch.sigmoid(X @ w + c)
    slack = (X.T @ (y - p)).abs()
    zero = w == 0
    assert zero.any()
    assert bool((slack[zero] <= (1 / b) * (1 + 1e-9)).all())
    # and lam1 >= lam_max (b <= 1/lam_max) zeroes every weight exactly
    lam_max = glm_lam_max(X, y, "bernoulli")
    full = compare("laplace", b=0.999 / lam_max, X=X, y=y, likelihood="bernoulli")
    assert full.n_zero == 8 and full.agrees


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_against_scikit_learn(family):
    from sklearn.linear_model import LogisticRegression, PoissonRegressor

    X, y = _data(family, 80, 4, seed=7)
    n = X.shape[0]
    res = compare("gaussian", sigma=0.8, X=X, y=y, likelihood=family)
    lam2 = 1 / 0.8**2
    if family == "bernoulli":
        sk = LogisticRegression(C=1 / lam2, tol=1e-12, max_iter=10000, solver="newton-cholesky")
    else:
        sk = PoissonRegressor(alpha=lam2 / n, tol=1e-12, max_iter=10000, solver="newton-cholesky")
    sk.fit(X.numpy(), y.numpy())
    # newton-cholesky stops on its own gradient tolerance: agreement to what 1e-12 allows
    assert np.abs(sk.coef_.ravel() - res.map_coef.numpy()).max() <= 1e-7
    assert abs(float(np.ravel(sk.intercept_)[0]) - res.map_intercept) <= 1e-7


def user_logistic(X, y, b):
    w = pyro.sample("w", dist.Laplace(torch.zeros(X.shape[1], dtype=X.dtype), b).to_event(1))
    c = pyro.sample("c", dist.ImproperUniform(dist.constraints.real, (), ()))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Bernoulli(logits=X @ w + c), obs=y)


def test_user_written_model_gives_the_built_in_map():
    X, y = _data("bernoulli", 60, 10, seed=8)
    built_in = map_glm(X, y, Laplace(0.4), make_likelihood("bernoulli"))
    user = map_model(user_logistic, X, y, 0.4)
    assert torch.allclose(user["w"], built_in.coef, rtol=0, atol=1e-9)
    assert torch.equal(user["w"] == 0, built_in.coef == 0)
    assert float(user["c"]) == pytest.approx(built_in.intercept, abs=1e-9)
    # comparable work: the same number of Newton iterations, give or take two
    assert abs(user.iterations - built_in.iterations) <= 2


def test_column_offsets_do_not_change_the_glm_map():
    X, y = _data("poisson", 50, 4, seed=9)
    a = compare("laplace", b=0.5, X=X, y=y, likelihood="poisson")
    b = compare("laplace", b=0.5, X=X + 1e4, y=y, likelihood="poisson")
    assert b.agrees
    assert torch.allclose(a.map_coef, b.map_coef, rtol=0, atol=1e-9)


def test_built_in_glm_data_sets_and_printing():
    for family in ("bernoulli", "categorical", "poisson"):
        res = compare("laplace", b=0.5, likelihood=family)
        assert res.agrees and res.dataset == family
        text = str(res)
        assert "AGREE" in text and f"{family} likelihood" in text
        assert res.to_dict()["likelihood"] == family
    sep = compare("gaussian", sigma=1.0, likelihood="bernoulli", dataset="separable")
    assert sep.agrees and sep.dataset == "separable"


@pytest.mark.parametrize("kwargs, match", [
    (dict(likelihood="binomial"), "likelihood must be one of"),
    (dict(likelihood="bernoulli", noise=1.0), "has no noise scale; got noise=1.0"),
    (dict(likelihood="bernoulli", train=True), "train=True .* not 'bernoulli'"),
    (dict(likelihood="poisson", dataset="default"), "dataset 'default' has gaussian responses"),
    (dict(likelihood="gaussian", n_classes=3), "n_classes is for likelihood='categorical'"),
])
def test_compare_glm_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare("laplace", b=0.5, **kwargs)


def test_bad_responses_are_named():
    X = torch.randn(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"only the values 0 and 1 .* got y\[2\] = 2.0"):
        compare("laplace", b=0.5, X=X, y=torch.tensor([0.0, 1, 2, 0, 1]),
                likelihood="bernoulli")


def test_duplicated_columns_with_a_laplace_prior_are_not_unique():
    # a duplicated column and an L1 penalty: any split of the weight between the twins with
    # the same signs is optimal; the verdict says so instead of DISAGREE
    X, y = _data("bernoulli", 50, 4, seed=11)
    X = torch.cat([X, X[:, :1]], 1)
    res = compare("laplace", b=5.0, X=X, y=y, likelihood="bernoulli")
    assert res.objective_rel_diff <= 1e-9
    if not res.agrees:
        assert res.not_unique and res.verdict().startswith("NOT UNIQUE")
    # the elastic net's ridge part makes the optimum unique: the twins split evenly
    en = compare(ElasticNet(1.0, 5.0), X=X, y=y, likelihood="bernoulli")
    assert en.agrees and not en.not_unique
    assert float(en.map_coef[0]) == pytest.approx(float(en.map_coef[4]), abs=1e-9)


@pytest.mark.parametrize("likelihood, y, match", [
    ("bernoulli", [1.0] * 6, "must contain both 0 and 1"),
    ("poisson", [0.0] * 6, "must contain a positive count"),
    ("categorical", [0, 2, 0, 2, 0, 2], r"classes \[1\] never occur"),
])
def test_no_map_without_data_on_both_sides_of_the_flat_intercept(likelihood, y, match):
    X = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lik = make_likelihood(likelihood, n_classes=3 if likelihood == "categorical" else None)
    with pytest.raises(ValueError, match=match):
        map_glm(X, torch.tensor(y, dtype=torch.float64), Laplace(0.5), lik)


def test_concurrent_glm_fits_give_the_serial_answers():
    from conftest import run_concurrently

    jobs = [("laplace", 0.5, "bernoulli"), ("gaussian", 0.7, "categorical"),
            ("elasticnet", 0.5, "poisson"), ("laplace", 0.2, "bernoulli")]

    def fit(prior, scale, likelihood):
        return compare(PRIORS[prior](scale), likelihood=likelihood)

    serial = [fit(*job) for job in jobs]
    results, errors = run_concurrently(fit, jobs, repeats=2)
    assert not errors
    for a, b in zip(serial, results, strict=True):
        assert torch.equal(a.map_coef, b.map_coef) and a.agrees and b.agrees
    # a user model, concurrently, and the user's param store untouched
    X, y = _data("bernoulli", 40, 5, seed=12)
    pyro.clear_param_store()
    pyro.param("mine", torch.tensor(1.0))
    ref = map_model(user_logistic, X, y, 0.4)
    res, errors = run_concurrently(lambda: map_model(user_logistic, X, y, 0.4), [()] * 4)
    assert not errors and all(torch.equal(r["w"], ref["w"]) for r in res)
    assert set(pyro.get_param_store().keys()) == {"mine"}
    pyro.clear_param_store()


def test_map_glm_validates_its_likelihood_argument():
    X, y = _data("bernoulli", 20, 3, seed=13)
    by_name = map_glm(X, y, Laplace(0.5), "bernoulli")
    assert torch.equal(by_name.coef, map_glm(X, y, Laplace(0.5), make_likelihood("bernoulli")).coef)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        map_glm(X, y, Laplace(0.5), "logistic")
    with pytest.raises(ValueError, match="n_classes is required for the 'categorical'"):
        map_glm(X, y, Laplace(0.5), "categorical")
    with pytest.raises(ValueError, match="prior must be a mapreg Prior"):
        map_glm(X, y, "laplace", "bernoulli")
