"""Regularization strengths in every convention people use, and the exact conversions.

The hub is the **canonical** objective: the summed negative log likelihood on the loss's own
scale plus lam times the penalty, with an unpenalized intercept c (one per class for
"categorical") and n samples::

    L(w, c) + lam * P(w),     P(w) = 1/2 ||w||^2 (prior "gaussian"),  ||w||_1 ("laplace")

with eta_i = x_i . w + c the linear predictor and, per likelihood,

==============  ===================================================  ==============================
likelihood      L(w, c) (summed over the n samples)                  MAP link (prior N(0, sigma^2)
                                                                     or Laplace(0, b))
==============  ===================================================  ==============================
gaussian        1/2 ||r||^2,  r = y - Xw - c  (noise sigma_eps)      lam = sigma_eps^2 / sigma^2,
                                                                     lam = sigma_eps^2 / b
bernoulli       sum_i log(1 + e^eta_i) - y_i eta_i,  y_i in {0, 1}   lam = 1 / sigma^2, lam = 1 / b
categorical     sum_i logsumexp_k(eta_ik) - eta_{i, y_i}             lam = 1 / sigma^2, lam = 1 / b
poisson         sum_i e^eta_i - y_i eta_i  (log link)                lam = 1 / sigma^2, lam = 1 / b
==============  ===================================================  ==============================

For "gaussian", L is (1/sigma_eps^2)-times the exact NLL (the 1/2 ||r||^2 scale, so lam =
sigma_eps^2 kappa); for the other three L is the exact NLL up to terms free of (w, c)
(log y_i! for Poisson), there is no noise scale and lam = kappa = 1/sigma^2 or 1/b.
For "categorical", w is the K x d matrix of *all* K class weight vectors (the symmetric,
over-parametrized softmax, as scikit-learn, glmnet and ``nn.Linear(d, K)`` use it), c the K
intercepts, and P sums over every entry of w; the intercepts are free, so only their
differences are identified.

Every other convention is "a loss plus value * P(w)"; if its loss equals
``loss_scale * L`` then its optimum is the canonical one at

    lam = value / loss_scale.

Gaussian likelihood (r = y - Xw - c):

============================  ======================================  =====================
convention                    objective                               lam (canonical)
============================  ======================================  =====================
canonical                     1/2 ||r||^2 + lam P(w)                  value
mean (alias d2l)              (1/n) sum 1/2 r_i^2 + v P(w)            n v
torch_mse_mean                (1/n) ||r||^2 + v P(w)                  n v / 2
torch_mse_sum                 ||r||^2 + v P(w)                        v / 2
torch_nll                     (1/2 sigma_eps^2) ||r||^2 + v P(w)      sigma_eps^2 v
l2decay (gaussian)            (1/n) sum 1/2 r_i^2 + 1/2 v ||w||^2     n v
sklearn_ridge (gaussian)      ||r||^2 + v ||w||^2 (= 2 v P(w))        v
sklearn_lasso (laplace)       (1/2n) ||r||^2 + v ||w||_1              n v
sklearn_elasticnet            (1/2n)||r||^2 + v rho ||w||_1
                              + 1/2 v (1 - rho) ||w||^2               n v   (rho = 0 or 1)
statsmodels_ols               OLS.fit_regularized(alpha=v, L1_wt=a):
                              (1/2n)||r||^2
                              + v [(1-a)/2 ||w||^2 + a ||w||_1]       n v   (a = 0 or 1)
glmnet (laplace)              (1/2n)||r||^2 + v ||w||_1               n v
glmnet (gaussian)             (1/2n)||y/s - Xw'||^2 + (v/s)/2||w'||^2,
                              w = s w', s = sd_y (see below)          n v / sd_y
sigma (gaussian)              the prior's standard deviation          sigma_eps^2 / v^2
b (laplace)                   the Laplace prior's scale               sigma_eps^2 / v
============================  ======================================  =====================

Bernoulli, categorical and Poisson likelihoods (l_i the exact NLL of sample i, L = sum_i l_i):

============================  ======================================  =====================
convention                    objective                               lam (canonical)
============================  ======================================  =====================
canonical                     sum_i l_i + lam P(w)                    value
mean (alias d2l), glmnet      (1/n) sum_i l_i + v P(w)                n v
l2decay (gaussian)            (1/n) sum_i l_i + 1/2 v ||w||^2         n v
sklearn_logistic              LogisticRegression(C=v, l1_ratio=rho):
(bernoulli, categorical)      v sum_i l_i + (1-rho)/2 ||w||^2
                              + rho ||w||_1                           1 / v  (rho = 0 or 1)
sklearn_poisson (poisson,     PoissonRegressor(alpha=v):
gaussian prior)               (1/2n) sum_i dev_i + 1/2 v ||w||^2      n v
                              (dev_i = 2 (l_i - min l_i): 1/2 dev_i
                              = l_i + const)
torch_bce_mean (bernoulli)    BCEWithLogitsLoss("mean") + v P(w)      n v
torch_bce_sum (bernoulli)     BCEWithLogitsLoss("sum") + v P(w)       v
torch_ce_mean (categorical)   CrossEntropyLoss("mean") + v P(w)       n v
torch_ce_sum (categorical)    CrossEntropyLoss("sum") + v P(w)        v
torch_poisson_mean (poisson)  PoissonNLLLoss(log_input=True,
                              full=False, "mean") + v P(w)            n v
torch_poisson_sum (poisson)   the same with reduction "sum"           v
sigma (gaussian)              the prior's standard deviation          1 / v^2
b (laplace)                   the Laplace prior's scale               1 / v
============================  ======================================  =====================

For the torch rows the value is the optimizer's ``weight_decay`` for the Gaussian prior
(``weight_decay=wd`` adds wd * w to the gradient, the gradient of (wd/2)||w||^2 = wd * P(w)),
and the coefficient mu of an explicit ``mu * w.abs().sum()`` term for the Laplace prior.
The torch losses are exactly (1/n) L ("mean") or L ("sum"): ``BCEWithLogitsLoss`` is
log(1 + e^eta) - y eta, ``CrossEntropyLoss`` (no class weights, no label smoothing) is
logsumexp(eta) - eta_y, ``PoissonNLLLoss(log_input=True, full=False)`` is e^eta - y eta.

scikit-learn ``LogisticRegression`` (checked on 1.9.1): ``penalty`` is deprecated since 1.8
(removed in 1.10); the penalty is chosen by ``l1_ratio`` (0: l2, 1: l1, between: elastic net,
which the single-prior interface here covers only at its ends). There is no ``alpha``
parametrization of ``LogisticRegression`` in 1.9.1; the mean-loss ``alpha`` of
``SGDClassifier(loss="log_loss", alpha=v)``, (1/n) sum_i l_i + v R(w), is the "mean" row
(lam = n v; SGD reaches it only approximately). The lbfgs, newton-cg, newton-cholesky, sag
and saga solvers leave the intercept unpenalized; liblinear does not (see the row's note).

glmnet (R) is not checked against R here (no R on the test machines); its rows follow its
documented objective. For ``family="gaussian"`` with ``alpha < 1`` glmnet standardizes y by
its 1/n standard deviation sd_y and applies its lambda on that scale, so the ridge it solves
has lambda / sd_y in place of lambda (the recipe lambda_glmnet = lam * sd_y / n;
stats.stackexchange.com/q/129179): give ``sd_y`` (``np.std(y)``, 1/n convention) to convert
exactly; without it the documented-objective value (exact for sd_y = 1) is used and a
UserWarning states the recipe. For the lasso (a = 1) and the other families the scales agree.

statsmodels ``OLS(y, X).fit_regularized(alpha, L1_wt)`` (statsmodels 0.14/0.15 docstring and
source: minimizes 0.5*RSS/n + alpha*((1-L1_wt)*|params|_2^2/2 + L1_wt*|params|_1), ridge by a
closed form when L1_wt == 0) has no separate intercept: it penalizes every column of exog,
a constant column included, unless ``alpha`` is a vector with 0 at the constant's position.
Only that per-column form (0 for the constant, the converted value elsewhere) is this
convention's canonical problem.

Range: every value, lam and result must lie in [FLOAT_MIN, FLOAT_LIM] (~2.2e-308 ..
~4.5e307: a normal positive float64 whose reciprocal is one too; see
:mod:`mapreg._validation`), a prior scale sigma in ~[1.5e-154, 6.7e153] (sigma^2 and
1/sigma^2 in that range), and n in 1 .. 2^53. A conversion that would leave its range
raises a ValueError naming the range of the input that stays inside it -- never inf or 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ._validation import (
    FLOAT_LIM,
    FLOAT_MIN,
    check_choice,
    check_derived,
    check_positive_int,
    check_scale,
    power_range,
)

PRIOR_NAMES = ("gaussian", "laplace")
#: Likelihoods the canonical objective is defined for (see the module docstring).
LIKELIHOOD_NAMES = ("gaussian", "bernoulli", "categorical", "poisson")
#: Largest n accepted: sample counts beyond 2^53 are not exact in float64.
N_MAX = 2**53


@dataclass(frozen=True)
class Convention:
    """One convention: its objective and its exact link to the canonical lambda.

    ``to_lam(value, n, noise)`` gives the canonical lambda, ``from_lam(lam, n, noise)`` the
    value in this convention; ``needs`` lists which of "n" / "noise" they use ("noise" only
    for the gaussian likelihood: the other likelihoods have none, and the functions get
    noise = 1). ``power``: lam is proportional to value ** power (1 for the loss rescalings,
    -2 for sigma, -1 for b and C). ``likelihoods``: those it applies to. ``per_sd_y``: the
    (likelihood, prior) pairs on which the tool applies its value to y / sd_y (glmnet's
    ridge), where lam = to_lam(value) / sd_y.
    """

    name: str
    objective: str
    priors: tuple[str, ...]
    needs: tuple[str, ...]
    to_lam: Callable[[float, int | None, float | None], float]
    from_lam: Callable[[float, int | None, float | None], float]
    note: str = ""
    power: float = 1.0
    likelihoods: tuple[str, ...] = ("gaussian",)
    per_sd_y: tuple[tuple[str, str], ...] = ()


def _scaled(factor: Callable[[int | None, float | None], float]):
    """to/from functions for lam = value / loss_scale with loss_scale = factor(n, noise)."""
    return (lambda v, n, s: v / factor(n, s)), (lambda lam, n, s: lam * factor(n, s))


_both = PRIOR_NAMES
_all_lik = LIKELIHOOD_NAMES
_GAUSS = ("gaussian",)


def _make(name, objective, priors, needs, factor, note="", likelihoods=_GAUSS, per_sd_y=()):
    to_lam, from_lam = _scaled(factor)
    return Convention(name, objective, priors, needs, to_lam, from_lam, note,
                      likelihoods=likelihoods, per_sd_y=per_sd_y)


def _torch_pair(stem: str, loss: str, likelihood: str) -> tuple[Convention, Convention]:
    tail = " + weight_decay * P(w) (gaussian) or + mu ||w||_1 (laplace)"
    return (
        _make(f"torch_{stem}_mean", f"{loss}(reduction='mean') = (1/n) sum_i l_i" + tail, _both,
              ("n",), lambda n, s: 1.0 / n, likelihoods=(likelihood,)),
        _make(f"torch_{stem}_sum", f"{loss}(reduction='sum') = sum_i l_i" + tail, _both, (),
              lambda n, s: 1.0, likelihoods=(likelihood,)),
    )


_LIBLINEAR_NOTE = (
    "lbfgs, newton-cg, newton-cholesky, sag and saga leave the intercept unpenalized (the "
    "canonical problem). liblinear (binary only) appends a constant feature of value "
    "intercept_scaling = s and penalizes its weight c/s like the others: C sum_i l_i + "
    "1/2 ||w||^2 + 1/2 (c/s)^2 (l2), i.e. a prior N(0, C s^2) on the intercept c, or "
    "+ |c|/s (l1), a Laplace(0, C s) prior on c. Its fit is the canonical one only as "
    "s -> infinity (large s makes liblinear's problem ill-conditioned; prefer lbfgs/saga)."
)

CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        _make("canonical", "L + lam P(w) with L the summed NLL on its own scale "
              "(gaussian: 1/2 ||r||^2)", _both, (), lambda n, s: 1.0, likelihoods=_all_lik),
        _make("mean", "(1/n) L + lam_m P(w), e.g. (1/n) sum_i 1/2 r_i^2 + lam_m P(w)   "
              "(d2l's lambda)", _both, ("n",), lambda n, s: 1.0 / n, likelihoods=_all_lik),
        _make("torch_mse_mean", "MSELoss(mean) = (1/n)||r||^2, + weight_decay * P(w) "
              "(gaussian) or + mu ||w||_1 (laplace)", _both, ("n",), lambda n, s: 2.0 / n),
        _make("torch_mse_sum", "MSELoss(sum) = ||r||^2, + weight_decay * P(w) (gaussian) or "
              "+ mu ||w||_1 (laplace)", _both, (), lambda n, s: 2.0),
        _make("torch_nll", "exact NLL (1/(2 sigma_eps^2))||r||^2, + weight_decay * P(w) or "
              "+ mu ||w||_1", _both, ("noise",), lambda n, s: 1.0 / (s * s)),
        _make("l2decay", "L2Decay(coeff) on the mean loss: (1/n) L + 1/2 coeff ||w||^2, e.g. "
              "d2l's (1/n) sum_i 1/2 r_i^2 + 1/2 coeff ||w||^2", ("gaussian",), ("n",),
              lambda n, s: 1.0 / n, likelihoods=_all_lik,
              note="L2Decay(coeff) adds coeff * w to the gradient; on any other loss it equals "
              "torch weight_decay for that loss (use the torch_* conventions)"),
        # ||r||^2 + alpha ||w||^2 = 2 [1/2 ||r||^2 + alpha P(w)]: lam = alpha
        _make("sklearn_ridge", "Ridge(alpha): ||r||^2 + alpha ||w||^2", ("gaussian",), (),
              lambda n, s: 1.0),
        _make("sklearn_lasso", "Lasso(alpha): (1/(2n))||r||^2 + alpha ||w||_1", ("laplace",),
              ("n",), lambda n, s: 1.0 / n),
        _make("sklearn_elasticnet", "ElasticNet(alpha, l1_ratio): (1/(2n))||r||^2 + alpha rho "
              "||w||_1 + 1/2 alpha (1 - rho) ||w||^2 with rho = 0 (gaussian) or 1 (laplace)",
              _both, ("n",), lambda n, s: 1.0 / n),
        _make("statsmodels_ols", "OLS(y, X).fit_regularized(alpha, L1_wt): 0.5 RSS/n + alpha "
              "((1 - L1_wt)/2 ||w||^2 + L1_wt ||w||_1), L1_wt = 0 (gaussian) or 1 (laplace)",
              _both, ("n",), lambda n, s: 1.0 / n,
              note="statsmodels has no separate intercept: a scalar alpha penalizes every "
              "column of exog, a constant column too (a prior on the intercept). Pass alpha "
              "as a vector with 0 at the constant column and this value elsewhere to solve "
              "the canonical problem."),
        _make("glmnet", "glmnet, standardize=FALSE: gaussian (1/(2n))||r||^2, other families "
              "(1/n) L, + lambda [(1 - a)/2 ||w||^2 + a ||w||_1], a = 0 (gaussian) or 1 "
              "(laplace); gaussian family with a = 0: on y / sd_y (see note)", _both, ("n",),
              lambda n, s: 1.0 / n, likelihoods=_all_lik, per_sd_y=(("gaussian", "gaussian"),),
              note="for family gaussian and a < 1 (ridge) glmnet standardizes y internally by "
              "its 1/n standard deviation sd_y and applies its lambda on that scale, so the "
              "ridge it solves has lambda / sd_y in place of lambda: the recipe "
              "lambda_glmnet = lam * sd_y / n for canonical lam; give sd_y to convert exactly. "
              "For the lasso (a = 1) and the binomial, poisson and multinomial families the "
              "scales agree (lam = n lambda). Not checked against R here (no R on the test "
              "machines)."),
        # C multiplies the loss: lam = 1 / C (power -1), not a loss rescaling
        Convention("sklearn_logistic", "LogisticRegression(C, l1_ratio): C sum_i l_i + "
                   "(1 - l1_ratio)/2 ||w||^2 + l1_ratio ||w||_1, l1_ratio = 0 (gaussian) or "
                   "1 (laplace)", _both, (), lambda v, n, s: 1.0 / v, lambda lam, n, s: 1.0 / lam,
                   note=_LIBLINEAR_NOTE, power=-1.0, likelihoods=("bernoulli", "categorical")),
        _make("sklearn_poisson", "PoissonRegressor(alpha): (1/(2n)) sum_i deviance_i + "
              "1/2 alpha ||w||^2", ("gaussian",), ("n",), lambda n, s: 1.0 / n,
              likelihoods=("poisson",)),
        *_torch_pair("bce", "BCEWithLogitsLoss", "bernoulli"),
        *_torch_pair("ce", "CrossEntropyLoss", "categorical"),
        *_torch_pair("poisson", "PoissonNLLLoss(log_input=True, full=False)", "poisson"),
        Convention("sigma", "Gaussian prior standard deviation sigma", ("gaussian",),
                   ("noise",), lambda v, n, s: (s / v) * (s / v),
                   lambda lam, n, s: s / math.sqrt(lam), power=-2.0, likelihoods=_all_lik),
        Convention("b", "Laplace prior scale b", ("laplace",), ("noise",),
                   lambda v, n, s: s * s / v, lambda lam, n, s: s * s / lam, power=-1.0,
                   likelihoods=_all_lik),
    )
}
ALIASES = {"d2l": "mean"}


def _check_likelihood(likelihood: str) -> str:
    return check_choice("likelihood", likelihood, LIKELIHOOD_NAMES)


def convention_names(prior: str | None = None, *,
                     likelihood: str | None = "gaussian") -> tuple[str, ...]:
    """Names of the conventions that apply to ``prior`` and ``likelihood``.

    ``prior=None`` lists those for either prior; ``likelihood=None`` those for any
    likelihood (``convention_names(None, likelihood=None)`` is every convention).
    """
    if prior is not None:
        prior = check_choice("prior", prior, PRIOR_NAMES)
    if likelihood is not None:
        likelihood = _check_likelihood(likelihood)
    return tuple(k for k, c in CONVENTIONS.items()
                 if (prior is None or prior in c.priors)
                 and (likelihood is None or likelihood in c.likelihoods))


def _lookup(name: str, prior: str, likelihood: str, which: str = "convention") -> Convention:
    prior = check_choice("prior", prior, PRIOR_NAMES)
    likelihood = _check_likelihood(likelihood)
    if not isinstance(name, str):
        valid = ", ".join(repr(k) for k in (*CONVENTIONS, *ALIASES))
        raise TypeError(f"{which} must be one of {valid}; got {name!r} ({type(name).__name__})")
    name = ALIASES.get(name, name)
    if name not in CONVENTIONS:
        valid = ", ".join(repr(k) for k in (*CONVENTIONS, *ALIASES))
        raise ValueError(f"{which} must be one of {valid}; got {name!r}")
    conv = CONVENTIONS[name]
    if likelihood not in conv.likelihoods:
        raise ValueError(
            f"convention {name!r} does not apply to likelihood {likelihood!r}; it applies to "
            f"likelihood {', '.join(map(repr, conv.likelihoods))}; conventions for "
            f"{likelihood!r} with prior {prior!r}: "
            f"{', '.join(convention_names(prior, likelihood=likelihood))}"
        )
    if prior not in conv.priors:
        raise ValueError(
            f"convention {name!r} does not apply to prior {prior!r}; conventions for "
            f"{prior!r}: {', '.join(convention_names(prior, likelihood=likelihood))}"
        )
    return conv


def _context(conv: Convention, n, noise, likelihood: str) -> tuple[int | None, float | None]:
    if "n" in conv.needs:
        if n is None:
            raise ValueError(f"n (number of samples) is required for convention {conv.name!r}")
        n = check_positive_int("n", n, maximum=N_MAX)
    if likelihood != "gaussian":
        if noise is not None:
            raise ValueError(
                f"noise (sigma_eps) applies only to likelihood 'gaussian'; likelihood "
                f"{likelihood!r} has no noise scale: leave noise=None; got noise={noise!r}"
            )
        return n, 1.0
    if "noise" in conv.needs:
        if noise is None:
            raise ValueError(
                f"noise (sigma_eps, a positive finite number) is required for convention "
                f"{conv.name!r}"
            )
        noise = check_scale("noise", noise, 2)
    return n, noise


def _check_sd_y(sd_y, likelihood: str) -> float | None:
    if sd_y is None:
        return None
    if likelihood != "gaussian":
        raise ValueError(
            f"sd_y (the 1/n standard deviation of y, for glmnet's gaussian ridge) applies only "
            f"to likelihood 'gaussian'; got sd_y={sd_y!r} with likelihood {likelihood!r}"
        )
    return check_scale("sd_y", sd_y, 1)


def _sd_y_for(conv: Convention, prior: str, likelihood: str, sd_y: float | None) -> float:
    """The sd_y that divides lam for this use of ``conv`` (1 where none applies)."""
    if (likelihood, prior) not in conv.per_sd_y:
        return 1.0
    if sd_y is None:
        warnings.warn(
            f"convention {conv.name!r} with prior {prior!r}: glmnet's ridge (alpha=0) works on "
            f"y / sd_y (sd_y = np.std(y), the 1/n standard deviation), so its lambda is "
            f"lambda_glmnet = lam * sd_y / n for canonical lam; pass sd_y=... to convert "
            f"exactly. Without it the value for glmnet's documented objective "
            f"(1/(2n))||r||^2 + lambda/2 ||w||^2 is used, exact only for sd_y = 1",
            UserWarning, stacklevel=3,
        )
        return 1.0
    return sd_y


def _in_range(fn, x: float, power: float, n, noise, name: str, what: str,
              out_range: tuple[float, float]) -> float:
    """fn(x, n, noise), a power law c * x**power; a result outside ``out_range`` raises a
    ValueError stating the range of ``x`` that keeps it inside."""
    out = fn(x, n, noise)
    lo_out, hi_out = out_range
    if lo_out <= out <= hi_out:
        return out
    log_c = math.log10(fn(1.0, n, noise))
    lo_log, hi_log = math.log10(FLOAT_MIN), math.log10(FLOAT_LIM)
    ends = sorted((math.log10(b) - log_c) / power for b in out_range)
    lo, hi = (10.0 ** min(max(e, lo_log), hi_log) for e in ends)
    true = log_c + power * math.log10(x)
    shown = f"{out:.3g}" if 0 < out < math.inf else f"~1e{true:.0f}"
    raise ValueError(
        f"{name} must be between {lo:.3g} and {hi:.3g} here: {what} would be {shown}, outside "
        f"{lo_out:.3g} .. {hi_out:.3g} (where it and its reciprocal are finite positive "
        f"float64 numbers); got {x!r}"
    )


def to_canonical(
    value: float,
    convention: str,
    *,
    prior: str,
    n: int | None = None,
    noise: float | None = None,
    likelihood: str = "gaussian",
    sd_y: float | None = None,
) -> float:
    """Canonical lambda of ``value`` given in ``convention`` (see the module tables).

    Parameters
    ----------
    value : float
        The strength in ``convention`` (> 0; a prior scale for "sigma" / "b", C for
        "sklearn_logistic").
    convention : str
        One of :data:`CONVENTIONS` (or the alias "d2l" for "mean") that applies to
        ``likelihood`` and ``prior``.
    prior : {"gaussian", "laplace"}
        Which penalty: P(w) = 1/2 ||w||^2 or ||w||_1.
    n : int, optional
        Number of samples; required by the mean-type conventions.
    noise : float, optional
        sigma_eps; required by "torch_nll", "sigma" and "b" for the gaussian likelihood,
        refused for the others (they have no noise scale).
    likelihood : {"gaussian", "bernoulli", "categorical", "poisson"}
        The likelihood whose summed NLL L the canonical objective L + lam P(w) uses.
    sd_y : float, optional
        The 1/n standard deviation of y (``np.std(y)``), for "glmnet" with the gaussian
        prior and likelihood (glmnet's ridge works on y / sd_y): lam = n value / sd_y.
        Without it that conversion warns (UserWarning) and uses sd_y = 1. Ignored by every
        other convention; refused for a likelihood other than "gaussian".
    """
    conv = _lookup(convention, prior, likelihood)
    value = check_scale("value", value, abs(conv.power))
    n, noise = _context(conv, n, noise, likelihood)
    s_y = _sd_y_for(conv, prior, likelihood, _check_sd_y(sd_y, likelihood))
    fn = conv.to_lam if s_y == 1.0 else (lambda v, n_, s: conv.to_lam(v, n_, s) / s_y)
    return _in_range(fn, value, conv.power, n, noise, "value",
                     f"its canonical lam (from convention {conv.name!r})", power_range(1))


def from_canonical(
    lam: float,
    convention: str,
    *,
    prior: str,
    n: int | None = None,
    noise: float | None = None,
    likelihood: str = "gaussian",
    sd_y: float | None = None,
) -> float:
    """The value in ``convention`` of the canonical ``lam`` (the inverse of to_canonical;
    the parameters are those of :func:`to_canonical`)."""
    conv = _lookup(convention, prior, likelihood)
    lam = check_scale("lam", lam, 1)
    n, noise = _context(conv, n, noise, likelihood)
    s_y = _sd_y_for(conv, prior, likelihood, _check_sd_y(sd_y, likelihood))
    fn = conv.from_lam if s_y == 1.0 else (lambda x, n_, s: conv.from_lam(x, n_, s) * s_y)
    return _in_range(fn, lam, 1.0 / conv.power, n, noise, "lam",
                     f"its value in convention {conv.name!r}", power_range(conv.power))


def convert(
    value: float,
    from_: str,
    to: str,
    *,
    prior: str,
    n: int | None = None,
    noise: float | None = None,
    likelihood: str = "gaussian",
    sd_y: float | None = None,
) -> float:
    """Convert a regularization strength between two conventions.

    ``convert(0.5, "b", "sklearn_lasso", prior="laplace", n=20, noise=2.0)`` is the
    ``Lasso(alpha)`` whose fit is the MAP under a Laplace(0, 0.5) prior with noise 2 on 20
    samples: alpha = sigma_eps^2 / (n b) = 0.4.
    ``convert(2.0, "sigma", "torch_bce_mean", prior="gaussian", n=50,
    likelihood="bernoulli")`` is the ``weight_decay`` on ``BCEWithLogitsLoss()`` for a
    N(0, 2^2) prior: wd = 1 / (n sigma^2) = 0.005. All formulas are in the module docstring;
    the parameters are those of :func:`to_canonical`.
    """
    lam = to_canonical(value, from_, prior=prior, n=n, noise=noise, likelihood=likelihood,
                       sd_y=sd_y)
    return from_canonical(lam, to, prior=prior, n=n, noise=noise, likelihood=likelihood,
                          sd_y=sd_y)


def all_conventions(
    lam: float,
    *,
    prior: str,
    n: int | None = None,
    noise: float | None = None,
    likelihood: str = "gaussian",
    sd_y: float | None = None,
) -> dict[str, float]:
    """The canonical ``lam`` in every convention that applies to ``prior`` and
    ``likelihood`` (those needing ``n``, ``noise`` or ``sd_y`` only when given)."""
    lam = check_scale("lam", lam, 1)
    likelihood = _check_likelihood(likelihood)
    if likelihood != "gaussian" and noise is not None:
        _context(CONVENTIONS["canonical"], n, noise, likelihood)  # raises: no noise scale
    out = {}
    for name in convention_names(prior, likelihood=likelihood):
        conv = CONVENTIONS[name]
        if ("n" in conv.needs and n is None) or (
            "noise" in conv.needs and likelihood == "gaussian" and noise is None
        ) or ((likelihood, prior) in conv.per_sd_y and sd_y is None):
            continue
        out[name] = from_canonical(lam, name, prior=prior, n=n, noise=noise,
                                   likelihood=likelihood, sd_y=sd_y)
    return out


def elasticnet_params(
    *, sigma: float | None = None, b: float | None = None, noise: float, n: int
) -> tuple[float, float]:
    """scikit-learn ``ElasticNet(alpha, l1_ratio)`` for the prior exp(-|w|/b - w^2/(2 sigma^2)).

    That product prior gives the canonical objective
    1/2 ||r||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2, lam1 = sigma_eps^2 / b,
    lam2 = sigma_eps^2 / sigma^2; ElasticNet minimises
    (1/(2n))||r||^2 + alpha rho ||w||_1 + 1/2 alpha (1 - rho) ||w||^2, hence
    alpha = (sigma_eps^2 / n)(1/b + 1/sigma^2) and rho = (1/b) / (1/b + 1/sigma^2).
    With only ``b`` (only ``sigma``), rho = 1 (rho = 0).
    """
    noise = check_scale("noise", noise, 2)
    n = check_positive_int("n", n, maximum=N_MAX)
    if sigma is None and b is None:
        raise ValueError("give sigma, b or both (positive finite numbers); got neither")
    k1 = 1.0 / check_scale("b", b, 1) if b is not None else 0.0
    k2 = 1.0 / check_scale("sigma", sigma, 2) ** 2 if sigma is not None else 0.0
    alpha = noise * noise / n * (k1 + k2)
    log_alpha = 2 * math.log10(noise) - math.log10(n) + math.log10(k1 + k2)
    alpha = check_derived("alpha", alpha, f"noise^2 (1/b + 1/sigma^2) / n with noise={noise:g}, "
                          f"n={n}", log_alpha)
    return alpha, k1 / (k1 + k2)
