"""Regularization strengths in every convention people use, and the exact conversions.

The hub is the **canonical** objective, with an unpenalized intercept c, residual
r = y - Xw - c, n samples and noise scale sigma_eps::

    1/2 ||r||^2 + lam * P(w),     P(w) = 1/2 ||w||^2 (prior "gaussian"),  ||w||_1 ("laplace")

and the MAP link lam = sigma_eps^2 / sigma^2 (Gaussian prior N(0, sigma^2)) or
lam = sigma_eps^2 / b (Laplace prior Laplace(0, b)).

Every other convention is "a loss on r plus value * P(w)"; if its loss equals
``loss_scale * 1/2 ||r||^2`` then its optimum is the canonical one at

    lam = value / loss_scale.

============================  ======================================  =====================
convention                    objective                               lam (canonical)
============================  ======================================  =====================
canonical                     1/2 ||r||^2 + lam P(w)                  value
mean (alias d2l)              (1/n) sum 1/2 r_i^2 + v P(w)            n v
torch_mse_mean                (1/n) ||r||^2 + v P(w)                  n v / 2
torch_mse_sum                 ||r||^2 + v P(w)                        v / 2
torch_nll                     (1/2 sigma_eps^2) ||r||^2 + v P(w)      sigma_eps^2 v
l2decay (gaussian)            (1/n) sum 1/2 r_i^2 + 1/2 v ||w||^2     n v
sklearn_ridge (gaussian)      ||r||^2 + v ||w||^2 (= 2 v P(w))         v
sklearn_lasso (laplace)       (1/2n) ||r||^2 + v ||w||_1              n v
sklearn_elasticnet            (1/2n)||r||^2 + v rho ||w||_1
                              + 1/2 v (1 - rho) ||w||^2               n v   (rho = 0 or 1)
glmnet                        (1/2n)||r||^2
                              + v [(1-a)/2 ||w||^2 + a ||w||_1]       n v   (a = 0 or 1)
sigma (gaussian)              the prior's standard deviation          sigma_eps^2 / v^2
b (laplace)                   the Laplace prior's scale               sigma_eps^2 / v
============================  ======================================  =====================

For the torch rows the value is the optimizer's ``weight_decay`` for the Gaussian prior
(``weight_decay=wd`` adds wd * w to the gradient, the gradient of (wd/2)||w||^2 = wd * P(w)),
and the coefficient mu of an explicit ``mu * w.abs().sum()`` term for the Laplace prior.

Range: every value, lam and result must lie in [FLOAT_MIN, FLOAT_LIM] (~2.2e-308 ..
~4.5e307: a normal positive float64 whose reciprocal is one too; see
:mod:`mapreg._validation`), a prior scale sigma in ~[1.5e-154, 6.7e153] (sigma^2 and
1/sigma^2 in that range), and n in 1 .. 2^53. A conversion that would leave its range
raises a ValueError naming the range of the input that stays inside it -- never inf or 0.
"""

from __future__ import annotations

import math
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
#: Largest n accepted: sample counts beyond 2^53 are not exact in float64.
N_MAX = 2**53


@dataclass(frozen=True)
class Convention:
    """One convention: its objective and its exact link to the canonical lambda.

    ``to_lam(value, n, noise)`` gives the canonical lambda, ``from_lam(lam, n, noise)`` the
    value in this convention; ``needs`` lists which of "n" / "noise" they use. ``power``:
    lam is proportional to value ** power (1 for the loss rescalings, -2 for sigma, -1 for b).
    """

    name: str
    objective: str
    priors: tuple[str, ...]
    needs: tuple[str, ...]
    to_lam: Callable[[float, int | None, float | None], float]
    from_lam: Callable[[float, int | None, float | None], float]
    note: str = ""
    power: float = 1.0


def _scaled(factor: Callable[[int | None, float | None], float]):
    """to/from functions for lam = value / loss_scale with loss_scale = factor(n, noise)."""
    return (lambda v, n, s: v / factor(n, s)), (lambda lam, n, s: lam * factor(n, s))


_both = PRIOR_NAMES


def _make(name, objective, priors, needs, factor, note=""):
    to_lam, from_lam = _scaled(factor)
    return Convention(name, objective, priors, needs, to_lam, from_lam, note)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        _make("canonical", "1/2 ||r||^2 + lam P(w)", _both, (), lambda n, s: 1.0),
        _make("mean", "(1/n) sum_i 1/2 r_i^2 + lam_m P(w)   (d2l's lambda)", _both, ("n",),
              lambda n, s: 1.0 / n),
        _make("torch_mse_mean", "MSELoss(mean) = (1/n)||r||^2, + weight_decay * P(w) "
              "(gaussian) or + mu ||w||_1 (laplace)", _both, ("n",), lambda n, s: 2.0 / n),
        _make("torch_mse_sum", "MSELoss(sum) = ||r||^2, + weight_decay * P(w) (gaussian) or "
              "+ mu ||w||_1 (laplace)", _both, (), lambda n, s: 2.0),
        _make("torch_nll", "exact NLL (1/(2 sigma_eps^2))||r||^2, + weight_decay * P(w) or "
              "+ mu ||w||_1", _both, ("noise",), lambda n, s: 1.0 / (s * s)),
        _make("l2decay", "L2Decay(coeff) on d2l's mean loss: (1/n) sum_i 1/2 r_i^2 + "
              "1/2 coeff ||w||^2", ("gaussian",), ("n",), lambda n, s: 1.0 / n,
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
        _make("glmnet", "glmnet gaussian, standardize=FALSE: (1/(2n))||r||^2 + lambda "
              "[(1 - a)/2 ||w||^2 + a ||w||_1], a = 0 (gaussian) or 1 (laplace)", _both, ("n",),
              lambda n, s: 1.0 / n,
              note="for a < 1 (ridge) glmnet standardizes y internally by its 1/n standard "
              "deviation sd_y and applies its lambda on that scale, so the ridge objective it "
              "actually solves has lambda_glmnet / sd_y in place of lambda: pass "
              "lambda = (value of this table) * sd_y to reproduce it (the known recipe "
              "lambda_glmnet = lam * sd_y / n for canonical lam). For the lasso (a = 1) the "
              "scales agree. Not checked against R here (no R on the test machines)."),
        Convention("sigma", "Gaussian prior standard deviation sigma", ("gaussian",),
                   ("noise",), lambda v, n, s: (s / v) * (s / v),
                   lambda lam, n, s: s / math.sqrt(lam), power=-2.0),
        Convention("b", "Laplace prior scale b", ("laplace",), ("noise",),
                   lambda v, n, s: s * s / v, lambda lam, n, s: s * s / lam, power=-1.0),
    )
}
ALIASES = {"d2l": "mean"}


