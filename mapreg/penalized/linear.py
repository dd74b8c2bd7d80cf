"""Exact penalized solvers: ridge (closed form), lasso (working sets + active set) and the
elastic net (the lasso on augmented data).

Plain torch; this module never imports Pyro, so it is an independent path to the optimum
that the MAP engine reaches through Pyro's log joint. Both minimise the canonical
objective with an unpenalized intercept c::

    ridge:       1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2
    lasso:       1/2 ||y - Xw - c||^2 + lam ||w||_1
    elastic net: 1/2 ||y - Xw - c||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2

(scikit-learn's ``Ridge(alpha)`` is the ridge with lam = alpha; its ``Lasso(alpha)`` is the
lasso with lam = n * alpha; its ``ElasticNet(alpha, l1_ratio)`` is the elastic net with
lam1 = n * alpha * l1_ratio, lam2 = n * alpha * (1 - l1_ratio); see
:mod:`mapreg.conventions`.) Because c is unpenalized, its optimum is
c = mean(y) - mean(X) . w, and for every (w, c)

    1/2 ||y - Xw - c||^2 = 1/2 ||yc - Xc w||^2 + n/2 (mean(y) - mean(X) . w - c)^2

with Xc, yc the centred data; both solvers (and :func:`canonical_objective`) work on the
centred data, so offsets in X or y cost no accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch

from .._centring import centre, centred_svd
from .._results import FrozenResult
from .._validation import (
    check_bool,
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from ..errors import report_nonconvergence

PENALTIES = ("ridge", "lasso", "elasticnet")
_EPS = torch.finfo(torch.float64).eps


@dataclass(frozen=True, eq=False)
class PenalizedResult(FrozenResult):
    """The optimum of a penalized least-squares problem.

    Attributes
    ----------
    coef, intercept
        The minimiser (w, c).
    penalty
        ``"ridge"``, ``"lasso"`` or ``"elasticnet"``.
    lam
        lambda of the canonical objective (see the module docstring); lam1 for the
        elastic net.
    objective
        The canonical objective at (coef, intercept), evaluated on centred data (see
        :func:`canonical_objective`).
    duality_gap
        Lasso: primal minus dual objective at the returned point and its dual point (>= 0,
        0 at the optimum; see :func:`lasso`); ridge: the largest absolute gradient entry.
    lam_max
        Lasso: the smallest lam for which w = 0 (max_j |x_j . (y - mean y)| with centred
        columns); ridge: ``inf``.
    iterations
        Lasso: active-set steps (each one Cholesky factorisation and solve, plus a line
        search); 0 for ridge.
    converged
        Lasso: whether the duality gap passed the test ``duality_gap <= gap_tolerance``;
        ridge: always True.
    wall_time
        Seconds spent in the solver.
    method
        ``"closed-form"`` (ridge by Cholesky), ``"svd"`` (ridge by the singular value
        decomposition, used when the Cholesky factor is singular or ill-conditioned) or
        ``"active-set"`` (the lasso).
    gap_tolerance
        Lasso: the bound the duality gap was tested against, max(tol * primal, rounding
        floor) (see :func:`lasso`); ridge: ``nan``.
    working_set_size
        Lasso: the number of columns in the final working set; ridge: 0.
    lam2
        Elastic net: the weight lam2 of (lam2/2) ||w||^2; 0 for the ridge and the lasso.

    The elastic net reports like the lasso (duality gap, gap tolerance, active-set steps)
    when lam1 > 0 and like the ridge when lam1 = 0 (then it is the ridge at lam = lam2).
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
    wall_time: float = field(compare=False)  # not part of the answer
    method: str = "active-set"
    gap_tolerance: float = math.nan
    working_set_size: int = 0
    lam2: float = 0.0


def canonical_objective(
    X, y, coef, intercept, penalty: str, lam: float, lam2: float = 0.0
) -> float:
    """The canonical objective 1/2 ||y - Xw - c||^2 + lam * P(w) at (w, c) = (coef, intercept).

    P(w) = 1/2 ||w||^2 (ridge) or ||w||_1 (lasso); for ``"elasticnet"`` the penalty is
    lam ||w||_1 + (lam2/2) ||w||^2 (``lam2`` must be 0 for the other two). The squared
    residual is evaluated as
    1/2 ||yc - Xc w||^2 + n/2 (mean(y) - mean(X) . w - c)^2 (an identity, see the module
    docstring), so a large offset in y or in a column of X does not swamp it in rounding.
    """
    penalty = check_choice("penalty", penalty, PENALTIES)
    lam2 = check_nonnegative("lam2", lam2)
    if lam2 != 0.0 and penalty != "elasticnet":
        raise ValueError(f"lam2 must be 0 for the {penalty} (it weighs the elastic net's "
                         f"(lam2/2) ||w||^2); got {lam2!r}")
    X, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.as_tensor(coef, dtype=torch.float64)
    Xc, yc, xm, ym = centre(X, y)
    r = yc - Xc @ w
    shift = float(ym - xm @ w) - float(intercept)
    if penalty == "ridge":
        pen = lam * 0.5 * float(w @ w)
    elif penalty == "lasso":
        pen = lam * float(w.abs().sum())
    else:
        pen = lam * float(w.abs().sum()) + 0.5 * lam2 * float(w @ w)
    return 0.5 * float(r @ r) + 0.5 * X.shape[0] * shift**2 + pen


