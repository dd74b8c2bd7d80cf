"""Exact penalized solvers: ridge (closed form) and lasso (coordinate descent, homotopy).

Plain torch; this module never imports Pyro, so it is an independent path to the optimum
that the MAP engine reaches through Pyro's log joint. Both minimise the canonical
objective with an unpenalized intercept c::

    ridge:  1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2
    lasso:  1/2 ||y - Xw - c||^2 + lam ||w||_1

(scikit-learn's ``Ridge(alpha)`` is the ridge with lam = alpha; its ``Lasso(alpha)`` is the
lasso with lam = n * alpha; see :mod:`mapreg.conventions`.) Because c is unpenalized, its
optimum is c = mean(y) - mean(X) . w, so both solvers work on centred data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ._validation import (
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from .errors import report_nonconvergence

PENALTIES = ("ridge", "lasso")


@dataclass(frozen=True)
class PenalizedResult:
    """The optimum of a penalized least-squares problem.

    Attributes
    ----------
    coef, intercept
        The minimiser (w, c).
    penalty
        ``"ridge"`` or ``"lasso"``.
    lam
        lambda of the canonical objective (see the module docstring).
    objective
        The canonical objective at (coef, intercept).
    duality_gap
        Lasso: primal minus dual objective at the returned point (>= 0, 0 at the optimum);
        ridge: the largest absolute gradient entry (the closed form's residual).
    lam_max
        Lasso: the smallest lam for which w = 0 (max_j |x_j . (y - mean y)| with centred
        columns); ridge: ``inf``.
    iterations
        Coordinate-descent sweeps (0 for the closed form).
    converged
        Whether the duality gap reached its tolerance.
    wall_time
        Seconds spent in the solver.
    method
        ``"closed-form"`` (ridge), ``"cd"`` (lasso by coordinate descent) or
        ``"cd+homotopy"`` (coordinate descent was slow, and the homotopy path finished it).
    homotopy_steps
        Segments of the lasso path followed by the homotopy (0 if it did not run).
    """

    coef: torch.Tensor
    intercept: float
    penalty: str
    lam: float
    objective: float
    duality_gap: float
    lam_max: float
    iterations: int
    converged: bool
    wall_time: float
    method: str = "cd"
    homotopy_steps: int = 0


def canonical_objective(X, y, coef, intercept, penalty: str, lam: float) -> float:
    """1/2 ||y - Xw - c||^2 + lam * P(w), P = 1/2 ||w||^2 (ridge) or ||w||_1 (lasso)."""
    penalty = check_choice("penalty", penalty, PENALTIES)
    X, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.as_tensor(coef, dtype=torch.float64)
    r = y - X @ w - float(intercept)
    pen = 0.5 * float(w @ w) if penalty == "ridge" else float(w.abs().sum())
    return 0.5 * float(r @ r) + lam * pen


def _center(X: torch.Tensor, y: torch.Tensor):
    xm, ym = X.mean(0), y.mean()
    return X - xm, y - ym, xm, ym


def ridge(X, y, lam: float) -> PenalizedResult:
    """Ridge regression in closed form.

    Minimises 1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2 over (w, c), c unpenalized::

        w = (Xc' Xc + lam I)^-1 Xc' yc        (n >= d, Cholesky)
        w = Xc' (Xc Xc' + lam I)^-1 yc        (n < d, the same w by the push-through identity)
        c = mean(y) - mean(X) . w

    with Xc, yc the centred data. ``lam = 0`` gives least squares (the minimum-norm
    solution when it is not unique).
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    start = time.perf_counter()
    Xc, yc, xm, ym = _center(X, y)
    n, d = X.shape
    if lam == 0.0:
        w = torch.linalg.lstsq(Xc, yc[:, None], driver="gelsd").solution[:, 0]
    elif n >= d:
        L = torch.linalg.cholesky(Xc.T @ Xc + lam * torch.eye(d, dtype=X.dtype))
        w = torch.cholesky_solve((Xc.T @ yc)[:, None], L)[:, 0]
    else:
        L = torch.linalg.cholesky(Xc @ Xc.T + lam * torch.eye(n, dtype=X.dtype))
        w = Xc.T @ torch.cholesky_solve(yc[:, None], L)[:, 0]
    c = float(ym - xm @ w)
    grad = -(Xc.T @ (yc - Xc @ w)) + lam * w
    wall = time.perf_counter() - start
    obj = canonical_objective(X, y, w, c, "ridge", lam)
    return PenalizedResult(
        w, c, "ridge", lam, obj, float(grad.abs().max()), float("inf"), 0, True, wall,
        "closed-form",
    )


def lasso_lam_max(X, y) -> float:
    """The smallest lam at which the lasso solution is w = 0: max_j |Xc_j . yc|."""
    X, y = check_data(X, y)
    Xc, yc, _, _ = _center(X, y)
    return float((Xc.T @ yc).abs().max())


def lasso(
    X,
    y,
    lam: float,
    *,
    tol: float = 1e-12,
    max_sweeps: int = 100_000,
    homotopy_after: int = 100,
    strict: bool = False,
) -> PenalizedResult:
    """Lasso by cyclic coordinate descent with a duality-gap stop.

    Minimises the canonical objective 1/2 ||y - Xw - c||^2 + lam ||w||_1 over (w, c),
    c unpenalized (scikit-learn's ``Lasso(alpha)`` minimises (1/2n)||r||^2 + alpha ||w||_1,
    the same problem at lam = n * alpha).

    On centred data, each coordinate update is the soft-thresholding
    w_j <- S(w_j + x_j'r / ||x_j||^2, lam / ||x_j||^2). Sweeps alternate between all
    coordinates and the current support (as glmnet does). The dual point
    theta = r * min(1, lam / ||Xc' r||_inf) gives the gap
    P(w) - D(theta) with D(theta) = 1/2 ||yc||^2 - 1/2 ||yc - theta||^2; the solver stops when
    the gap is at most ``tol * 1/2 ||yc||^2``. Finally the point is *polished*: the linear
    system of the optimality conditions on the found support and signs is solved exactly,
    and kept if it preserves the signs and does not increase the gap.

    Coordinate descent needs very many sweeps on ill-conditioned problems (small lam with
    n < d, where the solution nearly interpolates). If it has not met the gap after
    ``homotopy_after`` sweeps, the exact homotopy (LARS-lasso) path from lam_max down to
    lam is followed instead (see :func:`_homotopy`); its end point is accepted under the
    same duality-gap test, and coordinate descent resumes from the better point otherwise.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    lam : float
        lambda > 0. For lam >= :func:`lasso_lam_max` the solution is exactly w = 0. (At
        lam = 0 the problem is least squares, where the duality gap above is no
        certificate: use ``ridge(X, y, 0.0)``.)
    tol : float
        Relative duality-gap tolerance.
    max_sweeps : int
        Maximum number of coordinate-descent sweeps.
    homotopy_after : int
        Sweeps of coordinate descent before the homotopy path is tried (the sweeps used
        count towards ``max_sweeps``).
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the gap
        tolerance is not reached.
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    if lam == 0.0:
        raise ValueError(
            "lam must be a positive finite number for the lasso (lam = 0 is least squares: "
            "use ridge(X, y, 0.0)); got 0.0"
        )
    tol = check_positive("tol", tol)
    max_sweeps = check_positive_int("max_sweeps", max_sweeps)
    homotopy_after = check_positive_int("homotopy_after", homotopy_after)
    start = time.perf_counter()
    Xc, yc, xm, ym = _center(X, y)
    n, d = X.shape
    lam_max = float((Xc.T @ yc).abs().max())
    target = tol * max(0.5 * float(yc @ yc), 1e-300)
    w = torch.zeros(d, dtype=X.dtype)
    sweeps, steps, method = 0, 0, "cd"
    gap = _gap(Xc, yc, w, lam)
    if lam < lam_max and gap > target:
        w, sweeps, gap = _coordinate_descent(
            Xc, yc, lam, target, min(max_sweeps, homotopy_after), w
        )
        if gap > target and sweeps < max_sweeps:
            path, steps = _homotopy(Xc, yc, lam, max_steps=20 * min(n, d) + 100)
            method = "cd+homotopy"
            if path is not None:
                pgap = _gap(Xc, yc, path, lam)
                if pgap < gap:
                    w, gap = path, pgap
            if gap > target:
                w, more, gap = _coordinate_descent(Xc, yc, lam, target, max_sweeps - sweeps, w)
                sweeps += more
        polished = _polish(Xc, yc, w, lam)
        if polished is not None:
            pgap = _gap(Xc, yc, polished, lam)
            if pgap <= max(gap, target):
                w, gap = polished, pgap
    c = float(ym - xm @ w)
    wall = time.perf_counter() - start
    converged = gap <= target
    if not converged:
        report_nonconvergence(
            f"lasso coordinate descent did not converge in {sweeps} sweeps: duality gap "
            f"{gap:.3e} > tolerance {target:.3e}",
            strict,
        )
    obj = canonical_objective(X, y, w, c, "lasso", lam)
    return PenalizedResult(
        w, c, "lasso", lam, obj, gap, lam_max, sweeps, converged, wall, method, steps
    )


def _gap(Xc: torch.Tensor, yc: torch.Tensor, w: torch.Tensor, lam: float) -> float:
    r = yc - Xc @ w
    primal = 0.5 * float(r @ r) + lam * float(w.abs().sum())
    corr = float((Xc.T @ r).abs().max())
    theta = r * (min(1.0, lam / corr) if corr > 0 else 1.0)
    diff = yc - theta
    dual = 0.5 * float(yc @ yc) - 0.5 * float(diff @ diff)
    return max(primal - dual, 0.0)


def _coordinate_descent(Xc, yc, lam, target, max_sweeps, w0):
    """Cyclic coordinate descent from ``w0``: (w, sweeps, gap) once gap <= target or out of
    sweeps."""
    n, d = Xc.shape
    norms = (Xc * Xc).sum(0)
    cols = [Xc[:, j] for j in range(d)]
    w = w0.tolist()
    r = yc - Xc @ w0
    sweeps = 0
    gap = float("inf")

    def sweep(indices) -> float:
        biggest = 0.0
        for j in indices:
            nj = float(norms[j])
            if nj == 0.0:
                continue
            old = w[j]
            z = old + float(cols[j] @ r) / nj
            t = lam / nj
            new = z - t if z > t else (z + t if z < -t else 0.0)
            if new != old:
                r.sub_(cols[j], alpha=new - old)
                w[j] = new
                biggest = max(biggest, abs(new - old) * nj**0.5)
        return biggest

    all_idx = range(d)
    prev_signs = None
    while sweeps < max_sweeps:
        sweep(all_idx)
        sweeps += 1
        active = [j for j in all_idx if w[j] != 0.0]
        # iterate on the active set (at most 20 sweeps) until it stops moving, then check
        for _ in range(20):
            if not active or sweeps >= max_sweeps:
                break
            step = sweep(active)
            sweeps += 1
            if step <= 1e-10 * max(float(yc.norm()), 1e-300):
                break
        wt = torch.tensor(w, dtype=Xc.dtype)
        gap = _gap(Xc, yc, wt, lam)
        if gap <= target:
            break
        signs = torch.sign(wt)
        if prev_signs is not None and torch.equal(signs, prev_signs):
            # support and signs have settled: try the exact solve on them
            polished = _polish(Xc, yc, wt, lam)
            if polished is not None:
                pgap = _gap(Xc, yc, polished, lam)
                if pgap <= target:
                    return polished, sweeps, pgap
        prev_signs = signs
    return torch.tensor(w, dtype=Xc.dtype), sweeps, gap


def _homotopy(Xc, yc, lam, max_steps: int) -> tuple[torch.Tensor | None, int]:
    """The exact lasso solution at ``lam`` by following its path from lam_max (LARS-lasso).

    On centred data the solution w*(mu) of 1/2 ||yc - Xc w||^2 + mu ||w||_1 is piecewise
    linear in mu. On a segment with active set A and signs s the optimality conditions
    Xc_A'(yc - Xc_A w_A) = mu s give

        w_A(mu) = G^-1 (Xc_A' yc - mu s),   G = Xc_A' Xc_A,

    and every inactive correlation x_j'r(mu) is linear in mu as well. Starting at
    mu = lam_max with A = argmax_j |x_j'yc|, each segment ends at the largest mu' < mu where
    an inactive |x_j'r| reaches mu' (j joins, with the sign of its correlation), an active
    coefficient reaches 0 (it leaves), or mu' = lam (done). Exact up to rounding after a
    finite number of segments; the caller still checks the duality gap.

    Returns (w, segments), with w = None when the path is not defined by these rules (a
    singular G: duplicated or collinear columns, where the lasso solution is not unique)
    or it takes more than ``max_steps`` segments.
    """
    w = torch.zeros(Xc.shape[1], dtype=Xc.dtype)
    mu = float((Xc.T @ yc).abs().max())
    active: list[int] = []
    signs: list[float] = []
    just_left, hit = -1, -1
    for step in range(1, max_steps + 1):
        corr = Xc.T @ (yc - Xc @ w)  # = mu s on the active set
        # the coordinate whose correlation reached the boundary |corr_j| = mu joins now, and
        # so does any other one found there (ties), except one that has just left through it
        tiny = 1e-12 * mu
        joining = corr.abs() >= mu - tiny
        if hit >= 0:
            joining[hit] = True
        joining[active] = False
        if just_left >= 0:
            joining[just_left] = False
        for j in joining.nonzero().flatten().tolist():
            active.append(j)
            signs.append(1.0 if float(corr[j]) > 0 else -1.0)
        idx = torch.tensor(active)
        XA, s = Xc[:, idx], torch.tensor(signs, dtype=Xc.dtype)
        L, info = torch.linalg.cholesky_ex(XA.T @ XA)
        if int(info) != 0:
            return None, step
        v = torch.cholesky_solve(s[:, None], L)[:, 0]  # d w_A / d(-mu)
        slope = Xc.T @ (XA @ v)  # corr(mu - t) = corr - t * slope; slope = s on A
        # joins: corr_j - t slope_j = +-(mu - t) for t in (0, mu - lam]
        up = torch.where(1 - slope > 1e-12, (mu - corr) / (1 - slope), torch.inf)
        down = torch.where(1 + slope > 1e-12, (mu + corr) / (1 + slope), torch.inf)
        t_join = torch.minimum(up, down)
        t_join[idx] = torch.inf
        t_join[t_join <= tiny] = torch.inf  # at the boundary and moving inwards
        wA = w[idx]
        # leaves: w_k + t v_k = 0 for an active k with w_k != 0 moving towards 0
        t_leave = torch.where((wA != 0) & (wA * v < 0), -wA / v, torch.inf)
        t_end = mu - lam
        tj = float(t_join.min())
        tl = float(t_leave.min())
        t = min(t_end, tj, tl)
        mu -= t
        if t == t_end:
            mu = lam
        new_wA = torch.cholesky_solve((XA.T @ yc - mu * s)[:, None], L)[:, 0]
        just_left = -1
        if t == tl and t < t_end:
            k = int(t_leave.argmin())
            new_wA[k] = 0.0
            just_left = active.pop(k)
            signs.pop(k)
        w[idx] = new_wA
        if torch.any(new_wA * s < -1e-9 * float(new_wA.abs().max())):
            return None, step  # a sign flip that no event accounted for: degenerate path
        if t == t_end:
            return w, step
        hit = int(t_join.argmin()) if t == tj else -1  # joins at the top of the next step
    return None, max_steps


def _polish(Xc, yc, w, lam):
    """Solve Xc_S'(yc - Xc_S w_S) = lam sign(w_S) on the support S; None if signs change."""
    S = (w != 0).nonzero().squeeze(1)
    if S.numel() == 0 or S.numel() > Xc.shape[0]:
        return None
    XS = Xc[:, S]
    s = torch.sign(w[S])
    try:
        L = torch.linalg.cholesky(XS.T @ XS)
    except RuntimeError:
        return None
    wS = torch.cholesky_solve((XS.T @ yc - lam * s)[:, None], L)[:, 0]
    if not torch.equal(torch.sign(wS), s):
        return None
    out = torch.zeros_like(w)
    out[S] = wS
    return out


def solve_penalized(X, y, penalty: str, lam: float, **kwargs) -> PenalizedResult:
    """Dispatch to :func:`ridge` or :func:`lasso` by name."""
    penalty = check_choice("penalty", penalty, PENALTIES)
    if penalty == "ridge":
        if kwargs:
            raise ValueError(f"ridge takes no solver options; got {sorted(kwargs)}")
        return ridge(X, y, lam)
    return lasso(X, y, lam, **kwargs)
