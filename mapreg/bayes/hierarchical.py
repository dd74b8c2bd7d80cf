"""Hierarchical Bayesian ridge and lasso: hyperpriors on the prior scale and the noise, NUTS.

The full models (:func:`hierarchical_linear_model`)::

    s ~ HalfCauchy(scale_s)          # s = sigma (Gaussian prior) or b (Laplace prior)
    noise ~ HalfCauchy(scale_noise)
    z_j ~ Normal(0, 1) or Laplace(0, 1) i.i.d.,  w = s z      # non-centred: same model
    c ~ flat (ImproperUniform)
    y_i ~ Normal(x_i . w + c, noise^2)

and, for the Gaussian prior, the collapsed model (:func:`collapsed_ridge_model`) in which w
and c are integrated out analytically: only (sigma, noise) are sampled, with the exact
marginal likelihood log p(y | sigma, noise) of :mod:`mapreg.bayes.evidence` (flat intercept
included) as a ``pyro.factor``. The collapsed model is what runs on d2l's data (n = 20,
d = 200): with 200 weights NUTS on the full model needs long trajectories (the 180
directions the data do not see follow the prior, a funnel in (sigma, w)), which Pyro's
per-step overhead makes slow on 2 cores; the collapsed model has the same posterior of
(sigma, noise) and costs a 19-term sum per gradient.

**Hyperpriors: half-Cauchy, scaled to the data.** Not log-uniform (p(s) ~ 1/s): the evidence
tends to a positive limit as sigma -> 0 (w = 0, all variance noise), so integral ds/s
diverges at 0 and the posterior would be improper; with n - 1 = rank(Xc) (d2l's data) the
same holds for the noise as noise -> 0 (every y interpolated, see
:func:`mapreg.maximize_evidence`). The half-Cauchy (Gelman 2006) is proper, flat near 0 (no
pull towards 0) and heavy-tailed (no pull away from large values). Scales: the noise's is
sd(y) (centred, divided by n); the prior scale's is sd(y) / (||Xc||_F / sqrt(n)), the weight
size at which X w has the spread of y -- the centre of :func:`mapreg.maximize_evidence`'s
start grid. Both are invariant to the units of X and y.

lambda = noise^2 / sigma^2 (Gaussian) or noise^2 / b (Laplace), the canonical lambda of
``1/2 ||y - Xw - c||^2 + lam P(w)``, is reported as a derived quantity of every draw.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_median, init_to_value
from torch.distributions import constraints

from .._centring import centre
from .._results import FrozenResult
from .._validation import check_bool, check_choice, check_data, check_positive_int, check_scale
from .evidence import _const, _spectrum
from .gibbs import effective_sample_size, split_rhat
from .models import pyro_session, rng_scope

SCALE_SITE = "scale"  # sigma (Gaussian) or b (Laplace)
NOISE_SITE = "noise"


def default_hyperscales(X, y) -> tuple[float, float]:
    """(scale of the prior-scale hyperprior, scale of the noise hyperprior): see the module
    docstring -- sd(y) / (||Xc||_F / sqrt(n)) and sd(y), with sd over the centred data / n."""
    X, y = check_data(X, y)
    n = X.shape[0]
    Xc, yc, _, _ = centre(X, y)
    sd_y = float(yc.norm()) / math.sqrt(n)
    x_scale = float(torch.linalg.matrix_norm(Xc)) / math.sqrt(n)
    if not (sd_y > 0 and x_scale > 0):
        raise ValueError("the hyperprior scales need a y and a column of X that vary")
    return sd_y / x_scale, sd_y


class _TorchEvidence:
    """log p(y | sigma, noise) of :mod:`mapreg.bayes.evidence`, in torch (differentiable)."""

    def __init__(self, X, y):
        sp = _spectrum(X, y)
        self.n, self.dof, self.rest = sp.n, sp.dof, sp.rest
        self.s2 = torch.from_numpy(sp.s2)
        self.z2 = torch.from_numpy(sp.z2)
        self.const = _const(sp.n)

    def __call__(self, log_sigma: torch.Tensor, log_noise: torch.Tensor) -> torch.Tensor:
        ls, ln = log_sigma[..., None], log_noise[..., None]
        v_noise = torch.exp(2 * ln)
        v = v_noise + torch.exp(2 * ls) * self.s2
        logdet = self.dof * 2 * ln[..., 0] + torch.log(v).sum(-1)
        quad = self.rest / v_noise[..., 0] + (self.z2 / v).sum(-1)
        return self.const - 0.5 * (logdet + quad)


def collapsed_ridge_model(X, y, sigma_scale: float, noise_scale: float):
    """The hierarchical Gaussian-prior model with w and c integrated out, as a Pyro model.

    ::

        sigma ~ HalfCauchy(sigma_scale),  noise ~ HalfCauchy(noise_scale)
        factor log p(y | sigma, noise)      # exact evidence, flat intercept included

    Returns a callable of no arguments (the data are bound).
    """
    X, y = check_data(X, y)
    ev = _TorchEvidence(X, y)
    s_scale = torch.tensor(check_scale("sigma_scale", sigma_scale, 2), dtype=torch.float64)
    e_scale = torch.tensor(check_scale("noise_scale", noise_scale, 2), dtype=torch.float64)

    def model():
        sigma = pyro.sample(SCALE_SITE, dist.HalfCauchy(s_scale))
        noise = pyro.sample(NOISE_SITE, dist.HalfCauchy(e_scale))
        pyro.factor("evidence", ev(torch.log(sigma), torch.log(noise)))

    return model


def hierarchical_linear_model(prior: str, scale_scale: float, noise_scale: float):
    """The full hierarchical model (module docstring) as a Pyro model taking ``(X, y=None)``.

    ``prior`` is ``"gaussian"`` (w = sigma z, z ~ N(0, 1)) or ``"laplace"`` (w = b z,
    z ~ Laplace(0, 1)); w is recorded as ``pyro.deterministic("w")``.
    """
    prior = check_choice("prior", prior, ("gaussian", "laplace"))
    s_scale = torch.tensor(check_scale("scale_scale", scale_scale, 2), dtype=torch.float64)
    e_scale = torch.tensor(check_scale("noise_scale", noise_scale, 2), dtype=torch.float64)
    flat = dist.ImproperUniform(constraints.real, batch_shape=(), event_shape=())
    base = dist.Normal if prior == "gaussian" else dist.Laplace

    def model(X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, d = X.shape
        s = pyro.sample(SCALE_SITE, dist.HalfCauchy(s_scale))
        noise = pyro.sample(NOISE_SITE, dist.HalfCauchy(e_scale))
        zero = torch.zeros(d, dtype=torch.float64)
        z = pyro.sample("z", base(zero, torch.ones_like(zero)).to_event(1))
        w = pyro.deterministic("w", s * z)
        c = pyro.sample("c", flat)
        with pyro.plate("data", n):
            return pyro.sample("y", dist.Normal(X @ w + c, noise), obs=y)

    return model


@dataclass(frozen=True, eq=False)
class HierarchicalResult(FrozenResult):
    """Posterior draws of the hyperparameters and of lambda, from NUTS.

    Attributes
    ----------
    prior : str
        ``"gaussian"`` or ``"laplace"``.
    collapsed : bool
        True: w and c integrated out (Gaussian only), only (sigma, noise) sampled.
    scale, noise, lam : torch.Tensor of shape (chains, num_samples)
        Draws of the prior scale (sigma or b), of the noise and of the canonical lambda
        (noise^2 / sigma^2 or noise^2 / b).
    lam_median : float
    lam_interval : tuple[float, float]
        Central ``level`` credible interval of lambda (quantiles of the draws).
    level : float
    ess, rhat : dict[str, float]
        Effective sample size and split R-hat of log scale, log noise and log lambda.
    divergences : int
    hyperscales : tuple[float, float]
        Scales of the half-Cauchy hyperpriors (prior scale, noise).
    coef_mean : torch.Tensor or None
        Posterior mean of w (full model only).
    seconds : float
        Wall-clock time of the sampling (not compared by ``==``).
    """

    prior: str
    collapsed: bool
    scale: torch.Tensor
    noise: torch.Tensor
    lam: torch.Tensor
    lam_median: float
    lam_interval: tuple[float, float]
    level: float
    ess: dict
    rhat: dict
    divergences: int
    hyperscales: tuple[float, float]
    coef_mean: torch.Tensor | None = None
    seconds: float = field(default=0.0, compare=False)


def sample_hierarchical(
    X,
    y,
    prior: str = "gaussian",
    *,
    collapsed: bool | None = None,
    num_samples: int = 1000,
    warmup: int = 500,
    chains: int = 2,
    seed: int = 0,
    level: float = 0.95,
    hyperscales: tuple[float, float] | None = None,
    progress: bool = False,
    jit: bool = True,
) -> HierarchicalResult:
    """Run Pyro's NUTS on the hierarchical model; report the posterior of lambda.

    Parameters
    ----------
    X, y : the data (n, d) and (n,)
    prior : ``"gaussian"`` or ``"laplace"``
    collapsed : bool, optional
        Integrate w and c out (Gaussian only). Default: True for the Gaussian prior.
    num_samples, warmup, chains : int
        Chains run one after another (no multiprocessing), chain k seeded with seed + k
        inside :func:`mapreg.bayes.models.pyro_session`; the global torch / numpy /
        random generators are restored afterwards.
    level : float in (0, 1)
        Probability of the central credible interval of lambda.
    hyperscales : (float, float), optional
        Half-Cauchy scales of (prior scale, noise); default :func:`default_hyperscales`.
    progress : bool
        Pyro's progress bar.
    jit : bool
        Compile the potential energy with the PyTorch JIT (Pyro's ``jit_compile``).
    """
    X, y = check_data(X, y)
    prior = check_choice("prior", prior, ("gaussian", "laplace"))
    if collapsed is None:
        collapsed = prior == "gaussian"
    collapsed = check_bool("collapsed", collapsed)
    if collapsed and prior != "gaussian":
        raise ValueError("collapsed=True needs prior='gaussian' (w integrates out in closed "
                         f"form only under a Gaussian prior); got prior={prior!r}")
    num_samples = check_positive_int("num_samples", num_samples, 10**6)
    warmup = check_positive_int("warmup", warmup, 10**6)
    chains = check_positive_int("chains", chains, 64)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    if not (isinstance(level, float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a float in (0, 1); got {level!r}")
    progress = check_bool("progress", progress)
    jit = check_bool("jit", jit)
    if hyperscales is None:
        hyperscales = default_hyperscales(X, y)
    hs = (check_scale("hyperscales[0]", hyperscales[0], 2),
          check_scale("hyperscales[1]", hyperscales[1], 2))
    if collapsed:
        model, args = collapsed_ridge_model(X, y, *hs), ()
        init = init_to_median
    else:
        model, args = hierarchical_linear_model(prior, *hs), (X, y)
        _, _, xm, ym = centre(X, y)
        init = init_to_value(values={"c": ym.clone()}, fallback=init_to_median)
    scales, noises, coefs, divergences = [], [], [], 0
    t0 = time.perf_counter()
    for k in range(chains):
        with pyro_session(), rng_scope(seed + k):
            kernel = NUTS(model, init_strategy=init, target_accept_prob=0.9, jit_compile=jit,
                          max_plate_nesting=1,
                          ignore_jit_warnings=True)
            mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup,
                        disable_progbar=not progress)
            mcmc.run(*args)
            s = mcmc.get_samples()
            divergences += int(mcmc.diagnostics()["divergences"]["chain 0"].__len__())
        scales.append(s[SCALE_SITE].detach())
        noises.append(s[NOISE_SITE].detach())
        if not collapsed:
            coefs.append((s[SCALE_SITE][:, None] * s["z"]).detach())
    seconds = time.perf_counter() - t0
    scale, noise = torch.stack(scales), torch.stack(noises)
    lam = noise**2 / (scale**2 if prior == "gaussian" else scale)
    flat = lam.reshape(-1).numpy()
    alpha = 0.5 * (1.0 - level)
    lo, hi = np.quantile(flat, [alpha, 1.0 - alpha])
    logs = {"log_scale": scale.log().numpy(), "log_noise": noise.log().numpy(),
            "log_lam": lam.log().numpy()}
    ess = {k: float(effective_sample_size(v)[0]) for k, v in logs.items()}
    rhat = {k: float(split_rhat(v)[0]) if chains > 1 else math.nan for k, v in logs.items()}
    coef_mean = torch.cat(coefs).mean(0) if coefs else None
    return HierarchicalResult(
        prior=prior, collapsed=collapsed, scale=scale, noise=noise, lam=lam,
        lam_median=float(np.median(flat)), lam_interval=(float(lo), float(hi)), level=level,
        ess=ess, rhat=rhat, divergences=divergences, hyperscales=hs, coef_mean=coef_mean,
        seconds=seconds,
    )


@dataclass(frozen=True, eq=False)
class HyperQuadratureResult(FrozenResult):
    """The collapsed (sigma, noise) posterior by quadrature over (log sigma, log noise).

    Attributes
    ----------
    mean, sd : torch.Tensor of shape (3,)
        Posterior mean and sd of (log sigma, log noise, log lam), lam = noise^2 / sigma^2.
    lam_median : float
    lam_interval : tuple[float, float]
        Central ``level`` interval of lambda (from the CDF of log lam on the grid).
    edge_ratio : float
        Largest density on the border of the box relative to the maximum (the box is
        widened until it is below 1e-14).
    """

    mean: torch.Tensor
    sd: torch.Tensor
    lam_median: float
    lam_interval: tuple[float, float]
    level: float
    edge_ratio: float


def log_hyperposterior(X, y, log_sigma, log_noise, hyperscales: tuple[float, float] | None = None
                       ) -> np.ndarray:
    """Unnormalised log density of (log sigma, log noise) under the collapsed model.

    log p(y | sigma, noise) + log HalfCauchy(sigma; s1) + log HalfCauchy(noise; s2)
    + log sigma + log noise (the Jacobian of the log transform); vectorised over arrays.
    """
    X, y = check_data(X, y)
    hs = default_hyperscales(X, y) if hyperscales is None else hyperscales
    ev = _TorchEvidence(X, y)
    a = torch.as_tensor(np.asarray(log_sigma, dtype=np.float64))
    b = torch.as_tensor(np.asarray(log_noise, dtype=np.float64))
    a, b = torch.broadcast_tensors(a, b)

    def log_hc(log_x, s):  # log HalfCauchy(x; s) + log x
        return (math.log(2 / (math.pi * s)) - torch.log1p(torch.exp(2 * (log_x - math.log(s))))
                + log_x)

    with torch.no_grad():
        out = ev(a, b) + log_hc(a, hs[0]) + log_hc(b, hs[1])
    return out.numpy()


def hyperposterior_quadrature(X, y, hyperscales: tuple[float, float] | None = None, *,
                              level: float = 0.95, nodes: int = 400) -> HyperQuadratureResult:
    """Posterior moments of (log sigma, log noise, log lam) in the collapsed model, by a
    tensor Gauss-Legendre rule (``nodes`` points per axis, 8 panels) on a box around the
    maximum of :func:`log_hyperposterior`, widened until the density on its border is below
    1e-14 of the maximum. The log-posterior is smooth, so the rule converges exponentially.
    """
    X, y = check_data(X, y)
    hs = default_hyperscales(X, y) if hyperscales is None else hyperscales
    c0 = (math.log(hs[0]), math.log(hs[1]))
    half = 6.0
    gx, gw = np.polynomial.legendre.leggauss(nodes // 8)
    for _ in range(30):
        edges = [np.linspace(c - half, c + half, 9) for c in c0]
        pts, wts = [], []
        for e in edges:
            a, b = e[:-1, None], e[1:, None]
            h = 0.5 * (b - a)
            pts.append((a + h * (gx + 1)).ravel())
            wts.append((h * gw).ravel())
        A, B = np.meshgrid(pts[0], pts[1], indexing="ij")
        lp = log_hyperposterior(X, y, A, B, hs)
        top = lp.max()
        border = max(lp[0].max(), lp[-1].max(), lp[:, 0].max(), lp[:, -1].max()) - top
        i, j = np.unravel_index(np.argmax(lp), lp.shape)
        c0 = (float(A[i, j]), float(B[i, j]))
        if border < math.log(1e-14) and 0 < i < lp.shape[0] - 1 and 0 < j < lp.shape[1] - 1:
            break
        half *= 1.5
    p = np.exp(lp - top) * wts[0][:, None] * wts[1][None, :]
    p /= p.sum()
    L = 2 * B - 2 * A
    stats = []
    for f in (A, B, L):
        m = float((p * f).sum())
        stats.append((m, math.sqrt(max(float((p * (f - m) ** 2).sum()), 0.0))))
    order = np.argsort(L.ravel())
    cdf = np.cumsum(p.ravel()[order])
    Ls = L.ravel()[order]
    alpha = 0.5 * (1 - level)
    q = [float(np.exp(np.interp(t, cdf, Ls))) for t in (0.5, alpha, 1 - alpha)]
    return HyperQuadratureResult(
        mean=torch.tensor([s[0] for s in stats], dtype=torch.float64),
        sd=torch.tensor([s[1] for s in stats], dtype=torch.float64),
        lam_median=q[0], lam_interval=(q[1], q[2]), level=level,
        edge_ratio=float(math.exp(border)),
    )