def convention_names(prior: str | None = None) -> tuple[str, ...]:
    """Names of all conventions, or of those that apply to ``prior``."""
    if prior is None:
        return tuple(CONVENTIONS)
    prior = check_choice("prior", prior, PRIOR_NAMES)
    return tuple(k for k, c in CONVENTIONS.items() if prior in c.priors)


def _lookup(name: str, prior: str, which: str = "convention") -> Convention:
    prior = check_choice("prior", prior, PRIOR_NAMES)
    name = ALIASES.get(name, name)
    if name not in CONVENTIONS:
        valid = ", ".join(repr(k) for k in (*CONVENTIONS, *ALIASES))
        raise ValueError(f"{which} must be one of {valid}; got {name!r}")
    conv = CONVENTIONS[name]
    if prior not in conv.priors:
        raise ValueError(
            f"convention {name!r} does not apply to prior {prior!r}; conventions for "
            f"{prior!r}: {', '.join(convention_names(prior))}"
        )
    return conv


def _context(conv: Convention, n, noise) -> tuple[int | None, float | None]:
    if "n" in conv.needs:
        if n is None:
            raise ValueError(f"n (number of samples) is required for convention {conv.name!r}")
        n = check_positive_int("n", n, maximum=N_MAX)
    if "noise" in conv.needs:
        if noise is None:
            raise ValueError(
                f"noise (sigma_eps, a positive finite number) is required for convention "
                f"{conv.name!r}"
            )
        noise = check_scale("noise", noise, 2)
    return n, noise


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
    value: float, convention: str, *, prior: str, n: int | None = None, noise: float | None = None
) -> float:
    """Canonical lambda of ``value`` given in ``convention`` (see the module table).

    Parameters
    ----------
    value : float
        The strength in ``convention`` (> 0; a prior scale for "sigma" / "b").
    convention : str
        One of :data:`CONVENTIONS` (or the alias "d2l" for "mean").
    prior : {"gaussian", "laplace"}
        Which penalty: P(w) = 1/2 ||w||^2 or ||w||_1.
    n : int, optional
        Number of samples; required by the mean-type conventions.
    noise : float, optional
        sigma_eps; required by "torch_nll", "sigma" and "b".
    """
    conv = _lookup(convention, prior)
    value = check_scale("value", value, abs(conv.power))
    n, noise = _context(conv, n, noise)
    return _in_range(conv.to_lam, value, conv.power, n, noise, "value",
                     f"its canonical lam (from convention {conv.name!r})", power_range(1))


def from_canonical(
    lam: float, convention: str, *, prior: str, n: int | None = None, noise: float | None = None
) -> float:
    """The value in ``convention`` of the canonical ``lam`` (the inverse of to_canonical)."""
    conv = _lookup(convention, prior)
    lam = check_scale("lam", lam, 1)
    n, noise = _context(conv, n, noise)
    return _in_range(conv.from_lam, lam, 1.0 / conv.power, n, noise, "lam",
                     f"its value in convention {conv.name!r}", power_range(conv.power))


def convert(
    value: float,
    from_: str,
    to: str,
    *,
    prior: str,
    n: int | None = None,
    noise: float | None = None,
) -> float:
    """Convert a regularization strength between two conventions.

    ``convert(0.5, "b", "sklearn_lasso", prior="laplace", n=20, noise=2.0)`` is the
    ``Lasso(alpha)`` whose fit is the MAP under a Laplace(0, 0.5) prior with noise 2 on 20
    samples: alpha = sigma_eps^2 / (n b) = 0.4. All formulas are in the module docstring.
    """
    lam = to_canonical(value, from_, prior=prior, n=n, noise=noise)
    return from_canonical(lam, to, prior=prior, n=n, noise=noise)


def all_conventions(
    lam: float, *, prior: str, n: int | None = None, noise: float | None = None
) -> dict[str, float]:
    """The canonical ``lam`` in every convention that applies to ``prior`` (those needing
    ``n`` or ``noise`` only when given)."""
    lam = check_scale("lam", lam, 1)
    out = {}
    for name in convention_names(prior):
        conv = CONVENTIONS[name]
        if ("n" in conv.needs and n is None) or ("noise" in conv.needs and noise is None):
            continue
        out[name] = from_canonical(lam, name, prior=prior, n=n, noise=noise)
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
