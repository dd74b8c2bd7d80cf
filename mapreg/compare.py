"""``compare``: the MAP estimate from Pyro next to the penalized optimum, for one prior.

A thin composition: build the Pyro model from (prior, Gaussian likelihood), maximise its
log joint (:mod:`mapreg.map`), solve the penalized problem at the converted lambda through
a path that never touches Pyro (:mod:`mapreg.penalized`), optionally train ``nn.Linear``
the d2l way (:mod:`mapreg.training`), and return a frozen :class:`CompareResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from ._results import FrozenResult
from ._validation import check_bool, check_choice, check_data, check_positive
from .bayes.likelihoods import LIKELIHOODS, GaussianNoise
from .bayes.map import MapResult, map_estimate, neg_log_joint
from .bayes.priors import Prior, make_prior
from .conventions import all_conventions, elasticnet_params
from .datasets import resolve_data
from .diagnosis import (
    AGREEMENT_RTOL,
    OBJECTIVE_RTOL,
    Agreement,
    Diagnosis,
    agreement,
    conditioning,
    diagnose,
    objective_difference,
    relative,
)
from .penalized.linear import PenalizedResult, canonical_objective, solve_penalized

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .compare_glm import GLMCompareResult
    from .penalized.training import TrainResult

__all__ = ["AGREEMENT_RTOL", "CompareResult", "compare"]

_PENALTY_FORMULA = {
    "ridge": "1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2",
    "lasso": "1/2 ||y - Xw - c||^2 + lam ||w||_1",
    "elasticnet": "1/2 ||y - Xw - c||^2 + lam ||w||_1 + (lam2/2) ||w||^2",
}
_LAM_FORMULA = {"gaussian": "sigma_eps^2 / sigma^2", "laplace": "sigma_eps^2 / b",
                "elasticnet": "sigma_eps^2 / b (lam2 = sigma_eps^2 / sigma^2)"}


class TwoPoints:
    """The numbers every comparison derives from its two points (fields ``map_coef``,
    ``map_intercept``, ``penalized_coef``, ``penalized_intercept``): shared by
    :class:`CompareResult` and :class:`~mapreg.compare_glm.GLMCompareResult`."""

    __slots__ = ()

    def _raw(self, name: str) -> Any:
        """A field without the defensive copy (internal reads only)."""
        return object.__getattribute__(self, name)

    @property
    def max_abs_diff(self) -> float:
        """max |map_coef - penalized_coef| over every weight."""
        return float((self._raw("map_coef") - self._raw("penalized_coef")).abs().max())

    @property
    def intercept_abs_diff(self) -> float:
        """max |map_intercept - penalized_intercept| (one intercept, or one per class)."""
        a = torch.as_tensor(self._raw("map_intercept"))
        b = torch.as_tensor(self._raw("penalized_intercept"))
        return float((a - b).abs().max())

    @property
    def support_agree(self) -> bool:
        """Whether the exact-zero patterns of the two points are identical."""
        return bool(torch.equal(self._raw("map_coef") == 0, self._raw("penalized_coef") == 0))

    @property
    def n_zero(self) -> int:
        """Exact zeros in the MAP estimate."""
        return int((self._raw("map_coef") == 0).sum())


@dataclass(frozen=True, eq=False)
class CompareResult(FrozenResult, TwoPoints):
    """MAP (Pyro) versus penalized optimum for one prior, data set and noise scale.

    Frozen: reading a tensor attribute returns a copy (``res.map_coef[0] = 5`` leaves the
    result unchanged), and ``==`` compares field by field, tensors by value.

    Promise (:attr:`agrees`), with w, c the penalized optimum and dw, dc the differences::

        max_j |dw_j| <= 1e-6 ||w||_inf                 (all-zero w: both exactly zero)
        |dc| <= 1e-6 (|mean(y)| + sum_j |mean(X_j) w_j|)   (sd(y) if that sum is 0)
        identical exact-zero patterns (Laplace prior)

    Attributes
    ----------
    prior, noise
        The prior object (``Gaussian(sigma)`` / ``Laplace(b)``) and sigma_eps.
    lam
        Canonical lambda: ridge 1/2||r||^2 + (lam/2)||w||^2 with lam = sigma_eps^2/sigma^2,
        lasso 1/2||r||^2 + lam ||w||_1 with lam = sigma_eps^2/b.
    X, y
        The data actually used (float64 tensors).
    map_coef, map_intercept
        The MAP estimate, from Pyro's log joint.
    penalized_coef, penalized_intercept
        The penalized optimum, from the exact solver (no Pyro).
    objective_map, objective_penalized
        The canonical objective at the two points.
    neg_log_joint_map, neg_log_joint_penalized
        Pyro's -log p(y, w, c) at the two points.
    log_joint_constant
        C in -log p = canonical / sigma_eps^2 + C: (n/2) log(2 pi sigma_eps^2) plus the prior's
        log normaliser (d/2 log(2 pi sigma^2) or d log(2b)).
    conventions
        lam in every convention that applies to the prior (a read-only mapping; see
        :mod:`mapreg.conventions`).
    map, penalized, training
        The solvers' full results (``training`` only with ``train=True``).
    dataset
        Name of the built-in data set, or ``None`` for user data.

    Derived on demand: ``max_abs_diff``, ``intercept_abs_diff``, ``support_agree``,
    ``n_zero``, ``agrees``, ``same_objective``, ``objective_rel_diff``,
    ``hessian_condition``, :meth:`diagnosis`, :meth:`verdict`.
    """

    prior: Prior
    noise: float
    lam: float
    X: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)
    map_coef: torch.Tensor
    map_intercept: float
    penalized_coef: torch.Tensor
    penalized_intercept: float
    objective_map: float
    objective_penalized: float
    neg_log_joint_map: float
    neg_log_joint_penalized: float
    log_joint_constant: float
    conventions: Mapping[str, float] = field(repr=False)
    map: MapResult = field(repr=False)
    penalized: PenalizedResult = field(repr=False)
    training: TrainResult | None = field(default=None, repr=False)
    dataset: str | None = None

    # ----------------------------------------------------------------- derived numbers
    @property
    def lam2(self) -> float:
        """The elastic net's weight of (1/2)||w||^2 (sigma_eps^2 / sigma^2); 0 otherwise."""
        return self.prior.lams(self.noise)[1] if self.prior.penalty_name == "elasticnet" else 0.0


    def diagnosis(self) -> Diagnosis:
        """The evidence behind :meth:`verdict` (numbers and kind), computed on demand from
        this result's X, y, coefficients and objectives; see :mod:`mapreg.diagnosis`."""
        m, p = self.map, self.penalized
        gap = "gap" if self.prior.penalty_name == "lasso" else "max gradient"
        solvers = (f"MAP KKT residual {m.kkt_residual:.1e} (tolerance {m.kkt_tol:.1e}), "
                   f"{self.prior.penalty_name} {gap} {p.duality_gap:.1e}")
        return diagnose(
            self._raw("X"), self._raw("y"), self.prior.penalty_name, self.lam,
            (self._raw("map_coef"), self.map_intercept),
            (self._raw("penalized_coef"), self.penalized_intercept),
            (self.objective_map, self.objective_penalized), solvers, self.lam2,
        )

    def agreement(self) -> Agreement:
        """The promise's numbers: differences, their scales, zero patterns (cheap)."""
        return agreement(self._raw("X"), self._raw("y"), self.prior.penalty_name,
                         (self._raw("map_coef"), self.map_intercept),
                         (self._raw("penalized_coef"), self.penalized_intercept))

    @property
    def agrees(self) -> bool:
        """The promise holds: max_j |dw_j| <= 1e-6 ||w_pen||_inf, |dc| <= 1e-6 (|mean y| +
        sum_j |mean X_j w_j|) (sd(y) if that is 0), and, for a prior with exact zeros,
        identical zero patterns. An all-zero optimum: for the lasso both exactly zero, for
        the ridge max_i |x_i . dw| <= 1e-6 x the intercept scale."""
        return self.agreement().agrees

    @property
    def same_objective(self) -> bool:
        """Whether both points attain the same canonical objective (relative 1e-9)."""
        return self.objective_rel_diff <= OBJECTIVE_RTOL

    @property
    def objective_rel_diff(self) -> float:
        """|J(map) - J(penalized)| / max(J(map), J(penalized)) for the canonical objective J,
        the difference computed from the two points' differences (no cancellation)."""
        X, y = self._raw("X"), self._raw("y")
        dj = objective_difference(X, y, self.prior.penalty_name, self.lam,
                                  (self._raw("map_coef"), self.map_intercept),
                                  (self._raw("penalized_coef"), self.penalized_intercept),
                                  self.lam2)
        return relative(abs(dj), max(self.objective_map, self.objective_penalized))

    @property
    def hessian_condition(self) -> float:
        """Condition number of the canonical objective's Hessian in w on centred data:
        cond(Xc'Xc + lam I) for the ridge, cond(Xc_U'Xc_U) on the union U of both supports
        for the lasso (``inf`` when rank-deficient, 1 for an empty support). Computed on
        demand.

        Both solvers stop on optimality tests evaluated in float64, so near the optimum
        they can resolve w only to about 1e-15 x this number, relative.
        """
        w, v = self._raw("map_coef"), self._raw("penalized_coef")
        ridge = self.prior.penalty_name == "ridge"
        cols = torch.ones_like(w, dtype=torch.bool) if ridge else (w != 0) | (v != 0)
        return conditioning(self._raw("X"), cols, self.lam if ridge else self.lam2).cond

    def verdict(self) -> str:
        """AGREE, or the cause of the difference that the numbers support, with the numbers.

        * ``AGREE -- ...``: the promise holds (see :attr:`agrees`);
        * ``NOT UNIQUE -- ...``: same objective to 1e-9 and the centred columns on the union
          of both supports are rank-deficient (lasso; the ridge optimum is always unique);
        * ``DIFFER BY ROUNDING ONLY -- ...``: same objective to 1e-9, a unique optimum, and
          cond(Hessian) x 1e-15 >= the observed relative difference; the text names what is
          ill-conditioned (column scales > 1e3 apart: standardize; rank; near-collinear
          columns);
        * ``DISAGREE -- ...`` otherwise, with the solvers' residuals.
        """
        return str(self.diagnosis())

    @property
    def training_max_abs_diff(self) -> float | None:
        """max_j |w_train - w_penalized| when ``train=True``, else ``None``."""
        if self.training is None:
            return None
        return float((self.training.coef - self._raw("penalized_coef")).abs().max())

    # ------------------------------------------------------------------ presentation
    def plot(self, ax=None) -> Figure:
        """Bar/marker chart of MAP vs penalized coefficients; returns the Figure."""
        from .plotting import plot_coefficients

        return plot_coefficients(self, ax=ax)

    def plot_path(self, ax=None) -> Figure:
        """The regularization path of this data set and prior family, this lambda marked."""
        from .lagrange_plots import plot_path

        return plot_path(self.prior, X=self.X, y=self.y, noise=self.noise, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (lists and floats)."""
        diag = self.diagnosis()
        X = self._raw("X")
        out: dict[str, Any] = {
            "prior": self.prior.name,
            **{k: getattr(self.prior, k) for k in self.prior.scale_names},
            "noise": self.noise,
            "n": int(X.shape[0]),
            "d": int(X.shape[1]),
            "dataset": self.dataset,
            "lam": self.lam,
            "objective_form": _PENALTY_FORMULA[self.prior.penalty_name],
            "map_coef": self._raw("map_coef").tolist(),
            "map_intercept": self.map_intercept,
            "penalized_coef": self._raw("penalized_coef").tolist(),
            "penalized_intercept": self.penalized_intercept,
            "max_abs_diff": diag.agreement.max_abs_diff,
            "intercept_abs_diff": diag.agreement.intercept_abs_diff,
            "coef_rel_diff": _finite(diag.agreement.rel_coef),
            "intercept_rel_diff": _finite(diag.agreement.rel_intercept),
            "intercept_scale": diag.agreement.intercept_scale,
            "support_agree": self.support_agree,
            "n_zero": self.n_zero,
            "agrees": diag.kind == "agree",
            "same_objective": diag.objective_rel_diff <= OBJECTIVE_RTOL,
            "verdict_kind": diag.kind,
            "verdict": str(diag),
            "objective_map": self.objective_map,
            "objective_penalized": self.objective_penalized,
            "objective_rel_diff": _finite(diag.objective_rel_diff),
            "neg_log_joint_map": self.neg_log_joint_map,
            "neg_log_joint_penalized": self.neg_log_joint_penalized,
            "log_joint_constant": self.log_joint_constant,
            "conventions": dict(self.conventions),
            "map": {
                "iterations": self.map.iterations,
                "pyro_traces": self.map.pyro_traces,
                "kkt_residual": self.map.kkt_residual,
                "converged": self.map.converged,
                "wall_time": self.map.wall_time,
            },
            "penalized": {
                "solver": self.penalized.penalty,
                "method": self.penalized.method,
                "iterations": self.penalized.iterations,
                "working_set_size": self.penalized.working_set_size,
                "duality_gap": self.penalized.duality_gap,
                "converged": self.penalized.converged,
                "wall_time": self.penalized.wall_time,
            },
        }
        if self.training is not None:
            out["training"] = {
                "coef": self.training.coef.tolist(),
                "intercept": self.training.intercept,
                "epochs_run": self.training.epochs_run,
                "max_abs_diff_to_penalized": self.training_max_abs_diff,
                "converged": self.training.converged,
            }
        return out

    def __str__(self) -> str:
        X = self._raw("X")
        n, d = X.shape
        pen = self.prior.penalty_name
        data = self.dataset if self.dataset is not None else "user data"
        diag = self.diagnosis()
        lines = [
            f"mapreg.compare: {self.prior} prior, Gaussian noise sigma_eps={self.noise:g} "
            f"({data}, n={n}, d={d})",
            f"lam = {_LAM_FORMULA[self.prior.name]} = {self.lam:.6g}   in   "
            f"{_PENALTY_FORMULA[pen]}",
            "",
            *_coef_table(self._raw("map_coef"), self._raw("penalized_coef"), pen),
        ]
        a, b = self.map_intercept, self.penalized_intercept
        width = max(5, len(f"w{d - 1}"))
        lines.append(f"{'c':>{width}} {a:>16.8f} {b:>16.8f} {abs(a - b):>10.1e}")
        lines.append("")
        zeros = f"; {self.n_zero} exact zeros in the MAP" if pen == "lasso" else ""
        lines.append(
            f"promise: max|dw| <= 1e-6 |w_{pen}|_inf, |dc| <= 1e-6 (|mean y| + "
            f"sum_j |mean x_j w_j|) = {AGREEMENT_RTOL * diag.agreement.intercept_scale:.1e}"
            f"{', identical zero patterns' if pen == 'lasso' else ''}{zeros}"
        )
        lines.append(str(diag))
        lines.append(
            f"objective {_PENALTY_FORMULA[pen]}: {self.objective_map:.10g} at MAP, "
            f"{self.objective_penalized:.10g} at the {pen} optimum "
            f"(rel. diff {diag.objective_rel_diff:.1e})"
        )
        lines.append(
            f"Pyro -log p(y, w, c): {self.neg_log_joint_map:.10g} at MAP, "
            f"{self.neg_log_joint_penalized:.10g} at the {pen} optimum "
            f"(= objective / sigma_eps^2 {'-' if self.log_joint_constant < 0 else '+'} "
            f"{abs(self.log_joint_constant):.6g})"
        )
        m, p = self.map, self.penalized
        lines.append(
            f"MAP engine: {m.iterations} Newton iterations, {m.pyro_traces} Pyro traces, "
            f"KKT residual {m.kkt_residual:.1e}, {1e3 * m.wall_time:.1f} ms; "
            f"{pen}: {_solver_summary(p)}, "
            f"{'gap' if pen == 'lasso' else 'gradient'} {p.duality_gap:.1e}, "
            f"{1e3 * p.wall_time:.1f} ms"
        )
        if self.training is not None:
            t = self.training
            lines.append(
                f"d2l-style training (nn.Linear + SGD, {t.epochs_run} epochs): "
                f"max|w_train - w_{pen}| = {self.training_max_abs_diff:.1e}"
            )
        conv = ", ".join(f"{k}={v:.6g}" for k, v in self.conventions.items())
        lines.append(f"lam in other conventions: {conv}")
        return "\n".join(lines)


#: At most this many coefficient rows in ``str(result)``.
MAX_ROWS = 20


def _coef_table(w_map: torch.Tensor, w_pen: torch.Tensor, pen: str) -> list[str]:
    """Header and coefficient rows; beyond MAX_ROWS only the rows with the largest |diff|
    (ties: the larger |w|), shown in index order, and a line saying how many are left out."""
    diff = (w_map - w_pen).abs()
    d = diff.shape[0]
    width = max(5, len(f"w{d - 1}"))
    rows = list(range(d))
    if d > MAX_ROWS:
        dl, wl = diff.tolist(), w_pen.abs().tolist()
        rows = sorted(sorted(rows, key=lambda j: (-dl[j], -wl[j], j))[:MAX_ROWS])
    header = f"{'':>{width}} {'MAP (Pyro)':>16} {pen + ' (exact)':>16} {'|diff|':>10}"
    if d > MAX_ROWS:
        header += f"   ({MAX_ROWS} of {d} coefficients: the largest |diff|)"
    out = [header]
    for j in rows:
        a, b = float(w_map[j]), float(w_pen[j])
        out.append(f"{'w' + str(j):>{width}} {a:>16.8f} {b:>16.8f} {abs(a - b):>10.1e}")
    if d > MAX_ROWS:
        hidden = torch.ones(d, dtype=torch.bool)
        hidden[rows] = False
        out.append(f"{'...':>{width}} {d - MAX_ROWS} more rows (|diff| <= "
                   f"{float(diff[hidden].max()):.1e}); result.to_dict() has all")
    return out


def _finite(x: float) -> float | None:
    """JSON has no inf: None stands for an infinite ratio (a difference over a zero scale)."""
    return x if math.isfinite(x) else None


def _solver_summary(p: PenalizedResult) -> str:
    if p.penalty == "ridge":
        return {"closed-form": "closed form (Cholesky)", "svd": "closed form (SVD)"}.get(
            p.method, p.method)
    return f"{p.iterations} active-set steps"


def compare(
    prior: str | Prior,
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    train: bool = False,
    tol: float = 1e-10,
    strict: bool = False,
    likelihood: str = "gaussian",
    n_classes: int | None = None,
) -> CompareResult | GLMCompareResult:
    """MAP under a Pyro prior vs the penalized optimum at the matching lambda.

    For a Gaussian prior N(0, sigma^2) on every weight, the MAP estimate minimises
    1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2 with lam = sigma_eps^2 / sigma^2 (ridge, weight
    decay); for a Laplace prior Laplace(0, b) it minimises 1/2 ||y - Xw - c||^2 + lam ||w||_1
    with lam = sigma_eps^2 / b (lasso). The intercept c has a flat prior (unpenalized).

    Parameters
    ----------
    prior : {"gaussian", "laplace"} or Prior
        The prior on each weight.
    sigma, b : float, optional
        The prior's scale: ``sigma`` for "gaussian", ``b`` for "laplace".
    X, y : array-like or tensor, optional
        Your data, shapes (n, d) and (n,): lists, numpy arrays (read-only too), pandas
        DataFrame / Series, tensors. Without them a built-in data set is used.
    noise : float, optional
        sigma_eps, the noise scale of the Gaussian likelihood. Required with your own data;
        defaults to the built-in data set's true noise scale.
    dataset : {"default", "d2l", "two_feature"}, optional
        Built-in data set (see :mod:`mapreg.datasets`); ``None`` means "default" unless X
        and y are given. Naming a data set and giving X, y is an error.
    likelihood : {"gaussian", "bernoulli", "categorical", "poisson"}
        The observation model. "gaussian" (the default) is linear regression with noise
        sigma_eps (everything above). The others are GLMs with no noise scale: logistic
        (logit link), softmax (a (d, K) weight matrix, the prior on every entry) and Poisson
        (log link); the MAP then minimises sum_i l_i + lam1 ||W||_1 + (lam2/2) ||W||^2 with
        lam1 = 1/b and lam2 = 1/sigma^2 (l_i the exact negative log likelihood), the
        penalized side is :func:`mapreg.penalized.glm.penalized_glm`, and the result is a
        :class:`~mapreg.compare_glm.GLMCompareResult`. Without X and y the likelihood's
        own seeded data set is used (``dataset="separable"`` is a separable Bernoulli set).
    n_classes : int, optional
        K for the categorical likelihood (default: max(y) + 1).
    train : bool
        Also train ``nn.Linear`` with SGD the d2l way (weight decay / explicit L1 term) and
        report how close it gets.
    tol : float
        Relative KKT tolerance of the MAP engine.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when a solver
        (MAP engine, lasso, and with ``train=True`` the training) does not reach its
        tolerance.

    Scales are range-checked so that no derived number overflows or underflows float64:
    sigma and noise in ~[1.5e-154, 6.7e153], b in ~[2.2e-308, 4.5e307], and the canonical
    lam in ~[2.2e-308, 4.5e307] (:mod:`mapreg._validation`).

    Returns
    -------
    CompareResult
        Frozen; ``print(result)`` shows a table, ``result.plot()`` a Figure.
    """
    train = check_bool("train", train)
    strict = check_bool("strict", strict)
    tol = check_positive("tol", tol)
    likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
    prior_obj = make_prior(prior, sigma=sigma, b=b)
    if likelihood != "gaussian":
        return _compare_glm(prior_obj, likelihood, X, y, noise, dataset, train, n_classes,
                            tol, strict)
    if n_classes is not None:
        raise ValueError(f"n_classes is for likelihood='categorical'; got n_classes={n_classes!r}"
                         " with likelihood='gaussian'")
    X, y, noise, name = resolve_data(X, y, noise, dataset, default="default")
    n, d = X.shape
    lam = prior_obj.lam(noise)
    lam2 = prior_obj.lams(noise)[1] if prior_obj.penalty_name == "elasticnet" else 0.0
    sd_y = float(y.std(correction=0))  # glmnet rescales its ridge lambda by the 1/n sd of y
    if prior_obj.penalty_name == "elasticnet":
        # one pair of numbers: scikit-learn's ElasticNet(alpha, l1_ratio) (conventions.py)
        alpha, ratio = elasticnet_params(sigma=prior_obj.sigma, b=prior_obj.b, noise=noise, n=n)
        conventions = MappingProxyType({"sklearn_elasticnet_alpha": alpha,
                                        "sklearn_elasticnet_l1_ratio": ratio})
    else:
        conventions = MappingProxyType(all_conventions(
            lam, prior=prior_obj.name, n=n, noise=noise, sd_y=sd_y if sd_y > 0 else None))

    map_res = map_estimate(X, y, prior_obj, noise, tol=tol, strict=strict)
    pen_kwargs = {"strict": strict} if prior_obj.penalty_name != "ridge" else {}
    if lam2:
        pen_kwargs["lam2"] = lam2
    pen_res = solve_penalized(X, y, prior_obj.penalty_name, lam, **pen_kwargs)

    training = None
    if train and lam2:
        raise ValueError("train=True trains with an L2 or an L1 term, not both: it is for the "
                         "gaussian and laplace priors; got the elastic net")
    if train:
        from .penalized.training import train_penalized

        training = train_penalized(
            X, y, penalty="l2" if prior_obj.penalty_name == "ridge" else "l1", lam=lam,
            strict=strict,
        )

    const = GaussianNoise(noise).log_normalizer(n) + prior_obj.log_normalizer(d)
    penalty = prior_obj.penalty_name
    obj_map = canonical_objective(X, y, map_res.coef, map_res.intercept, penalty, lam, lam2)
    nlj_pen = neg_log_joint(X, y, prior_obj, noise, pen_res.coef, pen_res.intercept)
    if not math.isfinite(nlj_pen):
        raise RuntimeError(f"Pyro's log joint is not finite at the penalized optimum: {nlj_pen}")
    return CompareResult(
        prior=prior_obj,
        noise=noise,
        lam=lam,
        X=X,
        y=y,
        map_coef=map_res.coef,
        map_intercept=map_res.intercept,
        penalized_coef=pen_res.coef,
        penalized_intercept=pen_res.intercept,
        objective_map=obj_map,
        objective_penalized=pen_res.objective,
        neg_log_joint_map=map_res.neg_log_joint,
        neg_log_joint_penalized=nlj_pen,
        log_joint_constant=const,
        conventions=conventions,
        map=map_res,
        penalized=pen_res,
        training=training,
        dataset=name,
    )


def _compare_glm(prior: Prior, likelihood: str, X, y, noise, dataset, train, n_classes, tol,
                 strict) -> GLMCompareResult:
    """The GLM branch of :func:`compare`: data resolution, then :func:`compare_glm`."""
    from .compare_glm import compare_glm
    from .datasets import load_dataset

    if noise is not None:
        raise ValueError(f"noise is the Gaussian likelihood's sigma_eps; the {likelihood} "
                         f"likelihood has no noise scale; got noise={noise!r}")
    if train:
        raise ValueError("train=True trains nn.Linear on squared error: it is for "
                         f"likelihood='gaussian', not {likelihood!r}")
    if (X is None) != (y is None):
        missing = "y" if y is None else "X"
        raise ValueError(
            f"give both X and y, or neither (to use a built-in data set); {missing} is None")
    name = None
    if X is None:
        data = load_dataset(dataset if dataset is not None else likelihood)
        if data.likelihood != likelihood:
            raise ValueError(f"dataset {data.name!r} has {data.likelihood} responses; "
                             f"likelihood={likelihood!r} needs a {likelihood} data set")
        X, y, name = data.X, data.y, data.name
    elif dataset is not None:
        raise ValueError(f"give either dataset={dataset!r} or your own X and y, not both")
    X, y = check_data(X, y)
    return compare_glm(prior, likelihood, X, y, n_classes=n_classes, tol=tol, strict=strict,
                       dataset=name)
