"""Exact posterior moments of 1- and 2-feature linear models by numerical quadrature.

The model is mapreg's linear model (:func:`mapreg.bayes.models.linear_model`)::

    w_j ~ prior (i.i.d.),   c ~ flat (density 1),   y_i ~ Normal(x_i . w + c, noise^2)

With Xc, yc the centred data, ||y - Xw - c 1||^2 = ||yc - Xc w||^2 + n (ybar - xbar . w - c)^2,
and the Gaussian integral over c gives the factor sqrt(2 pi noise^2 / n). So the joint
density of (y, w) with the intercept integrated out is, exactly::

    q(w) = (2 pi noise^2)^(-n/2) sqrt(2 pi noise^2 / n) exp(-||yc - Xc w||^2 / (2 noise^2)) p(w)

and p(w | y) = q(w) / Z with Z = integral of q = p(y), the evidence (for a Gaussian prior,
:func:`mapreg.log_evidence`). The posterior moments are integrals of w^k q(w), computed here by
a composite Gauss-Legendre rule on a tensor grid (d = 2) or a line (d = 1):

* **Box.** Every prior of mapreg is log-concave with -log p(w) = kappa_1 ||w||_1 +
  (kappa_2/2) ||w||^2 + C, so -log q is strongly convex with Hessian >= H = Xc'Xc / noise^2 +
  kappa_2 I (required positive definite: a ValueError otherwise). With m the MAP and g the
  minimum-norm subgradient of -log q at m, -log q(w) >= -log q(m) + g.(w - m) +
  1/2 (w - m)' H (w - m), hence q(w) <= q(m) e^{g'H^-1 g / 2} N-shape(w; m - H^-1 g, H^-1).
  The box |w_j - m_j| <= R sqrt((H^-1)_jj) + |(H^-1 g)_j| contains the ellipsoid of radius R
  of that Gaussian, so the mass left outside is at most
  q(m) e^{g'H^-1 g/2} (2 pi)^(d/2) |H|^(-1/2) P(chi2_d > R^2); R is increased until that bound
  is below 1e-15 Z (``truncation_bound`` reports it relative to Z).
* **Panels.** The integrand is analytic except across w_j = 0 (the kink of the Laplace and
  elastic-net priors): every axis is split at 0, at m_j, into 32 equal panels across the box,
  and into panels graded geometrically (ratio 4) towards 0 and m_j, down to 1e-3 of
  min(sqrt((H^-1)_jj), prior scale) -- a narrow peak at 0 (a small b) is resolved too.
  Gauss-Legendre with ``nodes`` points per panel (default 16) converges exponentially on
  each analytic piece; the rule with half the nodes is computed as well, and the largest
  relative change of Z, the means and the second moments is reported as
  ``quadrature_error`` (an estimate of the error of the coarser rule, so conservative).
* **Medians.** The marginal CDF is accumulated panel by panel and the panel where it
  crosses 1/2 is searched with Brent's method on F(t) = F(edge) + integral_edge^t p_j, the
  latter by Gauss-Legendre on [edge, t] (the marginal is smooth inside a panel).

The prior's log density is Pyro's own (``prior.distribution(1).log_prob``), so every prior in
:data:`mapreg.PRIORS` works. The weights are computed in log space relative to q(m), so
neither tiny nor huge values of Z underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._centring import centre
from .._results import FrozenResult
from .._validation import check_data, check_positive_int, check_scale
from .map import map_estimate
from .priors import Prior

_R0 = 10.0  # initial box radius in units of the strong-convexity Gaussian's sd
_TAIL = 1e-15  # truncation bound relative to Z
_UNIFORM_PANELS = 32
_GRADE = 4.0  # ratio of the geometric grading towards 0 and the mode


@dataclass(frozen=True, eq=False)
class QuadratureResult(FrozenResult):
    """Posterior moments of a 1- or 2-feature linear model, by quadrature.

    Attributes
    ----------
    mean, median, sd : torch.Tensor of shape (d,)
        Posterior mean, marginal medians and marginal standard deviations of w.
    cov : torch.Tensor of shape (d, d)
        Posterior covariance of w.
    grid, density : torch.Tensor of shape (d, G)
        Marginal posterior densities p(w_j | y) at the points ``grid[j]``.
    log_normalizer : float
        log Z = log p(y) = log integral q(w) dw (the flat intercept integrated out with its
        factor sqrt(2 pi noise^2 / n); see the module docstring).
    mode : torch.Tensor of shape (d,)
        The MAP (from :func:`mapreg.bayes.map_estimate`) the box is centred on.
    quadrature_error : float
        Largest relative change of Z, mean and second moments between the rule with
        ``nodes`` and with ``nodes // 2`` points per panel.
    truncation_bound : float
        Upper bound on the posterior mass outside the integration box (relative to Z).
    num_points : int
        Number of integrand evaluations of the main rule.
    """

    mean: torch.Tensor
    median: torch.Tensor
    sd: torch.Tensor
    cov: torch.Tensor
    grid: torch.Tensor
    density: torch.Tensor
    log_normalizer: float
    mode: torch.Tensor
    quadrature_error: float
    truncation_bound: float
    num_points: int


class _Posterior:
    """log q(w) - log q(m), vectorised, from the centred data and the prior."""

    def __init__(self, X, y, prior: Prior, noise: float):
        n, d = X.shape
        Xc, yc, _, _ = centre(X, y)
        self.n, self.d, self.noise, self.prior = n, d, noise, prior
        self.G = (Xc.T @ Xc).numpy()
        m = map_estimate(X, y, prior, noise).coef
        self.m = m.numpy()
        r = yc - Xc @ m
        self.b = (Xc.T @ r).numpy()
        self.logp_m = self._logp(self.m)
        # log q(m), the constant factored out of every integrand
        self.log_qm = float(
            -0.5 * float(r @ r) / noise**2 - 0.5 * n * math.log(2 * math.pi * noise**2)
            + 0.5 * math.log(2 * math.pi * noise**2 / n) + self.logp_m.sum()
        )
        # strong-convexity Hessian and the minimum-norm subgradient at m
        self.H = self.G / noise**2 + prior.l2_weight * np.eye(d)
        grad_f = torch.from_numpy(-self.b / noise**2)
        self.g = prior.subgradient_distance(m, grad_f).numpy()

    def _logp(self, t: np.ndarray) -> np.ndarray:
        flat = torch.from_numpy(np.ascontiguousarray(t, dtype=np.float64)).reshape(-1, 1)
        with torch.no_grad():
            lp = self.prior.distribution(1).log_prob(flat)
        return lp.numpy().reshape(np.shape(t))

    def log_rel(self, axes: list[np.ndarray]) -> np.ndarray:
        """log q - log q(m) on the tensor grid spanned by ``axes`` (one 1-D array per axis)."""
        deltas = np.meshgrid(*[a - mj for a, mj in zip(axes, self.m, strict=True)], indexing="ij")
        lin = sum(self.b[j] * deltas[j] for j in range(self.d))
        quad = sum(self.G[i, j] * deltas[i] * deltas[j]
                   for i in range(self.d) for j in range(self.d))
        out = (2 * lin - quad) / (2 * self.noise**2)
        for j, a in enumerate(axes):
            lp = self._logp(a) - self.logp_m[j]
            shape = [1] * self.d
            shape[j] = a.size
            out = out + lp.reshape(shape)
        return out


def _panels(lo: float, hi: float, points: list[float], finest: float) -> np.ndarray:
    """Panel edges on [lo, hi]: uniform, plus breakpoints and geometric grading towards them."""
    edges = list(np.linspace(lo, hi, _UNIFORM_PANELS + 1))
    span = hi - lo
    for p in points:
        if not lo < p < hi:
            continue
        edges.append(p)
        h = span / _GRADE
        while h > finest:
            edges += [p - h, p + h]
            h /= _GRADE
    e = np.unique(np.clip(np.array(edges), lo, hi))
    return e


def _rule(edges: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(k)
    a, b = edges[:-1, None], edges[1:, None]
    half = 0.5 * (b - a)
    return (a + half * (x + 1)).ravel(), (half * w).ravel()


def _moments(post: _Posterior, edges: list[np.ndarray], k: int):
    rules = [_rule(e, k) for e in edges]
    axes = [r[0] for r in rules]
    lr = post.log_rel(axes)
    shift = float(lr.max())
    f = np.exp(lr - shift)
    for j, (_, wts) in enumerate(rules):
        shape = [1] * post.d
        shape[j] = wts.size
        f = f * wts.reshape(shape)
    z = float(f.sum())
    p = f / z
    grids = np.meshgrid(*axes, indexing="ij")
    mean = np.array([float((p * g).sum()) for g in grids])
    second = np.array([[float((p * gi * gj).sum()) for gj in grids] for gi in grids])
    return math.log(z) + shift, mean, second, axes, rules


def _marginal(post: _Posterior, rules, j: int, t: np.ndarray, log_z_rel: float) -> np.ndarray:
    """p(w_j = t | y) for an array t, integrating the other coordinate with its rule."""
    axes = [r[0] for r in rules]
    axes[j] = np.asarray(t, dtype=np.float64)
    lr = post.log_rel(axes) - log_z_rel
    f = np.exp(lr)
    if post.d == 2:
        other = 1 - j
        f = np.tensordot(f, rules[other][1], axes=([other], [0]))
    return f


def posterior_moments_quadrature(
    X, y, prior: Prior, noise: float, *, nodes: int = 16, grid_points: int = 201,
    grid: np.ndarray | torch.Tensor | None = None,
) -> QuadratureResult:
    """Posterior mean, median, sd, covariance and marginal densities of w, by quadrature.

    Exact up to the reported ``quadrature_error`` and ``truncation_bound`` (see the module
    docstring for the integrand, with its intercept factor sqrt(2 pi noise^2 / n), the box
    and the rule).

    Parameters
    ----------
    X : array-like of shape (n, d), d in {1, 2}
    y : array-like of shape (n,)
    prior : Prior
        Any of mapreg's priors (``Gaussian``, ``Laplace``, ``ElasticNet``).
    noise : float
        The fixed noise scale sigma_eps.
    nodes : int
        Gauss-Legendre points per panel (>= 4; the error estimate uses nodes // 2).
    grid_points : int
        Number of points of the default density grid (mean +- 6 sd, evenly spaced).
    grid : array of shape (G,) or (d, G), optional
        Points at which to report the marginal densities instead of the default grid.

    Raises
    ------
    ValueError
        d not in {1, 2}; Xc'Xc / noise^2 + kappa_2 I not positive definite (a flat direction of
        the likelihood under a prior without a Gaussian part: the box bound does not apply).
    """
    X, y = check_data(X, y)
    n, d = X.shape
    if d not in (1, 2):
        raise ValueError(f"X must have 1 or 2 features for quadrature; got d={d}")
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a mapreg Prior (e.g. Laplace(b=0.5)); got {prior!r}")
    noise = check_scale("noise", noise, 2)
    nodes = check_positive_int("nodes", nodes, 256)
    if nodes < 4:
        raise ValueError(f"nodes must be an integer between 4 and 256; got {nodes}")
    grid_points = check_positive_int("grid_points", grid_points, 100_000)
    post = _Posterior(X, y, prior, noise)
    evals = np.linalg.eigvalsh(post.H)
    if not evals.min() > 1e-12 * max(evals.max(), 1e-300):
        raise ValueError(
            "quadrature needs Xc'Xc / noise^2 + (Gaussian part of the prior) positive definite: "
            f"its eigenvalues are {evals.tolist()} (a direction the data do not determine)"
        )
    Hinv = np.linalg.inv(post.H)
    shift = Hinv @ post.g
    peak = 0.5 * float(post.g @ shift) + 0.5 * d * math.log(2 * math.pi) \
        - 0.5 * float(np.linalg.slogdet(post.H)[1])  # log of bound's prefactor / q(m)
    sds = np.sqrt(np.diag(Hinv))
    R = _R0
    for _ in range(20):
        lo, hi = post.m - R * sds - np.abs(shift), post.m + R * sds + np.abs(shift)
        finest = 1e-3 * np.minimum(sds, prior.scale)
        edges = [_panels(lo[j], hi[j], [0.0, float(post.m[j])], finest[j]) for j in range(d)]
        log_z, mean, second, axes, rules = _moments(post, edges, nodes)
        # P(chi2_d > R^2): d = 1 erfc(R / sqrt 2), d = 2 exp(-R^2 / 2)
        log_tail = math.log(math.erfc(R / math.sqrt(2))) if d == 1 else -0.5 * R * R
        log_bound = peak + log_tail - log_z
        if log_bound < math.log(_TAIL):
            break
        R *= 1.5
    log_z_c, mean_c, second_c, _, _ = _moments(post, edges, nodes // 2)
    scale2 = np.abs(second).max()
    err = max(abs(math.expm1(log_z_c - log_z)),
              float(np.abs(mean_c - mean).max() / math.sqrt(scale2)),
              float(np.abs(second_c - second).max() / scale2))
    cov = second - np.outer(mean, mean)
    sd = np.sqrt(np.diag(cov))
    log_z_rel = log_z

    from scipy.optimize import brentq  # here: importing scipy.optimize costs ~0.1 s

    medians = []
    for j in range(d):
        e = edges[j]
        xs, ws = _rule(e, nodes)
        dens = _marginal(post, rules, j, xs, log_z_rel) * ws
        cdf = np.concatenate([[0.0], np.cumsum(dens.reshape(-1, nodes).sum(1))])
        i = int(np.searchsorted(cdf, 0.5)) - 1
        i = min(max(i, 0), e.size - 2)
        a, base = float(e[i]), float(cdf[i])
        gx, gw = np.polynomial.legendre.leggauss(nodes)

        def F(t, a=a, base=base, j=j, gx=gx, gw=gw):
            h = 0.5 * (t - a)
            pts = a + h * (gx + 1)
            return base + h * float((_marginal(post, rules, j, pts, log_z_rel) * gw).sum()) - 0.5

        lo_t, hi_t = a, float(e[i + 1])
        fl, fh = F(lo_t), F(hi_t)
        medians.append(lo_t if fl >= 0 else hi_t if fh <= 0 else
                       brentq(F, lo_t, hi_t, xtol=1e-15, rtol=4 * np.finfo(float).eps))
    if grid is None:
        g = np.stack([np.linspace(mean[j] - 6 * sd[j], mean[j] + 6 * sd[j], grid_points)
                      for j in range(d)])
    else:
        g = np.asarray(grid, dtype=np.float64)
        g = np.broadcast_to(g, (d, g.shape[-1])).copy() if g.ndim == 1 else g
        if g.shape[0] != d or not np.all(np.isfinite(g)):
            raise ValueError(f"grid must be finite of shape (G,) or ({d}, G); got {g.shape}")
    dens = np.stack([_marginal(post, rules, j, g[j], log_z_rel) for j in range(d)])
    t = torch.from_numpy
    return QuadratureResult(
        mean=t(mean), median=torch.tensor(medians, dtype=torch.float64), sd=t(sd), cov=t(cov),
        grid=t(g), density=t(dens), log_normalizer=log_z + post.log_qm, mode=t(post.m.copy()),
        quadrature_error=err, truncation_bound=math.exp(log_bound),
        num_points=int(np.prod([a.size for a in axes])),
    )


def log_joint_marginal(X, y, prior: Prior, noise: float, w) -> torch.Tensor:
    """log q(w) = log of integral p(y, w, c) dc at each row of ``w`` (shape (B, d) or (d,)).

    The unnormalised log posterior of the quadrature (module docstring), from the formula:
    -||yc - Xc w||^2 / (2 noise^2) - n/2 log(2 pi noise^2) + 1/2 log(2 pi noise^2 / n)
    + log p(w), with Pyro's prior log density.
    """
    X, y = check_data(X, y)
    noise = check_scale("noise", noise, 2)
    n, d = X.shape
    W = torch.as_tensor(w, dtype=torch.float64).reshape(-1, d)
    Xc, yc, _, _ = centre(X, y)
    r = yc - W @ Xc.T
    with torch.no_grad():
        lp = prior.distribution(d).log_prob(W)
    return (-0.5 * (r * r).sum(-1) / noise**2 - 0.5 * n * math.log(2 * math.pi * noise**2)
            + 0.5 * math.log(2 * math.pi * noise**2 / n) + lp)
