"""MAP estimation for any Pyro model: every latent site, from Pyro's own log joint.

::

    maximise over the latent sites z   log p(obs, z)  =  sum over sites of Pyro's log_prob

as :class:`pyro.infer.autoguide.AutoDelta` defines it: a site with constrained support is
optimised in the unconstrained coordinates of ``biject_to(support)``, and the density is
that of the *constrained* value (no Jacobian term), so the answer is the mode of the
posterior density of z itself, not of its unconstrained image.

Which sites are regularized
---------------------------
The model is traced once (each latent site at the zero of its unconstrained coordinates,
or at ``init``). A latent site whose prior is ``Laplace(0, b)`` -- of any shape, any
``b`` per element, wrapped in ``.to_event``/``.expand`` -- or a distribution exposing an
``l1_weight`` (mapreg's elastic-net prior) has a non-smooth term kappa |z| (kappa = 1/b):
it enters through soft-thresholding and its subdifferential, and its MAP has exact zeros.
Every other site (``Normal(0, sigma)`` priors, flat ``ImproperUniform`` intercepts,
positive scales, the observations) is smooth and enters through Pyro's log prob and its
autograd derivatives. ``pyro.param`` sites and discrete latent sites are refused.

Method
------
Proximal Newton on F(u) = f(u) + sum_j kappa_j |u_j|, u the flat vector of unconstrained
coordinates, f = -log p(obs, z) - sum_j kappa_j |u_j| (Pyro's log prob minus the L1 part,
differentiated by autograd: smooth):

* the gradient by one backward pass through the trace, the Hessian columns of the working
  set by double backward (one pass per column, or -- for a ``vectorized`` model, one that
  broadcasts over leading batch dimensions of its latent sites like mapreg's own models --
  one batched trace for many columns);
* the step minimises the quadratic model plus the L1 term exactly over a working set (the
  smooth coordinates, the L1 coordinates that are non-zero, the worst violators), by the
  feature-sign active-set solver of the linear engine (:mod:`mapreg.bayes._l1qp`);
  an indefinite Hessian block (a non-convex model) is replaced by its absolute-eigenvalue
  version (saddle-free Newton), damped Levenberg-Marquardt style across iterations;
* a backtracking line search on Pyro's F with the sufficient-decrease condition
  F(u + t s) <= F(u) + 1e-4 t D, D = g's + h(u + s) - h(u): a GLM's log likelihood is not
  quadratic, so full steps are not trusted.

Stop test
---------
For each coordinate j with KKT residual rho_j (|d F / d u_j| on smooth coordinates, the
distance from -df/du_j to kappa_j d|u_j| on L1 ones)::

    rho_j  <=  tol * s_j  +  r_j

* s_j is the sum over the sites of |d log p_site / d u_j| (for an L1 site: kappa_j): the
  absolute values of the terms of coordinate j's optimality condition, site by site. At a
  wrong point some site's pull is not balanced, and rho_j is of the order of s_j.
* r_j is the rounding floor of the float64 gradient: 32 eps sqrt(N) ||a_j||_2 summed over
  the sites with N > 1 log-prob elements a_ij = d log p(element i) / d u_j (an upper bound
  of 32 eps sum_i |a_ij|); ||a_j||_2 is estimated from four Rademacher probes (the gradient
  of sum_i r_i log p_i has second moment ||a_j||^2), seeded, so results are reproducible.

The result reports max_j rho_j / s_j (``kkt_residual``, and per site), the floor, and
``converged``; a run that misses the test warns (:class:`~mapreg.errors.ConvergenceWarning`)
or raises with ``strict=True``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.transforms import biject_to
from pyro.infer.autoguide.initialization import InitMessenger
from pyro.poutine.util import site_is_subsample

from .._results import FrozenResult
from .._validation import check_bool, check_positive, check_positive_int
from ..errors import report_nonconvergence
from ._cg import conjugate_gradient
from ._kkt import EPS, FLOOR_FACTOR, grow_working_set, relative, t_matmul
from ._l1qp import newton_step, solve_l1_qp
from .models import pyro_session

_PROBES = 4
_MAX_BATCH_ELEMENTS = 4_000_000
_MAX_HALVINGS = 40
_ARMIJO = 1e-4
# Working sets larger than this get an inexact step from Hessian-vector products (no matrix).
_MAX_DIRECT = 2500
_MAX_INNER = 500
_NOT_BROADCAST = ("vectorized=True, but the model does not broadcast over a leading batch "
                  "dimension of its latent sites; pass vectorized=False")
# Preconditioned CG steps before the Hessian factor is refreshed.
_MAX_PCG = 25
# A point that passes the stop test only thanks to a rounding floor above this relative
# residual is reported (warning): float64 did not resolve the optimum to mapreg's promise.
_RESOLVED = 1e-6


@dataclass(frozen=True)
class _Site:
    name: str
    shape: torch.Size
    start: int
    stop: int
    transform: Any  # biject_to(support): unconstrained -> constrained
    kappa: torch.Tensor | None  # flat L1 weights of the site (None: smooth)
    kind: str


@dataclass(frozen=True, eq=False)
class ModelMapResult(FrozenResult):
    """The MAP of every latent site of a Pyro model, and how it was reached.

    Attributes
    ----------
    values
        {site name: MAP value (constrained, the site's own shape)}; a fresh copy per read.
    kinds
        {site name: "l1" (Laplace-like: exact zeros) or "smooth"}.
    kkt_residual
        max_j rho_j / s_j over every coordinate (module docstring); ``site_residuals`` per site.
    kkt_floor
        max_j r_j / s_j: the rounding floor of the float64 gradient relative to the same scales.
    kkt_tol, converged
        The tolerance, and whether rho_j <= tol s_j + r_j held for every coordinate.
    neg_log_joint
        -log p(obs, z) at the estimate from a Pyro trace (every site, constants included).
    iterations, pyro_traces, wall_time, method
        Outer iterations, Pyro traces run, seconds, and "newton" / "prox-newton".
    """

    _values: dict
    kinds: dict
    kkt_residual: float
    site_residuals: dict
    kkt_floor: float
    kkt_tol: float
    converged: bool
    neg_log_joint: float
    iterations: int
    pyro_traces: int
    method: str
    wall_time: float = field(compare=False)

    @property
    def values(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in object.__getattribute__(self, "_values").items()}

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.values[name]

    def n_zero(self, name: str) -> int:
        """Exact zeros of site ``name``."""
        return int((self.values[name] == 0).sum())

    def guide(self, model: Callable, kind: str = "delta", init_scale: float = 1e-3):
        """A Pyro autoguide for ``model`` started at this MAP, to go on with Pyro's tools.

        ``kind="delta"``: :class:`~pyro.infer.autoguide.AutoDelta` (its point estimate is this
        MAP); ``"normal"``: :class:`~pyro.infer.autoguide.AutoNormal` centred here with scale
        ``init_scale``. Its parameters are created in the param store of the caller's scope
        when the guide is first run.
        """
        from pyro.infer.autoguide import AutoDelta, AutoNormal
        from pyro.infer.autoguide.initialization import init_to_value

        init = init_to_value(values=self.values)
        if kind == "delta":
            return AutoDelta(model, init_loc_fn=init)
        if kind == "normal":
            return AutoNormal(model, init_loc_fn=init,
                              init_scale=check_positive("init_scale", init_scale))
        raise ValueError(f"kind must be one of 'delta', 'normal'; got {kind!r}")


# ---------------------------------------------------------------------- site discovery


def _zero_init(values: Mapping[str, Any]):
    def init(site):
        if site["fn"].support.is_discrete:
            raise ValueError(f"latent site {site['name']!r} is discrete "
                             f"({type(site['fn']).__name__}); the MAP engine needs continuous "
                             "latent sites (enumerate or marginalise it)")
        if site["name"] in values:
            return torch.as_tensor(values[site["name"]], dtype=torch.float64).detach()
        fn = site["fn"]
        return biject_to(fn.support)(torch.zeros(fn.shape(), dtype=torch.float64)).detach()
    return init


def _l1_weight(fn, shape: torch.Size) -> torch.Tensor | None:
    """The per-element L1 weight of a Laplace(0, b)-like prior, or None for other priors."""
    base = fn
    while isinstance(base, (dist.Independent, dist.ExpandedDistribution)):
        base = base.base_dist
    if isinstance(base, dist.Laplace):
        loc, kappa = base.loc, 1.0 / base.scale
    elif hasattr(base, "l1_weight"):
        loc, kappa = torch.zeros(()), torch.as_tensor(base.l1_weight)
    else:
        return None
    if bool(torch.as_tensor(loc).ne(0).any()):
        raise ValueError("an L1 (Laplace) prior must be centred at 0 for its exact zeros; "
                         f"got loc={loc}")
    return kappa.detach().to(torch.float64).expand(shape).reshape(-1).clone()


def _discover(model, args, kwargs, init) -> tuple[list[_Site], int, int]:
    tr = poutine.trace(InitMessenger(_zero_init(init))(model)).get_trace(*args, **kwargs)
    sites, p, elements = [], 0, 0
    for name, site in tr.nodes.items():
        if site["type"] == "param":
            raise ValueError(f"the model has a pyro.param site {name!r}: for a MAP write it as "
                             "a sample site with a prior (a flat one is dist.ImproperUniform)")
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if site["infer"].get("_deterministic"):
            continue
        if site["is_observed"]:
            elements += int(site["fn"].batch_shape.numel()) if site["fn"].batch_shape else 1
            continue
        fn = site["fn"]
        value = site["value"]
        shape = value.shape
        kappa = _l1_weight(fn, shape)
        scale = site["scale"]
        if kappa is not None:
            if site["mask"] is not None:
                raise ValueError(f"latent L1 site {name!r} is masked; not supported")
            kappa = kappa * float(scale)
        size = int(shape.numel())
        sites.append(_Site(name, shape, p, p + size, biject_to(fn.support), kappa,
                           "l1" if kappa is not None else "smooth"))
        p += size
    if not sites:
        raise ValueError("the model has no latent sample sites: there is nothing to estimate")
    return sites, p, elements


# ---------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _Point:
    u: torch.Tensor
    full: float  # -log p(obs, z): every site, Pyro's
    grad: torch.Tensor  # gradient of the smooth part f
    scale: torch.Tensor  # s_j without the L1 kappa
    floor: torch.Tensor  # r_j
    full_floor: float
    curvature: tuple | None = None  # (d2 -log p_obs / d eta^2, prior diagonal): see LinearPredictor


@dataclass(frozen=True)
class LinearPredictor:
    """The linear predictor eta = X W + c of mapreg's own GLMs, declared to the engine.

    The model records eta as the deterministic site ``site``; W is the latent site
    ``weight`` ((d,) or (d, K)), c the latent site ``intercept`` (() or (K,)), X the design
    the model is traced with. The Hessian of -log p is then assembled by the chain rule,
    exactly: J' D J + P, with J = d eta / d(W, c) (X and ones), D the second derivatives of
    the observations' -log p in eta and P the prior's (diagonal: i.i.d.) curvature -- D and
    P by autograd through the same Pyro trace that gives the value and the gradient. One
    trace per iterate instead of one per Hessian column (or a batched trace), and the cost of
    the product J' D J is the one a penalized Newton solver pays.
    """

    site: str
    X: torch.Tensor
    weight: str
    intercept: str
    n_classes: int | None = None


class _Problem:
    def __init__(self, model, args, kwargs, sites, p, vectorized, elements, predictor=None):
        self.model, self.args, self.kwargs = model, args, kwargs
        self.predictor = predictor
        self.latent_names = {s.name for s in sites}
        self._factor = None  # (Cholesky factor, Jacobi scaling) of an earlier Hessian
        self._broadcast_checked = False
        self._prior_curvature = None  # the declared-predictor GLMs' constant prior curvature
        if predictor is not None:
            self._layout(predictor, sites)
        self.sites, self.p, self.vectorized = sites, p, vectorized
        self.kappa = torch.zeros(p, dtype=torch.float64)
        self.l1 = torch.zeros(p, dtype=torch.bool)
        for s in sites:
            if s.kappa is not None:
                self.kappa[s.start:s.stop] = s.kappa
                self.l1[s.start:s.stop] = True
        self.l1_slices = {s.name: slice(s.start, s.stop) for s in sites if s.kind == "l1"}
        self.traces = 0
        self.checked = False
        self.chunk = max(1, _MAX_BATCH_ELEMENTS // max(1, elements + p) - 1) if vectorized else 1
        self.gen = torch.Generator().manual_seed(20261123)

    def values(self, U: torch.Tensor) -> dict[str, torch.Tensor]:
        lead = U.shape[:-1]
        return {s.name: s.transform(U[..., s.start:s.stop].reshape(tuple(lead) + tuple(s.shape)))
                for s in self.sites}

    def _trace(self, U):
        data = self.values(U)
        tr = poutine.trace(poutine.condition(self.model, data=data)).get_trace(
            *self.args, **self.kwargs)
        tr.compute_log_prob()
        self.traces += 1
        return tr

    def _site_terms(self, tr, B: int):
        """{site: -log p per row (B,)} for every sample site with a log prob."""
        out = {}
        for name, site in tr.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if site["infer"].get("_deterministic"):
                continue
            lp = site["log_prob"]
            if B == 0:
                out[name] = (-lp.sum(), lp)
            else:
                rows = lp.reshape(1).expand(B) if lp.numel() == 1 else lp.reshape(B, -1).sum(-1)
                out[name] = (-rows, lp)
        return out

    def evaluate(self, u: torch.Tensor, with_point: bool = True):
        """Pyro's -log p, the smooth gradient, and (``with_point``) the scales and floor."""
        U = u.detach().clone().requires_grad_(True)
        tr = self._trace(U)
        if not self.checked:
            self._check_l1_constant(tr)
        terms = self._site_terms(tr, 0)
        full = sum(t for t, _ in terms.values())
        l1_part = (self.kappa * U.abs()).sum()
        f = full - l1_part
        (g,) = torch.autograd.grad(f, U, create_graph=True, retain_graph=True)
        if not with_point:
            return float(full.detach()), g, U, None
        scale = torch.zeros(self.p, dtype=torch.float64)
        floor = torch.zeros(self.p, dtype=torch.float64)
        magnitude = 0.0
        for name, (t, lp) in terms.items():
            magnitude += float(lp.detach().abs().sum())
            if name in self.l1_slices:  # its L1 term kappa_j is added by the stop test
                sl = self.l1_slices[name]
                t = t - (self.kappa[sl] * U[sl].abs()).sum()
            if not lp.requires_grad:
                continue
            (gs,) = torch.autograd.grad(t, U, retain_graph=True, allow_unused=True)
            if gs is None:
                continue
            if self.predictor is not None and name not in self.latent_names:
                continue  # the observations' terms are counted exactly below
            if lp.numel() > 1:
                second = torch.zeros(self.p, dtype=torch.float64)
                flat = lp.reshape(-1)
                for _ in range(_PROBES):
                    r = torch.randint(0, 2, flat.shape, generator=self.gen).to(flat.dtype) * 2 - 1
                    (gr,) = torch.autograd.grad((r * flat).sum(), U, retain_graph=True,
                                                allow_unused=True)
                    if gr is not None:
                        second += gr * gr
                norm2 = (second / _PROBES).sqrt()  # ~ ||a_j||_2 <= sum_i |a_ij|
                scale += torch.maximum(gs.abs(), norm2)
                floor += math.sqrt(flat.numel()) * norm2
            else:
                scale += gs.abs()
                floor += gs.abs()
        curvature = None
        if self.predictor is not None:
            curvature, obs_scale, obs_floor = self._curvature(tr, terms, U)
            scale += obs_scale
            floor += obs_floor
        point = _Point(u.detach().clone(), float(full.detach()), g.detach(), scale,
                       (FLOOR_FACTOR * EPS) * floor, FLOOR_FACTOR * EPS * magnitude,
                       curvature)
        return point.full, g, U, point

    # -------------------------------------------- the chain rule for a declared predictor
    def _layout(self, pred: LinearPredictor, sites) -> None:
        """perm[r]: the coordinate of u holding row r of the stacked (d + 1, K) parameter
        [W; c] (K = 1 for a vector W)."""
        by_name = {s.name: s for s in sites}
        if set(by_name) != {pred.weight, pred.intercept}:
            raise ValueError(f"a LinearPredictor model must have exactly the latent sites "
                             f"{pred.weight!r} and {pred.intercept!r}; got {sorted(by_name)}")
        K = pred.n_classes or 1
        w, c = by_name[pred.weight], by_name[pred.intercept]
        d = pred.X.shape[1]
        pos_w = torch.arange(w.start, w.stop).reshape(d, K)
        pos_c = torch.arange(c.start, c.stop).reshape(1, K)
        self.perm = torch.cat([pos_w, pos_c]).reshape(-1)
        self.design = torch.cat([pred.X, torch.ones(pred.X.shape[0], 1, dtype=pred.X.dtype)], 1)
        self.abs_design = self.design.abs()  # for the scales and floors, formed once
        self.l1_sites = {w.name} if w.kind == "l1" else set()

    def _curvature(self, tr, terms, U):
        """(D, P): the observations' second derivatives in eta (n,) or (n, K, K), and the
        diagonal of the prior's smooth curvature in u -- both by autograd."""
        pred = self.predictor
        eta = tr.nodes[pred.site]["value"]
        obs = sum(t for name, (t, lp) in terms.items()
                  if name not in self.latent_names and name != pred.site and lp.requires_grad)
        (delta,) = torch.autograd.grad(obs, eta, create_graph=True, retain_graph=True)
        if pred.n_classes is None:
            (D,) = torch.autograd.grad(delta.sum(), eta, retain_graph=True)
        else:
            cols = [torch.autograd.grad(delta[..., k].sum(), eta, retain_graph=True)[0]
                    for k in range(pred.n_classes)]
            D = torch.stack(cols, -1)  # D[i, m, k] = d delta_ik / d eta_im
        # The observations' terms, exactly: s_j = sum_i |J_ij| |delta_i| (the absolute
        # values of the terms of condition j), and the rounding they carry: delta_i is off by
        # |D_i| times the rounding of eta_i, which is eps times the magnitudes that form it,
        # m_i = sum_j |J_ij| |u_j| (the linear engine's floor, for any link).
        J = self.abs_design
        A = U.detach()[self.perm].reshape(J.shape[1], -1).abs()  # |[W; c]|, (d + 1, K)
        m = J @ A  # (n, K)
        dl = delta.detach().reshape(m.shape).abs()
        if pred.n_classes is None:
            nu = D.detach().abs().reshape(m.shape) * m
        else:
            nu = torch.einsum("ikm,im->ik", D.detach().abs(), m)
        # and delta_i itself is a difference: with a canonical link (all of mapreg's GLMs)
        # d -log p / d eta = mean - y, computed as such, so it carries the rounding of
        # |mean| + |y| = |delta + y| + |y| (at a confident prediction 1 - p cancels).
        yv = self._responses(tr, m.shape)
        # A few operations (the softmax's normalisation, one subtraction), each rounding by
        # eps/2 of its operands: 8 eps of them bounds it (the common factor 32 eps below is
        # for the long sums).
        carried = ((delta.detach().reshape(m.shape) + yv).abs() + yv.abs()) * (8.0 / FLOOR_FACTOR)
        # one pass over |J| for both: (n, 2K) -> (d + 1, 2K)
        both = t_matmul(J, torch.cat([dl, dl + carried + nu], 1))
        K = dl.shape[1]
        stacked_scale = both[:, :K].reshape(-1)
        stacked_floor = both[:, K:].reshape(-1)
        obs_scale = torch.zeros(self.p, dtype=torch.float64)
        obs_floor = torch.zeros(self.p, dtype=torch.float64)
        obs_scale[self.perm] = stacked_scale
        obs_floor[self.perm] = stacked_floor
        # The prior's curvature: mapreg's priors are i.i.d. (a diagonal Hessian: H 1 is the
        # diagonal) with a quadratic smooth part (Gaussian, the elastic net's; none for
        # Laplace), so it is a constant, taken from Pyro's trace once.
        if self._prior_curvature is None:
            prior = terms[pred.weight][0]
            sl = next(slice(s.start, s.stop) for s in self.sites if s.name == pred.weight)
            prior = prior - (self.kappa[sl] * U[sl].abs()).sum()
            P = torch.zeros(self.p, dtype=torch.float64)
            if prior.requires_grad:
                (gp,) = torch.autograd.grad(prior, U, create_graph=True, retain_graph=True)
                if gp.requires_grad:
                    (P,) = torch.autograd.grad(gp.sum(), U, retain_graph=True)
            self._prior_curvature = P.detach()
        return (D.detach(), self._prior_curvature), obs_scale, obs_floor

    def _hvp(self, point: _Point, v: torch.Tensor) -> torch.Tensor:
        """H v = J' D J v + P v at ``point`` (a vector W: two products with X)."""
        D, P = point.curvature
        Jv = self.design @ v[self.perm]
        out = torch.empty_like(v)
        out[self.perm] = t_matmul(self.design, D * Jv)
        return out + P * v

    def preconditioned_step(self, point: _Point, tol: float) -> torch.Tensor | None:
        """The Newton step of a smooth model by conjugate gradients on exact Hessian-vector
        products (two products with X for a declared predictor with a vector W; one double
        backward through a retained trace otherwise), preconditioned by the Cholesky factor
        of the Hessian at an earlier iterate (formed once). Falls back (None) to the direct
        step -- and refreshes the factor -- when the preconditioned iteration does not
        converge fast.
        Exact to the accuracy the stop test asks for: the residual of H s = -g is driven
        below a tenth of every coordinate's tolerance, or 1e-3 of g, whichever comes first
        (an inexact Newton step; the next gradient is Pyro's)."""
        if bool(self.l1.any()) or (self.predictor is not None and (
                self.predictor.n_classes is not None or point.curvature is None)):
            return None
        if self._factor is None:
            A = self.hessian_at(point, torch.arange(self.p))
            d = A.diagonal()
            if not bool((d > 0).all()):
                return None
            S = d.rsqrt()
            L, info = torch.linalg.cholesky_ex(A * S[:, None] * S[None, :])
            if int(info):
                return None
            self._factor = (L, S)
            return -S * torch.cholesky_solve((S * point.grad)[:, None], L)[:, 0]
        L, S = self._factor
        if self.predictor is not None:
            def hvp(v):
                return self._hvp(point, v)
        else:  # any smooth model: double backward through one retained trace
            hvp = self.graph_hvp(point.u)

        def precondition(r):
            return S * torch.cholesky_solve((S * r)[:, None], L)[:, 0]

        target = 0.1 * (tol * (point.scale + self.kappa) + point.floor)
        g_norm = float(point.grad.norm())
        x, ok, _ = conjugate_gradient(
            hvp, -point.grad, _MAX_PCG,
            lambda r: bool((r.abs() <= target).all()) or float(r.norm()) <= 1e-3 * g_norm,
            precondition)
        if ok:
            return x
        self._factor = None  # the factor is stale: rebuild it here
        return self.preconditioned_step(point, tol)

    def _responses(self, tr, shape) -> torch.Tensor:
        """The observed responses, shaped like eta (one-hot for the softmax model)."""
        pred = self.predictor
        obs = [site for name, site in tr.nodes.items()
               if site["type"] == "sample" and site["is_observed"] and name != pred.site
               and name not in self.latent_names
               and not site["infer"].get("_deterministic") and not site_is_subsample(site)]
        y = obs[0]["value"].detach()
        if pred.n_classes is not None:
            y = torch.nn.functional.one_hot(y.long(), pred.n_classes)
        return y.to(torch.float64).reshape(shape)

    def hessian_at(self, point: _Point, cols: torch.Tensor) -> torch.Tensor:
        """Rows and columns ``cols`` of the Hessian of f at ``point`` (|cols| x |cols|)."""
        if point.curvature is None:
            return self.hessian(point.u, cols)[cols]
        D, P = point.curvature
        inv = torch.full((self.p,), -1, dtype=torch.long)
        inv[self.perm] = torch.arange(self.p)
        rows = inv[cols]  # positions in the stacked [W; c] layout
        K = self.predictor.n_classes or 1
        J = self.design
        if K == 1:
            Jw = J[:, rows]
            H = (Jw * D[:, None]).T @ Jw
        else:
            j, k = rows // K, rows % K
            Jw = J[:, j]  # (n, m)
            # H[(j,k), (l,m)] = sum_i X_ij X_il D_i[k, m]
            Dkm = D[:, k][:, :, k]  # (n, m, m)
            H = torch.einsum("ia,iab,ib->ab", Jw, Dkm, Jw)
        H = 0.5 * (H + H.T)
        H += torch.diag(P[cols])
        if K > 1:
            # softmax: adding one constant to every intercept changes nothing, so H is
            # singular along 1_c (and the gradient is 0 along it, exactly). Curvature added
            # along that direction only leaves the step's other components as they are and
            # makes H invertible (the step has no component along 1_c).
            c = (rows // K) == J.shape[1] - 1
            if bool(c.any()):
                idx = c.nonzero().squeeze(1)
                level = float(H[idx, idx].abs().max().clamp_min(1e-300))
                H[idx[:, None], idx[None, :]] += level / idx.numel()
        return H

    def _check_l1_constant(self, tr) -> None:
        """An L1 site's scale b must not depend on the latent sites (a hierarchical prior on
        b makes kappa |z| a joint, non-convex term the proximal step does not handle)."""
        for name in self.l1_slices:
            base = tr.nodes[name]["fn"]
            while isinstance(base, (dist.Independent, dist.ExpandedDistribution)):
                base = base.base_dist
            params = [getattr(base, a) for a in ("loc", "scale", "sigma", "b")
                      if isinstance(getattr(base, a, None), torch.Tensor)]
            if any(t.requires_grad for t in params):
                raise ValueError(
                    f"the scale of the L1 (Laplace) site {name!r} depends on other latent sites "
                    "(a hierarchical prior): its MAP is not a fixed-weight L1 problem; fix b, "
                    "or sample the model with NUTS")
        self.checked = True

    def at(self, u: torch.Tensor) -> _Point:
        return self.evaluate(u)[3]

    def full(self, u: torch.Tensor) -> float:
        with torch.no_grad():
            tr = self._trace(u.detach())
        return float(sum(t for t, _ in self._site_terms(tr, 0).values()))

    def _check_broadcast(self, u: torch.Tensor, rows: torch.Tensor) -> None:
        """``vectorized=True`` promises that the model broadcasts over leading batch
        dimensions: every row of a batched trace at the same u must give the unbatched
        -log p (to rounding), or the batched Hessian columns would be silently wrong."""
        single = self.full(u)
        slack = 64 * EPS * max(1.0, abs(single)) * max(1, rows.numel())
        if rows.shape != torch.Size([rows.numel()]) or bool(
                ((rows - single).abs() > slack).any()):
            raise ValueError(_NOT_BROADCAST + f" (a batched trace at one point gives -log p "
                             f"{rows.reshape(-1)[:3].tolist()} against {single:.10g} unbatched)")
        self._broadcast_checked = True

    def graph_hvp(self, u: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """v -> H(u) v, exactly: a double backward through one trace at u, retained."""
        _, g, U, _ = self.evaluate(u, with_point=False)

        def hvp(v: torch.Tensor) -> torch.Tensor:
            (h,) = torch.autograd.grad(g @ v, U, retain_graph=True, allow_unused=True)
            return torch.zeros_like(v) if h is None else h.detach()

        return hvp

    def hessian(self, u: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Columns ``cols`` of the Hessian of f at u (p x len(cols)), by double backward."""
        out = torch.empty(self.p, cols.numel(), dtype=torch.float64)
        if self.vectorized:
            for start in range(0, cols.numel(), self.chunk):
                part = cols[start:start + self.chunk]
                U = u.detach().expand(part.numel(), self.p).clone().requires_grad_(True)
                try:
                    tr = self._trace(U)
                    terms = self._site_terms(tr, part.numel())
                except (ValueError, RuntimeError) as exc:  # Pyro's plate / shape checks
                    raise ValueError(_NOT_BROADCAST + f" (Pyro: {str(exc).splitlines()[0]})"
                                     ) from exc
                full = sum(t for t, _ in terms.values())
                if not self._broadcast_checked:
                    self._check_broadcast(u, full.detach())
                f = full - (self.kappa * U.abs()).sum(-1)
                (G,) = torch.autograd.grad(f.sum(), U, create_graph=True)
                E = torch.zeros_like(U)
                E[torch.arange(part.numel()), part] = 1.0
                (HE,) = torch.autograd.grad((G * E).sum(), U)
                out[:, start:start + part.numel()] = HE.T
            return out
        _, g, U, _ = self.evaluate(u, with_point=False)
        for k, j in enumerate(cols.tolist()):
            (h,) = torch.autograd.grad(g[j], U, retain_graph=k + 1 < cols.numel(),
                                       allow_unused=True)
            out[:, k] = 0.0 if h is None else h
        return out


# ---------------------------------------------------------------------- stop test


def _kkt(point: _Point, prob: _Problem) -> tuple[torch.Tensor, torch.Tensor]:
    g, u, k = point.grad, point.u, prob.kappa
    rho = torch.where(prob.l1 & (u != 0), (g + k * torch.sign(u)).abs(),
                      torch.where(prob.l1, (g.abs() - k).clamp_min(0.0), g.abs()))
    return rho, point.scale + k



# ---------------------------------------------------------------------- the front door


def map_model(model: Callable, *args: Any, tol: float = 1e-10, max_iter: int = 100,
              strict: bool = False, init: Mapping[str, Any] | None = None,
              vectorized: bool = False, **kwargs: Any) -> ModelMapResult:
    """Exact MAP of every latent site of a Pyro model, from Pyro's own log joint.

    ``map_model(model, *args, **kwargs)`` maximises log p(obs, z) of ``model(*args,
    **kwargs)`` over its latent sites z, with the same definition of MAP as
    :class:`~pyro.infer.autoguide.AutoDelta` (density of the constrained value, no Jacobian;
    see the module docstring for the method and the stop test). Sites with a
    ``Laplace(0, b)`` prior get exact zeros.

    Parameters
    ----------
    model : callable
        A Pyro model; its observed sites carry ``obs=``.
    *args, **kwargs
        Passed to the model (the names below are the engine's own).
    tol : float
        Relative KKT tolerance of the stop test.
    max_iter : int
        Outer (proximal) Newton iterations.
    strict : bool
        Raise :class:`~mapreg.errors.ConvergenceError` instead of warning when the stop test
        is not met.
    init : mapping, optional
        Starting values {site: constrained value}; others start at the zero of their
        unconstrained coordinates (0 for real sites, 1 for positive ones).
    vectorized : bool
        The model broadcasts over leading batch dimensions of its latent sites (one trace
        then computes many Hessian columns; mapreg's own models do). Leave False for
        a model written with ``pyro.plate`` over its data only.

    Returns
    -------
    ModelMapResult
        Frozen. The user's param store is untouched; Pyro traces are serialised across
        threads (:func:`mapreg.bayes.models.pyro_session`).
    """
    if not callable(model):
        raise ValueError(f"model must be a callable Pyro model; got {model!r}")
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    strict = check_bool("strict", strict)
    vectorized = check_bool("vectorized", vectorized)
    return _fit(model, args, kwargs, tol, max_iter, strict, dict(init or {}), vectorized)


def _fit(model, args, kwargs, tol, max_iter, strict, init, vectorized,
         predictor: LinearPredictor | None = None) -> ModelMapResult:
    """:func:`map_model` after validation; ``predictor`` is mapreg's own GLMs' declaration
    of their linear predictor (:class:`LinearPredictor`)."""
    start = time.perf_counter()
    with pyro_session():
        sites, p, elements = _discover(model, args, kwargs, init)
        unknown = set(init) - {s.name for s in sites}
        if unknown:
            raise ValueError(f"init names sites the model does not have as latent: "
                             f"{sorted(unknown)}; latent sites: {[s.name for s in sites]}")
        prob = _Problem(model, args, kwargs, sites, p, vectorized, elements, predictor)
        u0 = torch.zeros(p, dtype=torch.float64)
        for s in sites:
            if s.name in init:
                v = torch.as_tensor(init[s.name], dtype=torch.float64)
                u0[s.start:s.stop] = s.transform.inv(v.expand(s.shape)).reshape(-1)
        point, it = _prox_newton(prob, u0, tol, max_iter)
        rho, scale = _kkt(point, prob)
        rel = relative(rho, scale)
        floor = relative(point.floor, scale)
        passes = bool((rho <= tol * scale + point.floor).all())
        values = {k: v.detach().clone() for k, v in prob.values(point.u).items()}
    wall = time.perf_counter() - start
    if not math.isfinite(point.full):
        raise RuntimeError(f"Pyro's log joint is not finite at the estimate: {-point.full}")
    worst = float(rel.max())
    if passes and worst > _RESOLVED:
        report_nonconvergence(
            f"MAP engine stopped at the rounding floor of Pyro's float64 log joint: KKT "
            f"residual {worst:.3e} (floor {float(floor.max()):.1e}) -- the optimum is resolved "
            f"only to that (saturated observations, or a prior too weak for the data's "
            f"scale); standardize X or strengthen the prior", strict)
    if not passes:
        report_nonconvergence(
            f"MAP engine did not converge in {it} iterations: KKT residual {worst:.3e} > "
            f"tolerance {tol:.3e} (relative to each optimality condition's scale; rounding "
            f"floor {float(floor.max()):.1e})", strict)
    per_site = {s.name: float(rel[s.start:s.stop].max()) for s in sites}
    method = "prox-newton" if bool(prob.l1.any()) else "newton"
    return ModelMapResult(values, {s.name: s.kind for s in sites}, worst, per_site,
                          float(floor.max()), tol, passes, point.full, it, prob.traces, method,
                          wall)


def _working_set(prob: _Problem, point: _Point, viol: torch.Tensor,
                 working: torch.Tensor) -> torch.Tensor:
    """Every smooth coordinate, the L1 support and the worst L1 violators (at least 10)."""
    return grow_working_set(working | ~prob.l1, point.u != 0, prob.l1, viol, 10)


def _positive_definite(A: np.ndarray, damping: float = 0.0) -> tuple[np.ndarray, float]:
    """(A, 0) if A is positive semidefinite to rounding; else a positive definite
    replacement -- a descent direction for a non-convex model -- and the weak curvature w:
    V (max(|Lambda|, w) + damping) V' for A = V Lambda V', w = 0.01 |lam_min| + 1e-8 max|A|
    (saddle-free Newton, Dauphin et al. 2014: along a negative-curvature eigenvector the step
    goes downhill, along well-curved ones it is Newton's; a uniform shift by |lam_min| would
    shorten those too, and was measured 2-5x slower on tanh networks). ``damping``
    (Levenberg-Marquardt style, kept by :func:`_prox_newton` across iterations) grows where
    such steps had to be shortened and shrinks where they were taken whole."""
    if not A.size:
        return A, 0.0
    diag = np.diag(A)
    if bool((diag > 0).all()):  # a Cholesky factor of the unit-diagonal scaling proves it
        S = 1.0 / np.sqrt(diag)
        if int(torch.linalg.cholesky_ex(torch.from_numpy(A * S[:, None] * S[None, :]))[1]) == 0:
            return A, 0.0
    lam, V = np.linalg.eigh(0.5 * (A + A.T))
    lam_min = float(lam[0])
    top = float(np.abs(A).max(initial=0.0))
    if lam_min >= -64 * A.shape[0] * EPS * top:
        return A, 0.0
    weak = 0.01 * abs(lam_min) + 1e-8 * top
    # saddle-free Newton (Dauphin et al. 2014): |eigenvalues|, floored at the weak curvature,
    # plus the damping -- negative-curvature directions are followed downhill, well-curved
    # ones keep their Newton step
    mod = np.maximum(np.abs(lam), weak) + damping
    return (V * mod) @ V.T, weak


def _inexact_step(prob: _Problem, point: _Point, W: torch.Tensor) -> torch.Tensor:
    """The step on a working set too large for a Hessian matrix: the quadratic model (plus
    the L1 term) minimised approximately with exact Hessian-vector products through one
    retained trace -- conjugate gradients (stopped at negative curvature) for a smooth
    problem, accelerated proximal gradient (FISTA, step 1 / the largest eigenvalue from
    power iterations) when L1 coordinates are present."""
    full_hvp = prob.graph_hvp(point.u)
    m = W.numel()

    def hvp(v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(prob.p, dtype=torch.float64)
        full[W] = v
        return full_hvp(full)[W]

    g = point.grad[W]
    pen = prob.l1[W]
    if not bool(pen.any()):
        g_norm = float(g.norm())
        target = min(0.5, math.sqrt(g_norm)) * g_norm
        x, _, k = conjugate_gradient(hvp, -g, min(m, _MAX_INNER),
                                     lambda r: float(r.norm()) <= target)
        if k == 1 and not bool(x.any()):
            x = -g  # negative curvature at once: steepest descent, the line search scales
        return x
    # FISTA on q(u) + h(u) restricted to W, in the absolute coordinates u = u0 + s
    v = torch.randn(m, generator=prob.gen, dtype=torch.float64)
    L = 0.0
    for _ in range(20):
        Hv = hvp(v / v.norm())
        L = max(L, float(Hv.norm()))
        v = Hv if bool(Hv.any()) else v
    L = 1.05 * L if L > 0 else 1.0
    u0 = point.u[W]
    kappa = prob.kappa[W]
    x = u0.clone()
    z, t = x.clone(), 1.0
    for _ in range(_MAX_INNER):
        grad_q = g + hvp(z - u0)
        v = z - grad_q / L
        x_new = torch.where(pen, torch.sign(v) * (v.abs() - kappa / L).clamp_min(0.0), v)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        moved = x_new - x
        if float(moved.abs().max()) <= EPS * float(x_new.abs().max().clamp_min(1e-300)):
            x = x_new
            break
        z = x_new + ((t - 1) / t_new) * moved
        if float((grad_q * moved).sum()) > 0:  # adaptive restart (O'Donoghue & Candes)
            z, t_new = x_new.clone(), 1.0
        x, t = x_new, t_new
    return x - u0


def _prox_newton(prob: _Problem, u: torch.Tensor, tol: float, max_iter: int):
    point = prob.at(u)
    working = torch.zeros(prob.p, dtype=torch.bool)
    it = 0
    best = None
    previous = math.inf
    damping = 0.0  # Levenberg-Marquardt damping of shifted (non-convex) steps
    while True:
        rho, scale = _kkt(point, prob)
        passes = bool((rho <= tol * scale + point.floor).all())
        residual = float(relative(rho, scale).max())
        if passes and (best is None or residual < best[0]):
            best = (residual, point)
        viol = rho - tol * scale
        if it >= max_iter or not bool((viol > 0).any()):
            break
        if passes and residual > 0.5 * previous:
            break  # passing only thanks to the floor, and no longer halving: stop
        previous = residual
        it += 1
        working = _working_set(prob, point, viol, working)
        W = working.nonzero().squeeze(1)
        step = torch.zeros(prob.p, dtype=torch.float64)
        weak = 0.0  # > 0: the step came from a shifted, indefinite Hessian
        direct = W.numel() == prob.p <= _MAX_DIRECT
        pcg = prob.preconditioned_step(point, tol) if direct else None
        if pcg is not None:
            step = pcg
            A = g = pen = None
        elif W.numel() > _MAX_DIRECT:
            step[W] = _inexact_step(prob, point, W)
            if not bool(step.any()):
                break
            A = g = pen = None
        else:
            A, weak = _positive_definite(prob.hessian_at(point, W).numpy(), damping)
            g = point.grad[W].numpy()
            pen = prob.l1[W].numpy()
        if A is None:
            pass
        elif pen.any():
            new = solve_l1_qp(A, g, point.u[W].numpy(), prob.kappa[W].numpy(), pen,
                              np.full(len(W), FLOOR_FACTOR * EPS), point.floor[W].numpy() / 16)
            step[W] = torch.from_numpy(new) - point.u[W]
        else:
            # Jacobi-scaled (unit diagonal): a Hessian whose columns differ in scale by 1e16
            # (units, offsets, saturated observations next to a weak prior) is singular to
            # float64 unscaled, and a least-squares step would drop the prior's directions
            diag = np.diag(A).copy()
            S = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
            s = newton_step(A * S[:, None] * S[None, :], g * S)
            if s is None:
                break
            step[W] = torch.from_numpy(s * S)
        if not bool(step.any()):
            break
        h0 = float((prob.kappa * point.u.abs()).sum())
        decrease = float(point.grad @ step) + float(
            (prob.kappa * (point.u + step).abs()).sum()) - h0
        t, trial = 1.0, None
        for _ in range(_MAX_HALVINGS):
            cand = point.u + t * step
            # the full step is usually accepted: evaluate it completely in one trace
            full = prob.at(cand) if t == 1.0 else None
            val = full.full if full is not None else prob.full(cand)
            if val <= point.full + _ARMIJO * t * min(decrease, 0.0) + 2 * point.full_floor:
                trial = full if full is not None else prob.at(cand)
                break
            t *= 0.5
        if trial is None:
            break
        if weak > 0:  # shorten the next shifted step by as much as this one had to be
            damping = damping / 4 if t == 1.0 else max(4 * damping, (1 / t - 1) * weak)
        point = trial
    if best is not None and best[1] is not point:
        rho, scale = _kkt(point, prob)
        if not bool((rho <= tol * scale + point.floor).all()) or \
                best[0] < float(relative(rho, scale).max()):
            point = best[1]
    return point, it
