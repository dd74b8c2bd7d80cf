"""``compare(..., likelihood=...)`` for classification and counts: the MAP of a Bernoulli,
Categorical or Poisson GLM next to the penalized GLM optimum.

No noise scale here: the negative log posterior is, up to a constant,

    sum_i l_i(eta_i) + lam1 ||W||_1 + (lam2 / 2) ||W||_F^2,   eta = X W + c (c flat),

with lam1 = 1/b (Laplace prior) and lam2 = 1/sigma^2 (Gaussian prior), both for the elastic
net. The MAP comes from :func:`mapreg.bayes.glm_map.map_glm` (Pyro's log joint); the
penalized optimum from :func:`mapreg.penalized.glm.penalized_glm` (the loss formula, no
Pyro). This module only composes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from ._results import FrozenResult
from .bayes.glm_map import glm_neg_log_joint, map_glm
from .bayes.likelihoods import make_likelihood
from .bayes.map import MapResult
from .bayes.priors import Prior
from .compare import TwoPoints
from .conventions import all_conventions
from .diagnosis import AGREEMENT_RTOL, OBJECTIVE_RTOL
from .penalized.glm import GLMResult, glm_objective, penalized_glm

_LOSS = {
    "bernoulli": "log(1 + e^eta_i) - y_i eta_i",
    "categorical": "logsumexp_k eta_ik - eta_{i,y_i}",
    "poisson": "e^eta_i - y_i eta_i",
}


@dataclass(frozen=True, eq=False)
class GLMCompareResult(FrozenResult, TwoPoints):
    """MAP (Pyro) versus penalized GLM optimum for one prior, likelihood and data set.

    Promise (:attr:`agrees`), with W the penalized optimum::

        max |dW| <= 1e-6 max(1, ||W||_inf),  identical exact-zero patterns,
        |J(MAP) - J(W)| <= 1e-9 max(|J|)      (J the penalized objective above)

    Attributes
    ----------
    prior, likelihood
        The prior object and the likelihood's name.
    lam1, lam2
        The weights of ||W||_1 and (1/2)||W||^2 in the canonical objective (module docstring).
    X, y
        The data used.
    map_coef, map_intercept, penalized_coef, penalized_intercept
        The two points (coefficients (d,) or (d, K); softmax intercepts summing to zero).
    objective_map, objective_penalized
        The canonical objective at each (the penalized side's formula).
    neg_log_joint_map, neg_log_joint_penalized
        Pyro's -log p(y, W, c) at each.
    conventions
        lam in every convention that applies to this likelihood and prior.
    map, penalized
        The two solvers' full results.
    dataset
        Built-in data set name, or ``None`` for user data.
    """

    prior: Prior
    likelihood: str
    lam1: float
    lam2: float
    X: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)
    map_coef: torch.Tensor
    map_intercept: Any
    penalized_coef: torch.Tensor
    penalized_intercept: Any
    objective_map: float
    objective_penalized: float
    neg_log_joint_map: float
    neg_log_joint_penalized: float
    conventions: Mapping[str, float] = field(repr=False)
    map: MapResult = field(repr=False)
    penalized: GLMResult = field(repr=False)
    dataset: str | None = None

    @property
    def lam(self) -> float:
        """The prior's canonical lambda (lam1 for priors with an L1 part, else lam2)."""
        return self.lam1 if self.lam1 > 0 else self.lam2

    @property
    def objective_rel_diff(self) -> float:
        a, b = self.objective_map, self.objective_penalized
        top = max(abs(a), abs(b))
        return abs(a - b) / top if top > 0 else 0.0

    @property
    def coef_rel_diff(self) -> float:
        scale = max(1.0, float(self._raw("penalized_coef").abs().max()))
        return self.max_abs_diff / scale

    @property
    def agrees(self) -> bool:
        """max|dW| <= 1e-6 max(1, ||W||_inf), same zero pattern, same objective to 1e-9.
        (:attr:`not_unique` tells when they differ only because the optimum is a set.)"""
        return (self.coef_rel_diff <= AGREEMENT_RTOL and self.support_agree
                and self.objective_rel_diff <= OBJECTIVE_RTOL)

    @property
    def not_unique(self) -> bool:
        """Not in agreement, yet both points attain the objective to 1e-9 relative, the
        penalty is not strictly convex (lam2 = 0) and the centred columns on the union of
        both supports are rank-deficient (duplicated columns, n < support size): the
        optimum is a set, and each solver returned one of its points."""
        if self.agrees or self.lam2 > 0 or self.objective_rel_diff > OBJECTIVE_RTOL:
            return False
        X = self._raw("X")
        cols = ((self._raw("map_coef") != 0) | (self._raw("penalized_coef") != 0))
        cols = cols.reshape(X.shape[1], -1).any(1)
        if not bool(cols.any()):
            return False
        Xc = X[:, cols] - X[:, cols].mean(0)
        s = torch.linalg.svdvals(Xc)
        rank = int((s > s[0] * max(Xc.shape) * torch.finfo(Xc.dtype).eps).sum())
        return rank < int(cols.sum())

    def verdict(self) -> str:
        head = "AGREE" if self.agrees else "NOT UNIQUE" if self.not_unique else "DISAGREE"
        return (f"{head} -- max|dW| = {self.max_abs_diff:.1e} (relative {self.coef_rel_diff:.1e},"
                f" promise {AGREEMENT_RTOL:.0e}), zero patterns "
                f"{'identical' if self.support_agree else 'DIFFER'}, objectives differ by "
                f"{self.objective_rel_diff:.1e} relative (promise {OBJECTIVE_RTOL:.0e}); MAP KKT "
                f"residual {self.map.kkt_residual:.1e}, penalized KKT residual "
                f"{self.penalized.kkt_residual:.1e}")

    def plot(self, ax=None):
        """MAP vs penalized coefficients as a matplotlib Figure (every weight)."""
        from .plotting import plot_glm_coefficients

        return plot_glm_coefficients(self, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        X = self._raw("X")

        def num(v):
            return v.tolist() if isinstance(v, torch.Tensor) else v

        return {
            "prior": self.prior.name,
            **{k: getattr(self.prior, k) for k in _scale_names(self.prior)},
            "likelihood": self.likelihood,
            "n": int(X.shape[0]),
            "d": int(X.shape[1]),
            "dataset": self.dataset,
            "lam1": self.lam1,
            "lam2": self.lam2,
            "objective_form": _objective_text(self.likelihood),
            "map_coef": num(self._raw("map_coef")),
            "map_intercept": num(self._raw("map_intercept")),
            "penalized_coef": num(self._raw("penalized_coef")),
            "penalized_intercept": num(self._raw("penalized_intercept")),
            "max_abs_diff": self.max_abs_diff,
            "coef_rel_diff": self.coef_rel_diff,
            "support_agree": self.support_agree,
            "n_zero": self.n_zero,
            "agrees": self.agrees,
            "not_unique": self.not_unique,
            "verdict": self.verdict(),
            "objective_map": self.objective_map,
            "objective_penalized": self.objective_penalized,
            "objective_rel_diff": self.objective_rel_diff,
            "neg_log_joint_map": self.neg_log_joint_map,
            "neg_log_joint_penalized": self.neg_log_joint_penalized,
            "conventions": dict(self.conventions),
            "map": {"iterations": self.map.iterations, "pyro_traces": self.map.pyro_traces,
                    "kkt_residual": self.map.kkt_residual, "converged": self.map.converged,
                    "wall_time": self.map.wall_time},
            "penalized": {"method": self.penalized.method,
                          "iterations": self.penalized.iterations,
                          "kkt_residual": self.penalized.kkt_residual,
                          "converged": self.penalized.converged,
                          "wall_time": self.penalized.wall_time},
        }

    def __str__(self) -> str:
        X = self._raw("X")
        n, d = X.shape
        data = self.dataset if self.dataset is not None else "user data"
        w_map = self._raw("map_coef").reshape(d, -1)
        w_pen = self._raw("penalized_coef").reshape(d, -1)
        K = w_map.shape[1]
        lines = [
            f"mapreg.compare: {self.prior} prior, {self.likelihood} likelihood ({data}, n={n}, "
            f"d={d}{f', K={K}' if K > 1 else ''})",
            f"lam1 = {self.lam1:.6g}, lam2 = {self.lam2:.6g}   in   "
            f"{_objective_text(self.likelihood)}",
            "",
            f"{'':>8} {'MAP (Pyro)':>16} {'penalized':>16} {'|diff|':>10}",
        ]
        rows = [(j, k) for j in range(d) for k in range(K)][:20]
        for j, k in rows:
            a, b = float(w_map[j, k]), float(w_pen[j, k])
            name = f"w{j}" if K == 1 else f"W{j},{k}"
            lines.append(f"{name:>8} {a:>16.8f} {b:>16.8f} {abs(a - b):>10.1e}")
        if d * K > 20:
            lines.append(f"{'...':>8} {d * K - 20} more (result.to_dict() has all)")
        ci = torch.as_tensor(self._raw("map_intercept")).reshape(-1)
        cp = torch.as_tensor(self._raw("penalized_intercept")).reshape(-1)
        for k in range(ci.numel()):
            name = "c" if ci.numel() == 1 else f"c{k}"
            lines.append(f"{name:>8} {float(ci[k]):>16.8f} {float(cp[k]):>16.8f} "
                         f"{abs(float(ci[k] - cp[k])):>10.1e}")
        lines += ["", self.verdict(),
                  f"objective: {self.objective_map:.12g} at MAP, {self.objective_penalized:.12g} "
                  f"at the penalized optimum; {self.n_zero} exact zeros in the MAP",
                  f"Pyro -log p(y, W, c): {self.neg_log_joint_map:.12g} at MAP, "
                  f"{self.neg_log_joint_penalized:.12g} at the penalized optimum",
                  f"MAP engine: {self.map.iterations} iterations, {self.map.pyro_traces} Pyro "
                  f"traces, {1e3 * self.map.wall_time:.1f} ms; penalized "
                  f"({self.penalized.method}): {self.penalized.iterations} iterations, "
                  f"{1e3 * self.penalized.wall_time:.1f} ms"]
        if self.conventions:
            conv = ", ".join(f"{k}={v:.6g}" for k, v in self.conventions.items())
            lines.append(f"lam in other conventions: {conv}")
        return "\n".join(lines)


def _scale_names(prior: Prior) -> tuple[str, ...]:
    return tuple(getattr(prior, "scale_names", (prior.scale_name,)))


def _objective_text(likelihood: str) -> str:
    return (f"sum_i [{_LOSS[likelihood]}] + lam1 ||W||_1 + (lam2/2) ||W||^2, eta = X W + c "
            "(c unpenalized)")


def compare_glm(prior: Prior, likelihood: str, X: torch.Tensor, y: torch.Tensor, *,
                n_classes: int | None = None, tol: float = 1e-10, strict: bool = False,
                dataset: str | None = None) -> GLMCompareResult:
    """The MAP of the GLM under ``prior`` vs the penalized GLM at lam1 = 1/b, lam2 = 1/sigma^2
    (see the module docstring). Called by :func:`mapreg.compare` with ``likelihood=``."""
    if likelihood == "categorical" and n_classes is None:
        top = float(torch.as_tensor(y).max()) if torch.as_tensor(y).numel() else 0.0
        n_classes = max(2, int(top) + 1) if top == int(top) else 2  # check_y names bad labels
    lik = make_likelihood(likelihood, n_classes=n_classes)
    y = lik.check_y(y)
    lam1, lam2 = prior.lams(1.0)
    map_res = map_glm(X, y, prior, lik, tol=tol, strict=strict)
    kw = {"n_classes": lik.n_classes} if likelihood == "categorical" else {}
    pen = penalized_glm(X, y, likelihood, lam1, lam2, strict=strict, **kw)
    obj_map = glm_objective(X, y, likelihood, map_res.coef, map_res.intercept, lam1, lam2)
    nlj_pen = glm_neg_log_joint(X, y, prior, lik, pen.coef, pen.intercept)
    lam = lam1 if lam1 > 0 else lam2
    # the elastic net has two lambdas: the tables convert one (lam1 and lam2 scale alike)
    conv = {} if prior.penalty_name == "elasticnet" else all_conventions(
        lam, prior=prior.name, n=X.shape[0], likelihood=likelihood)
    return GLMCompareResult(
        prior=prior, likelihood=likelihood, lam1=lam1, lam2=lam2, X=X, y=y,
        map_coef=map_res.coef, map_intercept=map_res.intercept, penalized_coef=pen.coef,
        penalized_intercept=pen.intercept, objective_map=obj_map,
        objective_penalized=pen.objective, neg_log_joint_map=map_res.neg_log_joint,
        neg_log_joint_penalized=nlj_pen, conventions=MappingProxyType(conv), map=map_res,
        penalized=pen, dataset=dataset)
