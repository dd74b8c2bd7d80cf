"""Marginal likelihood (evidence) of Bayesian ridge regression, and its maximisation.

Model: w ~ N(0, sigma^2 I_d), c flat (improper, density 1), y | w, c ~ N(Xw + c 1, noise^2 I_n).
Integrating c out projects onto the centred data (P = I - 11'/n): with Xc = P X = U S V' and
yc = P y (both orthogonal to 1, so the problem lives in n - 1 dimensions)::

    log p(y | sigma, noise) = -1/2 log n - (n-1)/2 log(2 pi)
                              - 1/2 [ (n-1-r) log noise^2 + sum_i log(noise^2 + sigma^2 s_i^2) ]
                              - 1/2 [ ||yc - U U'yc||^2 / noise^2
                                      + sum_i (u_i'yc)^2 / (noise^2 + sigma^2 s_i^2) ]

with r the rank of Xc. Maximising it over (sigma, noise) is "empirical Bayes" (type-II
maximum likelihood): it picks the prior scale -- hence lambda = noise^2 / sigma^2 -- from the
training data alone, without a validation split.

Where the supremum is not attained (see :func:`maximize_evidence`) the result says so: a
limit sigma -> 0 (no signal) or noise -> 0 (n - 1 = rank: every y is interpolated), with
``converged=False`` and a warning; y fitted exactly with residual dimensions left
(noise -> 0 makes the evidence unbounded) raises ``ValueError``.

scikit-learn's ``BayesianRidge`` maximises a different function: it centres X and y and
treats the n centred values as n independent observations (n degrees of freedom for the
noise, where the flat intercept leaves n - 1), and by default adds Gamma(1e-6, 1e-6)
hyperpriors on both precisions. Without the hyperpriors its fixed point is exactly the
maximiser of this evidence for the data with one more row (mean(X), mean(y)) -- which leaves
Xc, yc unchanged and adds one dimension (tested in ``tests/test_evidence.py``). For n <= d
that dimension is a noise dimension with zero residual: without hyperpriors sklearn's
evidence is then unbounded as noise -> 0, and with them its noise is set by the hyperprior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._centring import EPS, centre, centred_svd
from .._results import FrozenResult
from .._validation import check_bool, check_data, check_positive
from ..errors import report_nonconvergence

_BOX = 40.0  # search box: log sigma and log noise within +-40 of the data's own scales


@dataclass(frozen=True, eq=False)
class EvidenceResult(FrozenResult):
    """The evidence maximiser: sigma, noise, lam = noise^2 / sigma^2 and the log evidence.

    Attributes
    ----------
    sigma, noise, lam
        The maximiser (lam = noise^2 / sigma^2, the canonical ridge lambda).
    log_evidence
        log p(y | sigma, noise) there (the limit value when ``limit`` is set).
    converged
        True only for an interior stationary maximum: the gradient in (log sigma, log noise)
        is below 1e-8 times the scale of its terms (see :func:`maximize_evidence`).
    limit
        ``None`` for an interior maximum. ``"sigma -> 0"``: the evidence increases towards
        sigma = 0 (lam = inf, w = 0: no signal the prior explains better than noise); the
        result holds that limit (sigma = 0, lam = inf). ``"noise -> 0"`` (only when
        n - 1 <= rank(Xc)): the evidence increases towards noise = 0 with a finite limit;
        the result holds it (noise = 0, lam = 0, the minimum-norm interpolant). Either way
        ``converged`` is False: no finite maximiser exists.
    gradient
        max |d log p / d(log sigma, log noise)| at the returned point (0 for a limit).
    """

    sigma: float
    noise: float
    lam: float
    log_evidence: float
    converged: bool
    limit: str | None = None
    gradient: float = 0.0


@dataclass(frozen=True)
class _Spectrum:
    n: int
    s2: np.ndarray  # squared singular values of Xc (kept ones), r of them
    z2: np.ndarray  # (u_i'yc)^2
    rest: float  # ||yc - U U'yc||^2; exactly 0 when r = n - 1 (no residual dimension)
    yc2: float  # ||yc||^2
    resid_floor: float  # rounding level of ||yc - U U'yc|| (see _spectrum)

    @property
    def r(self) -> int:
        return self.s2.size

    @property
    def dof(self) -> int:
        """n - 1 - r: the dimensions of 1-perp that X does not reach."""
        return self.n - 1 - self.r


def _spectrum(X, y) -> _Spectrum:
    X, y = check_data(X, y)
    n, d = X.shape
    Xc, yc, _, _ = centre(X, y)
    U, s, _ = centred_svd(Xc)
    z = U.T @ yc
    resid = float((yc - U @ z).norm())
    w_norm = float((z / s).norm()) if s.numel() else 0.0
    # The stored data are y and X to eps of their *raw* entries (y ~ 1e6 carries 1e-10 of
    # rounding), and least squares through the SVD adds a backward error of max(n, d) eps:
    # a residual below max(n, d) eps (||y|| + ||X||_F ||w_LS||) is rounding, not noise.
    floor = max(n, d) * EPS * (float(y.norm()) + float(torch.linalg.matrix_norm(X)) * w_norm)
    rest = 0.0 if n - 1 - s.numel() <= 0 else resid**2
    return _Spectrum(n, (s**2).numpy(), (z**2).numpy(), rest, float(yc @ yc), floor)


def log_evidence(X, y, sigma: float, noise: float) -> float:
    """log p(y | sigma, noise) of Bayesian ridge regression with a flat intercept prior.

    See the module docstring for the formula (it is exact, computed from the SVD of the
    centred X).
    """
    sigma = check_positive("sigma", sigma)
    noise = check_positive("noise", noise)
    sp = _spectrum(X, y)
    return _log_ev(sp, math.log(sigma), math.log(noise))


def _const(n: int) -> float:
    return -0.5 * math.log(n) - 0.5 * (n - 1) * math.log(2 * math.pi)


def _log_ev(sp: _Spectrum, log_sigma: float, log_noise: float) -> float:
    v_noise = math.exp(2 * log_noise)
    v = v_noise + math.exp(2 * log_sigma) * sp.s2
    logdet = sp.dof * 2 * log_noise + float(np.log(v).sum())
    quad = sp.rest / v_noise + float((sp.z2 / v).sum())
    return _const(sp.n) - 0.5 * (logdet + quad)


def _neg_and_grad(p, sp: _Spectrum):
    """-log evidence, its gradient and Hessian in (a, b) = (log sigma, log noise), and the
    gradient's term scale (the sum of the absolute values of the terms below).

    With q_i = e^{2a} s_i^2, e = e^{2b}, v_i = e + q_i, z_i = (u_i'yc)^2,
    h_i = (v_i - z_i) / v_i^2 and h'_i = (2 z_i - v_i) / v_i^3 (= dh_i/dv_i)::

        f_a  = sum_i q_i h_i                 f_b  = (n-1-r) - rest / e + sum_i e h_i
        f_aa = sum_i 2 q_i (h_i + q_i h'_i)  f_bb = 2 rest / e + sum_i 2 e (h_i + e h'_i)
        f_ab = sum_i 2 q_i e h'_i
    """
    a, b = float(p[0]), float(p[1])
    q, e = math.exp(2 * a) * sp.s2, math.exp(2 * b)
    v = e + q
    h, dh = (v - sp.z2) / v**2, (2 * sp.z2 - v) / v**3
    f = -_log_ev(sp, a, b)
    grad = np.array([float((q * h).sum()), sp.dof - sp.rest / e + float((e * h).sum())])
    hess = np.array([
        [float((2 * q * (h + q * dh)).sum()), float((2 * q * e * dh).sum())],
        [float((2 * q * e * dh).sum()), 2 * sp.rest / e + float((2 * e * (h + e * dh)).sum())],
    ])
    hv = (v + sp.z2) / v**2
    scale = np.array([float((q * hv).sum()), sp.dof + sp.rest / e + float((e * hv).sum())])
    return f, grad, hess, scale


def _descend(p, sp: _Spectrum, lo, hi):
    """Minimise f = -log p(y | e^a, e^b) from p inside the box [lo, hi].

    Newton steps on |H| (the Hessian with its eigenvalues replaced by their absolute
    values, so every step is a descent direction also where f is not convex), at most 4
    log-units long, halved until f decreases -- or, where H is positive definite, until the
    gradient shrinks (near the minimum f changes below its own rounding, the gradient does
    not). Stops when the Newton step is a few ulps of p (the gradient's rounding level), when
    the predicted decrease has been below the rounding of f for three steps, or when no
    halving of the step makes progress.
    Two parameters, closed-form derivatives: no BLAS thread pool, unlike L-BFGS-B.
    """
    f, g, H, _ = _neg_and_grad(p, sp)
    flat = 0
    for _ in range(500):
        lam, Q = np.linalg.eigh(H)
        pd = bool(lam.min() > 0)
        lam = np.maximum(np.abs(lam), 1e-12 * max(float(np.abs(lam).max()), 1e-300))
        step = -Q @ ((Q.T @ g) / lam)
        size = float(np.abs(step).max())
        if pd and size <= 16 * EPS * max(1.0, float(np.abs(p).max())):
            break  # a Newton step at the rounding level of the gradient: converged
        # predicted decrease below the rounding of f: three more Newton steps finish a
        # quadratic minimum; on a slope fading towards an edge (f = f0 + c e^{2a}, where
        # Newton creeps by 1/2 per step) they end the walk
        flat = flat + 1 if abs(float(g @ step)) <= 4 * EPS * max(1.0, abs(f)) else 0
        if flat > 3:
            break
        step *= min(1.0, 4.0 / max(size, 1e-300))
        t = 1.0
        while t > 1e-12:
            p_new = np.clip(p + t * step, lo, hi)
            f_new, g_new, H_new, _ = _neg_and_grad(p_new, sp)
            if f_new < f or (pd and np.abs(g_new).max() < np.abs(g).max()):
                break
            t *= 0.5
        else:
            break
        if np.array_equal(p_new, p):
            break
        p, f, g, H = p_new, f_new, g_new, H_new
    return p, f


def maximize_evidence(
    X, y, *, sigma0: float = 1.0, noise0: float | None = None, strict: bool = False
) -> EvidenceResult:
    """Type-II maximum likelihood: argmax over (sigma, noise) of :func:`log_evidence`.

    Optimised over (log sigma, log noise) by Newton's method with the closed-form gradient
    and Hessian (steps on |H|, backtracking), within +-40 (a factor e^40 ~ 2e17) of the
    data's own scales. The evidence can have more than one local maximum (e.g. sigma -> 0
    with all variance explained as noise, versus a small noise with sizeable weights), so it
    starts from (sigma0, noise0) and from a grid of 9 points around the data's own scales --
    noise in sd(y) x {0.03, 0.3, 1}, sigma in sd(y) / (||Xc||_F / sqrt(n)) x {0.03, 0.3, 1}
    -- and keeps the best. ``noise0`` defaults to sd(y). Converged: each gradient entry is
    <= 1e-8 times the sum of the absolute values of its terms, and the point is inside the
    box (Newton ends at the gradient's rounding, ~1e-15 of its terms; the result's
    ``gradient`` says what was reached).

    The supremum can lie on the edge of the parameter space; the best interior maximum is
    compared with the two edges, whose suprema are closed forms:

    * sigma -> 0: log p -> -1/2 [(n-1) log noise^2 + ||yc||^2 / noise^2] + const, largest at
      noise^2 = ||yc||^2 / (n-1); a local supremum when d log p / d sigma^2 <= 0 there, i.e.
      sum_i s_i^2 (u_i'yc)^2 <= noise^2 sum_i s_i^2.
    * noise -> 0 with n - 1 = rank(Xc) (nothing left for the noise to explain): the limit is
      finite, largest at sigma^2 = (1/r) sum_i (u_i'yc)^2 / s_i^2; a local supremum when
      d log p / d noise^2 <= 0 there.

    If an edge is a local supremum and at least as high as the interior maximum (to
    rounding), the result is that limit with ``converged=False`` and ``limit`` set, and a
    :class:`~mapreg.errors.ConvergenceWarning` says so (``strict=True``: raises
    :class:`~mapreg.errors.ConvergenceError`).

    Raises
    ------
    ValueError
        n < 3; every column of X constant (sigma is not identifiable); y constant, or y
        fitted exactly (least-squares residual at rounding level) while n - 1 > rank(Xc):
        then the evidence increases without bound as noise -> 0.
    """
    sp = _spectrum(X, y)
    n = sp.n
    if n < 3:
        raise ValueError(f"maximize_evidence needs at least 3 samples; got n={n}")
    sigma0 = check_positive("sigma0", sigma0)
    if noise0 is not None:
        noise0 = check_positive("noise0", noise0)
    strict = check_bool("strict", strict)
    _check_bounded(sp)

    sd_y = math.sqrt(sp.yc2 / n)
    x_scale = math.sqrt(float(sp.s2.sum()) / n)
    a0, b0 = math.log(sd_y / x_scale), math.log(sd_y)
    noise0 = sd_y if noise0 is None else noise0
    starts = [(math.log(sigma0), math.log(noise0))] + [
        (a0 + math.log(fa), b0 + math.log(fb)) for fa in (0.03, 0.3, 1.0) for fb in (0.03, 0.3, 1.0)
    ]
    lo, hi = np.array([a0 - _BOX, b0 - _BOX]), np.array([a0 + _BOX, b0 + _BOX])
    x, f = min((_descend(np.clip(p0, lo, hi), sp, lo, hi) for p0 in starts), key=lambda r: r[1])
    _, g, _, scale = _neg_and_grad(x, sp)
    log_ev = -float(f)
    grad = float(np.abs(g).max())
    edge = _best_edge(sp, log_ev)
    if edge is not None:
        limit, sigma, noise, value, why = edge
        report_nonconvergence(why, strict)
        lam = math.inf if sigma == 0.0 else 0.0
        return EvidenceResult(sigma, noise, lam, value, False, limit, 0.0)
    sigma, noise = math.exp(x[0]), math.exp(x[1])
    at_box = bool(np.any((x == lo) | (x == hi)))
    converged = not at_box and bool(np.all(np.abs(g) <= 1e-8 * scale))
    if not converged:
        where = " at the edge of the search box" if at_box else ""
        report_nonconvergence(
            f"evidence maximisation did not converge{where}: sigma = {sigma:.6g}, noise = "
            f"{noise:.6g}, gradient in (log sigma, log noise) = ({g[0]:.3e}, {g[1]:.3e}), "
            f"term scales ({scale[0]:.3e}, {scale[1]:.3e}), tolerance 1e-8 relative",
            strict,
        )
    return EvidenceResult(sigma, noise, noise**2 / sigma**2, log_ev, converged, None, grad)


def _check_bounded(sp: _Spectrum) -> None:
    """Raise ValueError where the evidence has no maximum at all (see maximize_evidence)."""
    if sp.r == 0:
        raise ValueError(
            "maximize_evidence needs a column of X that varies: every column is constant "
            "(after removing the mean), so the prior scale sigma does not enter the evidence "
            "and cannot be estimated"
        )
    if sp.yc2 == 0.0:  # exact: centring sets a y constant to working precision to 0
        raise ValueError(
            "the evidence increases without bound as noise -> 0 and sigma -> 0: y is "
            "constant, so there is nothing for the weights or the noise to explain"
        )
    resid = math.sqrt(sp.rest)
    if sp.dof > 0 and resid <= sp.resid_floor:
        raise ValueError(
            f"the evidence increases without bound as noise -> 0: y is fitted exactly by a "
            f"linear function of X (least-squares residual {resid:.3e} is at the rounding "
            f"level {sp.resid_floor:.3e} of the data, with n - 1 - rank(Xc) = {sp.dof} "
            f"dimensions left for the noise); add noise to y or use a fixed noise"
        )


def _best_edge(sp: _Spectrum, interior: float):
    """The edge of (sigma, noise) space that beats the interior maximum, or None."""
    n, tol = sp.n, max(sp.n, 1) * EPS * (abs(interior) + sp.n)
    cands = []
    # sigma -> 0: log p -> const - 1/2 [(n-1) log v + ||yc||^2 / v], best at v = ||yc||^2/(n-1)
    v = sp.yc2 / (n - 1)
    if float((sp.s2 * sp.z2).sum()) <= v * float(sp.s2.sum()):
        value = _const(n) - 0.5 * (n - 1) * (math.log(v) + 1.0)
        cands.append((value, "sigma -> 0", 0.0, math.sqrt(v), (
            "the evidence has no maximum at sigma > 0: it increases towards sigma -> 0 "
            "(lambda -> inf, w = 0), i.e. the data show no linear signal that the prior "
            f"explains better than noise; returning that limit: sigma = 0, noise = "
            f"{math.sqrt(v):.6g} (log evidence {value:.10g} >= best interior {interior:.10g})")))
    if sp.dof == 0:
        # noise -> 0: log p -> const - 1/2 sum_i [log(sigma^2 s_i^2) + z_i / (sigma^2 s_i^2)]
        sig2 = float((sp.z2 / sp.s2).sum()) / sp.r
        vi = sig2 * sp.s2
        if float(((vi - sp.z2) / vi**2).sum()) >= 0.0:
            value = _const(n) - 0.5 * float((np.log(vi) + sp.z2 / vi).sum())
            cands.append((value, "noise -> 0", math.sqrt(sig2), 0.0, (
                "the evidence has no maximum at noise > 0: with n - 1 = rank(Xc) every y is "
                "interpolated, and the evidence increases towards noise -> 0 (lambda -> 0, "
                f"the minimum-norm interpolant); returning that limit: noise = 0, sigma = "
                f"{math.sqrt(sig2):.6g} (log evidence {value:.10g} >= best interior "
                f"{interior:.10g})")))
    cands = [c for c in cands if c[0] >= interior - tol]
    if not cands:
        return None
    value, limit, sigma, noise, why = max(cands, key=lambda c: c[0])
    return limit, sigma, noise, value, why