# --------------------------------------------------------------------------------- ridge
def ridge(X, y, lam: float) -> PenalizedResult:
    """Ridge regression in closed form.

    Minimises 1/2 ||y - Xw - c||^2 + (lam/2) ||w||^2 over (w, c), c unpenalized::

        w = (Xc' Xc + lam I)^-1 Xc' yc        (n >= d, Cholesky)
        w = Xc' (Xc Xc' + lam I)^-1 yc        (n < d, the same w by the push-through identity)
        w = V diag(s / (s^2 + lam)) U' yc     (Xc = U diag(s) V', the SVD)
        c = mean(y) - mean(X) . w

    with Xc, yc the centred data. The Cholesky route (method ``"closed-form"``) is taken
    when its matrix A (lam I included) is well conditioned: lambda_min(A) >= 1e-6 max_i A_ii,
    with lambda_min estimated by inverse iteration on the factor; its error is then about
    1e6 eps relative at most. Otherwise -- ``lam = 0`` (least squares: the minimum-norm
    solution when it is not unique, singular values below max(n, d) eps s_max counting as
    0), tiny lam with n <= d (Xc Xc' has rank n - 1) or with collinear columns -- the SVD
    formula is used (method ``"svd"``); it is exact for every lam >= 0. Either way two steps
    of iterative refinement follow, w += (Xc'Xc + lam I)^-1 (Xc'(yc - Xc w) - lam w) with the
    gradient computed on the data, so that the optimality conditions hold to the rounding of
    their own terms (|Xc|'|r| + lam |w|) also where the Gram matrix is badly conditioned.
    X and y are centred by :func:`mapreg._centring.centre` (two passes; a column constant to
    rounding becomes exactly 0 and gets the weight 0).
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    start = time.perf_counter()
    n, d = X.shape
    Xc, yc, xm, ym = centre(X, y)
    w, method = None, "closed-form"
    if lam > 0.0:
        A = Xc.T @ Xc if n >= d else Xc @ Xc.T
        A = A + lam * torch.eye(A.shape[0], dtype=A.dtype)
        L, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0 and _min_eig(L) >= 1e-6 * float(A.diagonal().max()):
            # (Xc'Xc + lam I)^-1 v: directly (n >= d) or by the push-through identity,
            # (v - Xc'(Xc Xc' + lam I)^-1 Xc v) / lam (n < d; lam >= 1e-6 ||A|| here, so
            # the subtraction loses at most 6 digits, which the refinement restores)
            if n >= d:
                def solve(v):
                    return _chol_solve(L, v)
            else:
                def solve(v):
                    return (v - Xc.T @ _chol_solve(L, Xc @ v)) / lam
            w = _refined(solve, Xc.T @ yc, lambda v: Xc.T @ (yc - Xc @ v) - lam * v)
    if w is None:
        method = "svd"
        _, s, Vh = centred_svd(Xc)  # rank cut-off max(n, d) eps s_max; zero columns exact
        V = Vh.T
        # w = V diag(1 / (s^2 + lam)) V' Xc'yc stays in the row space of Xc (for lam = 0 the
        # minimum-norm least-squares solution), refined from the gradient likewise
        w = _refined(lambda v: V @ ((V.T @ v) / (s * s + lam)), Xc.T @ yc,
                     lambda v: Xc.T @ (yc - Xc @ v) - lam * v)
    c = float(ym - xm @ w)
    r = yc - Xc @ w
    grad = -(Xc.T @ r) + lam * w
    obj = 0.5 * float(r @ r) + 0.5 * lam * float(w @ w)  # c at its optimum
    wall = time.perf_counter() - start
    return PenalizedResult(
        w, c, "ridge", lam, obj, float(grad.abs().max()), float("inf"), 0, True, wall, method
    )


def _refined(solve, rhs: torch.Tensor, residual, steps: int = 2) -> torch.Tensor:
    """x = solve(rhs), then ``steps`` of iterative refinement x += solve(residual(x)), the
    residual computed on the data rather than the factored matrix: the optimality
    conditions then hold to the rounding of their own terms even where the factored matrix
    is badly conditioned."""
    x = solve(rhs)
    for _ in range(steps):
        x = x + solve(residual(x))
    return x


def _min_eig(L: torch.Tensor, iters: int = 10) -> float:
    """Estimate of the smallest eigenvalue of L L' by inverse iteration (an overestimate
    that converges from above; exact for a 1 x 1 matrix)."""
    x = torch.cos(torch.arange(L.shape[0], dtype=L.dtype)) + 1.5  # fixed, generic start
    for _ in range(iters):
        z = _chol_solve(L, x / x.norm())
        if not bool(torch.isfinite(z).all()) or float(z.norm()) == 0.0:
            return 0.0
        x = z
    return 1.0 / float(_chol_solve(L, x / x.norm()).norm())


# --------------------------------------------------------------------------------- lasso
def lasso_lam_max(X, y) -> float:
    """The smallest lam at which the lasso solution is w = 0: max_j |Xc_j . yc|."""
    X, y = check_data(X, y)
    Xc, yc, _, _ = centre(X, y)
    return float((Xc.T @ yc).abs().max())


def lasso(
    X,
    y,
    lam: float,
    *,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    strict: bool = False,
) -> PenalizedResult:
    """Exact lasso: an active-set method on growing working sets, certified by the duality
    gap.

    Minimises the canonical objective

        P(w, c) = 1/2 ||y - Xw - c||^2 + lam ||w||_1

    over (w, c), c unpenalized (scikit-learn's ``Lasso(alpha)`` minimises
    (1/2n) ||y - Xw - c||^2 + alpha ||w||_1, the same problem at lam = n * alpha). With c at
    its optimum, c = mean(y) - mean(X) . w, this is P(w) = 1/2 ||r||^2 + lam ||w||_1 with
    r = yc - Xc w on the centred data (Xc, yc).

    **Certificate.** With g = Xc' r, alpha = min(1, lam / ||g||_inf) and the dual point
    theta = alpha r (dual feasible: ||Xc' theta||_inf <= lam), the dual objective is
    D(theta) = 1/2 ||yc||^2 - 1/2 ||yc - theta||^2, and the duality gap, computed without
    cancellation as

        gap = P(w) - D(theta) = 1/2 (1 - alpha)^2 ||r||^2 + sum_j (lam |w_j| - alpha w_j g_j),

    bounds the suboptimality: P(w) - min P <= gap. The result is ``converged`` iff

        gap <= max(tol * P(w), floor),
        floor = 4 e (W1 + ||w||_1 N) + 8 (e N / lam)^2 ||r||^2,   N = max_{j in B} ||Xc_j||,
        e = eps (W2 + sqrt((|S| + 1) / n) (||yc|| + W1) + sqrt(n) ||r||),
        W1 = sum_j ||Xc_j|| |w_j|,   W2 = (sum_j ||Xc_j||^2 w_j^2)^(1/2),

    with eps the float64 machine epsilon, S the support of w and B the columns on the dual
    boundary, |g_j| >= lam - 2 e ||Xc_j||. Here e ||Xc_j|| is the typical size of the
    error in the computed g_j that float64 cannot avoid (rounding errors of a k-term sum
    grow like sqrt(k) eps, Higham & Mary 2019): rounding w itself to float64 moves g_j by
    about eps W2 ||Xc_j||, and r is a sum of |S| + 1 vectors of norm at most ||yc|| and
    ||Xc_j|| |w_j|. The floor is the error this induces in the computed gap (through the
    terms w_j g_j, and through alpha, whose relative error is about e N / lam): a gap
    below it cannot be resolved in float64. It decides only at small lam, where P(w) is
    tiny next to ||yc||^2 and the optimality conditions |g_j| <= lam hold only to about
    e ||Xc_j|| / lam relative (at lam = 1e-6 lam_max we measured 1e-12 to 1e-6 of P(w),
    depending on the conditioning; near lam = 1e-14 lam_max it reaches P(w) itself, and
    float64 certifies nothing); otherwise tol * P(w) does. Both sides are unchanged when y and
    lam are multiplied by the same factor or a constant is added to y or to a column of X.

    **Algorithm.** X and y are centred (two-pass means) and the columns scaled to unit
    norm, which makes the problem a lasso with weights lam / ||Xc_j|| (all-zero centred
    columns get w_j = 0).

    * *Exact sub-problem.* On a working set W of columns the problem is solved exactly on
      its Gram matrix by a sign-pattern active-set method. For the active set A and signs s
      the fixed-sign quadratic is minimised by a Cholesky solve; if no sign changes on the
      way there, that minimum is the step; otherwise the step goes to the better of the
      exact line-search minimum towards it (the objective is convex and piecewise quadratic
      along the line) and the first minimum along the projected path (on which
      coefficients that reach 0 stay at 0). At a fixed-sign minimum the columns of W that
      violate |g_j| <= lam beyond rounding join A, most violated first, at most
      max(10, |A|) at a time (one at a time if that gives no decrease).
    * *Rank deficiency.* A joining column linearly dependent on A (duplicated columns,
      n < d) needs no singular solve: along the null vector of [X_A, x_j] the residual is
      fixed and ||w||_1 is piecewise linear, so the method moves downhill until a
      coefficient of A reaches 0 and leaves (a simplex-like swap); joining columns
      dependent on each other are thinned by a greedy Cholesky of their Schur complement.
      So X_A always has full column rank (at most rank(Xc) <= min(n - 1, d) non-zeros),
      and every step decreases the objective.
    * *Working set.* W starts as all columns when the Gram matrix is cheap (n d^2 <= 2e8),
      otherwise as the 10 most violating ones, and grows by the violators outside it
      (most violated first, at most max(|W|, n) at a time) until there are none.
    * *Continuation.* For n > d the problem is solved directly at lam, all violators
      joining at once (25 steps at most). Otherwise, or if that budget runs out, it is
      solved at lam_max / 10, lam_max / 100, ... and then at lam, each warm-started from the
      last: near interpolation (n < d, small lam) the direct route wanders through many sign
      patterns, while consecutive solutions on the path differ in few.
    * *Stop.* At lam the loop ends when W is solved and nothing outside W violates its
      condition beyond rounding; if the gap is then above tol * P(w), the active-set method
      runs once more from the gradient computed from X rather than from the Gram matrix
      (iterative refinement: it resolves what the Gram matrix's rounding hides, such as
      nearly duplicated columns). The test above decides ``converged``.

    When the lasso solution is not unique (duplicated or collinear columns, ties with
    n < d) any minimiser may be returned: the objective is optimal, and the coefficients
    are one optimal point (one whose non-zero columns are linearly independent).

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    lam : float
        lambda > 0. For lam >= :func:`lasso_lam_max` the solution is exactly w = 0. (At
        lam = 0 the problem is least squares, where the duality gap above is no
        certificate: use ``ridge(X, y, 0.0)``.)
    tol : float
        Duality-gap tolerance relative to the primal objective P(w).
    max_iter : int
        Maximum number of active-set steps (each one Cholesky factorisation and solve, plus
        a line search).
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the gap
        test fails.

    Returns
    -------
    PenalizedResult
        ``duality_gap`` is the gap above, ``gap_tolerance`` the right-hand side of the test
        and ``objective`` P(w), evaluated on the centred data.
    """
    X, y = check_data(X, y)
    lam = check_nonnegative("lam", lam)
    if lam == 0.0:
        raise ValueError(
            "lam must be a positive finite number for the lasso (lam = 0 is least squares: "
            "use ridge(X, y, 0.0)); got 0.0"
        )
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    start = time.perf_counter()
    Xc, yc, xm, ym = centre(X, y)
    w, cert, solver, lam_max = _lasso_centred(Xc, yc, lam, tol, max_iter)
    c = float(ym - xm @ w)
    wall = time.perf_counter() - start
    converged = _report(cert, solver.steps, tol, strict, "lasso")
    return PenalizedResult(
        w, c, "lasso", lam, cert.primal, cert.gap, lam_max, solver.steps, converged, wall,
        "active-set", cert.bound, int(solver.W.numel()),
    )


def _lasso_centred(X: torch.Tensor, y: torch.Tensor, lam: float, tol: float, max_iter: int):
    """The lasso min 1/2 ||y - Xw||^2 + lam ||w||_1 without intercept on data X, y that the
    caller has centred (or augmented, see :func:`elastic_net`); X is overwritten.
    Returns (w, certificate, solver, lam_max)."""
    d = X.shape[1]
    lam_max = float((X.T @ y).abs().max())
    norms = (X * X).sum(0).sqrt()
    keep = (norms > 0).nonzero().squeeze(1)
    Xn = X if keep.numel() == d else X[:, keep]
    Xn.div_(norms[keep])  # unit columns: a lasso with weights lam / ||Xc_j||
    solver = _WorkingSet(Xn, y, lam / norms[keep], tol)
    if lam < lam_max:
        solver.run(max_iter)
    w = torch.zeros(d, dtype=X.dtype)
    w[keep] = solver.v / norms[keep]
    return w, solver.cert, solver, lam_max


def _report(cert: _Certificate, steps: int, tol: float, strict: bool, name: str) -> bool:
    """Whether the gap test passed; if not, warn (or raise with ``strict``) naming the gap."""
    converged = cert.gap <= cert.bound
    if not converged:
        report_nonconvergence(
            f"{name} did not converge in {steps} active-set steps: duality gap "
            f"{cert.gap:.3e} > tolerance {cert.bound:.3e} (tol * primal = "
            f"{tol * cert.primal:.3e}, rounding floor {cert.floor:.3e})",
            strict,
            stacklevel=4,
        )
    return converged


@dataclass(frozen=True)
class _Certificate:
    """The duality-gap test of :func:`lasso` at one point."""

    gap: float
    primal: float
    floor: float
    bound: float
    g: torch.Tensor  # Xn' r
    rounding: float  # e: typical rounding error of each g_j (unit columns)


class _WorkingSet:
    """The outer loop of :func:`lasso` on unit-norm centred columns ``Xn`` with weights
    ``lam_w``: min 1/2 ||yc - Xn v||^2 + sum_j lam_w[j] |v_j|."""

    P0 = 10  # size of the first working set, and of the first batch joining A
    FULL_GRAM = 2e8  # W = all columns from the start when the Gram costs n d^2 <= this
    RATIO = 10.0  # lam decreases by this factor from one continuation stage to the next
    DIRECT = 25  # steps allowed to the direct attempt (n > d) before continuation

    def __init__(self, Xn: torch.Tensor, yc: torch.Tensor, lam_w: torch.Tensor, tol: float):
        self.Xn, self.yc, self.lam_w, self.tol = Xn, yc, lam_w, tol
        self.v = torch.zeros(Xn.shape[1], dtype=Xn.dtype)
        self.W = torch.zeros(0, dtype=torch.long)
        self.R = torch.zeros(0, Xn.shape[1], dtype=Xn.dtype)  # rows W of Xn' Xn
        self.G = self.R[:, self.W]
        self.b = Xn.T @ yc
        n, d = Xn.shape
        self.p0 = d if n * d * d <= self.FULL_GRAM else self.P0  # size of the first W
        self.ynorm = float(yc.norm())
        self.steps = 0
        self.cert = self.certify(self.v, lam_w)

    def certify(self, v: torch.Tensor, lam_w: torch.Tensor) -> _Certificate:
        """The documented gap test at v (in the unit-column variables v_j = ||Xc_j|| w_j
        and weights lam_w; every number equals the one in the original units)."""
        Xn = self.Xn
        r = self.yc - Xn @ v
        g = Xn.T @ r
        ratio = g.abs() / lam_w
        alpha = 1.0 / max(1.0, float(ratio.max())) if ratio.numel() else 1.0
        rr = float(r @ r)
        pen = float((lam_w * v.abs()).sum())
        gap = 0.5 * (1.0 - alpha) ** 2 * rr + float((lam_w * v.abs() - alpha * v * g).sum())
        primal = 0.5 * rr + pen
        vsum = float(v.abs().sum())
        nnz = int((v != 0).sum())
        n = Xn.shape[0]
        e = _EPS * (float(v.norm()) + math.sqrt((nnz + 1) / n) * (self.ynorm + vsum)
                    + math.sqrt(n * rr))
        boundary = g.abs() >= lam_w - 2 * e
        lam_b = float(lam_w[boundary].min()) if bool(boundary.any()) else math.inf
        floor = 4 * e * (vsum + (pen / lam_b if pen > 0 else 0.0)) + 8 * (e / lam_b) ** 2 * rr
        return _Certificate(max(gap, 0.0), primal, floor, max(self.tol * primal, floor), g, e)

    def grow(self, add: torch.Tensor) -> None:
        """Add columns to W, with their rows of the Gram matrix Xn' Xn."""
        self.W = torch.cat([self.W, add])
        self.R = torch.cat([self.R, self.Xn[:, add].T @ self.Xn])
        self.G = self.R[:, self.W]

    def run(self, max_iter: int) -> None:
        """Solve at lam directly (n > d only: then the fixed-sign problems are well posed)
        within ``DIRECT`` steps; otherwise (or if that budget runs out) by continuation:
        solve at lam_max / 10, lam_max / 100, ... (each warm-started) and then at lam."""
        n, d = self.Xn.shape
        if n > d and (self.solve(self.lam_w, min(max_iter, self.DIRECT), True, d)
                      or self.steps >= max_iter):
            return
        self.v = torch.zeros_like(self.v)
        f = float((self.b.abs() / self.lam_w).max()) / self.RATIO  # lam_max / lam / 10
        while f > 2.0 and self.steps < max_iter:
            self.solve(f * self.lam_w, max_iter, False, self.P0)
            f /= self.RATIO
        self.solve(self.lam_w, max_iter, True, self.P0)

    def solve(self, lam_w: torch.Tensor, max_iter: int, final: bool, batch0: int) -> bool:
        """Grow W and solve on it exactly until nothing outside W violates its optimality
        condition beyond rounding; at the final lam, if the gap is then above tol * primal,
        rerun the active-set method once from the gradient computed from X (iterative
        refinement). False if it ran out of steps first."""
        refined, solved, finished = False, self.W.numel() == 0, False
        stationary = False  # v is a fixed-sign minimum on its support (for this lam_w)
        cert = self.certify(self.v, lam_w)
        while self.steps < max_iter:
            if solved:
                excess = cert.g.abs() - lam_w - cert.rounding
                excess[self.W] = -math.inf
                out = (excess > 0).nonzero().squeeze(1)
                if out.numel():
                    # most violated first: 10 from w = 0, then at most max(|W|, n) (an
                    # exact solution has at most min(n - 1, d) non-zeros)
                    order = torch.argsort(cert.g[out].abs() / lam_w[out], descending=True)
                    cap = max(self.W.numel(), self.Xn.shape[0]) if self.W.numel() else self.p0
                    self.grow(out[order[:cap]])
                elif (final and not refined and self.W.numel()
                      and cert.gap > self.tol * cert.primal):
                    # refinement: the active-set method once more, from the gradient g
                    # computed from X, which resolves what the Gram matrix's rounding
                    # hides (e.g. nearly duplicated columns)
                    refined = True
                    vW, steps, _ = _active_set(
                        self.G, cert.g[self.W], lam_w[self.W], self.v[self.W],
                        cert.rounding, max_iter - self.steps, batch0, False)
                    self.steps += steps
                    trial = torch.zeros_like(self.v)
                    trial[self.W] = vW
                    new = self.certify(trial, lam_w)
                    if new.gap < cert.gap:
                        self.v, cert = trial, new
                    continue
                else:
                    finished = True
                    break
            vW, bW = self.v[self.W], self.b[self.W]
            slack = 8 * _EPS * (float(bW.abs().max()) + float(vW.abs().sum()))
            vW, steps, stationary = _active_set(
                self.G, bW - self.G @ vW, lam_w[self.W], vW, slack, max_iter - self.steps,
                batch0, stationary)
            self.steps += steps
            self.v = torch.zeros_like(self.v)
            self.v[self.W] = vW
            cert = self.certify(self.v, lam_w)
            refined, solved = False, True
        if final:
            self.cert = cert
        return finished


def _chol_solve(L: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve L L' x = rhs (two triangular solves; faster than cholesky_solve here)."""
    z = torch.linalg.solve_triangular(L, rhs[:, None], upper=False)
    return torch.linalg.solve_triangular(L.T, z, upper=True)[:, 0]


_RANK_TOL = 1e-13  # a Cholesky pivot of the unit-diagonal Gram below this: dependent column


def _active_set(
    G, g0, lam, v0, slack: float, max_steps: int, batch0: int, stationary: bool
) -> tuple[torch.Tensor, int, bool]:
    """Exact minimiser of f(v) = 1/2 v'Gv - b'v + sum_j lam_j |v_j| on a working set (G its
    unit-diagonal Gram matrix, b = Xn_W' yc) by the sign-pattern active-set method of
    :func:`lasso`, from ``v0``, whose non-zero columns must be linearly independent
    (``stationary``: v0 is already the fixed-sign minimum on its support).

    ``g0`` = b - G v0 is given, with rounding error ``slack``, and g = b - G v is updated as
    g0 - G (v - v0) (iterative-refinement form: no cancellation between b and G v, so a
    ``g0`` computed from X keeps its accuracy). A column violates |g_j| <= lam_j when the
    excess is above slack + 8 eps ||v - v0||_1. At most max(batch0, |A|) columns join A at
    a time. Returns (v, steps, v is stationary)."""
    v = v0.clone()
    single, steps = False, 0
    stationary = stationary or not bool(v.any())
    while steps < max_steps:
        A = v.nonzero().squeeze(1)
        dv = v - v0
        g = g0 - G @ dv
        B, s = A, v[A].sign()
        if stationary:
            # the columns violating |g_j| <= lam_j beyond rounding join, most violated first
            excess = g.abs() - lam - (slack + 8 * _EPS * float(dv.abs().sum()))
            excess[A] = -math.inf
            cand = (excess > 0).nonzero().squeeze(1)
            if cand.numel() == 0:
                return v, steps, True
            cand = cand[torch.argsort(g[cand].abs() / lam[cand], descending=True)]
            cand = cand[: 1 if single else max(batch0, A.numel())]
            B, s = torch.cat([A, cand]), torch.cat([s, g[cand].sign()])
        steps += 1
        GB = G[B][:, B]
        L, info = torch.linalg.cholesky_ex(GB)
        i = _first_dependent(L, int(info))
        if i < B.numel() and i <= A.numel():
            # column B[i] is dependent on B[:i]: along the null vector p of X_B[:i+1] the
            # residual is fixed and ||v||_1 piecewise linear; at most one of +-p is downhill
            B = B[: i + 1]
            z = _chol_solve(L[:i, :i], GB[:i, i])
            p = torch.cat([-z, z.new_ones(1)])
            wB, gB = v[B], g[B]
            a = max(float(p @ (GB[: i + 1, : i + 1] @ p)), 0.0)  # ~0, unless nearly dependent
            t, hit = _line_search(wB, p, lam[B], a, float(gB @ p))
            if t <= 0.0:
                p = -p
                t, hit = _line_search(wB, p, lam[B], a, float(gB @ p))
            if t <= 0.0:
                break  # no descent either way: a rounding-level violation
            wB = wB + t * p
            wB[hit] = 0.0
            v[B] = wB
            stationary = False
            continue
        if i < B.numel():
            # a joining column dependent on B[:i] (e.g. the twin of another): keep the
            # joining columns that stay independent, one after the other
            keep = torch.cat([torch.arange(i), i + _independent(GB, L, i)])
            GK = GB[keep][:, keep]
            LK, info = torch.linalg.cholesky_ex(GK)
            B, s, GB, L = (B[keep], s[keep], GK, LK) if int(info) == 0 else (
                B[:i], s[:i], GB[:i, :i], L[:i, :i])
        u = v[B] + _chol_solve(L, g[B] - lam[B] * s)  # the fixed-sign minimum on B
        if torch.equal(u.sign(), s):
            v[B] = u  # no sign change on the way: the fixed-sign minimiser is the step
            stationary, single = True, False
            continue
        # two candidates: the exact line-search point towards u (signs may flip on the
        # way), and the first minimum along the projected path (a coefficient that reaches
        # 0 stays there); keep the lower objective
        wB, gB, lamB = v[B], g[B], lam[B]
        p = u - wB
        t, hit = _line_search(wB, p, lamB, max(float(p @ (GB @ p)), 0.0), float(gB @ p))
        line = wB + t * p
        line[hit] = 0.0
        path = _path_search(wB, p, s, lamB, GB, gB)
        d_line = _change(line, wB, gB, GB, lamB) if t > 0 else 0.0
        d_path = _change(path, wB, gB, GB, lamB)
        if min(d_line, d_path) >= 0.0:
            if stationary and not single:
                single = True  # several joining at once gave no descent: one at a time
                continue
            break  # no descent: rounding level
        v[B] = path if d_path < d_line else line
        stationary = False
    return v, steps, False


def _first_dependent(L: torch.Tensor, info: int) -> int:
    """The first column whose Cholesky pivot (squared) is <= _RANK_TOL -- numerically
    dependent on the columns before it -- or the number of columns if none is."""
    d2 = torch.diagonal(L) ** 2
    bad = ~(d2 > _RANK_TOL)  # NaN after a failed factorization counts as bad
    if info > 0:
        bad[info - 1:] = True
    return int(bad.nonzero()[0]) if bool(bad.any()) else L.shape[0]


def _independent(GB: torch.Tensor, L: torch.Tensor, i: int) -> torch.Tensor:
    """Positions j >= i (relative to i, in order) of the columns of B that stay linearly
    independent when added one after the other to B[:i] (whose Cholesky factor is
    L[:i, :i]): a greedy Cholesky on the Schur complement, skipping pivots <= 1e-10."""
    W = torch.linalg.solve_triangular(L[:i, :i], GB[:i, i:], upper=False)
    S = GB[i:, i:] - W.T @ W
    keep = []
    for j in range(S.shape[0]):
        piv = float(S[j, j])
        if piv > 1e-10:
            keep.append(j)
            col = S[j:, j] / math.sqrt(piv)
            S[j:, j:] -= torch.outer(col, col)
    return torch.tensor(keep, dtype=torch.long)


def _change(x, w, g, G, lam) -> float:
    """f(x) - f(w) for f(v) = 1/2 v'Gv - b'v + sum_j lam_j |v_j|, g = b - Gw, computed from
    the difference x - w (no cancellation between large terms)."""
    dx = x - w
    return float(0.5 * dx @ (G @ dx) - g @ dx + (lam * (x.abs() - w.abs())).sum())


def _path_search(w, p, s, lam, G, g) -> torch.Tensor:
    """First local minimum of f along the projected path x(t) = w + t p on which every
    coefficient that reaches 0 (or, for w_j = 0, would start with the sign opposite to
    s_j) stays at 0; f(x) = 1/2 x'Gx - b'x + sum lam_j |x_j| and g = b - Gw.

    With tau_j the time coefficient j reaches 0, x(t) = w + min(t, tau) p, and between
    consecutive kinks d f(x(t)) / dt = gamma_m t + kappa_m with gamma_m, kappa_m sums over
    the coefficients frozen so far -- prefix sums, so all pieces are evaluated at once."""
    tau = torch.where(w * p < 0, -w / p, math.inf)
    tau = torch.where((w == 0) & (p.sign() != s), 0.0, tau)
    p0 = torch.where(tau > 0, p, 0.0)
    sigma = torch.where(w != 0, w.sign(), s)
    Gp = G @ p0
    # kinks up to t = 1 (the coefficients whose sign the step would flip); the path is
    # followed no further than the next kink
    C = ((tau > 0) & (tau <= 1.0)).nonzero().squeeze(1)
    last = float(tau[tau > 1.0].min()) if bool((tau > 1.0).any()) else math.inf
    tc, order = torch.sort(tau[C])
    C = C[order]
    pc = p0[C]
    M = pc[:, None] * G[C][:, C] * pc[None, :]  # M_il = p_i G_il p_l, in kink order
    low = torch.tril(M, -1)
    diag = M.diagonal()
    zero = tc.new_zeros(1)

    def prefix(x: torch.Tensor) -> torch.Tensor:  # [0, x_1, x_1 + x_2, ...]
        return torch.cat([zero, torch.cumsum(x, 0)])

    gamma = float(p0 @ Gp) - 2 * prefix(pc * Gp[C]) + prefix(2 * low.sum(1) + diag)
    kappa = (
        float((lam * sigma * p0).sum() - g @ p0)
        + prefix(g[C] * pc - lam[C] * sigma[C] * pc + tc * pc * Gp[C])
        - prefix(tc * low.sum(1) + low @ tc + tc * diag)
    )
    gamma = gamma.clamp(min=0.0)
    starts = torch.cat([zero, tc])
    ends = torch.cat([tc, tc.new_tensor([last])])
    at_end = torch.where(torch.isinf(ends), torch.where(gamma > 0, math.inf, kappa),
                         gamma * ends + kappa)
    reach = (at_end >= 0).nonzero()
    if reach.numel() == 0:
        t = last  # still downhill at the next kink: stop there (inf cannot happen)
        if math.isinf(t):
            return w.clone()
    else:
        m = int(reach[0])
        t = float(starts[m])
        if float(gamma[m]) > 0:
            t = max(t, -float(kappa[m]) / float(gamma[m]))
    x = w + torch.minimum(tau, torch.tensor(t, dtype=w.dtype)) * p0
    return torch.where(tau <= t, 0.0, x)


def _line_search(w, p, lam, a: float, beta: float) -> tuple[float, torch.Tensor]:
    """Exact minimiser t >= 0 of f(t) = a t^2 / 2 - beta t + sum_j lam_j |w_j + t p_j|
    (convex, a >= 0), and the coordinates that are exactly 0 there (a kink)."""
    none = torch.zeros(0, dtype=torch.long)
    sgn = torch.where(w != 0, w.sign(), p.sign())
    slope = float((lam * p * sgn).sum()) - beta  # f'(0+)
    if not slope < 0:
        return 0.0, none
    cross = (w * p < 0).nonzero().squeeze(1)
    tk = -w[cross] / p[cross]
    tk, order = torch.sort(tk)
    cross = cross[order]
    # f'(t) = a t + consts[i] between the i-th and (i+1)-th kink; each kink adds 2 lam |p|
    jumps = torch.cumsum(2 * lam[cross] * p[cross].abs(), 0)
    consts = torch.cat([jumps.new_tensor([slope]), slope + jumps])
    ends = torch.cat([tk, tk.new_tensor([math.inf])])
    at_end = torch.where(torch.isinf(ends), math.inf if a > 0 else consts, a * ends + consts)
    reach = (at_end >= 0).nonzero()
    if reach.numel() == 0:
        return 0.0, none  # unbounded below along p: cannot happen for a lasso, refuse
    i = int(reach[0])
    lo = float(tk[i - 1]) if i > 0 else 0.0
    t = max(lo, -float(consts[i]) / a) if a > 0 else lo
    hit = cross[tk == t] if (i > 0 and t == lo) else none
    return t, hit


# --------------------------------------------------------------------------- elastic net
def elastic_net(
    X,
    y,
    lam1: float,
    lam2: float,
    *,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    strict: bool = False,
) -> PenalizedResult:
    """Exact elastic net, certified by the duality gap like :func:`lasso`.

    Minimises the canonical objective

        P(w, c) = 1/2 ||y - Xw - c||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2

    over (w, c), c unpenalized. scikit-learn's ``ElasticNet(alpha, l1_ratio)`` minimises
    (1/2n) ||y - Xw - c||^2 + alpha l1_ratio ||w||_1 + (alpha (1 - l1_ratio)/2) ||w||^2, the
    same problem at lam1 = n alpha l1_ratio, lam2 = n alpha (1 - l1_ratio). (This is the
    "naive" elastic net: the MAP under the product of a Laplace and a Gaussian prior.)

    **Reduction.** With c at its optimum, c = mean(y) - mean(X) . w, the objective is
    1/2 ||yc - Xc w||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2 on the centred data, and
    (lam2/2) ||w||^2 = 1/2 ||0 - sqrt(lam2) I w||^2, so it is exactly the lasso without
    intercept on the augmented data

        A = [Xc; sqrt(lam2) I]  ((n + d) x d),   b = [yc; 0],

    whose columns all have norm >= sqrt(lam2) > 0 (full column rank: the solution is
    unique). That lasso is solved by the active-set machinery of :func:`lasso`, and its
    duality gap -- P(w) minus the dual objective at theta = alpha r_A, with the residual
    r_A = b - A w -- is the elastic net's own: the certificate, its rounding floor and the
    stop test ``gap <= max(tol * P(w), floor)`` are those documented in :func:`lasso`, with
    (n + d) rows.

    Edge cases: lam1 = 0 is the ridge at lam = lam2 (solved by :func:`ridge`, closed form;
    lam1 = lam2 = 0 is least squares), lam2 = 0 is :func:`lasso`; the result is the same as
    theirs except that ``penalty`` is ``"elasticnet"`` and ``lam``, ``lam2`` are lam1, lam2.
    For lam1 >= :func:`lasso_lam_max` (which does not depend on lam2) w = 0 exactly.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    lam1, lam2 : float
        Finite numbers >= 0: the weights of ||w||_1 and of (1/2) ||w||^2.
    tol, max_iter, strict
        As for :func:`lasso` (unused when lam1 = 0).

    Returns
    -------
    PenalizedResult
        ``penalty="elasticnet"``, ``lam=lam1``, ``lam2=lam2``; ``objective`` is P(w) at the
        optimal intercept, the other fields as for :func:`lasso` (or :func:`ridge` when
        lam1 = 0).
    """
    X, y = check_data(X, y)
    lam1 = check_nonnegative("lam1", lam1)
    lam2 = check_nonnegative("lam2", lam2)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    if lam1 == 0.0:
        res = ridge(X, y, lam2)
        return replace(res, penalty="elasticnet", lam=0.0, lam2=lam2)
    if lam2 == 0.0:
        res = lasso(X, y, lam1, tol=tol, max_iter=max_iter, strict=strict)
        return replace(res, penalty="elasticnet")
    start = time.perf_counter()
    n, d = X.shape
    Xc, yc, xm, ym = centre(X, y)
    A = torch.cat([Xc, math.sqrt(lam2) * torch.eye(d, dtype=Xc.dtype)])
    b = torch.cat([yc, yc.new_zeros(d)])
    w, cert, solver, lam_max = _lasso_centred(A, b, lam1, tol, max_iter)
    c = float(ym - xm @ w)
    wall = time.perf_counter() - start
    converged = _report(cert, solver.steps, tol, strict, "elastic_net")
    return PenalizedResult(
        w, c, "elasticnet", lam1, cert.primal, cert.gap, lam_max, solver.steps, converged,
        wall, "active-set", cert.bound, int(solver.W.numel()), lam2,
    )


def solve_penalized(X, y, penalty: str, lam: float, **kwargs) -> PenalizedResult:
    """Dispatch to :func:`ridge`, :func:`lasso` or :func:`elastic_net` by name.

    For ``"elasticnet"``, ``lam`` is lam1 and the keyword ``lam2`` is required; the other
    keywords go to the solver (``tol``, ``max_iter``, ``strict``; none for the ridge).
    """
    penalty = check_choice("penalty", penalty, PENALTIES)
    if penalty == "ridge":
        if kwargs:
            raise ValueError(f"ridge takes no solver options; got {sorted(kwargs)}")
        return ridge(X, y, lam)
    if penalty == "elasticnet":
        if "lam2" not in kwargs:
            raise TypeError("the elastic net needs the keyword lam2 (the weight of "
                            "(lam2/2) ||w||^2, a finite number >= 0)")
        lam2 = kwargs.pop("lam2")
        return elastic_net(X, y, lam, lam2, **kwargs)
    return lasso(X, y, lam, **kwargs)
