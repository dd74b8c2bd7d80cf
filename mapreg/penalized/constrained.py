"""Constrained least squares and its Lagrange multiplier: the other half of the Lagrangian view.

With an unpenalized intercept c and r = y - Xw - c::

    L2 ball:  minimise 1/2 ||r||^2  subject to  ||w||_2^2 <= theta
    L1 ball:  minimise 1/2 ||r||^2  subject to  ||w||_1   <= t

KKT: at the solution w*, grad L(w*) + mu * grad g(w*) = 0 with mu >= 0 and
mu * (g(w*) - radius) = 0, where g(w) = 1/2 ||w||^2 (radius theta/2) or ||w||_1 (radius t).
The multiplier mu *is* the canonical lambda of the penalized problem
1/2 ||r||^2 + lam P(w) that has the same solution: theta(lam) = ||w*(lam)||_2^2 and
t(lam) = ||w*(lam)||_1 (see :func:`theta_from_lam`, :func:`lam_from_theta`).

Solvers (no Pyro, no use of :mod:`mapreg.penalized`):

* L2: the solution is the ridge point on the sphere ||w||^2 = theta, found from the SVD of
  the centred X by solving the secular equation sum_i (s_i z_i / (s_i^2 + mu))^2 = theta for
  mu >= 0 (monotone, bracketed, bisection to machine precision; the trust-region subproblem).
  The ball is inactive (mu = 0 exactly) when theta is at least ||w_LS||^2 up to the rounding
  of ||w_LS||^2 itself (see :func:`constrained_l2`), so theta = ||w_LS||^2 computed by any
  backward-stable least-squares solver gives mu = 0, not a multiplier of 1e-14.
* L1: accelerated projected gradient (FISTA with restarts) using the exact Euclidean
  projection onto the L1 ball (sort-based, Duchi et al. 2008), then the KKT system on the
  found support and signs, X_S'X_S w_S + mu s = X_S'y, s'w_S = t, solved exactly for (w_S, mu).
  A multiplier below the gradient's resolution (solver tolerance plus rounding) is mu = 0.

Both centre the data with :func:`mapreg._centring.centre` (two passes, constant columns
exactly 0), so uncentred columns and offsets in y cost no accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .._centring import EPS, centre, centred_svd
from .._results import FrozenResult
from .._validation import (
    check_bool,
    check_choice,
    check_data,
    check_positive,
    check_positive_int,
    check_vector,
)
from ..errors import report_nonconvergence

NORMS = ("l2", "l1")


@dataclass(frozen=True, eq=False)
class ConstrainedResult(FrozenResult):
    """Solution of a norm-constrained least-squares problem (frozen; ``coef`` reads a copy).

    Attributes
    ----------
    coef, intercept
        The minimiser (w, c).
    norm, radius
        ``"l2"`` with radius theta (||w||^2 <= theta), ``"l1"`` with radius t or ``"linf"``
        with radius R (||w||_inf <= R, :func:`constrained_linf`).
    multiplier
        The KKT multiplier mu >= 0 (exactly 0 when the constraint is inactive, including a
        radius equal to the least-squares norm up to rounding); equal to the canonical
        lambda of the penalized problem with the same solution.
    active
        Whether the constraint binds (mu > 0; w* is then on the boundary).
    kkt_residual
        max |grad L + mu grad g| over the weights (stationarity), in the units of X'r.
    objective
        1/2 ||y - Xw - c||^2 at the solution.
    iterations, converged, wall_time
        Solver bookkeeping.
    """

    coef: torch.Tensor
    intercept: float
    norm: str
    radius: float
    multiplier: float
    active: bool
    kkt_residual: float
    objective: float
    iterations: int
    converged: bool
    wall_time: float = field(compare=False)  # not part of the answer


# ----------------------------------------------------------------------- projections


def project_l2_ball(v: torch.Tensor, theta: float) -> torch.Tensor:
    """Euclidean projection onto {w : ||w||_2^2 <= theta}: v * min(1, sqrt(theta) / ||v||)."""
    v = check_vector("v", v)
    theta = check_positive("theta", theta)
    nv = float(v.norm())
    return v if nv * nv <= theta else v * (math.sqrt(theta) / nv)


def project_l1_ball(v: torch.Tensor, t: float) -> torch.Tensor:
    """Euclidean projection onto {w : ||w||_1 <= t} (Duchi, Shalev-Shwartz, Singer, Chandra 2008).

    If ||v||_1 > t the projection is soft-thresholding at the tau for which the result has
    L1 norm exactly t: tau = (sum of the k largest |v_i| - t) / k for the largest valid k.
    The result's L1 norm is t to a few ulps of t, also for t << ||v||_1.
    """
    return _project_l1(check_vector("v", v), check_positive("t", t))


def _project_l1(v: torch.Tensor, t: float) -> torch.Tensor:
    a = v.abs()
    if float(a.sum()) <= t:
        return v.clone()
    u, _ = torch.sort(a, descending=True)
    css = torch.cumsum(u, 0)
    k = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    keep = u - (css - t) / k > 0
    keep[0] = True  # u_1 - (u_1 - t) = t > 0: always kept (for t << u_1 it rounds to 0)
    rho = int(keep.nonzero().max())
    # The kept entries u_i - tau are formed as (u_i - u_rho) + delta with
    # delta = u_rho - tau = (t - sum_{i <= rho} (u_i - u_rho)) / (rho + 1): differences of
    # nearby values plus a share of t, accurate relative to t. tau = (css - t) / k itself
    # cancels when t << |v| (a radius of 1e-12 came out 1e-5 off, and the ball looked
    # inactive); this way the result's L1 norm is t to a few ulps.
    top = u[rho]
    delta = (t - float((u[: rho + 1] - top).sum())) / (rho + 1)
    return torch.sign(v) * torch.clamp(a - top + delta, min=0.0)


# --------------------------------------------------------------------------- solvers


def constrained_l2(X, y, theta: float) -> ConstrainedResult:
    """minimise 1/2 ||y - Xw - c||^2 subject to ||w||_2^2 <= theta (exact, via the SVD).

    With the SVD Xc = U diag(s) V' of the centred X and z = U'yc, the least-squares point is
    w_LS = V (z / s) (the minimum-norm one when n <= d or Xc is rank deficient). If
    ||w_LS||^2 <= theta the ball is inactive: w = w_LS, mu = 0. Otherwise
    w(mu) = V diag(s / (s^2 + mu)) z with mu > 0 the root of ||w(mu)||^2 = theta
    (bisection to 4 eps relative, then w scaled onto the sphere).

    "Inactive" is decided with the rounding of ||w_LS||^2 taken into account: theta counts
    as >= ||w_LS||^2 when ||w_LS||^2 <= theta (1 + tau), with tau the first-order bound on the
    relative error of ||w_LS||^2 under a backward error of the centred data of size
    dX = max(n, d) eps s_max in Xc and dy = max(n, d) eps ||yc|| in yc (what the SVD, the
    centring and any backward-stable least-squares solver commit)::

        tau = 2 [ (dy + 2 dX ||w_LS||) / s_min + dX ||r_LS|| / s_min^2 ] / ||w_LS||

    (the perturbation bound of least squares -- Wedin; Higham, *Accuracy and Stability*,
    Thm 20.1 -- with the factor 2 of the square and a factor 2 on dX for the minimum-norm
    case; s_min is the smallest kept singular value, r_LS the least-squares residual). So
    theta = ||w_LS||^2 computed by any such solver gives mu = 0 exactly and ``active=False``
    (a multiplier of 1e-14 would be rounding, not a penalty). In that band w_LS is scaled onto
    the sphere when it lies a rounding error outside, so the result is always feasible.
    """
    X, y = check_data(X, y)
    theta = check_positive("theta", theta)
    start = time.perf_counter()
    n, d = X.shape
    Xc, yc, xm, ym = centre(X, y)
    U, s, Vh = centred_svd(Xc)
    z = U.T @ yc

    def sq_norm(mu: float) -> float:
        return float(((s * z / (s * s + mu)) ** 2).sum())

    w_ls = Vh.T @ (z / s)
    ls2 = float(w_ls @ w_ls)
    iterations, converged = 0, True
    if ls2 <= theta * (1.0 + _ls_norm_tolerance(Xc, yc, U, s, z, w_ls)):
        mu, w = 0.0, w_ls
        if ls2 > theta:  # a rounding error outside the ball: land on it
            w = w * math.sqrt(theta / ls2)
    else:
        lo, hi = 0.0, max(float((s * z).abs().max()) / math.sqrt(theta), 1.0)
        while sq_norm(hi) > theta:
            hi *= 2.0
        converged = False
        for iterations in range(1, 2100):  # noqa: B007 (hi spans at most 2^2100 ulps)
            mid = 0.5 * (lo + hi)
            if sq_norm(mid) > theta:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 4 * EPS * hi:
                converged = True
                break
        mu = 0.5 * (lo + hi)
        w = Vh.T @ (s * z / (s * s + mu))
        w = w * math.sqrt(theta / float(w @ w))  # land exactly on the sphere
    c = float(ym - xm @ w)
    r = yc - Xc @ w
    kkt = float((-(Xc.T @ r) + mu * w).abs().max())
    wall = time.perf_counter() - start
    return ConstrainedResult(w, c, "l2", theta, mu, mu > 0, kkt, 0.5 * float(r @ r),
                             iterations, converged, wall)


def _ls_norm_tolerance(Xc, yc, U, s, z, w_ls) -> float:
    """tau: the relative rounding uncertainty of ||w_LS||^2 (see :func:`constrained_l2`)."""
    w_norm = float(w_ls.norm())
    if w_norm == 0.0:  # yc = 0 or orthogonal to range(Xc): w_LS = 0 exactly, any theta > 0 holds it
        return 0.0
    p = max(Xc.shape) * EPS
    s_max, s_min = float(s.max()), float(s.min())
    dX, dy = p * s_max, p * float(yc.norm())
    r_norm = float((yc - U @ z).norm())
    return 2.0 * ((dy + 2.0 * dX * w_norm) / s_min + dX * r_norm / s_min**2) / w_norm


def constrained_l1(
    X, y, t: float, *, tol: float = 1e-12, max_iter: int = 100_000, strict: bool = False
) -> ConstrainedResult:
    """minimise 1/2 ||y - Xw - c||^2 subject to ||w||_1 <= t.

    FISTA with adaptive restart and the exact L1-ball projection, step 1/||Xc||_2^2, until
    the projected-gradient residual is below ``tol`` (relative); then the KKT system on the
    identified support S and signs s is solved exactly for (w_S, mu)::

        [Xc_S'Xc_S  s] [w_S]   [Xc_S'yc]
        [s'         0] [mu ] = [   t   ]

    and kept if the signs hold, mu >= 0 and |Xc_j'r| <= mu off the support (to the gradient's
    rounding). The multiplier is mu = ||Xc'r||_inf -- at the solution |Xc_j'r| = mu on the
    support and <= mu off it -- unless that is below the gradient's resolution::

        zero_level = sqrt(d) tol ||Xc'yc||_inf + (n + d) eps ||Xc||_F (||yc|| + ||Xc||_F ||w||)

    (an interior stop leaves ||g||_inf <= ||g||_2 <= sqrt(d) times the stopping residual;
    the second term bounds the rounding of g = -Xc'(yc - Xc w)), in which case mu = 0 and
    the ball is inactive: t at or within rounding above the smallest L1 norm of a
    least-squares solution gives mu = 0, not a multiplier made of rounding.

    Inactive ball (mu = 0): a least-squares solution with ||w||_1 < t is returned. When
    n <= d (or Xc is rank deficient) least squares is not unique: every interpolating point
    inside the ball is optimal, the one returned is where FISTA started from 0 stops (not
    in general the minimum-L1 or minimum-L2 one), and only the objective, the residual and
    mu = 0 are determined. The ball binds iff t is below the smallest L1 norm of a
    least-squares solution (the lasso limit t(lam -> 0+)).
    """
    X, y = check_data(X, y)
    t = check_positive("t", t)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    start = time.perf_counter()
    Xc, yc, xm, ym = centre(X, y)
    d = X.shape[1]
    L = float(torch.linalg.svdvals(Xc if Xc.shape[0] >= d else Xc.T)[0]) ** 2  # tall: see svd
    if L == 0.0:  # every column constant (centred to exactly 0): w = 0 is optimal
        w = torch.zeros(d, dtype=X.dtype)
        return _l1_result(Xc, yc, xm, ym, w, t, 0, True, start, tol)
    step = 1.0 / L
    w = torch.zeros(d, dtype=X.dtype)
    v, w_prev, k_mom = w.clone(), w.clone(), 1.0
    scale = max(float((Xc.T @ yc).abs().max()), 1e-300)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        g = -(Xc.T @ (yc - Xc @ v))
        w_new = _project_l1(v - step * g, t)
        # residual of the projected-gradient fixed point, in gradient units
        res = float((w_new - v).abs().max()) / step
        k_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * k_mom * k_mom))
        if float((v - w_new) @ (w_new - w_prev)) > 0:  # restart momentum (O'Donoghue-Candes)
            k_next, v = 1.0, w_new
        else:
            v = w_new + ((k_mom - 1.0) / k_next) * (w_new - w_prev)
        w_prev, w, k_mom = w, w_new, k_next
        if res <= 1e-3 * scale and it % 10 == 0:
            polished = _polish_l1(Xc, yc, w, t, _grad_rounding(Xc, yc, w))
            if polished is not None:
                w, converged = polished, True
                break
        if res <= tol * scale:
            converged = True
            break
    result = _l1_result(Xc, yc, xm, ym, w, t, it, converged, start, tol)
    if not result.converged:
        report_nonconvergence(
            f"L1-constrained solver did not converge in {it} iterations: KKT residual "
            f"{result.kkt_residual:.3e}",
            strict,
        )
    return result


def _grad_rounding(Xc, yc, w) -> float:
    """Rounding bound of g = -Xc'(yc - Xc w): (n + d) eps ||Xc||_F (||yc|| + ||Xc||_F ||w||)."""
    fro = float(torch.linalg.matrix_norm(Xc))
    return sum(Xc.shape) * EPS * fro * (float(yc.norm()) + fro * float(w.norm()))


def _polish_l1(Xc, yc, w, t, rounding):
    """Exact KKT solve on the support and signs of ``w``; None if it is not consistent."""
    S = (w != 0).nonzero().squeeze(1)
    if S.numel() == 0:
        return None
    s = torch.sign(w[S])
    XS = Xc[:, S]
    m = S.numel()
    K = torch.zeros(m + 1, m + 1, dtype=w.dtype)
    K[:m, :m] = XS.T @ XS
    K[:m, m] = s
    K[m, :m] = s
    rhs = torch.cat([XS.T @ yc, torch.tensor([t], dtype=w.dtype)])
    try:
        sol = torch.linalg.solve(K, rhs)
    except RuntimeError:
        return None
    wS, mu = sol[:m], float(sol[m])
    if mu < 0 or not torch.equal(torch.sign(wS), s):
        return None
    out = torch.zeros_like(w)
    out[S] = wS
    corr = (Xc.T @ (yc - Xc @ out)).abs()
    off = torch.ones_like(w, dtype=torch.bool)
    off[S] = False
    if off.any() and float(corr[off].max()) > mu + rounding:
        return None
    return out


def _l1_result(Xc, yc, xm, ym, w, t, it, converged, start, tol):
    r = yc - Xc @ w
    g = -(Xc.T @ r)
    mu = float(g.abs().max())
    # the zero level of the multiplier (see constrained_l1): a least-squares point that
    # happens to sit on the boundary has a gradient of this size, and that is mu = 0
    scale = float((Xc.T @ yc).abs().max())
    if mu <= math.sqrt(Xc.shape[1]) * tol * scale + _grad_rounding(Xc, yc, w):
        mu = 0.0
    if mu > 0:
        # w != 0 is exact here: off-support entries are exact zeros of the projection's clamp
        sub = torch.where(w != 0, (g + mu * torch.sign(w)).abs(),
                          torch.clamp(g.abs() - mu, min=0.0))
    else:
        sub = g.abs()
    kkt = float(sub.max())
    c = float(ym - xm @ w)
    return ConstrainedResult(w, c, "l1", t, mu, mu > 0, kkt, 0.5 * float(r @ r), it, converged,
                             time.perf_counter() - start)


def solve_constrained(X, y, norm: str, radius: float, **kwargs) -> ConstrainedResult:
    """Dispatch: ``norm="l2"`` (radius theta = bound on ||w||^2) or ``"l1"`` (radius t)."""
    norm = check_choice("norm", norm, NORMS)
    allowed = () if norm == "l2" else ("tol", "max_iter", "strict")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        takes = f"the options {list(allowed)}" if allowed else "no options"
        raise ValueError(f"the {norm} solver takes {takes}; got {unknown}")
    if norm == "l2":
        return constrained_l2(X, y, radius)
    return constrained_l1(X, y, radius, **kwargs)


# ------------------------------------------------------------- theta <-> lambda <-> prior

_PENALTY_OF_NORM = {"l2": "ridge", "l1": "lasso"}


def radius_from_lam(X, y, lam: float, norm: str) -> float:
    """The constraint radius whose solution is the penalized optimum at ``lam``.

    l2: theta(lam) = ||w*(lam)||_2^2 with w*(lam) the ridge optimum of
    1/2 ||r||^2 + (lam/2) ||w||^2; l1: t(lam) = ||w*(lam)||_1 for the lasso
    1/2 ||r||^2 + lam ||w||_1. Both decrease strictly in lam while w* != 0 (for the lasso:
    while lam < lam_max, where t = 0).
    """
    from .linear import solve_penalized

    norm = check_choice("norm", norm, NORMS)
    lam = check_positive("lam", lam)
    w = solve_penalized(X, y, _PENALTY_OF_NORM[norm], lam).coef
    return float(w @ w) if norm == "l2" else float(w.abs().sum())


def lam_from_radius(X, y, radius: float, norm: str) -> float:
    """The canonical lambda equivalent to the constraint ``||w||^2 <= theta`` (l2) or
    ``||w||_1 <= t`` (l1): the KKT multiplier of the constrained solution.

    It is 0 when the constraint does not bind (a least-squares solution lies inside the
    ball: theta >= ||w_OLS||^2, or for n <= d theta >= ||w_min-norm||^2; t >= the smallest
    L1 norm of a least-squares solution), which corresponds to no penalty, i.e. a flat prior.
    """
    return solve_constrained(X, y, norm, radius).multiplier


def constrained_linf(X, y, radius: float, *, tol: float = 1e-12,
                     strict: bool = False) -> ConstrainedResult:
    """minimise 1/2 ||y - Xw - c||^2 subject to ||w||_inf <= R (a box), intercept c free.

    The point full-batch AdamW converges to on a convex loss with R = 1/weight_decay (Xie &
    Li, ICML 2024). The data are centred (c then drops out), and the box-constrained least
    squares problem is solved by scipy's bounded-variable least squares
    (``scipy.optimize.lsq_linear(method="bvls")``, an active-set method that ends with an
    exact least-squares solve on the free coordinates).

    KKT: with g = -Xc'(yc - Xc w), g_j = 0 where |w_j| < R, and g_j sign(w_j) <= 0 where
    |w_j| = R (the loss would decrease only by leaving the box). ``kkt_residual`` is the
    largest violation, max_j of |g_j| (free) or max(0, g_j sign(w_j)) (at the bound), in the
    units of X'r; ``converged`` is whether it is at most ``tol`` times the gradient's scale
    ||Xc'yc||_inf plus the rounding of g, (n + d) eps ||Xc||_F (||yc|| + ||Xc||_F ||w||).
    The multiplier of the constraint ||w||_inf <= R is mu = ||g||_1 (the l1 norm is the
    dual of the l_inf norm; free coordinates contribute their residual only): the same
    point solves 1/2 ||r||^2 + mu ||w||_inf. mu below the gradient's resolution is 0.
    """
    import numpy as np
    from scipy.optimize import lsq_linear

    X, y = check_data(X, y)
    radius = check_positive("radius", radius)
    tol = check_positive("tol", tol)
    strict = check_bool("strict", strict)
    start = time.perf_counter()
    Xc, yc, xm, ym = centre(X, y)
    d = X.shape[1]
    sol = lsq_linear(Xc.numpy(), yc.numpy(), bounds=(-radius, radius), method="bvls",
                     tol=tol, max_iter=max(100, 10 * d))
    w = torch.as_tensor(np.clip(sol.x, -radius, radius), dtype=X.dtype)
    r = yc - Xc @ w
    g = -(Xc.T @ r)
    at_bound = w.abs() == radius
    viol = torch.where(at_bound, torch.clamp(g * torch.sign(w), min=0.0), g.abs())
    kkt = float(viol.max())
    scale = float((Xc.T @ yc).abs().max())
    rounding = _grad_rounding(Xc, yc, w)
    converged = kkt <= tol * scale + rounding
    mu = float(g[at_bound].abs().sum()) if bool(at_bound.any()) else 0.0
    if mu <= math.sqrt(d) * (tol * scale + rounding):
        mu = 0.0
    if not converged:
        report_nonconvergence(
            f"box-constrained least squares did not converge: KKT residual {kkt:.3e} > "
            f"tol * ||Xc'yc||_inf + rounding = {tol * scale + rounding:.3e}", strict)
    c = float(ym - xm @ w)
    return ConstrainedResult(w, c, "linf", radius, mu, mu > 0, kkt, 0.5 * float(r @ r),
                             int(sol.nit), converged, time.perf_counter() - start)
