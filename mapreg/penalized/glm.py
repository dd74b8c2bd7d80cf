"""Penalized generalized linear models: Bernoulli (logistic), Poisson and categorical
(softmax) regression with L1, L2 and elastic-net penalties, solved exactly.

Plain torch; nothing here imports Pyro. Every solver minimises the *summed* (not mean)
negative log likelihood plus the penalty, intercepts unpenalized::

    F(W, c) = sum_i l_i(eta_i) + lam1 ||W||_1 + (lam2/2) ||W||_F^2,   eta_i = x_i' W + c

* ``"bernoulli"`` (y in {0, 1}):   l = log(1 + e^eta) - y eta (logit link); W (d,), c float;
* ``"poisson"`` (y in {0, 1, ...}): l = e^eta - y eta (log link; the constant log y! of the
  negative log likelihood is dropped); W (d,), c float;
* ``"categorical"`` (y in {0, ..., K-1}): l = logsumexp(eta_i) - eta_{i, y_i} (softmax); one
  weight matrix W (d, K), penalized entry by entry, and intercepts c (K,). The likelihood
  depends on the intercepts only through their differences, so they are normalised to sum
  to 0.

Conventions (see :mod:`mapreg.conventions`): scikit-learn's ``LogisticRegression(C)``
minimises C sum_i l_i + (1/2) ||w||^2 (l2) or C sum_i l_i + ||w||_1 (l1), the same optimum as
lam2 = 1/C or lam1 = 1/C; ``PoissonRegressor(alpha)`` minimises
(1/2n) deviance + (alpha/2) ||w||^2 = (1/n) sum_i l_i + const + (alpha/2) ||w||^2, i.e.
lam2 = n alpha; glmnet's and skglm's mean loss (1/n) sum_i l_i + lam P(w) is lam1 = n lam.

Column translation is an exact symmetry when the intercept is unpenalized:
x_i' W + c = (x_i - m)' W + a with m = mean(X) and a = c + m' W. The solvers work on the
centred columns (two-pass means, :func:`mapreg._centring.centre`) and report c = a - m' W,
so an offset of 1e4 in a column costs no accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .._centring import centre
from .._results import FrozenResult
from .._validation import (
    _as_array,
    check_bool,
    check_choice,
    check_data,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from ..errors import report_nonconvergence
from .linear import _active_set

FAMILIES = ("bernoulli", "poisson", "categorical")
_EPS = torch.finfo(torch.float64).eps
_ARMIJO = 1e-4  # sufficient decrease: F(x + t d) <= F(x) + _ARMIJO t Delta
_P0 = 10  # smallest working set (feature rows) of the proximal Newton method


@dataclass(frozen=True, eq=False)
class GLMResult(FrozenResult):
    """The optimum of a penalized GLM (see :func:`penalized_glm`).

    Attributes
    ----------
    coef
        W: shape (d,) for ``"bernoulli"`` and ``"poisson"``, (d, K) for ``"categorical"``.
    intercept
        c: a float, or shape (K,) summing to 0 for ``"categorical"``.
    family, lam1, lam2
        The problem solved.
    objective
        F(W, c) = sum_i l_i + lam1 ||W||_1 + (lam2/2) ||W||^2 at the returned point
        (evaluated on the centred columns).
    kkt_residual
        max_j rho_j / s_j over all coordinates (weights and intercepts): the optimality
        residual relative to the size of the terms of that condition (see
        :func:`penalized_glm`).
    kkt_tol
        The tolerance ``tol`` the residuals were tested against.
    kkt_floor
        max_j r_j / s_j: the largest rounding floor, relative; ``converged`` means
        rho_j <= tol s_j + r_j for every j, so a converged result has
        kkt_residual <= kkt_tol + kkt_floor.
    converged
        Whether that test passed.
    iterations
        Newton / proximal Newton steps taken.
    method
        ``"newton"`` (lam1 = 0) or ``"prox-newton"`` (lam1 > 0).
    n_classes
        K for ``"categorical"``, else None.
    wall_time
        Seconds spent in the solver (ignored by ``==``).
    """

    coef: torch.Tensor
    intercept: float | torch.Tensor
    family: str
    lam1: float
    lam2: float
    objective: float
    kkt_residual: float
    kkt_tol: float
    kkt_floor: float
    converged: bool
    iterations: int
    method: str
    n_classes: int | None
    wall_time: float = field(compare=False)


# ------------------------------------------------------------------------------ families
class _Family:
    """Loss l(eta), its derivative l'(eta) and curvature for one family, on eta (n, K).

    Every formula is chosen so that l' has a small *relative* error (no cancellation of
    p - y when p is close to y in {0, 1}), which the stop test relies on: on separable data
    l' decays exponentially and must not be swamped by a rounding floor of size eps.
    """

    def __init__(self, name: str, y: torch.Tensor, K: int):
        self.name, self.K = name, K
        self.y = y  # (n,) as given (floats holding integers)
        if name == "categorical":
            self.labels = y.long()
            self.Y = torch.nn.functional.one_hot(self.labels, K).to(y.dtype)
        else:
            self.Y = y[:, None]
        self.pos = self.Y > 0

    def loss(self, eta: torch.Tensor) -> torch.Tensor:
        """l_i(eta_i), shape (n,)."""
        if self.name == "bernoulli":
            e = eta[:, 0]
            z = torch.where(self.pos[:, 0], -e, e)  # l = softplus(z), no cancellation
            return z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))
        if self.name == "poisson":
            e = eta[:, 0]
            return torch.exp(e) - self.y * e
        # log sum_l exp(eta_l - eta_y) = m + log1p(sum over l != argmax of exp(z_l - m)),
        # z = eta - eta_y, m = max(z) >= 0: exact 1 taken out of the sum, no cancellation
        z = eta - eta.gather(1, self.labels[:, None])
        m, arg = z.max(1)
        E = torch.exp(z - m[:, None])
        E.scatter_(1, arg[:, None], 0.0)
        return m + torch.log1p(E.sum(1))

    def derivatives(self, eta: torch.Tensor):
        """(l' (n, K), curvature) -- curvature is l'' (n, 1) for the scalar families and the
        probabilities P (n, K) for ``"categorical"`` (l'' = diag(P) - P P')."""
        if self.name == "bernoulli":
            e = eta[:, 0]
            p, q = torch.sigmoid(e), torch.sigmoid(-e)
            d1 = torch.where(self.pos[:, 0], -q, p)  # p - y without cancellation
            return d1[:, None], (p * q)[:, None]
        if self.name == "poisson":
            mu = torch.exp(eta[:, 0])
            return (mu - self.y)[:, None], mu[:, None]
        P = torch.softmax(eta, 1)
        d1 = P.clone()
        # at l = y_i: p_y - 1 = -(sum of the other probabilities), computed as such
        other = P.masked_fill(self.pos, 0.0).sum(1)
        d1.scatter_(1, self.labels[:, None], -other[:, None])
        return d1, P

    def curvature_bound(self, curv: torch.Tensor) -> torch.Tensor:
        """sum_l |d l'_k / d eta_l| per (i, k): how much l'_k moves per unit error in eta."""
        if self.name == "categorical":
            return 2 * curv * (1 - curv)
        return curv

    def start(self) -> torch.Tensor:
        """The intercepts of the intercept-only optimum (W = 0)."""
        if self.name == "bernoulli":
            ybar = float(self.y.mean())
            return self.y.new_tensor([math.log(ybar) - math.log1p(-ybar)])
        if self.name == "poisson":
            return self.y.new_tensor([math.log(float(self.y.mean()))])
        a = torch.log(self.Y.mean(0))
        return a - a.mean()


# ---------------------------------------------------------------------------- validation
def _check_family_data(X, y, family: str, n_classes):
    family = check_choice("family", family, FAMILIES)
    X, y = check_data(X, y)
    if family != "categorical" and n_classes is not None:
        raise ValueError(f"n_classes is only for family 'categorical'; got n_classes="
                         f"{n_classes!r} with family {family!r}")
    vals = torch.unique(y)
    shown = ", ".join(f"{float(v):g}" for v in vals[:6]) + (", ..." if vals.numel() > 6 else "")
    if family == "bernoulli":
        if not bool(((vals == 0) | (vals == 1)).all()):
            raise ValueError(f"y must contain only the values 0 and 1 for family 'bernoulli';"
                             f" got the values {shown}")
        if vals.numel() < 2:
            raise ValueError(f"y must contain both 0 and 1 for family 'bernoulli' (with an "
                             f"unpenalized intercept a single class has no finite optimum); "
                             f"got only {shown}")
        return family, X, y, 1
    integer = bool((vals == torch.round(vals)).all())
    if family == "poisson":
        if not (integer and float(vals.min()) >= 0):
            raise ValueError(f"y must contain non-negative integers (counts) for family "
                             f"'poisson'; got the values {shown}")
        if float(vals.max()) == 0:
            raise ValueError("y must contain at least one positive count for family 'poisson' "
                             "(all zeros: the unpenalized intercept has no finite optimum)")
        return family, X, y, 1
    if not (integer and float(vals.min()) >= 0):
        raise ValueError(f"y must contain the class labels 0, 1, ..., K-1 (integers) for family "
                         f"'categorical'; got the values {shown}")
    top = int(vals.max()) + 1
    if n_classes is None:
        K = top
    else:
        K = check_positive_int("n_classes", n_classes)
        if K < top:
            raise ValueError(f"n_classes must be larger than every label in y (max label "
                             f"{top - 1}); got {K}")
    if K < 2:
        raise ValueError(f"family 'categorical' needs at least 2 classes; got {K}")
    if vals.numel() < K:
        missing = sorted(set(range(K)) - {int(v) for v in vals})
        raise ValueError(f"every class 0..{K - 1} must occur in y for family 'categorical' "
                         f"(the unpenalized intercept of an absent class has no finite "
                         f"optimum); classes {missing[:6]} never occur")
    return family, X, y, K


def _check_lams(lam1, lam2) -> tuple[float, float]:
    return check_nonnegative("lam1", lam1), check_nonnegative("lam2", lam2)


# ------------------------------------------------------------------------- public helpers
def glm_objective(X, y, family: str, coef, intercept, lam1: float = 0.0,
                  lam2: float = 0.0, *, n_classes: int | None = None) -> float:
    """F(W, c) = sum_i l_i(x_i' W + c) + lam1 ||W||_1 + (lam2/2) ||W||_F^2 (see the module
    docstring for l; summed, not averaged; Poisson without the constant log y!).

    ``coef`` has shape (d,) (``"bernoulli"``, ``"poisson"``) or (d, K) (``"categorical"``),
    ``intercept`` is a number or has shape (K,). The linear predictor is evaluated as
    (X - 1 m') W + (c + m' W), m = mean(X), an identity that keeps column offsets from
    swamping it in rounding.
    """
    family, X, y, K = _check_family_data(X, y, family, n_classes)
    lam1, lam2 = _check_lams(lam1, lam2)
    d = X.shape[1]
    W = _as_array("coef", coef)
    c = _as_array("intercept", intercept).reshape(-1)
    if family == "categorical":
        if tuple(W.shape) != (d, K):
            raise ValueError(f"coef must have shape (n_features, n_classes) = ({d}, {K}); "
                             f"got {tuple(W.shape)}")
        if c.numel() != K:
            raise ValueError(f"intercept must have one entry per class ({K}); got {c.numel()}")
    else:
        if tuple(W.shape) != (d,):
            raise ValueError(f"coef must have shape (n_features,) = ({d},); got "
                             f"{tuple(W.shape)}")
        if c.numel() != 1:
            raise ValueError(f"intercept must be a single number; got {c.numel()} entries")
        W = W[:, None]
    Xc, _, xm, _ = centre(X, y)
    fam = _Family(family, y, K)
    eta = Xc @ W + (c + xm @ W)
    return float(fam.loss(eta).sum()) + lam1 * float(W.abs().sum()) + 0.5 * lam2 * float(
        (W * W).sum())


def glm_lam_max(X, y, family: str, *, n_classes: int | None = None) -> float:
    """The smallest lam1 at which (with lam2 = 0) every weight is exactly 0.

    At W = 0 the intercepts take their intercept-only optimum (fitted mean = mean of y, or
    the class frequencies), where l'_i = mean(y) - y_i, so the optimality condition
    |X_j'(y - mean y)| <= lam1 at w_j = 0 gives lam_max = max_{j, k} |Xc_j' (Y_k - mean Y_k)|
    (Y the one-hot labels for ``"categorical"``), computed on the centred columns.
    """
    family, X, y, K = _check_family_data(X, y, family, n_classes)
    Xc, _, _, _ = centre(X, y)
    fam = _Family(family, y, K)
    R = fam.Y - fam.Y.mean(0)
    return float((Xc.T @ R).abs().max())


# -------------------------------------------------------------------------------- solver
def penalized_glm(
    X,
    y,
    family: str,
    lam1: float = 0.0,
    lam2: float = 0.0,
    *,
    n_classes: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    strict: bool = False,
) -> GLMResult:
    """Exact penalized GLM by Newton's method (lam1 = 0) or proximal Newton (lam1 > 0).

    Minimises the summed objective

        F(W, c) = sum_i l_i(x_i' W + c) + lam1 ||W||_1 + (lam2/2) ||W||_F^2

    over the weights W and the unpenalized intercepts c, for the families of the module
    docstring (Bernoulli/logistic, Poisson without the constant log y!, categorical/softmax
    with intercepts normalised to sum to 0).

    **Method.** X is centred (column translation is an exact symmetry, see the module
    docstring); the start is W = 0 with the intercept-only optimum. Each step builds the
    quadratic model of sum_i l_i (Hessian X'DX blocks, lam2 I added) on a set S of feature
    rows and eliminates the intercepts exactly (Schur complement: for the scalar families
    the columns are centred with the weights D; for the categorical model the intercept
    block, singular along 1, is inverted on its range, and with lam2 = lam1 = 0 the flat
    directions W_j. + v_j 1' of the softmax are fixed to 0 the same way):

    * lam1 = 0: S = all features, the Newton step solves the model (Cholesky; an
      eigendecomposition with a relative cut-off when the Hessian is singular, e.g. the
      maximum likelihood with n <= d);
    * lam1 > 0: the model plus lam1 ||W_S||_1 is minimised *exactly* by the sign-pattern
      active-set method of :func:`mapreg.penalized.lasso` (exact zeros, rank-deficient
      Hessians handled); S is a working set -- the non-zero rows plus the rows that violate
      their optimality condition most, at least 10 and twice the support -- as in skglm's
      and glmnet's proximal Newton / IRLS-CD.

    A backtracking line search (Armijo on F itself, halving) follows each step; a step whose
    predicted decrease is below the rounding of F is taken whole.

    **Stop test** (it cannot pass at a wrong point: it is the optimality condition itself).
    With g = the gradient of sum_i l_i (g_j = Xc_j' l' for weights, sum_i l'_i for
    intercepts), for every coordinate j the residual

        rho_j = |g_j + lam2 w_j + lam1 sign w_j|   (w_j != 0),
                max(|g_j + lam2 w_j| - lam1, 0)    (w_j = 0),   |g_c|   (intercepts)

    must satisfy rho_j <= tol s_j + r_j with s_j = sum_i |xc_ij| |l'_i| + lam2 |w_j| + lam1
    (the sum of the absolute values of the terms of the condition; sum_i |l'_i| for an
    intercept) and the rounding floor

        r_j = 8 eps sum_i |xc_ij| (sqrt(n) (|l'_i| + y_i [Poisson]) + sqrt(d + 1) k_i m_i),

    m_i = |a| + sum_j |xc_ij| |w_j| (max over classes), k_i = l''_i (2 p_ik (1 - p_ik) for the
    categorical model). Justification: g_j is a sum of n terms, whose float64 error is
    typically sqrt(n) eps times the sum of their absolute values (Higham & Mary 2019); l'_i
    is computed with a small relative error (no cancellation, see ``_Family``), except
    e^eta - y for the Poisson family, which loses eps y_i; eta_i is a sum of d + 1 terms of
    total size m_i, off by about sqrt(d + 1) eps m_i (the rounding of w to float64 moves it as
    much), which moves l'_i by k_i times that. The factor 8 is a safety margin. All these
    are far below tol s_j for tol >= 1e-13 or so; they matter only for smaller tol.
    ``kkt_residual`` = max_j rho_j / s_j.

    Without a penalty (lam1 = lam2 = 0, maximum likelihood) on separable Bernoulli (or
    categorical) data there is no optimum: the weights grow without bound, l' decays but
    rho_j / s_j does not, so the test never passes and a warning is issued.

    Parameters
    ----------
    X : array-like (n, d)
    y : array-like (n,)
        {0, 1} (bernoulli), non-negative integers (poisson), labels 0..K-1 (categorical;
        every class must occur).
    family : {"bernoulli", "poisson", "categorical"}
    lam1, lam2 : float
        Finite numbers >= 0 (the weights of ||W||_1 and (1/2)||W||^2).
    n_classes : int, optional
        K for ``"categorical"`` (default max(y) + 1).
    tol : float
        Relative KKT tolerance (> 0).
    max_iter : int
        Maximum number of (proximal) Newton steps.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of a
        :class:`~mapreg.errors.ConvergenceWarning` when the test fails.

    Returns
    -------
    GLMResult
    """
    family, X, y, K = _check_family_data(X, y, family, n_classes)
    lam1, lam2 = _check_lams(lam1, lam2)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    start = time.perf_counter()
    Xc, _, xm, _ = centre(X, y)
    fam = _Family(family, y, K)
    solver = _Solver(Xc, fam, lam1, lam2, tol)
    solver.run(max_iter)
    st = solver.state
    W, a = st.W, st.a
    c = a - xm @ W
    if family == "categorical":
        c = c - c.mean()
    kkt = solver.kkt
    converged = kkt.passed and not solver.saturated
    if not converged:
        why = (" (the likelihood saturated in float64: the weights diverge, e.g. on "
               "separable data without a penalty)" if solver.saturated else "")
        report_nonconvergence(
            f"penalized_glm ({family}, lam1={lam1:g}, lam2={lam2:g}) did not converge in "
            f"{solver.iterations} steps{why}: relative KKT residual {kkt.residual:.3e} > "
            f"tolerance {tol:.3e} (+ rounding floor {kkt.floor:.1e})",
            strict,
        )
    wall = time.perf_counter() - start
    coef = W if family == "categorical" else W[:, 0]
    intercept = c if family == "categorical" else float(c[0])
    return GLMResult(
        coef, intercept, family, lam1, lam2, st.F, kkt.residual, tol, kkt.floor, converged,
        solver.iterations, "prox-newton" if lam1 > 0 else "newton",
        K if family == "categorical" else None, wall,
    )


@dataclass
class _State:
    W: torch.Tensor  # (d, K)
    a: torch.Tensor  # (K,) intercepts of the centred model
    eta: torch.Tensor  # (n, K)
    losses: torch.Tensor  # (n,)
    F: float  # objective


@dataclass
class _KKT:
    passed: bool
    residual: float  # max rho / s
    floor: float  # max r / s
    scores: torch.Tensor  # (d,) per feature row: max_k (|g + lam2 w| / lam1) at zero rows
    g: torch.Tensor  # (d, K) gradient of sum l
    ga: torch.Tensor  # (K,)
    d1: torch.Tensor  # (n, K)
    curv: torch.Tensor


class _Solver:
    def __init__(self, Xc: torch.Tensor, fam: _Family, lam1: float, lam2: float, tol: float):
        self.X, self.fam, self.lam1, self.lam2, self.tol = Xc, fam, lam1, lam2, tol
        self.Xabs = Xc.abs()
        n, d = Xc.shape
        self.n, self.d, self.K = n, d, fam.K
        W = Xc.new_zeros(d, fam.K)
        self.state = self.evaluate(W, fam.start())
        self.iterations = 0
        self.saturated = False
        self.kkt = self.check(self.state)

    # -- objective and optimality ---------------------------------------------------
    def evaluate(self, W: torch.Tensor, a: torch.Tensor, eta: torch.Tensor | None = None):
        if eta is None:
            eta = self.X @ W + a
        losses = self.fam.loss(eta)
        F = float(losses.sum()) + self.lam1 * float(W.abs().sum()) + 0.5 * self.lam2 * float(
            (W * W).sum())
        return _State(W, a, eta, losses, F)

    def check(self, st: _State) -> _KKT:
        """The documented stop test at st."""
        fam, X, Xabs, lam1, lam2 = self.fam, self.X, self.Xabs, self.lam1, self.lam2
        d1, curv = fam.derivatives(st.eta)
        g = X.T @ d1
        ga = d1.sum(0)
        W = st.W
        gw = g + lam2 * W
        nz = W != 0
        rho = torch.where(nz, (gw + lam1 * W.sign()).abs(), (gw.abs() - lam1).clamp(min=0))
        m = (Xabs @ W.abs() + st.a.abs()).amax(1, keepdim=True)  # (n, 1)
        u1 = d1.abs()
        if fam.name == "poisson":
            u1 = u1 + fam.Y
        u = math.sqrt(self.n) * u1 + math.sqrt(self.d + 1) * fam.curvature_bound(curv) * m
        both = Xabs.T @ torch.cat([d1.abs(), u], 1)
        s = both[:, : self.K] + lam2 * W.abs() + lam1
        r = 8 * _EPS * both[:, self.K:]
        rho_a, s_a, r_a = ga.abs(), d1.abs().sum(0), 8 * _EPS * u.sum(0)
        passed = bool((rho <= self.tol * s + r).all()) and bool(
            (rho_a <= self.tol * s_a + r_a).all())
        if float(s_a.min()) == 0.0:
            # sum_i |l'_i| > 0 at every finite point (both classes occur, some y > 0):
            # 0 means every l'_i underflowed -- the weights diverge
            self.saturated = True
            passed = False
        rel = torch.cat([_ratio(rho, s).reshape(-1), _ratio(rho_a, s_a)])
        flo = torch.cat([_ratio(r, s).reshape(-1), _ratio(r_a, s_a)])
        scores = torch.where(nz, math.inf, gw.abs() / lam1 if lam1 > 0 else gw.abs()).amax(1)
        return _KKT(passed, float(rel.max()), float(flo.max()), scores, g, ga, d1, curv)

    # -- the loop ----------------------------------------------------------------------
    def run(self, max_iter: int) -> None:
        while not self.kkt.passed and not self.saturated and self.iterations < max_iter:
            S = self.working_set()
            dW, da = self.direction(S)
            if dW is None:
                break
            self.iterations += 1
            if not self.line_search(S, dW, da):
                break
            self.kkt = self.check(self.state)

    def working_set(self) -> torch.Tensor:
        if self.lam1 == 0.0:
            return torch.arange(self.d)
        scores = self.kkt.scores
        support = int(torch.isinf(scores).sum())
        size = min(self.d, max(_P0, 2 * support))
        order = torch.argsort(scores, descending=True)[:size]
        # rows that do not violate (score <= 1 - tol) are not needed unless near the boundary
        keep = scores[order] > 0.5
        S = order[keep] if bool(keep.any()) else order[:0]
        return torch.sort(S).values

    def direction(self, S: torch.Tensor):
        """The (proximal) Newton step on the rows S: (dW_S (|S|, K), da (K,))."""
        kkt, st, K = self.kkt, self.state, self.K
        m = S.numel()
        XS = self.X if m == self.d else self.X[:, S]
        if self.fam.name != "categorical":
            h = kkt.curv[:, 0]
            hh = float(h.sum())
            if not hh > 0:
                return None, None
            mu = (h @ XS) / hh
            Xw = XS - mu
            G = Xw.T @ (h[:, None] * Xw)
            gt = Xw.T @ kkt.d1[:, 0]  # = g_S - mu g_a: the intercept profiled out
            gt = gt[:, None]

            def back(dz):  # the intercept step given the weight step
                return -(kkt.ga / hh) - mu @ dz
        else:
            P = kkt.curv
            Hww = XS.new_empty(m, K, m, K)
            Hwa = XS.new_empty(m, K, K)
            Haa = XS.new_empty(K, K)
            for k in range(K):
                for j in range(k, K):
                    wkl = (P[:, k] * ((1.0 if k == j else 0.0) - P[:, j]))
                    B = XS.T @ (wkl[:, None] * XS)
                    Hww[:, k, :, j] = B
                    Hww[:, j, :, k] = B.T
                    Hwa[:, k, j] = XS.T @ wkl
                    Hwa[:, j, k] = Hwa[:, k, j]
                    Haa[k, j] = Haa[j, k] = wkl.sum()
            # the intercept block is singular along 1 (g_a and the rows of H_aw are
            # orthogonal to it): invert H_aa + c 1 1' instead, exact on the range
            cK = float(Haa.diagonal().mean()) or 1.0
            Minv = torch.linalg.inv(Haa + cK * torch.ones(K, K, dtype=Haa.dtype))
            HwaM = Hwa @ Minv  # (m, K, K)
            G = (Hww.reshape(m * K, m * K)
                 - HwaM.reshape(m * K, K) @ Hwa.reshape(m * K, K).T)
            gt = kkt.g[S] - HwaM @ kkt.ga  # (m, K)
            G = 0.5 * (G + G.T)
            if self.lam1 == 0.0 and self.lam2 == 0.0 and m:
                # flat directions W_j. + v_j 1': fix v_j = 0 (gt is orthogonal to them)
                blk = torch.block_diag(*[torch.ones(K, K, dtype=G.dtype)] * m)
                G = G + float(G.diagonal().mean() or 1.0) * blk

            def back(dz):
                dz = dz.reshape(m, K)
                return -Minv @ (kkt.ga + torch.einsum("jkl,jk->l", Hwa, dz))
        wS = st.W[S].reshape(-1)
        g0 = -(gt.reshape(-1) + self.lam2 * wS)  # minus the reduced gradient of the smooth part
        if self.lam2 > 0:
            G = G + self.lam2 * torch.eye(G.shape[0], dtype=G.dtype)
        if self.lam1 == 0.0:
            dz = _solve_psd(G, g0)
        else:
            dz = self.prox_subproblem(G, g0, wS) - wS
        da = back(dz)
        return dz.reshape(m, K), da

    def prox_subproblem(self, G, g0, w0) -> torch.Tensor:
        """argmin_z 1/2 (z - w0)' G (z - w0) - g0' (z - w0) + lam1 ||z||_1, exactly (the
        active-set method of the lasso on the unit-diagonal scaling of G)."""
        z = w0.clone()
        D = G.diagonal().sqrt()
        ok = (D > 0).nonzero().squeeze(1)
        if ok.numel() == 0:
            return z
        Dk = D[ok]
        Gn = G[ok][:, ok] / (Dk[:, None] * Dk[None, :])
        gn = g0[ok] / Dk
        v0 = w0[ok] * Dk
        lam = self.lam1 / Dk
        slack = 8 * _EPS * (float(gn.abs().max()) + float(lam.max()) + float(v0.abs().sum()))
        v, _, _ = _active_set(Gn, gn, lam, v0, slack, 50 * ok.numel() + 100, _P0, False)
        z[ok] = v / Dk
        return z

    def line_search(self, S, dW, da) -> bool:
        st, kkt = self.state, self.kkt
        lam1, lam2 = self.lam1, self.lam2
        WS = st.W[S]
        XS = self.X if S.numel() == self.d else self.X[:, S]
        deta = XS @ dW + da
        # Delta: the model's predicted change for the full step, linear part (Tseng & Yun);
        # by convexity F(x + t d) - F(x) <= t Delta + o(t), so Armijo asks for _ARMIJO t Delta
        delta = float((kkt.g[S] * dW).sum() + (kkt.ga * da).sum() + lam2 * (WS * dW).sum())
        delta += lam1 * float(((WS + dW).abs() - WS.abs()).sum())
        noise = 64 * _EPS * (float(st.losses.abs().sum()) + abs(st.F))
        t = 1.0
        for _ in range(60):
            Wt = st.W.clone()
            Wt[S] = WS + t * dW
            new = self.evaluate(Wt, st.a + t * da, st.eta + t * deta)
            if math.isfinite(new.F) and (new.F <= st.F + _ARMIJO * t * delta
                                         or (-t * delta <= noise and new.F <= st.F + noise)):
                if self.fam.name == "categorical":
                    new.a = new.a - new.a.mean()  # exact: the likelihood sees differences
                    new.eta = self.X @ new.W + new.a
                self.state = new
                return True
            t *= 0.5
        return False


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b with 0 / 0 = 0."""
    return torch.where(b > 0, a / torch.where(b > 0, b, 1.0), torch.where(a > 0, math.inf, 0.0))


def _solve_psd(G: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """G^-1 b for a symmetric positive semi-definite G: Cholesky (plus one step of iterative
    refinement) when well conditioned, else the minimum-norm solution by an
    eigendecomposition with the cut-off size * eps * lambda_max."""
    if G.shape[0] == 0:
        return b.clone()
    L, info = torch.linalg.cholesky_ex(G)
    if int(info) == 0:
        dg = L.diagonal()
        if float(dg.min()) ** 2 > 1e-10 * float(dg.max()) ** 2:
            x = torch.cholesky_solve(b[:, None], L)[:, 0]
            return x + torch.cholesky_solve((b - G @ x)[:, None], L)[:, 0]
    lam, V = torch.linalg.eigh(G)
    cut = float(lam.abs().max()) * G.shape[0] * _EPS
    inv = torch.where(lam > cut, 1.0 / lam.clamp(min=cut), 0.0)
    return V @ (inv * (V.T @ b))
