"""``posterior``: the whole posterior behind the penalty, from Pyro's NUTS, next to the MAP.

A MAP estimate is one point of a posterior. :func:`posterior` runs Pyro's own
``MCMC(NUTS(model))`` (:mod:`mapreg.bayes.posterior`) on the *same* Pyro model the MAP
engine maximises -- :func:`~mapreg.bayes.models.linear_model` (Gaussian noise) or
:func:`~mapreg.bayes.models.glm_model` (Bernoulli, Categorical, Poisson), the flat
intercept included -- and returns the draws with their summaries next to the MAP and the
penalized optimum, which it takes from :func:`mapreg.compare` on the same data (so data,
scales and lambda are resolved exactly as ``compare`` resolves them).

What the draws show (``tests/test_posterior.py`` checks each on numbers):

* Gaussian prior, Gaussian noise, flat intercept: with the intercept integrated out,
  ``w | y ~ N((Xc'Xc + lam I)^-1 Xc'yc, sigma_eps^2 (Xc'Xc + lam I)^-1)``, lam =
  sigma_eps^2 / sigma^2 (Xc, yc the centred data): the posterior mean *is* the ridge
  solution = the MAP, and the covariance is what the penalized view never shows.
* Laplace prior: the MAP (= the lasso) has exact zeros, but P(w_j = 0 | y) = 0 -- no draw
  is exactly zero -- and the posterior mean and median of a coordinate whose MAP is 0 are
  not 0 in general (Park & Casella 2008): the posterior is not sparse, its mode is.
* Categorical: the softmax likelihood does not change when one constant is added to every
  class's intercept, and the intercept's prior is flat, so the posterior is improper along
  that direction; the reported intercept draws are centred (``c - mean_k c_k``, as the MAP's
  intercept is), which is the identified part. The weights' prior makes theirs proper.

Diagnostics: split R-hat and effective sample size per coordinate
(:func:`pyro.ops.stats.split_gelman_rubin`, :func:`pyro.ops.stats.effective_sample_size`
on the (chains, draws) array), NUTS's divergent transitions per chain; a
:class:`PosteriorWarning` names the coordinates with R-hat > 1.01 and the divergences.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ._results import FrozenResult
from ._validation import as_number, check_bool, check_positive_int
from .bayes.likelihoods import GaussianNoise, make_likelihood
from .bayes.models import glm_model, linear_model
from .bayes.posterior import chain_diagnostics, run_nuts
from .bayes.priors import Prior
from .errors import ConvergenceWarning

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RHAT_MAX", "PosteriorResult", "PosteriorWarning", "posterior"]

#: Split R-hat above this for any coordinate raises a :class:`PosteriorWarning`.
RHAT_MAX = 1.01
#: Half-width of the uniform jitter around the MAP that each chain starts from.
INIT_RADIUS = 0.5


class PosteriorWarning(ConvergenceWarning):
    """NUTS's chains show a problem: split R-hat > 1.01 for some coordinate, or divergent
    transitions. The message names the coordinates and counts."""


def _check_open_unit(name: str, value: Any) -> float:
    number = as_number(name, value, "a number strictly between 0 and 1")
    x = float(number)
    if not (0.0 < x < 1.0):
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {number!r}")
    return x


def _check_seed(value: Any) -> int:
    what = "an integer >= 0"
    number = as_number("seed", value, what)
    if not isinstance(number, int):
        raise TypeError(f"seed must be {what}; got {value!r} ({type(value).__name__})")
    if number < 0:
        raise ValueError(f"seed must be {what}; got {number}")
    return number


def _names(prefix: str, shape: tuple[int, ...]) -> list[str]:
    """Coordinate names in row-major order: w0, w1, ... or w0,1 for a (d, K) matrix."""
    if not shape:
        return [prefix]
    idx = torch.cartesian_prod(*[torch.arange(s) for s in shape]).reshape(-1, len(shape))
    return [prefix + ",".join(str(int(i)) for i in row) for row in idx]


@dataclass(frozen=True, eq=False)
class PosteriorResult(FrozenResult):
    """NUTS draws of Pyro's posterior p(w, c | y), next to the MAP and the penalized optimum.

    Frozen: reading a tensor attribute returns a copy; ``==`` compares field by field.

    Attributes
    ----------
    prior, likelihood, noise
        The prior object, the likelihood's name and sigma_eps (``None`` for a GLM).
    lam
        The canonical lambda of the matching penalized problem (as in ``compare``).
    X, y
        The data used (float64).
    coef_chains, intercept_chains
        The draws grouped by chain: (chains, draws, d) or (chains, draws, d, K), and
        (chains, draws) or (chains, draws, K).
    map_coef, map_intercept
        The MAP (Pyro's log joint, exact zeros for a Laplace prior).
    penalized_coef, penalized_intercept
        The penalized optimum at lam, from the solver that never touches Pyro.
    rhat_coef, rhat_intercept, ess_coef, ess_intercept
        Split R-hat and effective sample size per coordinate.
    divergences, accept_rate, step_size, seeds
        Per chain: NUTS's divergent transitions after warm-up, Pyro's acceptance-rate
        diagnostic, the adapted step size, the chain's seed.
    num_samples, warmup_steps, num_chains, seed, level
        The run's settings; ``level`` is the default credible level of :meth:`interval`.
    wall_time, map_wall_time
        Seconds for NUTS (all chains, warm-up included) and for the MAP engine.
    comparison
        The :func:`mapreg.compare` result (a ``CompareResult`` or ``GLMCompareResult``) the
        MAP and the penalized optimum come from.
    dataset
        The built-in data set's name, or ``None``.
    """

    prior: Prior
    likelihood: str
    noise: float | None
    lam: float
    X: torch.Tensor = field(repr=False)
    y: torch.Tensor = field(repr=False)
    coef_chains: torch.Tensor = field(repr=False)
    intercept_chains: torch.Tensor = field(repr=False)
    map_coef: torch.Tensor
    map_intercept: Any
    penalized_coef: torch.Tensor
    penalized_intercept: Any
    rhat_coef: torch.Tensor
    rhat_intercept: torch.Tensor
    ess_coef: torch.Tensor
    ess_intercept: torch.Tensor
    divergences: tuple[int, ...]
    accept_rate: tuple[float, ...]
    step_size: tuple[float, ...]
    seeds: tuple[int, ...]
    num_samples: int
    warmup_steps: int
    num_chains: int
    seed: int
    level: float
    wall_time: float = field(compare=False)
    map_wall_time: float = field(compare=False)
    comparison: Any = field(repr=False, compare=False)
    dataset: str | None = None

    # ---------------------------------------------------------------------- draws
    @property
    def coef_draws(self) -> torch.Tensor:
        """All chains' weight draws, (chains x draws, d) or (chains x draws, d, K)."""
        w = object.__getattribute__(self, "coef_chains")
        return w.reshape(-1, *w.shape[2:]).clone()

    @property
    def intercept_draws(self) -> torch.Tensor:
        """All chains' intercept draws, (chains x draws,) or (chains x draws, K)."""
        c = object.__getattribute__(self, "intercept_chains")
        return c.reshape(-1, *c.shape[2:]).clone()

    @property
    def draws(self) -> dict[str, torch.Tensor]:
        """Draws per Pyro site: ``{"w": coef_draws, "c": intercept_draws}``."""
        return {"w": self.coef_draws, "c": self.intercept_draws}

    # ------------------------------------------------------------------ summaries
    @property
    def mean(self) -> torch.Tensor:
        """Posterior mean of the weights (the average of the draws)."""
        return self.coef_draws.mean(0)

    @property
    def median(self) -> torch.Tensor:
        """Posterior median of each weight (``torch.quantile(..., 0.5)``, interpolated)."""
        return torch.quantile(self.coef_draws, 0.5, dim=0)

    @property
    def sd(self) -> torch.Tensor:
        """Posterior standard deviation of each weight (1/(S-1) estimator)."""
        return self.coef_draws.std(0)

    @property
    def covariance(self) -> torch.Tensor:
        """Posterior covariance of the flattened weights, (p, p) with p = d or d K."""
        w = self.coef_draws
        return torch.cov(w.reshape(w.shape[0], -1).T).reshape(w[0].numel(), w[0].numel())

    @property
    def intercept_mean(self) -> torch.Tensor:
        """Posterior mean of the intercept(s)."""
        return self.intercept_draws.mean(0)

    @property
    def intercept_sd(self) -> torch.Tensor:
        """Posterior standard deviation of the intercept(s)."""
        return self.intercept_draws.std(0)

    def interval(self, level: float | None = None,
                 site: str = "w") -> tuple[torch.Tensor, torch.Tensor]:
        """Central credible interval: the (1-level)/2 and (1+level)/2 quantiles of the draws
        of ``site`` ("w" or "c") per coordinate; ``level`` defaults to :attr:`level`."""
        level = self.level if level is None else _check_open_unit("level", level)
        if site not in ("w", "c"):
            raise ValueError(f"site must be 'w' or 'c'; got {site!r}")
        draws = self.coef_draws if site == "w" else self.intercept_draws
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=draws.dtype)
        lo, hi = torch.quantile(draws, q, dim=0)
        return lo, hi

    # ---------------------------------------------------------------- diagnostics
    @property
    def n_draws(self) -> int:
        """Draws kept, all chains together."""
        return self.num_chains * self.num_samples

    @property
    def n_divergences(self) -> int:
        """Divergent transitions after warm-up, all chains."""
        return sum(self.divergences)

    @property
    def max_rhat(self) -> float:
        """The largest split R-hat over every weight and intercept coordinate."""
        r = torch.cat([self.rhat_coef.reshape(-1), self.rhat_intercept.reshape(-1)])
        return float(r.max())

    @property
    def min_ess(self) -> float:
        """The smallest effective sample size over every coordinate."""
        e = torch.cat([self.ess_coef.reshape(-1), self.ess_intercept.reshape(-1)])
        return float(e.min())

    @property
    def draws_per_second(self) -> float:
        """Kept draws per second of NUTS wall time (warm-up included in the time)."""
        return self.n_draws / self.wall_time

    @property
    def ess_per_second(self) -> float:
        """The smallest effective sample size per second of NUTS wall time."""
        return self.min_ess / self.wall_time

    def problems(self) -> list[str]:
        """Coordinates with split R-hat > 1.01 and divergences, as text (empty: none)."""
        out = []
        names = (_names("w", tuple(self.rhat_coef.shape))
                 + _names("c", tuple(self.rhat_intercept.shape)))
        r = torch.cat([self.rhat_coef.reshape(-1), self.rhat_intercept.reshape(-1)])
        bad = [f"{n} ({float(v):.3f})" for n, v in zip(names, r, strict=True)
               if not float(v) <= RHAT_MAX]
        if bad:
            out.append(f"split R-hat > {RHAT_MAX} (or undefined) for {', '.join(bad)}")
        if self.n_divergences:
            per = ", ".join(f"chain {k}: {v}" for k, v in enumerate(self.divergences) if v)
            out.append(f"{self.n_divergences} divergent transitions after warm-up ({per})")
        return out

    # --------------------------------------------------------------- presentation
    def summary(self, level: float | None = None) -> str:
        """A table: coefficient, MAP, mean, median, sd, central interval, R-hat, ESS."""
        level = self.level if level is None else _check_open_unit("level", level)
        lo, hi = self.interval(level)
        clo, chi = self.interval(level, site="c")
        w, c = self.coef_draws, self.intercept_draws
        pct = f"{100 * level:g}%"
        rows = [(n, *vals) for n, *vals in zip(
            _names("w", tuple(w.shape[1:])), self._raw_flat("map_coef"),
            w.reshape(w.shape[0], -1).mean(0).tolist(),
            torch.quantile(w.reshape(w.shape[0], -1), 0.5, dim=0).tolist(),
            w.reshape(w.shape[0], -1).std(0).tolist(), lo.reshape(-1).tolist(),
            hi.reshape(-1).tolist(), self.rhat_coef.reshape(-1).tolist(),
            self.ess_coef.reshape(-1).tolist(), strict=True)]
        cmap = torch.as_tensor(object.__getattribute__(self, "map_intercept"),
                               dtype=torch.float64).reshape(-1).tolist()
        cf = c.reshape(c.shape[0], -1)
        rows += [(n, *vals) for n, *vals in zip(
            _names("c", tuple(c.shape[1:])), cmap, cf.mean(0).tolist(),
            torch.quantile(cf, 0.5, dim=0).tolist(), cf.std(0).tolist(),
            clo.reshape(-1).tolist(), chi.reshape(-1).tolist(),
            self.rhat_intercept.reshape(-1).tolist(), self.ess_intercept.reshape(-1).tolist(),
            strict=True)]
        width = max(5, *(len(r[0]) for r in rows))
        head = (f"{'':>{width}} {'MAP':>10} {'mean':>10} {'median':>10} {'sd':>9} "
                f"{pct + ' interval':>23} {'R-hat':>7} {'ESS':>7}")
        lines = [head]
        for name, m, mean, med, sd, a, b, r, e in rows:
            lines.append(f"{name:>{width}} {m:>10.4f} {mean:>10.4f} {med:>10.4f} {sd:>9.4f} "
                         f"[{a:>10.4f}, {b:>10.4f}] {r:>7.3f} {e:>7.0f}")
        return "\n".join(lines)

    def _raw_flat(self, name: str) -> list[float]:
        return object.__getattribute__(self, name).reshape(-1).tolist()

    def __str__(self) -> str:
        X = object.__getattribute__(self, "X")
        n, d = X.shape
        data = self.dataset if self.dataset is not None else "user data"
        noise = f", sigma_eps={self.noise:g}" if self.noise is not None else ""
        lines = [
            f"mapreg.posterior: {self.prior} prior, {self.likelihood} likelihood{noise} "
            f"({data}, n={n}, d={d}); lam = {self.lam:.6g}",
            f"NUTS (Pyro): {self.num_chains} chains x {self.num_samples} draws after "
            f"{self.warmup_steps} warm-up, seed {self.seed}",
            "",
            self.summary(),
            "",
            f"max split R-hat {self.max_rhat:.4f}, min ESS {self.min_ess:.0f}, "
            f"{self.n_divergences} divergences",
            f"NUTS {self.wall_time:.2f} s ({self.draws_per_second:.0f} draws/s, "
            f"{self.ess_per_second:.1f} ESS/s at the min ESS); MAP {1e3 * self.map_wall_time:.1f}"
            f" ms",
        ]
        if self.prior.penalty_name in ("lasso", "elasticnet"):
            zeros = int((object.__getattribute__(self, "map_coef") == 0).sum())
            exact = int((object.__getattribute__(self, "coef_chains") == 0).sum())
            lines.append(f"exact zeros: {zeros} in the MAP, {exact} among the "
                         f"{self.n_draws * self.map_coef.numel()} drawn coefficients "
                         "(P(w_j = 0 | y) = 0: the posterior is not sparse, its mode is)")
        problems = self.problems()
        if problems:
            lines.append("WARNING: " + "; ".join(problems))
        return "\n".join(lines)

    def plot_marginals(self, ax: Axes | None = None):
        """Marginal posteriors with the MAP and the penalized optimum marked; see
        :func:`mapreg.posterior_plots.plot_marginals`."""
        from .posterior_plots import plot_marginals

        return plot_marginals(self, ax=ax)

    def plot_draws(self, ax: Axes | None = None):
        """Two features: posterior contours with the NUTS draws; see
        :func:`mapreg.posterior_plots.plot_posterior_draws`."""
        from .posterior_plots import plot_posterior_draws

        return plot_posterior_draws(self, ax=ax)


