"""The MAP engine's subproblem: a quadratic model plus an L1 term, minimised exactly.

::

    minimise over u   q(u) = 1/2 (u - u0)' A (u - u0) + g' (u - u0) + sum_j kappa_j |u_j|

with A symmetric positive semidefinite (Pyro's Hessian on the working set), g Pyro's
gradient at the current point u0, and kappa_j >= 0 (0 on unpenalized coordinates such as
the intercept). Everything is written in the step u - u0: the gradient A (u - u0) + g then
carries rounding relative to the step and to g, which both vanish at the optimum -- not
relative to A u0, which near the optimum is far larger and would hide a weak penalty.

Method: the feature-sign active-set search (Lee, Battle, Raina and Ng 2007) on the
Jacobi-scaled problem (unit diagonal, so that singularity tests do not depend on the units
of the columns). Each step minimises q with the signs of the active coordinates fixed --
one linear solve, or, on a singular block, a move along a null direction to the first
coefficient that reaches 0 -- followed by a discrete line search over the sign changes.
Exact in finitely many steps; should it stall, coordinate descent with soft-thresholding
and a solve on the settled support take over.

No Pyro and no model here: this is linear algebra on the numbers Pyro's traces produced.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import lapack

_EPS = float(np.finfo(np.float64).eps)


def newton_step(A: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """The step s minimising 1/2 s'As + g's (A s = -g); None if it has no finite solution.

    A singular A gets the least-squares, minimum-norm step.
    """
    return _solve_spd(A, -g)


def solve_l1_qp(A: np.ndarray, g: np.ndarray, u0: np.ndarray, kappa: np.ndarray,
                penalized: np.ndarray, accuracy: np.ndarray | None = None,
                noise: np.ndarray | None = None) -> np.ndarray:
    """argmin_u 1/2 (u - u0)'A(u - u0) + g'(u - u0) + sum_j kappa_j |u_j| (see the module
    docstring); ``kappa`` is 0 where ``penalized`` is False.

    The inputs come from float64 evaluations and carry errors the search must not chase:

    * ``accuracy`` (e_j, default m eps) bounds the error of A's entries,
      |dA_jk| <= (e_j + e_k) sqrt(A_jj A_kk): eigenvalues of a block below what that error
      can produce count as zero (a block singular up to A's rounding is singular; its
      "solution" would be a step of noise);
    * ``noise`` (default 0) is the typical error of g's entries: a coordinate joins only if
      it violates its condition by more than that, and a slope along a null direction
      counts only above it (twins -- duplicated columns -- whose gradients differ by
      rounding would otherwise join and leave forever).
    """
    m = g.shape[0]
    diag = np.diag(A).copy()
    D = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    P = _Problem(A * D[:, None] * D[None, :], g * D, u0 / D, kappa * D, penalized,
                 np.full(m, m * _EPS) if accuracy is None else accuracy,
                 np.zeros(m) if noise is None else noise * D)
    # warm start from the current point; if its support is too large for the data (a
    # singular block), start cold from zero, where the active set grows one at a time
    for start in (P.u0, np.where(penalized, 0.0, P.u0)):
        v = _feature_sign(P, start)
        if v is not None:
            return v * D
    return _coordinate_descent(P) * D


class _Problem:
    """The Jacobi-scaled subproblem and the errors of its inputs."""

    def __init__(self, A, g, u0, kappa, penalized, accuracy, noise):
        self.A, self.g, self.u0, self.kappa, self.penalized = A, g, u0, kappa, penalized
        self.accuracy, self.noise = accuracy, noise
        self.absA = np.abs(A)
        self.m = g.shape[0]

    def grad(self, u) -> np.ndarray:
        return self.A @ (u - self.u0) + self.g

    def tol(self, u) -> np.ndarray:
        """How far each entry of grad(u) can be off: 4 m eps times the magnitudes entering
        it, plus the noise of g and the error of A applied to the step."""
        s = np.abs(u - self.u0)
        return ((4 * self.m * _EPS) * (self.absA @ s + np.abs(self.g)) + self.noise
                + self.accuracy * np.sqrt(np.diag(self.absA)) * float(s.sum()))

    def objective(self, u) -> float:
        s = u - self.u0
        return 0.5 * float(s @ self.A @ s) + float(self.g @ s) + float(self.kappa @ np.abs(u))


def _sign_pattern(u, active, penalized) -> tuple[np.ndarray, np.ndarray]:
    """Feature-sign bookkeeping after a move: penalized coordinates at exactly 0 leave the
    active set (unpenalized ones never do); theta = sign(u) on the penalized ones."""
    return (active & (u != 0)) | ~penalized, np.sign(u) * penalized


def _feature_sign(P: _Problem, start) -> np.ndarray | None:
    """Feature-sign search from ``start``; None if it fails to make progress.

    A coordinate off the active set joins when |grad_j| exceeds kappa_j by more than
    grad_j's error (coordinate by coordinate); the active set is optimal when its
    conditions hold to that error, or right after a solve that reached its target."""
    A, kappa, penalized = P.A, P.kappa, P.penalized
    u = start.copy()
    active, theta = _sign_pattern(u, u != 0, penalized)
    solved = False  # did the last step reach the stationary point of its sign pattern?
    for _ in range(4 * P.m + 50):
        grad = P.grad(u)
        tol = P.tol(u)
        idx = np.flatnonzero(active)
        slope = grad[idx] + kappa[idx] * theta[idx]  # gradient of q with the signs fixed
        if solved or not bool((np.abs(slope) > tol[idx]).any()):
            off = penalized & ~active
            excess = np.where(off, np.abs(grad) - kappa - tol, -np.inf)
            j = int(np.argmax(excess)) if off.any() else -1
            if j < 0 or excess[j] <= 0:
                return u  # optimal
            active[j] = True
            theta[j] = -np.sign(grad[j])
            idx = np.flatnonzero(active)
            slope = grad[idx] + kappa[idx] * theta[idx]
        cur = u[idx]
        pen = penalized[idx]
        step, null = _solve_block(A[np.ix_(idx, idx)], slope, float(np.linalg.norm(tol[idx])),
                                  P.accuracy[idx])
        if null is not None:
            # Singular block with no stationary point for these signs (more active
            # coordinates than the data can pin down): q is linear along the null vector,
            # so move downhill until a coefficient reaches 0, and drop it.
            moved = _null_step(null, slope, cur, theta[idx], pen)
            if moved is None:
                return None
            u[idx] = moved
            active, theta = _sign_pattern(u, active, penalized)
            solved = False
            continue
        target = cur + step
        # discrete line search: the target and every point where a coefficient crosses 0
        candidates = [target]
        for k in np.flatnonzero(pen & (cur != 0) & (np.sign(target) != np.sign(cur))):
            t = cur[k] / (cur[k] - target[k])
            point = cur + t * (target - cur)
            point[k] = 0.0
            candidates.append(point)
        best, best_val = None, math.inf
        for point in candidates:
            trial = u.copy()
            trial[idx] = point
            val = P.objective(trial)
            if val < best_val:
                best, best_val = trial, val
        if best is None:
            return None  # non-finite objective values: numerical trouble
        current = P.objective(u)
        s = np.abs(u - P.u0)
        slack = 4 * P.m * _EPS * (float(s @ P.absA @ s) + float(np.abs(P.g) @ s)
                                  + float(kappa @ np.abs(u)))
        if best_val > current + slack:
            return None  # no decrease: numerical trouble
        # the target is stationary for the signs theta: only if it kept them
        solved = np.array_equal(best[idx], target) and bool(
            (np.sign(target[pen]) == theta[idx][pen]).all())
        u = best
        active, theta = _sign_pattern(u, active, penalized)
    return None


def _solve_block(A, slope, slope_tol, accuracy):
    """The step s with A s = -slope (A symmetric PSD with a unit-scaled diagonal).

    Returns (s, None) for a non-singular A, or for a singular A along whose null space the
    objective is flat (s then lies in A's range); (None, v) with v a null vector along which
    the objective has slope (beyond the rounding ``slope_tol``): no stationary point
    exists for these signs, only a descent ray. Eigenvalues below the error of A's entries
    (``accuracy``: |dA_jk| <= e_j + e_k, so ||dA|| <= 2 sqrt(m) ||e||) count as zero.
    """
    m = slope.shape[0]
    top = float(np.abs(A).sum(1).max(initial=0.0))
    null_level = max(64 * m * _EPS * top, 2 * math.sqrt(m) * float(np.linalg.norm(accuracy)))
    # Cholesky with complete pivoting is rank-revealing (an unpivoted factor can keep every
    # pivot large on a singular matrix): it stops at the first pivot below null_level
    c, piv, rank, _ = lapack.dpstrf(A, tol=null_level)
    if rank == m:
        order = piv - 1
        z, info = lapack.dpotrs(c, -slope[order][:, None])
        step = np.empty(m)
        step[order] = z[:, 0]
        if info == 0 and np.isfinite(step).all():
            return step, None
    lam_t, V_t = torch.linalg.eigh(torch.from_numpy(0.5 * (A + A.T)))
    lam, V = lam_t.numpy(), V_t.numpy()
    keep = lam > max(null_level, 64 * m * _EPS * float(lam[-1]))
    if not keep.all():
        along = V[:, ~keep].T @ slope
        k = int(np.argmax(np.abs(along)))
        if abs(float(along[k])) > slope_tol:
            return None, V[:, ~keep][:, k]
    Vk = V[:, keep]
    return -(Vk @ ((Vk.T @ slope) / lam[keep])), None


def _null_step(v, slope, cur, theta, pen) -> np.ndarray | None:
    """Move along the null vector v (downhill for the fixed-sign objective, whose gradient
    is ``slope``) to the first point where a penalized coefficient reaches 0 -- or where a
    just-activated one (cur = 0) would leave its sign -- and return the new coefficients
    with that coordinate set to exactly 0; None if no coefficient stops the move."""
    direction = -v if float(slope @ v) > 0 else v
    best_t, best_k = math.inf, -1
    for k in np.flatnonzero(pen):
        if cur[k] != 0 and cur[k] * direction[k] < 0:
            t = -cur[k] / direction[k]
        elif cur[k] == 0 and theta[k] * direction[k] < 0:
            t = 0.0  # the new coordinate would get the wrong sign: it leaves instead
        else:
            continue
        if t < best_t:
            best_t, best_k = t, k
    if best_k < 0:
        return None
    new = cur + best_t * direction
    new[best_k] = 0.0
    return new


def _coordinate_descent(P: _Problem, max_sweeps: int = 20_000) -> np.ndarray:
    """Coordinate descent with soft-thresholding, then a solve on the settled support."""
    A, kappa, penalized = P.A, P.kappa, P.penalized
    u = np.where(penalized, 0.0, P.u0)
    grad = P.grad(u)
    diag = np.diag(A).copy()
    prev_pattern = None
    wait, next_try = 1, 0  # after a failed polish, wait twice as many sweeps before the next
    for sweep in range(max_sweeps):
        max_step = 0.0
        for j in range(P.m):
            if diag[j] <= 0.0:
                continue
            old = u[j]
            z = old - grad[j] / diag[j]
            t = kappa[j] / diag[j]
            new = math.copysign(max(abs(z) - t, 0.0), z) if penalized[j] else z
            if new != old:
                grad += A[:, j] * (new - old)
                u[j] = new
                max_step = max(max_step, abs(new - old))
        pattern = np.sign(u) * penalized
        settled = prev_pattern is not None and np.array_equal(pattern, prev_pattern)
        if settled and sweep >= next_try:
            polished = _polish(P, pattern)
            if polished is not None:
                return polished
            next_try, wait = sweep + wait, 2 * wait
        prev_pattern = pattern
        if max_step <= _EPS * max(float(np.abs(u).max(initial=0.0)), 1e-300):
            return u
    return u


def _polish(P: _Problem, pattern):
    """The stationary point of q on S = support (penalized) + unpenalized with the signs of
    ``pattern``; None if it changes a sign, violates an off-support condition, or the
    block has no stationary point."""
    penalized = P.penalized
    S = (pattern != 0) | ~penalized
    u = np.zeros_like(P.g)
    u[~penalized] = P.u0[~penalized]
    if S.any():
        slope = P.grad(u)[S] + P.kappa[S] * pattern[S]
        step, null = _solve_block(P.A[np.ix_(S, S)], slope,
                                  float(np.linalg.norm(P.tol(u)[S])), P.accuracy[S])
        if null is not None:
            return None
        u[S] += step
    if np.any(np.sign(u[penalized & S]) != pattern[penalized & S]):
        return None
    off = ~S
    if np.any(np.abs(P.grad(u)[off]) > P.kappa[off] + P.tol(u)[off]):
        return None
    return u


def _solve_spd(A: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Solve A x = b for symmetric positive (semi)definite A; None if it has no finite
    solution. A singular A gets the least-squares, minimum-norm solution.

    Done in torch, not numpy: alternating numpy's OpenBLAS threads with torch's thread
    pool on a small machine costs more than the solve itself.
    """
    At = torch.from_numpy(0.5 * (A + A.T))
    bt = torch.from_numpy(np.ascontiguousarray(b))[:, None]
    L, info = torch.linalg.cholesky_ex(At)
    if int(info) == 0:
        x = torch.cholesky_solve(bt, L)[:, 0]
        if bool(torch.isfinite(x).all()):
            return x.numpy()
    try:
        x = torch.linalg.lstsq(At, bt, driver="gelsd").solution[:, 0]
    except RuntimeError:  # the SVD did not converge (non-finite entries)
        return None
    return x.numpy() if bool(torch.isfinite(x).all()) else None
