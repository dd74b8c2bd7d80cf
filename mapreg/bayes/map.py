"""MAP estimation on a Pyro model's own log joint.

The objective is Pyro's, never a formula typed in here::

    minimise  F(w, c) = -log p(y, w, c)  =  f(w, c) + h(w)

where ``f`` is minus the sum of the log probabilities, *as computed by a Pyro trace*, of
every site whose density is smooth (the observations, the flat intercept prior and a
smooth weight prior). When the prior is not smooth (Laplace, elastic net) the weight
site's -log p(w) is split into the non-smooth part ``h(w) = kappa_1 ||w||_1``
(``kappa_1 = prior.l1_weight``) and the smooth remainder -log p(w) - h(w), whose value and
derivatives come from Pyro's log prob by autograd (for the elastic net it is
||w||^2 / (2 sigma^2) + const, but that formula is nowhere typed in; for the Laplace prior
it is a constant). The remainder joins ``f`` (so its quadratic part enters the exact
Hessian); ``h`` enters only through the L1 subproblem and its subdifferential. Reported
values of -log p are Pyro's sums over all sites.

Evaluation on the centred data (invariant to offsets and units)
---------------------------------------------------------------
The linear model's log joint depends on X and y only through the residuals y - Xw - c,
so translating the data is an exact symmetry of the model:

    log p(y | X, w, c) + log p(w)  =  log p(yc | Xc, w, a) + log p(w),
    Xc = X - mean(X),  yc = y - mean(y),  a = c - mean(y) + mean(X) . w.

The engine traces the same Pyro model on (Xc, yc) (centred in two passes, see
:mod:`mapreg._centring`) and moves in u = (w, a): the intercept decouples from the
weights, the start u = 0 (w = 0, c = mean(y)) is the exact optimum when the prior zeroes
every weight, and uncentred columns ("a year around 2000", an offset of 1e5) or a large
offset in y cost nothing -- evaluated on the raw data, their magnitudes would drown the
residuals' rounding and the Hessian's accuracy (a gradient floor up to 1e5 times larger).
Every value and gradient still comes from Pyro's trace of the model; the reported
-log p(y, w, c) is evaluated on the user's raw data at the returned (w, c).

Method (proximal Newton with exact second-order information and working sets)
-----------------------------------------------------------------------------
1. One trace gives Pyro's -log p and the autograd gradient of f; from the same trace,
   by autograd, the observations' curvature c_i = d delta_i / d mean_i and the prior's
   (diagonal, i.i.d.) curvature P. The model's mean is the linear predictor Xc w + a, so
   the Hessian is, exactly, J' diag(c) J + diag(P, 0) with J = [Xc, 1]: its columns (and
   Hessian-vector products, two products with Xc) follow by the chain rule from numbers
   Pyro computed -- no batched trace per column.
2. Smooth prior (Gaussian): Newton steps with the full Hessian (or, for large problems,
   conjugate gradients on exact Hessian-vector products).
   Non-smooth prior (Laplace, elastic net): the quadratic model plus h is minimised over a
   working set
   of coordinates (the current support, the intercept and the worst KKT violators)
   exactly, by the feature-sign active-set method on the Jacobi-scaled block (a finite
   sequence of linear solves on sign patterns, exact zeros included, singular blocks
   handled by moves along null directions); should it stall, coordinate descent with the
   prior's proximal operator (soft-thresholding) and a polish on the found support take
   over.
3. The step is accepted if Pyro's -log p does not increase beyond its own rounding
   (otherwise it is halved); if Pyro's gradient at the new point departs from the
   quadratic model's prediction, the Hessian is recomputed there (a non-quadratic f).

Stop test (cannot pass at a wrong point)
----------------------------------------
For each coordinate j of u, with rho_j the KKT residual (|grad_j F| for a smooth
coordinate, the distance from -grad_j f to the subdifferential kappa_1 * d|w_j| for a
weight under a non-smooth prior), the test is::

    rho_j  <=  tol * s_j  +  r_j

* s_j, the scale of coordinate j's optimality condition: the sum of the absolute values
  of its terms, sum_i |x_ij - mean(x_j)| |delta_i| (intercept: sum_i |delta_i|), with
  delta_i = -d log p(y_i | mean_i) / d mean_i from Pyro, plus |d log p(w) / d w_j| for a
  smooth prior, or |d (smooth remainder) / d w_j| + kappa_1 for a non-smooth one. It is
  relative to the
  condition itself -- not to the gradient at w = 0, which can exceed a weak prior's whole
  penalty weight (n < d) and would let a wrong point pass.
* r_j, the rounding floor of Pyro's float64 gradient: 32 eps times the magnitudes that
  enter it, sum_i |xc_ij| |d delta_i/d mean_i| (|yc_i| + sum_k |xc_ik w_k| + |a|) (plus
  32 eps |d log p(w)/d w_j| for a smooth prior, 32 eps |d (smooth remainder)/d w_j| for
  a non-smooth one). It matters only where the residuals are
  far smaller than the data (near-interpolation with a very weak prior): there float64
  cannot resolve the prior's pull any better. (Measured: Pyro's gradient error stays
  below 0.06 r_j over thousands of hostile problems.)

While the test passes only thanks to r_j (which is an upper bound), the iterations go on
as long as they halve the relative residual, so a weak prior is resolved as sharply as
the evaluation allows.

The result reports max_j rho_j / s_j (``kkt_residual``), the tolerance ``tol``
(``kkt_tol``) and max_j r_j / s_j (``kkt_floor``); ``converged`` is the test above.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from pyro import poutine

from .._centring import centre
from .._results import FrozenResult
from .._validation import check_bool, check_data, check_positive, check_positive_int, check_vector
from ..errors import report_nonconvergence
from ._cg import conjugate_gradient
from ._kkt import EPS, FLOOR_FACTOR, grow_working_set, relative, t_matmul
from ._l1qp import newton_step, solve_l1_qp
from .likelihoods import GaussianNoise
from .models import INTERCEPT_SITE, OBS_SITE, WEIGHT_SITE, linear_model, pyro_session
from .priors import Prior

# Smooth priors: try conjugate gradients before building the Hessian when n * p^2 is this big.
_CG_MIN_WORK = 1e9
_EPS = EPS
_FLOOR_FACTOR = FLOOR_FACTOR  # the rounding floor of a gradient entry, in eps x magnitudes
# A working set grows by at least this many violators per outer iteration.
_MIN_GROWTH = 32
# Step halvings before a non-decreasing step is given up.
_MAX_HALVINGS = 30


@dataclass(frozen=True, eq=False)
class MapResult(FrozenResult):
    """The MAP estimate and how it was reached.

    Attributes
    ----------
    coef, intercept
        The maximiser (w, c) of Pyro's log joint.
    neg_log_joint
        -log p(y, w, c) at the estimate, from a Pyro trace (all sites, constants included).
    kkt_residual
        max over coordinates of rho_j / s_j: the KKT residual (distance from -grad f to the
        subdifferential of h; |grad F| for smooth coordinates) relative to the scale of that
        coordinate's optimality condition (see the module docstring). 0 at an exact optimum.
    kkt_tol
        The relative tolerance ``tol`` the residual was tested against.
    kkt_floor
        max over coordinates of r_j / s_j: the rounding floor of Pyro's float64 gradient on
        this data, relative to the same scales (added to the tolerance).
    converged
        Whether rho_j <= tol * s_j + r_j for every coordinate.
    iterations
        Outer (proximal) Newton iterations.
    pyro_traces
        Number of Pyro traces run (each evaluates the log joint at a batch of points).
    working_set_size
        Coordinates of w in the final working set (d for a smooth prior).
    wall_time
        Seconds spent in the solver.
    method
        ``"newton"`` (smooth prior, Hessian from Pyro), ``"newton-cg"`` (smooth prior on a
        large problem: conjugate gradients on exact Hessian-vector products) or
        ``"prox-newton"`` (non-smooth prior: Laplace, elastic net; working sets).
    """

    coef: torch.Tensor
    intercept: float
    neg_log_joint: float
    kkt_residual: float
    kkt_tol: float
    converged: bool
    iterations: int
    pyro_traces: int
    working_set_size: int
    wall_time: float = field(compare=False)  # not part of the answer
    method: str
    kkt_floor: float = 0.0


@dataclass(frozen=True)
class _Point:
    """Pyro's log joint at one point u of the centred parametrization."""

    u: torch.Tensor
    full: float  # -log p(y, w, c), every site
    grad: torch.Tensor  # gradient of the smooth part f with respect to u
    scale: torch.Tensor  # s_j without the non-smooth prior's kappa
    floor: torch.Tensor  # r_j
    full_floor: float  # rounding of ``full`` (for the descent test)
    curvature: float  # sum_i |d delta_i / d mean_i|: how a shift of every residual moves grad_a
    curv: torch.Tensor | None = None  # d delta_i / d mean_i per observation (Pyro, autograd)
    prior_curv: torch.Tensor | None = None  # the prior's smooth curvature per weight (diagonal)


