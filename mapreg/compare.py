"""``compare``: the MAP estimate from Pyro next to the penalized optimum, for one prior.

A thin composition: build the Pyro model from (prior, Gaussian likelihood), maximise its
log joint (:mod:`mapreg.map`), solve the penalized problem at the converted lambda through
a path that never touches Pyro (:mod:`mapreg.penalized`), optionally train ``nn.Linear``
the d2l way (:mod:`mapreg.training`), and return a frozen :class:`CompareResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ._validation import check_bool, check_positive
from .conventions import all_conventions
from .datasets import resolve_data
from .likelihoods import GaussianNoise
from .map import MapResult, map_estimate, neg_log_joint
from .penalized import PenalizedResult, canonical_objective, solve_penalized
from .priors import Prior, make_prior

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .training import TrainResult

#: Agreement the package promises between the MAP and the penalized optimum.
AGREEMENT_RTOL = 1e-6

_PENALTY_FORMULA = {
    "ridge": "1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2",
    "lasso": "1/2 ||y - Xw - c||^2 + lam ||w||_1",
}
_LAM_FORMULA = {"gaussian": "sigma_eps^2 / sigma^2", "laplace": "sigma_eps^2 / b"}


@dataclass(frozen=True)
class CompareResult:
    """MAP (Pyro) versus penalized optimum for one prior, data set and noise scale.

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
    max_abs_diff, intercept_abs_diff
        max_j |map_coef_j - penalized_coef_j| and |map_intercept - penalized_intercept|.
    support_agree, n_zero
        Whether the exact-zero patterns are identical; zeros in the MAP estimate.
    objective_map, objective_penalized
        The canonical objective at the two points.
    neg_log_joint_map, neg_log_joint_penalized
        Pyro's -log p(y, w, c) at the two points.
    log_joint_constant
        C in -log p = canonical / sigma_eps^2 + C: (n/2) log(2 pi sigma_eps^2) plus the prior's
        log normaliser (d/2 log(2 pi sigma^2) or d log(2b)).
    conventions
        lam in every convention that applies to the prior (see :mod:`mapreg.conventions`).
    map, penalized, training
        The solvers' full results (``training`` only with ``train=True``).
    dataset
        Name of the built-in data set, or ``None`` for user data.
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
    max_abs_diff: float
    intercept_abs_diff: float
    support_agree: bool
    n_zero: int
    objective_map: float
    objective_penalized: float
    neg_log_joint_map: float
    neg_log_joint_penalized: float
    log_joint_constant: float
    conventions: dict[str, float] = field(repr=False)
    map: MapResult = field(repr=False)
    penalized: PenalizedResult = field(repr=False)
    training: TrainResult | None = field(default=None, repr=False)
    dataset: str | None = None

    # ----------------------------------------------------------------- derived numbers
    @property
    def agrees(self) -> bool:
        """max |dw| and |dc| within 1e-6 * max(1, ||w||_inf), and (for a prior with exact
        zeros, i.e. a non-smooth one) identical zero patterns."""
        scale = max(1.0, float(self.penalized_coef.abs().max()), abs(self.penalized_intercept))
        return (
            self.max_abs_diff <= AGREEMENT_RTOL * scale
            and self.intercept_abs_diff <= AGREEMENT_RTOL * scale
            and (self.support_agree or self.prior.smooth)
        )

    @property
    def same_objective(self) -> bool:
        """Whether both points attain the same canonical objective (relative 1e-9)."""
        return self.objective_rel_diff <= 1e-9

    @property
    def objective_rel_diff(self) -> float:
        """|J(map) - J(penalized)| / |J(penalized)| for the canonical objective J."""
        return abs(self.objective_map - self.objective_penalized) / max(
            abs(self.objective_penalized), 1e-300
        )

    @property
    def hessian_condition(self) -> float:
        """Condition number of the canonical objective's Hessian in w on centred data:
        cond(Xc'Xc + lam I) for the ridge, cond(Xc_S'Xc_S) on the support S for the lasso
        (``inf`` when singular, 1 for an empty support). Computed on demand.

        Both solvers stop on optimality tests evaluated in float64, so near the optimum
        they can only resolve w to about (rounding in the gradient) x (this number); with
        columns of X on very different scales it can exceed 1e10 and the two points then
        differ in the 5th or 6th digit while the objective agrees to about 1e-7 or better.
        """
        Xc = self.X - self.X.mean(0)
        if self.prior.smooth:
            H = Xc.T @ Xc + self.lam * torch.eye(Xc.shape[1], dtype=Xc.dtype)
        else:
            S = self.penalized_coef != 0
            if not bool(S.any()):
                return 1.0
            H = Xc[:, S].T @ Xc[:, S]
        ev = torch.linalg.eigvalsh(H)
        return float(ev[-1] / ev[0]) if float(ev[0]) > 0 else math.inf

    def verdict(self) -> str:
        """AGREE, or why the two points differ.

        * smooth prior, and the objective agrees to 1e-9 or cond >= 1e8 (see
          :attr:`hessian_condition`): rounding on an ill-conditioned problem (the closed form
          is then the more accurate of the two; Pyro's gradient carries rounding relative to
          the largest columns of X);
        * non-smooth prior with the same objective: the optimum is not unique;
        * otherwise DISAGREE.
        """
        if self.agrees:
            return "AGREE"
        if self.prior.smooth and (self.same_objective or self.hessian_condition >= 1e8):
            return (f"DIFFER BY ROUNDING ONLY -- the problem is ill-conditioned (cond = "
                    f"{self.hessian_condition:.1e}, objective rel. diff "
                    f"{self.objective_rel_diff:.1e}): float64 cannot resolve w to 1e-6 here; "
                    f"standardize the columns of X")
        if self.same_objective:
            return ("DIFFERENT POINTS WITH THE SAME OBJECTIVE -- the optimum is not unique "
                    "(e.g. duplicated or collinear columns with the lasso)")
        return "DISAGREE"

    @property
    def training_max_abs_diff(self) -> float | None:
        """max_j |w_train - w_penalized| when ``train=True``, else ``None``."""
        if self.training is None:
            return None
        return float((self.training.coef - self.penalized_coef).abs().max())

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
        out: dict[str, Any] = {
            "prior": self.prior.name,
            self.prior.scale_name: self.prior.scale,
            "noise": self.noise,
            "n": int(self.X.shape[0]),
            "d": int(self.X.shape[1]),
            "dataset": self.dataset,
            "lam": self.lam,
            "objective_form": _PENALTY_FORMULA[self.prior.penalty_name],
            "map_coef": self.map_coef.tolist(),
            "map_intercept": self.map_intercept,
            "penalized_coef": self.penalized_coef.tolist(),
            "penalized_intercept": self.penalized_intercept,
            "max_abs_diff": self.max_abs_diff,
            "intercept_abs_diff": self.intercept_abs_diff,
            "support_agree": self.support_agree,
            "n_zero": self.n_zero,
            "agrees": self.agrees,
            "same_objective": self.same_objective,
            "verdict": self.verdict(),
            "objective_map": self.objective_map,
            "objective_penalized": self.objective_penalized,
            "objective_rel_diff": self.objective_rel_diff,
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
                "homotopy_steps": self.penalized.homotopy_steps,
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
        n, d = self.X.shape
        pen = self.prior.penalty_name
        data = self.dataset if self.dataset is not None else "user data"
        lines = [
            f"mapreg.compare: {self.prior} prior, Gaussian noise sigma_eps={self.noise:g} "
            f"({data}, n={n}, d={d})",
            f"lam = {_LAM_FORMULA[self.prior.name]} = {self.lam:.6g}   in   "
            f"{_PENALTY_FORMULA[pen]}",
            "",
            f"{'':>5} {'MAP (Pyro)':>16} {pen + ' (exact)':>16} {'|diff|':>10}",
        ]
        for j in range(d):
            a, b = float(self.map_coef[j]), float(self.penalized_coef[j])
            lines.append(f"{'w' + str(j):>5} {a:>16.8f} {b:>16.8f} {abs(a - b):>10.1e}")
        a, b = self.map_intercept, self.penalized_intercept
        lines.append(f"{'c':>5} {a:>16.8f} {b:>16.8f} {abs(a - b):>10.1e}")
        lines.append("")
        verdict = self.verdict()
        zeros = f"; {self.n_zero} exact zeros" if pen == "lasso" else ""
        lines.append(
            f"{verdict}: max|dw| = {self.max_abs_diff:.1e}, |dc| = {self.intercept_abs_diff:.1e}"
            f" (promise: <= 1e-6 max(1, |w|_inf)); zero patterns "
            f"{'identical' if self.support_agree else 'DIFFER'}{zeros}"
        )
        lines.append(
            f"objective {_PENALTY_FORMULA[pen]}: {self.objective_map:.10g} at MAP, "
            f"{self.objective_penalized:.10g} at the {pen} optimum "
            f"(rel. diff {self.objective_rel_diff:.1e})"
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


def _solver_summary(p: PenalizedResult) -> str:
    if p.method == "closed-form":
        return "closed form"
    out = f"{p.iterations} CD sweeps"
    return out + (f" + {p.homotopy_steps} homotopy segments" if p.homotopy_steps else "")


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
) -> CompareResult:
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
    prior_obj = make_prior(prior, sigma=sigma, b=b)
    X, y, noise, name = resolve_data(X, y, noise, dataset, default="default")
    n, d = X.shape
    lam = prior_obj.lam(noise)

    map_res = map_estimate(X, y, prior_obj, noise, tol=tol, strict=strict)
    pen_kwargs = {"strict": strict} if prior_obj.penalty_name == "lasso" else {}
    pen_res = solve_penalized(X, y, prior_obj.penalty_name, lam, **pen_kwargs)

    training = None
    if train:
        from .training import train_penalized

        training = train_penalized(
            X, y, penalty="l2" if prior_obj.penalty_name == "ridge" else "l1", lam=lam,
            strict=strict,
        )

    const = GaussianNoise(noise).log_normalizer(n) + prior_obj.log_normalizer(d)
    penalty = prior_obj.penalty_name
    obj_map = canonical_objective(X, y, map_res.coef, map_res.intercept, penalty, lam)
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
        max_abs_diff=float((map_res.coef - pen_res.coef).abs().max()),
        intercept_abs_diff=abs(map_res.intercept - pen_res.intercept),
        support_agree=bool(torch.equal(map_res.coef == 0, pen_res.coef == 0)),
        n_zero=int((map_res.coef == 0).sum()),
        objective_map=obj_map,
        objective_penalized=pen_res.objective,
        neg_log_joint_map=map_res.neg_log_joint,
        neg_log_joint_penalized=nlj_pen,
        log_joint_constant=const,
        conventions=all_conventions(lam, prior=prior_obj.name, n=n, noise=noise),
        map=map_res,
        penalized=pen_res,
        training=training,
        dataset=name,
    )
