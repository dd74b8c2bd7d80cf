"""MAP estimation on a Pyro model's own log joint.

The objective is Pyro's, never a formula typed in here::

    minimise  F(w, c) = -log p(y, w, c)  =  f(w, c) + h(w)

where ``f`` is minus the sum of the log probabilities, *as computed by a Pyro trace*, of
every site whose density is smooth (the observations, the flat intercept prior and a
smooth weight prior), and ``h = -log p(w)`` is the weight site's term when the prior is
not smooth (Laplace). ``h`` enters only through the prior's proximal operator and its
subdifferential; its value in reported objectives is Pyro's too.

Method (proximal Newton with working sets)
------------------------------------------
For a Gaussian likelihood ``f`` is exactly quadratic, so Newton's model of it is exact:

1. One trace, batched over parameter values (the model broadcasts over leading
   dimensions of ``w`` and ``c``), returns f and its autograd gradient at many points at
   once; the Hessian columns H e_j = grad f(e_j) - grad f(0) come from one such trace.
2. Smooth prior (Gaussian): one Newton step with the full Hessian.
   Non-smooth prior (Laplace): the quadratic model plus h is minimised over a working set
   of coordinates (the current support and the worst KKT violators) exactly, by the
   feature-sign active-set method (a finite sequence of linear solves on sign patterns,
   exact zeros included); should it stall, coordinate descent with the prior's proximal
   operator (soft-thresholding) and a polish on the found support take over.
3. Pyro's gradient at the new point is compared with the quadratic model's prediction (a
   mismatch means the log joint is not quadratic and raises), and the iteration stops when
   the KKT residual (the distance from -grad f to the subdifferential of h; plain |grad|
   for smooth coordinates) is at most ``tol`` times the gradient scale at zero.

Each outer iteration costs one Pyro trace (plus one for new Hessian columns when the
working set grows); the total is usually 2-5 traces.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro import poutine

from ._validation import check_data, check_positive, check_positive_int
from .errors import report_nonconvergence
from .likelihoods import GaussianNoise
from .models import INTERCEPT_SITE, WEIGHT_SITE, linear_model
from .priors import Prior

# Upper bound on batch * n elements of one batched trace (memory: 8 bytes each, several copies).
_MAX_BATCH_ELEMENTS = 2_000_000
# Smooth priors: try conjugate gradients before building the Hessian when n * p^2 is this big.
_CG_MIN_WORK = 1e9


@dataclass(frozen=True)
class MapResult:
    """The MAP estimate and how it was reached.

    Attributes
    ----------
    coef, intercept
        The maximiser (w, c) of Pyro's log joint.
    neg_log_joint
        -log p(y, w, c) at the estimate, from a Pyro trace (all sites, constants included).
    kkt_residual
        max over coordinates of the distance from -grad f to the subdifferential of h, in
        the units of Pyro's gradient (0 at an exact optimum).
    kkt_tol
        The absolute tolerance the residual was tested against (``tol`` times the gradient
        scale at w = 0, c = 0).
    converged
        Whether ``kkt_residual <= kkt_tol``.
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
        large problem: conjugate gradients on Pyro Hessian-vector products) or
        ``"prox-newton"`` (non-smooth prior, working sets).
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
    wall_time: float
    method: str


