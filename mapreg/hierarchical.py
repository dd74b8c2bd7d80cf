"""Three ways to choose lambda, side by side: validation, the evidence, the hierarchical posterior.

A bridge: the validation split solves ridge problems (:func:`mapreg.ridge`, penalized side),
the evidence and the posterior come from the Bayesian side
(:func:`mapreg.maximize_evidence`, :func:`mapreg.bayes.hierarchical.sample_hierarchical` and
its quadrature reference). Every lambda is canonical: the weight of (lam/2) ||w||^2 next to
1/2 ||y - Xw - c||^2 (d2l's lambda is lam / n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._results import FrozenResult
from ._validation import check_data, check_positive_int
from .bayes.evidence import maximize_evidence
from .bayes.hierarchical import (
    HierarchicalResult,
    HyperQuadratureResult,
    hyperposterior_quadrature,
    sample_hierarchical,
)
from .penalized import ridge


@dataclass(frozen=True, eq=False)
class LambdaChoices(FrozenResult):
    """lambda chosen by validation, by the evidence, and its hierarchical posterior.

    Attributes
    ----------
    validation_lam : float
        argmin over ``grid`` of the validation loss mean 1/2 (y - Xw - c)^2 on the last
        ``n_val`` samples, ridge fitted on the others (canonical lam for the fit on n - n_val
        samples rescaled to n: lam_fit = lam (n - n_val) / n, i.e. the same d2l lambda, as in
        notebook 04).
    evidence_lam : float
        noise^2 / sigma^2 at the maximiser of the evidence.
    posterior : HierarchicalResult
        NUTS on the collapsed hierarchical model (half-Cauchy hyperpriors).
    quadrature : HyperQuadratureResult
        The same posterior by quadrature over (log sigma, log noise).
    grid : torch.Tensor
        The validation grid (canonical lam).
    """

    validation_lam: float
    evidence_lam: float
    posterior: HierarchicalResult
    quadrature: HyperQuadratureResult
    grid: torch.Tensor

    def summary(self) -> str:
        """A small table of the three choices (canonical lambda)."""
        p, q = self.posterior, self.quadrature
        lvl = f"{100 * p.level:g}%"
        return "\n".join([
            f"validation split:          lam = {self.validation_lam:.4g}",
            f"evidence maximiser:        lam = {self.evidence_lam:.4g}",
            f"posterior (NUTS):          median {p.lam_median:.4g}, {lvl} interval "
            f"[{p.lam_interval[0]:.3g}, {p.lam_interval[1]:.3g}]",
            f"posterior (quadrature):    median {q.lam_median:.4g}, {lvl} interval "
            f"[{q.lam_interval[0]:.3g}, {q.lam_interval[1]:.3g}]",
        ])


def lambda_choices(
    X,
    y,
    *,
    grid=None,
    n_val: int = 5,
    num_samples: int = 500,
    warmup: int = 300,
    chains: int = 2,
    seed: int = 0,
) -> LambdaChoices:
    """Choose the ridge lambda by validation, by the evidence and by the hierarchical
    posterior, on the same data (notebook 04's procedure for the validation split).

    ``grid`` defaults to notebook 04's: d2l lambdas geomspace(1e-3, 1e2, 26), i.e. canonical
    n * geomspace(1e-3, 1e2, 26).
    """
    X, y = check_data(X, y)
    n = X.shape[0]
    n_val = check_positive_int("n_val", n_val, n - 3)
    lams = (n * np.geomspace(1e-3, 1e2, 26) if grid is None
            else np.asarray(grid, dtype=np.float64).ravel())
    if lams.size == 0 or not np.all(np.isfinite(lams)) or not np.all(lams > 0):
        raise ValueError("grid must be a non-empty array of positive finite lambdas")
    Xa, ya, Xv, yv = X[:-n_val], y[:-n_val], X[-n_val:], y[-n_val:]
    losses = []
    for lam in lams:
        fit = ridge(Xa, ya, float(lam) * (n - n_val) / n)
        r = yv - Xv @ fit.coef - fit.intercept
        losses.append(0.5 * float((r * r).mean()))
    ev = maximize_evidence(X, y)
    post = sample_hierarchical(X, y, "gaussian", num_samples=num_samples, warmup=warmup,
                               chains=chains, seed=seed)
    return LambdaChoices(
        validation_lam=float(lams[int(np.argmin(losses))]), evidence_lam=ev.lam,
        posterior=post, quadrature=hyperposterior_quadrature(X, y),
        grid=torch.from_numpy(lams.copy()),
    )