class _LogJoint:
    """Pyro's -log p(y, w, c) as a function of u = (w, a), evaluated on the centred data
    (see the module docstring), with gradients and Hessian columns by autograd."""

    def __init__(self, model, X: torch.Tensor, y: torch.Tensor, prior: Prior):
        self.model = model
        self.n, self.d = X.shape
        self.p = self.d + 1
        self.smooth_prior = prior.smooth
        self.l1_weight = prior.l1_weight  # weight of h(w) = kappa_1 ||w||_1 (0: smooth prior)
        self.l2_weight = prior.l2_weight  # 0: the weight prior has no smooth part (Laplace)
        self.curvatures = None  # (observations', prior's) second derivatives, from Pyro
        self.X, self.y, self.x_mean, self.y_mean = centre(X, y)
        self.abs_X = self.X.abs()
        self.abs_y = self.y.abs()
        self.traces = 0

    def raw(self, u: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(w, c) on the user's data for the point u: c = mean(y) + a - mean(X) . w."""
        w = u[: self.d]
        return w.clone(), float(self.y_mean + u[self.d] - self.x_mean @ w)

    def to_u(self, w: torch.Tensor, c: float) -> torch.Tensor:
        """The point u of the user's (w, c)."""
        return torch.cat([w, (c - self.y_mean + self.x_mean @ w).reshape(1)])

    def evaluate(self, U: torch.Tensor):
        """One trace at the rows of ``U`` (the model broadcasts over them).

        Returns (full, point): Pyro's -log p per row, and the :class:`_Point` of row 0 --
        gradient, scales, rounding floor and the curvatures the Hessian is assembled from
        (:class:`_Hessian`).
        """
        U = U.detach().clone().requires_grad_(True)
        data = {WEIGHT_SITE: U[:, : self.d], INTERCEPT_SITE: U[:, self.d]}
        tr = poutine.trace(poutine.condition(self.model, data=data)).get_trace(self.X, self.y)
        tr.compute_log_prob()
        self.traces += 1
        B = U.shape[0]
        smooth = U.new_zeros(B)
        rough = U.new_zeros(B)
        remainder = None  # -log p(w) - h(w) per row: the weight site's smooth part
        magnitude = 0.0  # sum of |log prob| terms at row 0: the rounding scale of -log p
        for name, site in tr.nodes.items():
            if site["type"] != "sample":
                continue
            lp = site["log_prob"]
            if lp.numel() == 1:  # a constant density (the flat intercept prior) broadcasts
                lp = lp.reshape(1).expand(B)
            lp_rows = lp.reshape(B, -1)
            magnitude += float(lp_rows[0].detach().abs().sum())
            if name == WEIGHT_SITE and not self.smooth_prior:
                rough = rough - lp_rows.sum(-1)
                w = data[WEIGHT_SITE]
                remainder = -lp_rows.sum(-1) - self.l1_weight * w.abs().sum(-1)
            else:
                smooth = smooth - lp_rows.sum(-1)
        (G,) = torch.autograd.grad(smooth.sum(), U, retain_graph=True)
        # The Gaussian likelihood's -log p is quadratic in the mean, and the priors' smooth
        # parts (Gaussian, the elastic net's) are quadratic in w: their second derivatives are
        # constants, taken from Pyro's trace at the first point and kept (second == True).
        second = self.curvatures is None
        remainder_grad = None
        if remainder is not None and (self.l2_weight > 0 or second):
            # a separate backward, so that a remainder whose gradient is exactly 0 (Laplace:
            # Pyro's |w|/b minus kappa_1 |w|) leaves G bit for bit as it was
            (remainder_grad,) = torch.autograd.grad(remainder.sum(), U, create_graph=second,
                                                    retain_graph=True)
            G = G + remainder_grad
        obs = tr.nodes[OBS_SITE]
        loc = obs["fn"].loc  # the mean the observations are drawn around, in the graph
        (delta,) = torch.autograd.grad(-obs["log_prob"].sum(), loc, create_graph=second,
                                       retain_graph=True)
        prior_grad = None
        if self.smooth_prior:
            lp_w = tr.nodes[WEIGHT_SITE]["log_prob"].reshape(B, -1)[0].sum()
            (prior_grad,) = torch.autograd.grad(-lp_w, U, create_graph=second,
                                                retain_graph=second)
        elif remainder_grad is not None:
            prior_grad = remainder_grad
        if second:
            (curv,) = torch.autograd.grad(delta[0].sum(), loc, retain_graph=True,
                                          allow_unused=True)
            curv = torch.zeros(self.n, dtype=U.dtype) if curv is None else curv[0].detach()
            # the prior's curvature: i.i.d., so its Hessian is diagonal and H 1 is the diagonal
            prior_curv = torch.zeros(self.d, dtype=U.dtype)
            if prior_grad is not None and prior_grad.requires_grad:
                (pc,) = torch.autograd.grad(prior_grad[0, : self.d].sum(), U,
                                            retain_graph=True, allow_unused=True)
                if pc is not None:
                    prior_curv = pc[0, : self.d].detach()
            self.curvatures = (curv, prior_curv)
        curv, prior_curv = self.curvatures
        if prior_grad is not None:
            prior_grad = prior_grad.detach()
        point = self._point(U[0].detach(), float((smooth[0] + rough[0]).detach()), G[0].detach(),
                            delta[0].detach(), curv,
                            None if prior_grad is None else prior_grad[0, : self.d], magnitude)
        point = replace(point, curv=curv, prior_curv=prior_curv)
        return (smooth + rough).detach(), point

    def _point(self, u, full, grad, delta, curv, prior_grad, magnitude) -> _Point:
        d = self.d
        abs_delta = delta.abs()
        # the magnitudes entering each residual y_i - x_i . w - a (centred data), times the
        # curvature of the observation's -log p: the absolute rounding of delta_i
        if curv is None:  # delta does not depend on the mean: no rounding is propagated
            curv = torch.zeros_like(delta)
        nz = (u[:d] != 0).nonzero().squeeze(1)  # sparse w (Laplace): only its columns
        fit = (self.abs_X[:, nz] @ u[nz].abs() if nz.numel() < d // 2
               else self.abs_X @ u[:d].abs())
        nu = curv.detach().abs() * (self.abs_y + fit + abs(float(u[d])))
        both = t_matmul(self.abs_X, torch.stack([abs_delta, nu], 1))  # one pass over X for the two
        scale = torch.cat([both[:, 0], abs_delta.sum().reshape(1)])
        floor = torch.cat([both[:, 1], nu.sum().reshape(1)])
        if prior_grad is not None:
            scale[:d] += prior_grad.abs()
            floor[:d] += prior_grad.abs()
        floor = (_FLOOR_FACTOR * _EPS) * floor
        return _Point(u, full, grad, scale, floor, _FLOOR_FACTOR * _EPS * magnitude,
                      float(curv.detach().abs().sum()))

    def at(self, u: torch.Tensor) -> _Point:
        return self.evaluate(u[None])[1]



class _Hessian:
    """Columns of the Hessian of f, by the chain rule through the model's linear predictor
    mean = Xc w + a: H = J' diag(c) J + diag(P, 0), J = [Xc, 1], with c_i = d delta_i / d mean_i
    (the observations' curvature) and P the prior's curvature, both from Pyro's trace by
    autograd at the evaluated point (:meth:`_LogJoint.evaluate`). For a Gaussian likelihood f
    is quadratic and H is constant; otherwise :meth:`invalidate` makes the next request
    recompute the columns at the new point."""

    def __init__(self, lj: _LogJoint):
        self.lj = lj
        p = lj.p
        self.H = torch.zeros(p, p, dtype=lj.X.dtype)
        self.known = torch.zeros(p, dtype=torch.bool)

    def invalidate(self) -> None:
        self.known[:] = False

    def evaluate(self, u: torch.Tensor, cols: torch.Tensor) -> _Point:
        """Evaluate at ``u`` (one trace) and fill the columns in ``cols`` not known yet."""
        point = self.lj.at(u)
        self.ensure(point, cols)
        return point

    def ensure(self, point: _Point, cols: torch.Tensor) -> None:
        """Fill the columns in ``cols`` not known yet, from ``point``'s curvature."""
        need = cols[~self.known[cols]]
        if not need.numel():
            return
        X, d = self.lj.X, self.lj.d
        # column j of J = [Xc, 1] (no copy of X: the ones column is handled apart)
        Jc = torch.where(need < d, 0, 1).to(X.dtype).expand(X.shape[0], -1).clone()
        w_cols = (need < d).nonzero().squeeze(1)
        Jc[:, w_cols] = X[:, need[w_cols]]
        cJ = point.curv[:, None] * Jc
        self.H[:d, need] = t_matmul(X, cJ)
        self.H[d, need] = cJ.sum(0)
        w = need[need < d]
        if w.numel():
            pos = (need < d).nonzero().squeeze(1)
            self.H[w, need[pos]] += point.prior_curv[w]
        self.known[need] = True

    def hvp(self, point: _Point, v: torch.Tensor) -> torch.Tensor:
        """H v at ``point``: two products with Xc (no matrix)."""
        X, d = self.lj.X, self.lj.d
        t = point.curv * (X @ v[:d] + v[d])
        out = torch.empty_like(v)
        out[:d] = t_matmul(X, t) + point.prior_curv * v[:d]
        out[d] = t.sum()
        return out


def _kkt(point: _Point, prior: Prior, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate KKT residual rho_j and the scale s_j of its optimality condition.

    ``point.grad`` is the gradient of f, which holds every smooth term (the prior's smooth
    remainder included), so a weight's residual is the distance from -grad_j f to
    kappa_1 d|w_j|, kappa_1 = ``prior.l1_weight``.
    """
    if prior.smooth:
        return point.grad.abs(), point.scale
    k1 = prior.l1_weight
    w, g = point.u[:d], point.grad[:d]
    l1_distance = torch.where(w != 0, (g + k1 * torch.sign(w)).abs(),
                              torch.clamp(g.abs() - k1, min=0.0))
    rho = torch.cat([l1_distance, point.grad[d:].abs()])
    scale = point.scale.clone()
    scale[:d] += k1
    return rho, scale


def _violations(point: _Point, prior: Prior, d: int, tol: float) -> torch.Tensor:
    """rho_j - tol s_j: positive where coordinate j is not optimal to ``tol`` (the stop
    test adds the floor r_j; the iterations aim below it, see :func:`_run`)."""
    rho, scale = _kkt(point, prior, d)
    return rho - tol * scale


def _residual(point: _Point, prior: Prior, d: int, tol: float) -> tuple[float, bool]:
    """max_j rho_j / s_j, and whether rho_j <= tol s_j + r_j for every j."""
    rho, scale = _kkt(point, prior, d)
    return _relative(rho, scale), bool((rho <= tol * scale + point.floor).all())


def _relative(num: torch.Tensor, scale: torch.Tensor) -> float:
    return float(relative(num, scale).max())


def _grow_working_set(working, u, viol, d: int) -> torch.Tensor:
    """Working set plus the support of u plus the worst violators outside it (at least
    _MIN_GROWTH: measured, 32 saves one or two outer iterations -- each a Pyro trace -- on
    small problems and costs nothing on large ones)."""
    support = torch.zeros_like(working)
    support[:d] = u[:d] != 0
    penalized = torch.ones_like(working)
    penalized[d:] = False
    return grow_working_set(working, support, penalized, viol, _MIN_GROWTH)


# ----------------------------------------------------------------------- the front door


def map_estimate(
    X,
    y,
    prior: Prior,
    noise: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    strict: bool = False,
) -> MapResult:
    """MAP estimate of Bayesian linear regression, from Pyro's log joint.

    Model (see :func:`mapreg.models.linear_model`)::

        w ~ prior (i.i.d.),  c ~ flat,  y_i ~ Normal(x_i . w + c, noise)

    and the estimate maximises Pyro's log p(y, w, c), i.e. minimises
    (1/noise^2) [1/2 ||y - Xw - c||^2 + lam1 ||w||_1 + (lam2/2) ||w||^2] + const with
    (lam1, lam2) = prior.lams(noise) = noise^2 (prior.l1_weight, prior.l2_weight)
    -- but that formula is nowhere used here: values and gradients come from Pyro traces
    (see the module docstring for the method and the stop test).

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,)
    prior : Prior
        e.g. ``Gaussian(sigma=0.5)``, ``Laplace(b=0.5)`` or ``ElasticNet(sigma=1, b=0.5)``.
    noise : float
        Observation noise scale sigma_eps > 0.
    tol : float
        Relative KKT tolerance: coordinate j passes when its KKT residual is at most
        ``tol`` times the sum of the absolute values of the terms of its optimality
        condition, plus the rounding floor of Pyro's float64 gradient on this data.
    max_iter : int
        Maximum outer iterations.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the tolerance
        is not reached.

    Returns
    -------
    MapResult
        Frozen; see its attributes. The user's Pyro param store is left untouched, and
        concurrent calls from several threads are safe (their Pyro traces are serialised).
    """
    X, y = check_data(X, y, copy=False)  # only read: the engine works on a centred copy
    _check_prior(prior)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    lik = GaussianNoise(noise)
    start = time.perf_counter()
    with pyro_session():
        lj = _LogJoint(linear_model(prior, lik), X, y, prior)
        point, it, ws, method = _run(lj, prior, tol, max_iter)
    wall = time.perf_counter() - start
    opt = _optimality(point, prior, lj.d, tol)
    if not math.isfinite(point.full):
        raise RuntimeError(f"Pyro's log joint is not finite at the estimate: {point.full}")
    if not opt.passes:
        report_nonconvergence(
            f"MAP engine did not converge in {it} iterations: KKT residual "
            f"{opt.kkt_residual:.3e} > tolerance {tol:.3e} (relative to each optimality "
            f"condition's scale; rounding floor {opt.kkt_floor:.1e})",
            strict,
        )
    w, c = lj.raw(point.u)
    with pyro_session():  # the reported value is Pyro's on the user's own (raw) data
        nlj = _neg_log_joint(lj.model, X, y, w, c)
    return MapResult(w, c, nlj, opt.kkt_residual, tol, opt.passes, it, lj.traces + 1, ws, wall,
                     method, opt.kkt_floor)


@dataclass(frozen=True)
class Optimality:
    """How close a point is to the MAP, by the engine's stop test (module docstring).

    Attributes
    ----------
    kkt_residual
        max_j rho_j / s_j: the KKT residual relative to each optimality condition's scale.
    kkt_floor
        max_j r_j / s_j: the rounding floor of Pyro's float64 gradient at this point.
    kkt_tol
        The relative tolerance tested against.
    passes
        rho_j <= kkt_tol * s_j + r_j for every coordinate j (weights and intercept).
    """

    kkt_residual: float
    kkt_floor: float
    kkt_tol: float
    passes: bool


def _optimality(point: _Point, prior: Prior, d: int, tol: float) -> Optimality:
    rho, scale = _kkt(point, prior, d)
    passes = bool((rho <= tol * scale + point.floor).all())
    return Optimality(_relative(rho, scale), _relative(point.floor, scale), tol, passes)


def map_optimality(X, y, prior: Prior, noise: float, coef, intercept: float, *,
                   tol: float = 1e-10) -> Optimality:
    """The MAP engine's stop test at any point (w, c), from one Pyro trace.

    Tells whether (w, c) maximises Pyro's log p(y, w, c) for this prior and noise, by the
    same test :func:`map_estimate` stops on (see the module docstring): for every
    coordinate, the KKT residual is at most ``tol`` times the scale of its optimality
    condition plus the rounding floor of Pyro's gradient. Use it to check a penalized
    solver's or a training run's answer against the posterior.
    """
    X, y = check_data(X, y)
    _check_prior(prior)
    tol = check_positive("tol", tol)
    n, d = X.shape
    w = check_vector("coef", coef, d)
    c = float(intercept)
    with pyro_session():
        lj = _LogJoint(linear_model(prior, GaussianNoise(noise)), X, y, prior)
        point = lj.at(lj.to_u(w, c))
    # the conversion a = c - mean(y) + mean(X) . w rounds by ~eps times its terms, which
    # shifts every residual alike: it moves the intercept's condition only
    shift = 4 * _EPS * (abs(c) + abs(float(lj.y_mean)) + float(lj.x_mean.abs() @ w.abs()))
    floor = point.floor.clone()
    floor[d] += _FLOOR_FACTOR * shift * point.curvature
    return _optimality(replace(point, floor=floor), prior, d, tol)


def _check_prior(prior) -> None:
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a mapreg Prior (e.g. Laplace(b=0.5)); got {prior!r}")
    if not prior.smooth and not callable(getattr(prior, "prox", None)):
        raise ValueError(f"the MAP engine needs a proximal operator for the non-smooth {prior}")


def _run(lj: _LogJoint, prior: Prior, tol: float, max_iter: int):
    n, d, p = lj.n, lj.d, lj.p
    hess = _Hessian(lj)
    u = torch.zeros(p, dtype=lj.X.dtype)
    use_cg = prior.smooth and n * p * p >= _CG_MIN_WORK
    working = torch.zeros(p, dtype=torch.bool)
    working[d] = True  # the intercept is always optimised
    if prior.smooth:
        working[:] = True
    penalized = torch.ones(p, dtype=torch.bool)
    penalized[d] = False
    # the first trace evaluates at 0 and at the first Hessian columns: all of them for a
    # smooth prior solved directly, the intercept's otherwise
    first = torch.arange(p) if prior.smooth and not use_cg else torch.tensor([d])
    point = hess.evaluate(u, first)
    it = 0
    method = "newton" if prior.smooth else "prox-newton"
    viol = _violations(point, prior, d, tol)
    if use_cg and bool((viol > 0).any()):
        # Building the full Hessian costs about p / 12 single traces; try CG first.
        point, cg_it = _conjugate_gradient(lj, hess, point, tol, max(10, p // 12))
        u = point.u
        it += cg_it
        method = "newton-cg"
        viol = _violations(point, prior, d, tol)
    # Passing only thanks to the rounding floor is not enough while the iterations still
    # make progress: the floor is an upper bound on Pyro's gradient error, and a weak
    # prior's conditions can be resolved far below it. Stop there once the relative
    # residual no longer halves, and return the best point that passed.
    best, previous = None, math.inf
    while True:
        residual, passes = _residual(point, prior, d, tol)
        if passes and (best is None or residual < best[0]):
            best = (residual, point)
        if it >= max_iter or not bool((viol > 0).any()):
            break
        if passes and residual > 0.5 * previous:
            break
        previous = residual
        it += 1
        if not prior.smooth:
            working = _grow_working_set(working, point.u, viol, d)
        W = working.nonzero().squeeze(1)
        hess.ensure(point, W)
        A = hess.H[W][:, W].numpy()
        g = point.grad
        new = u.clone()
        if prior.smooth:
            s = newton_step(A, g[W].numpy())
            if s is not None:
                new[W] += torch.from_numpy(s)
        else:
            pen = penalized[W].numpy()
            kappa = np.where(pen, prior.l1_weight, 0.0)
            # Pyro's gradient is typically off by ~2 eps x its magnitudes: 1/16 of the
            # floor r_j (the bound the stop test allows); the subproblem does not chase that
            new[W] = torch.from_numpy(solve_l1_qp(
                A, g[W].numpy(), u[W].numpy(), kappa, pen,
                np.full(len(W), _FLOOR_FACTOR * float(_EPS)), point.floor[W].numpy() / 16))
        step = new - u
        if not bool(step.any()):
            break  # the subproblem cannot improve on this point: stop and report it
        predicted = g + hess.H[:, W] @ step[W]
        # The quadratic model predicts the next gradient, hence the next working set: fetch
        # its new Hessian columns in the same trace that evaluates the new point.
        prefetch = torch.zeros(0, dtype=torch.long)
        if not prior.smooth:
            guess = replace(point, u=new, grad=predicted)
            nxt = _grow_working_set(working, new,
                                    _violations(guess, prior, d, tol), d)
            prefetch = (nxt & ~hess.known).nonzero().squeeze(1)
        trial = hess.evaluate(new, prefetch)
        halvings = 0
        while trial.full > point.full + point.full_floor + trial.full_floor:
            # not a descent step: the quadratic model is wrong (f is not quadratic, or the
            # Hessian is stale); recompute it at the new point and shorten the step
            hess.invalidate()
            halvings += 1
            if halvings > _MAX_HALVINGS:
                trial = None
                break
            trial = lj.at(u + step * 0.5**halvings)
        if trial is None:
            break
        mismatch = (trial.grad - predicted).abs()
        if halvings == 0 and bool((mismatch > 1e-6 * (trial.scale + point.scale)
                                   + trial.floor + point.floor).any()):
            hess.invalidate()  # f is not quadratic: second-order information is local
        u, point = trial.u, trial
        viol = _violations(point, prior, d, tol)
    if best is not None and best[1] is not point:
        residual, passes = _residual(point, prior, d, tol)
        if not passes or best[0] < residual:
            point = best[1]
    ws = int(working[:d].sum())
    return point, it, ws, method


def _conjugate_gradient(lj: _LogJoint, hess: _Hessian, point: _Point, tol: float, max_cg: int):
    """Newton step by conjugate gradients: solve H x = -g with exact Hessian-vector products
    (the chain rule through the linear predictor, :meth:`_Hessian.hvp`), at most ``max_cg``
    of them; the gradient at the returned point is Pyro's, not the recursion's."""
    target = 0.1 * (tol * point.scale + point.floor)
    x, _, k = conjugate_gradient(lambda v: hess.hvp(point, v), -point.grad, max_cg,
                                 lambda r: bool((r.abs() <= target).all()))
    new = lj.at(point.u + x)
    return (new if new.full <= point.full + point.full_floor + new.full_floor else point), k


def neg_log_joint(X, y, prior: Prior, noise: float, coef, intercept: float) -> float:
    """-log p(y, w, c) at a given (w, c), from one Pyro trace of the same model.

    Used to evaluate any point (e.g. the penalized optimum) under Pyro's objective.
    """
    X, y = check_data(X, y)
    _check_prior(prior)
    w = check_vector("coef", coef, X.shape[1])
    with pyro_session():
        return _neg_log_joint(linear_model(prior, GaussianNoise(noise)), X, y, w,
                              float(intercept))


def _neg_log_joint(model, X, y, w: torch.Tensor, c: float) -> float:
    with torch.no_grad():
        data = {WEIGHT_SITE: w, INTERCEPT_SITE: torch.tensor(c, dtype=X.dtype)}
        tr = poutine.trace(poutine.condition(model, data=data)).get_trace(X, y)
        return float(-tr.log_prob_sum())