class _PyroLogJoint:
    """Evaluate f (the smooth part of -log p) and its gradient from Pyro traces."""

    def __init__(self, model, X: torch.Tensor, y: torch.Tensor, smooth_prior: bool):
        self.model, self.X, self.y = model, X, y
        self.d = X.shape[1]
        self.smooth_prior = smooth_prior
        self.traces = 0

    def _trace(self, theta: torch.Tensor):
        data = {WEIGHT_SITE: theta[:, : self.d], INTERCEPT_SITE: theta[:, self.d]}
        tr = poutine.trace(poutine.condition(self.model, data=data)).get_trace(self.X, self.y)
        tr.compute_log_prob()
        self.traces += 1
        return tr

    def _per_point(self, tr, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, h) per point: minus the summed log probs of the smooth / non-smooth sites."""
        smooth = torch.zeros(batch, dtype=self.X.dtype)
        rough = torch.zeros(batch, dtype=self.X.dtype)
        for name, site in tr.nodes.items():
            if site["type"] != "sample":
                continue
            lp = site["log_prob"]
            if lp.numel() == 1:  # a constant density (the flat intercept prior) broadcasts
                lp = lp.reshape(1).expand(batch)
            lp = lp.reshape(batch, -1).sum(-1)
            if name == WEIGHT_SITE and not self.smooth_prior:
                rough = rough - lp
            else:
                smooth = smooth - lp
        return smooth, rough

    def smooth(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """At each row of ``theta`` (shape (B, d + 1)), from one batched trace: Pyro's full
        -log p(y, w, c) (all sites) and the gradient of its smooth part f."""
        theta = theta.detach().clone().requires_grad_(True)
        f, h = self._per_point(self._trace(theta), theta.shape[0])
        (grad,) = torch.autograd.grad(f.sum(), theta)
        return (f + h).detach(), grad

    def full(self, theta: torch.Tensor) -> float:
        """-log p(y, w, c) with every site, at one point (shape (d + 1,))."""
        with torch.no_grad():
            f, h = self._per_point(self._trace(theta[None]), 1)
            return float(f[0] + h[0])


class _Hessian:
    """Columns of the (constant) Hessian of a quadratic f, by differences of Pyro gradients.

    For quadratic f, grad f(e_j) - grad f(0) = H e_j exactly (up to rounding).
    """

    def __init__(self, logjoint: _PyroLogJoint, p: int):
        self.lj = logjoint
        self.H = torch.zeros(p, p, dtype=logjoint.X.dtype)
        self.known = torch.zeros(p, dtype=torch.bool)
        self.grad0: torch.Tensor | None = None

    def start(self, cols: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Evaluate at 0 and, in the same trace, the first chunk of ``cols``: (F(0), grad f(0))."""
        full, grad = self._columns(cols[: self._chunk()], with_origin=True)
        self.ensure(cols)
        return full, grad

    def _chunk(self) -> int:
        return max(1, _MAX_BATCH_ELEMENTS // max(1, self.lj.X.shape[0]))

    def _columns(self, idx: torch.Tensor, with_origin: bool = False):
        p = self.H.shape[0]
        k = int(with_origin)
        E = torch.zeros(idx.numel() + k, p, dtype=self.H.dtype)
        E[torch.arange(k, idx.numel() + k), idx] = 1.0
        full, g = self.lj.smooth(E)
        if with_origin:
            self.grad0 = g[0]
        self.H[:, idx] = (g[k:] - self.grad0).T
        self.known[idx] = True
        return float(full[0]), g[0]

    def at_point(self, point: torch.Tensor, cols: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(F, grad f) at ``point``; the same trace also computes new columns in ``cols``."""
        need = cols[~self.known[cols]][: self._chunk()]
        p = self.H.shape[0]
        E = torch.zeros(need.numel() + 1, p, dtype=self.H.dtype)
        E[0] = point
        E[torch.arange(1, need.numel() + 1), need] = 1.0
        full, g = self.lj.smooth(E)
        if need.numel():
            self.H[:, need] = (g[1:] - self.grad0).T
            self.known[need] = True
        return float(full[0]), g[0]

    def ensure(self, cols: torch.Tensor) -> None:
        """Compute the columns in ``cols`` not known yet, in chunks of one trace each."""
        need = cols[~self.known[cols]]
        chunk = self._chunk()
        for start in range(0, need.numel(), chunk):
            self._columns(need[start : start + chunk])


def _grow_working_set(working, theta, grad, prior: Prior, d: int) -> torch.Tensor:
    """Working set plus the support of theta plus the worst KKT violators outside it
    (at least 10, at most as many as the current working set holds)."""
    working = working | (theta != 0)
    viol = _kkt(theta, grad, prior, d)
    viol[working] = 0.0
    k = min(int((viol > 0).sum()), max(10, int(working[:d].sum())))
    if k:
        working = working.clone()
        working[torch.topk(viol, k).indices] = True
    return working


def _kkt(theta: torch.Tensor, grad: torch.Tensor, prior: Prior, d: int) -> torch.Tensor:
    """Per-coordinate optimality residual of F = f + h at theta, given grad f."""
    if prior.smooth:
        return grad.abs()
    return torch.cat([prior.subgradient_distance(theta[:d], grad[:d]), grad[d:].abs()])


def _quadratic_subproblem(
    A: np.ndarray, b: np.ndarray, u0: np.ndarray, prior: Prior, penalized: np.ndarray,
) -> np.ndarray:
    """argmin_u 1/2 u'Au - b'u + kappa * P(u[penalized]) for the prior's separable P.

    Smooth prior: one linear solve. Laplace prior: the feature-sign active-set method
    (Lee, Battle, Raina and Ng 2007), exact in finitely many linear solves whatever the
    conditioning of A; if it stalls (a singular active block), coordinate descent with the
    prior's proximal operator and a polish on the found support take over.
    """
    if prior.smooth:  # no non-smooth term: a single linear solve
        return _solve_spd(A, b)
    # warm start from the previous point; if its support is too large for the data (a
    # singular block), start cold from zero, where the active set grows one at a time
    for start in (u0, np.where(penalized, 0.0, u0)):
        u = _feature_sign(A, b, start, prior.kappa, penalized)
        if u is not None:
            return u
    return _coordinate_descent(A, b, u0, prior, penalized)


def _l1_objective(A, b, kappa, penalized, u) -> float:
    return 0.5 * float(u @ A @ u) - float(b @ u) + kappa * float(np.abs(u[penalized]).sum())


def _sign_pattern(u, active, penalized) -> tuple[np.ndarray, np.ndarray]:
    """Feature-sign bookkeeping after a move: penalized coordinates at exactly 0 leave the
    active set (unpenalized ones never do); theta = sign(u) on the penalized ones."""
    return (active & (u != 0)) | ~penalized, np.sign(u) * penalized


def _feature_sign(A, b, u0, kappa, penalized, max_steps: int = 2000) -> np.ndarray | None:
    """Feature-sign search; None if it fails to make progress (the caller falls back)."""
    scale = max(float(np.abs(b).max()), kappa, 1e-300)
    tol = 1e-12 * scale
    u = u0.copy()
    active, theta = _sign_pattern(u, u != 0, penalized)
    for _ in range(max_steps):
        grad = A @ u - b
        # optimality of the non-zero (and unpenalized) coordinates
        viol_on = np.abs(grad[active] + kappa * theta[active]).max(initial=0.0)
        if viol_on <= tol:
            off = penalized & ~active
            g_off = np.where(off, np.abs(grad), 0.0)
            j = int(np.argmax(g_off)) if off.any() else -1
            if j < 0 or g_off[j] <= kappa * (1 + 1e-12):
                return u  # optimal
            active[j] = True
            theta[j] = -np.sign(grad[j])
        # feature-sign step: minimise the quadratic with fixed signs on the active set
        idx = np.flatnonzero(active)
        A_AA = A[np.ix_(idx, idx)]
        rhs = b[idx] - kappa * theta[idx]
        target = _solve_spd(A_AA, rhs)
        cur = u[idx]
        pen_idx = penalized[idx]
        if target is None or np.abs(A_AA @ target - rhs).max() > 1e-9 * max(
            float(np.abs(rhs).max()), kappa
        ):
            # Singular block with no stationary point for these signs (more active
            # coordinates than the data can pin down): along a null vector v of A_AA the
            # objective is linear, so move downhill until a coefficient reaches 0, drop it.
            step = _null_step(A_AA, grad[idx] + kappa * theta[idx], cur, theta[idx], pen_idx)
            if step is None:
                return None
            u[idx] = step
            active, theta = _sign_pattern(u, active, penalized)
            continue
        # discrete line search: the target and every point where a coefficient crosses 0
        cands = [target]
        cross = pen_idx & (cur != 0) & (np.sign(target) != np.sign(cur))
        for k in np.flatnonzero(cross):
            t = cur[k] / (cur[k] - target[k])
            pt = cur + t * (target - cur)
            pt[k] = 0.0
            cands.append(pt)
        best, best_val = None, np.inf
        for pt in cands:
            trial = u.copy()
            trial[idx] = pt
            val = _l1_objective(A, b, kappa, penalized, trial)
            if val < best_val:
                best, best_val = trial, val
        current = _l1_objective(A, b, kappa, penalized, u)
        if best_val > current + 1e-12 * scale * (1 + abs(best_val)):
            return None  # no decrease: numerical trouble
        u = best
        active, theta = _sign_pattern(u, active, penalized)
    return None


def _null_step(A_AA, slope_vec, cur, theta, pen) -> np.ndarray | None:
    """Move along a null vector of A_AA (downhill for the fixed-sign objective, whose
    gradient there is ``slope_vec``) to the first point where a penalized coefficient
    reaches 0 -- or where a just-activated one (cur = 0) would leave its sign -- and return
    the new coefficients with that coordinate set to exactly 0; None if not singular."""
    _, sv, Vt = np.linalg.svd(A_AA)
    if sv[-1] > 1e-10 * sv[0]:
        return None
    v = Vt[-1]
    slope = float(slope_vec @ v)
    direction = -v if slope > 0 else v
    best_t, best_k = np.inf, -1
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


def _coordinate_descent(A, b, u0, prior, penalized, max_sweeps: int = 20_000) -> np.ndarray:
    """Coordinate descent with the prior's prox, then a polish on the settled support."""
    kappa = prior.kappa
    m = b.shape[0]
    u = u0.copy()
    Au = A @ u
    diag = np.diag(A).copy()
    prev_pattern = None
    scale = max(float(np.max(np.abs(b))), kappa, 1e-300)
    wait, next_try = 1, 0  # after a failed polish, wait twice as many sweeps before the next
    for sweep in range(max_sweeps):
        max_step = 0.0
        for j in range(m):
            if diag[j] <= 0.0:
                continue
            old = u[j]
            z = old - (Au[j] - b[j]) / diag[j]
            new = prior.prox(z, kappa / diag[j]) if penalized[j] else z
            if new != old:
                Au += A[:, j] * (new - old)
                u[j] = new
                max_step = max(max_step, abs(new - old) * diag[j])
        pattern = np.sign(u) * penalized
        settled = prev_pattern is not None and np.array_equal(pattern, prev_pattern)
        if settled and sweep >= next_try:
            polished = _polish(A, b, kappa, pattern, penalized)
            if polished is not None:
                return polished
            next_try, wait = sweep + wait, 2 * wait
        prev_pattern = pattern
        if max_step <= 1e-15 * scale:
            return u
    return u


def _polish(A, b, kappa, pattern, penalized):
    """Solve A_SS u_S = b_S - kappa * sign_S on S = support (penalized) + unpenalized."""
    S = (pattern != 0) | ~penalized
    u = np.zeros_like(b)
    if S.any():
        A_SS, rhs = A[np.ix_(S, S)], b[S] - kappa * pattern[S]
        sol = _solve_spd(A_SS, rhs)
        # a singular A_SS (more support than data) can make the system inconsistent
        if sol is None or np.abs(A_SS @ sol - rhs).max() > 1e-9 * max(np.abs(rhs).max(), kappa):
            return None
        u[S] = sol
    if np.any(np.sign(u[penalized & S]) != pattern[penalized & S]):
        return None
    off = ~S
    if off.any():
        g = b[off] - A[off] @ u
        if np.any(np.abs(g) > kappa * (1 + 1e-9)):
            return None
    return u


def _solve_spd(A: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Solve A x = b for symmetric positive (semi)definite A; None if it is singular.

    Done in torch, not numpy: alternating numpy's OpenBLAS threads with torch's thread
    pool on a small machine costs more than the solve itself.
    """
    At = torch.from_numpy(0.5 * (A + A.T))
    bt = torch.from_numpy(np.ascontiguousarray(b))[:, None]
    L, info = torch.linalg.cholesky_ex(At)
    if int(info) == 0:
        return torch.cholesky_solve(bt, L)[:, 0].numpy()
    x = torch.linalg.lstsq(At, bt, driver="gelsd").solution[:, 0]
    return x.numpy() if bool(torch.isfinite(x).all()) else None


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
    (1/noise^2) [1/2 ||y - Xw - c||^2 + lam P(w)] + const with lam = noise^2 * prior.kappa
    -- but that formula is nowhere used here: values and gradients come from Pyro traces.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,)
    prior : Prior
        e.g. ``Gaussian(sigma=0.5)`` or ``Laplace(b=0.5)``.
    noise : float
        Observation noise scale sigma_eps > 0.
    tol : float
        Stop when the KKT residual is at most ``tol`` times the largest absolute gradient of
        f at w = 0, c = 0.
    max_iter : int
        Maximum outer iterations.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the tolerance
        is not reached.

    Returns
    -------
    MapResult
        Frozen; see its attributes. The user's Pyro param store is left untouched.
    """
    X, y = check_data(X, y)
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a mapreg Prior (e.g. Laplace(b=0.5)); got {prior!r}")
    if not prior.smooth and not callable(getattr(prior, "prox", None)):
        raise ValueError(f"the MAP engine needs a proximal operator for the non-smooth {prior}")
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    lik = GaussianNoise(noise)
    start = time.perf_counter()
    with pyro.get_param_store().scope():
        result = _run(linear_model(prior, lik), X, y, prior, tol, max_iter)
    wall = time.perf_counter() - start
    coef, intercept, nlj, kkt, kkt_tol, it, traces, ws, method = result
    converged = kkt <= kkt_tol
    if not converged:
        report_nonconvergence(
            f"MAP engine did not converge in {it} iterations: KKT residual {kkt:.3e} > "
            f"tolerance {kkt_tol:.3e}",
            strict,
        )
    return MapResult(coef, intercept, nlj, kkt, kkt_tol, converged, it, traces, ws, wall, method)


def _run(model, X, y, prior, tol, max_iter):
    n, d = X.shape
    p = d + 1
    lj = _PyroLogJoint(model, X, y, prior.smooth)
    hess = _Hessian(lj, p)
    theta = torch.zeros(p, dtype=X.dtype)
    use_cg = prior.smooth and n * p * p >= _CG_MIN_WORK
    # The first trace evaluates at 0 and at the first Hessian columns: all of them for a
    # smooth prior solved directly, the intercept's otherwise.
    first = torch.arange(p) if prior.smooth and not use_cg else torch.tensor([d])
    nlj, g = hess.start(first)
    gscale = max(float(g.abs().max()), 1e-300)  # gradient scale at w = 0, c = 0
    kkt_tol = tol * gscale
    penalized_all = torch.ones(p, dtype=torch.bool)
    penalized_all[d] = False
    working = torch.zeros(p, dtype=torch.bool)
    working[d] = True  # the intercept is always optimised
    if prior.smooth:
        working[:] = True
    it = 0
    kkt = float(_kkt(theta, g, prior, d).max())
    method = "newton" if prior.smooth else "prox-newton"
    if use_cg and kkt > kkt_tol:
        # Building the full Hessian costs about p / 12 single traces; try CG first.
        theta, g, nlj, cg_it = _conjugate_gradient(lj, theta, g, kkt_tol, max(10, p // 12))
        it += cg_it
        method = "newton-cg"
        kkt = float(_kkt(theta, g, prior, d).max())
    while kkt > kkt_tol and it < max_iter:
        it += 1
        if not prior.smooth:
            working = _grow_working_set(working, theta, g, prior, d)
        W = working.nonzero().squeeze(1)
        hess.ensure(W)
        A = hess.H[W][:, W]
        b = A @ theta[W] - g[W]
        u = _quadratic_subproblem(
            A.numpy(), b.numpy(), theta[W].numpy(), prior, penalized_all[W].numpy()
        )
        new = torch.zeros(p, dtype=X.dtype)
        new[W] = torch.from_numpy(u)
        predicted = g + hess.H[:, W] @ (new[W] - theta[W])
        # The quadratic model predicts the next gradient, hence the next working set: fetch
        # its new Hessian columns in the same trace that evaluates the new point.
        prefetch = torch.zeros(0, dtype=torch.long)
        if not prior.smooth:
            nxt = _grow_working_set(working, new, predicted, prior, d)
            prefetch = (nxt & ~hess.known).nonzero().squeeze(1)
        full, g_new = hess.at_point(new, prefetch)
        mismatch = float((g_new - predicted).abs().max())
        # rounding in Pyro's gradient is relative to the largest gradient it has computed
        if mismatch > 1e-6 * max(gscale, float(g.abs().max()), float(g_new.abs().max()), 1.0):
            raise RuntimeError(
                "the smooth part of this model's log joint is not quadratic (Pyro's gradient "
                f"differs from the quadratic model by {mismatch:.3e}); the MAP engine supports "
                "Gaussian likelihoods with a linear mean"
            )
        theta, g, nlj = new, g_new, full
        kkt = float(_kkt(theta, g, prior, d).max())
    if not math.isfinite(nlj):
        raise RuntimeError(f"Pyro's log joint is not finite at the estimate: {nlj}")
    ws = int(working[:d].sum())
    return theta[:d].clone(), float(theta[d]), nlj, kkt, kkt_tol, it, lj.traces, ws, method


def _conjugate_gradient(lj: _PyroLogJoint, theta, g, kkt_tol: float, max_cg: int):
    """Newton step by conjugate gradients: solve H x = -g with Pyro Hessian-vector products.

    For quadratic f, H v = (grad f(theta + t v) - grad f(theta)) / t exactly; t scales the
    probe to the size of theta so that rounding stays relative. At most ``max_cg``
    products; the gradient at the returned point is Pyro's, not the recursion's.
    """
    x = torch.zeros_like(theta)
    r = -g.clone()
    p = r.clone()
    rs = float(r @ r)
    size = max(float(theta.abs().max()), 1.0)
    k = 0
    while k < max_cg:
        k += 1
        t = size / max(float(p.abs().max()), 1e-300)
        _, gp = lj.smooth((theta + t * p)[None])
        Hp = (gp[0] - g) / t
        curvature = float(p @ Hp)
        if not curvature > 0:
            break
        alpha = rs / curvature
        x += alpha * p
        r -= alpha * Hp
        size = max(float((theta + x).abs().max()), 1.0)
        if float(r.abs().max()) <= 0.1 * kkt_tol:
            break
        rs_new = float(r @ r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    new = theta + x
    full, g_new = lj.smooth(new[None])
    return new, g_new[0], float(full[0]), k


def neg_log_joint(X, y, prior: Prior, noise: float, coef, intercept: float) -> float:
    """-log p(y, w, c) at a given (w, c), from one Pyro trace of the same model.

    Used to evaluate any point (e.g. the penalized optimum) under Pyro's objective.
    """
    X, y = check_data(X, y)
    model = linear_model(prior, GaussianNoise(noise))
    lj = _PyroLogJoint(model, X, y, prior.smooth)
    theta = torch.cat([torch.as_tensor(coef, dtype=X.dtype).reshape(-1),
                       torch.tensor([float(intercept)], dtype=X.dtype)])
    if theta.shape[0] != X.shape[1] + 1:
        raise ValueError(
            f"coef must have one entry per feature ({X.shape[1]}); got {theta.shape[0] - 1}"
        )
    with pyro.get_param_store().scope():
        return lj.full(theta)