def posterior(
    prior: str | Prior,
    *,
    sigma: float | None = None,
    b: float | None = None,
    X=None,
    y=None,
    noise: float | None = None,
    dataset: str | None = None,
    likelihood: str = "gaussian",
    n_classes: int | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    level: float = 0.9,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    jit_compile: bool = True,
    tol: float = 1e-10,
) -> PosteriorResult:
    """Sample the posterior whose mode is the MAP: Pyro's NUTS on the MAP engine's model.

    The model is the one :func:`mapreg.compare` maximises: w ~ prior (i.i.d.), c ~ flat
    (log p(c) = 0), y_i ~ Normal(x_i . w + c, sigma_eps) for ``likelihood="gaussian"``, or
    the Bernoulli / Categorical / Poisson GLM. Its log density is the negative of the
    penalized objective up to scale and a constant, e.g. for the Laplace prior
    -log p(w, c | y) = (1/sigma_eps^2) [1/2 ||y - Xw - c||^2 + lam ||w||_1] + const with
    lam = sigma_eps^2 / b, so the MAP is the lasso; NUTS draws from the whole of it.

    Parameters
    ----------
    prior, sigma, b, X, y, noise, dataset, likelihood, n_classes, tol
        As in :func:`mapreg.compare` (which this calls for the MAP and the penalized
        optimum, and for the data).
    num_samples, warmup_steps : int
        Draws kept per chain, and warm-up iterations (step-size and diagonal mass-matrix
        adaptation) before them; positive integers.
    num_chains : int, optional
        Chains, run one after another in this process (see :mod:`mapreg.bayes.posterior`
        for why not in worker processes); default ``min(4, os.cpu_count())``.
    seed : int
        Non-negative; the draws are a function of (data, settings, seed). The caller's
        global torch / numpy / ``random`` states and Pyro param store are left untouched.
    progress : bool, optional
        Pyro's progress bar; default: on only when stderr is a terminal.
    level : float
        Default level of the central credible intervals, in (0, 1).
    target_accept_prob, max_tree_depth
        NUTS settings (Pyro's defaults).
    jit_compile : bool
        Let Pyro trace the potential energy with ``torch.jit`` (on the default data, 4 x
        1,500 iterations: 38.5 s instead of 53.1 s with a Laplace prior, 19.6 s instead of
        35.2 s with a Gaussian one; the same draws). Should tracing fail, the run is
        repeated without it and a RuntimeWarning says so.

    Returns
    -------
    PosteriorResult
        Frozen; ``print(result)`` shows the table. A :class:`PosteriorWarning` is raised
        when some split R-hat exceeds 1.01 or NUTS reports divergent transitions.
    """
    from .compare import compare

    num_samples = check_positive_int("num_samples", num_samples)
    warmup_steps = check_positive_int("warmup_steps", warmup_steps)
    if num_chains is None:
        num_chains = min(4, os.cpu_count() or 1)
    num_chains = check_positive_int("num_chains", num_chains)
    seed = _check_seed(seed)
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    progress = check_bool("progress", progress)
    level = _check_open_unit("level", level)
    target_accept_prob = _check_open_unit("target_accept_prob", target_accept_prob)
    max_tree_depth = check_positive_int("max_tree_depth", max_tree_depth, maximum=30)
    jit_compile = check_bool("jit_compile", jit_compile)

    cmp = compare(prior, sigma=sigma, b=b, X=X, y=y, noise=noise, dataset=dataset,
                  likelihood=likelihood, n_classes=n_classes, tol=tol)
    X, y = cmp.X, cmp.y
    map_coef = cmp.map_coef
    map_c = torch.as_tensor(cmp.map_intercept, dtype=torch.float64)

    def build(prior):
        if likelihood == "gaussian":
            return linear_model(prior, GaussianNoise(cmp.noise))
        K = {"n_classes": int(map_coef.shape[1])} if likelihood == "categorical" else {}
        return glm_model(prior, make_likelihood(likelihood, **K))

    gen = torch.Generator().manual_seed(seed)
    inits = []
    for _ in range(num_chains):  # overdispersed starts: the MAP plus a uniform jitter
        jw = (2 * torch.rand(map_coef.shape, generator=gen, dtype=torch.float64) - 1)
        jc = (2 * torch.rand(map_c.shape, generator=gen, dtype=torch.float64) - 1)
        inits.append({"w": map_coef + INIT_RADIUS * jw, "c": map_c + INIT_RADIUS * jc})
    settings = {"num_samples": num_samples, "warmup_steps": warmup_steps, "seed": seed,
                "progress": progress, "target_accept_prob": target_accept_prob,
                "max_tree_depth": max_tree_depth}
    if jit_compile:
        try:
            run = run_nuts(build(cmp.prior), (X, y), inits, jit_compile=True,
                           **settings)
        except (RuntimeError, TypeError, ValueError) as exc:
            warnings.warn(f"NUTS with jit_compile=True failed ({type(exc).__name__}: {exc}); "
                          "running without it", RuntimeWarning, stacklevel=2)
            jit_compile = False
    if not jit_compile:
        run = run_nuts(build(cmp.prior), (X, y), inits, **settings)
    coef, intercept = run.coef, run.intercept
    if likelihood == "categorical":  # the identified part of an improper direction
        intercept = intercept - intercept.mean(-1, keepdim=True)
    rhat_w, ess_w = chain_diagnostics(coef)
    rhat_c, ess_c = chain_diagnostics(intercept)
    result = PosteriorResult(
        prior=cmp.prior, likelihood=likelihood,
        noise=cmp.noise if likelihood == "gaussian" else None, lam=float(cmp.lam),
        X=X, y=y, coef_chains=coef, intercept_chains=intercept, map_coef=map_coef,
        map_intercept=cmp.map_intercept, penalized_coef=cmp.penalized_coef,
        penalized_intercept=cmp.penalized_intercept, rhat_coef=rhat_w, rhat_intercept=rhat_c,
        ess_coef=ess_w, ess_intercept=ess_c, divergences=run.divergences,
        accept_rate=run.accept_rate, step_size=run.step_size, seeds=run.seeds,
        num_samples=num_samples, warmup_steps=warmup_steps, num_chains=num_chains, seed=seed,
        level=level, wall_time=run.wall_time, map_wall_time=cmp.map.wall_time,
        comparison=cmp, dataset=cmp.dataset,
    )
    problems = result.problems()
    if problems:
        warnings.warn("NUTS: " + "; ".join(problems) + ": run longer chains (num_samples, "
                      "warmup_steps), more chains, or a larger target_accept_prob",
                      PosteriorWarning, stacklevel=2)
    return result
