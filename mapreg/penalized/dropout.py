"""Input dropout on linear regression is a ridge with a per-feature, data-dependent penalty.

Inverted dropout with rate p (``torch.nn.Dropout(p)`` on the inputs, train mode) multiplies
each input x_ij by z_ij = m_ij / (1 - p), m_ij ~ Bernoulli(1 - p) independent, so
E z_ij = 1 and Var z_ij = p / (1 - p). The model keeps its bias c (never dropped). For one
row, E (y_i - sum_j z_ij x_ij w_j - c)^2 = (y_i - x_i.w - c)^2 + p/(1-p) sum_j x_ij^2 w_j^2
(mean squared = squared mean + variance, the z_ij independent), so summed over the rows

    E_m ||y - X (m (.) w) / (1 - p) - c||^2
        = ||y - Xw - c||^2 + p/(1-p) sum_j (sum_i x_ij^2) w_j^2.

Every factor matters: p/(1-p) is Var z; sum_i x_ij^2 is over the **raw (uncentred)**
columns, because dropout acts on the inputs x_ij themselves, not on x_ij - mean_j (with
an intercept in the model the fit term can be centred, the penalty cannot). The same
expectation holds if one mask is shared by all rows (the cross terms between rows never
appear in a sum of squares). On the canonical scale this is the generalized ridge

    minimise over (w, c)   1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2,
    lam_j = p/(1-p) sum_i x_ij^2            (:func:`dropout_penalty_weights`)

whose minimiser has the closed form w = (Xc'Xc + diag(lam))^-1 Xc'yc, c = mean(y) -
mean(X).w (Xc, yc centred: the intercept is unpenalized) -- :func:`dropout_ridge`.

:func:`train_dropout` trains it the way a practitioner would: full-batch SGD on the mean
dropout loss (1/n) sum_i 1/2 (y_i - x~_i.w - c)^2, x~_i = m_i (.) x_i / (1 - p), a fresh
mask every step, and averages the iterates. For this model the stochastic gradient is
affine in theta = (w, c), g(theta; m) = A(m) theta - b(m), with E A(m) = H the Hessian of
the expected (marginalized) mean loss and E b(m) = its linear term, and m independent of
the current theta; so with a constant step lr the stationary mean of the iterates solves
H theta = E b exactly -- the averaged iterate is an unbiased estimate of the generalized
ridge solution, with Monte Carlo error only (no step-size bias). The error is measured
from independent chains (different seeds), not assumed.

What this is *not*: the equivalent "prior" (:mod:`mapreg.dropout`) has scales that depend
on X, so it is a penalty (an empirical, data-dependent prior), not a prior in the strict
sense; and for networks the marginalization is only approximate (Wager, Wang & Liang 2013
expand it to second order for GLMs).

No Pyro and nothing from :mod:`mapreg.bayes` here (``tests/test_layout.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .._centring import centre
from .._results import FrozenResult
from .._validation import DTYPE, check_data, check_positive_int

__all__ = [
    "DropoutRidgeResult",
    "DropoutTrainResult",
    "dropout_expected_loss",
    "dropout_penalty_weights",
    "dropout_ridge",
    "train_dropout",
]


def _check_rate(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < float(p) < 1.0:
        raise ValueError(f"p must be a dropout rate in (0, 1); got {p!r}")
    return float(p)


def _check_X(X) -> torch.Tensor:
    X = torch.as_tensor(X, dtype=DTYPE)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0 or not bool(torch.isfinite(X).all()):
        raise ValueError(f"X must be a finite non-empty (n, d) array; got shape "
                         f"{tuple(X.shape)}")
    return X


def dropout_penalty_weights(X, p: float) -> torch.Tensor:
    """Per-feature ridge weights of inverted input dropout: lam_j = p/(1-p) sum_i x_ij^2.

    On the canonical scale 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2 (module
    docstring). The sums run over the raw columns of X, **not** the centred ones: dropout
    zeroes x_ij itself.

    Parameters
    ----------
    X : array-like of shape (n, d)
    p : float
        Dropout rate in (0, 1) (the probability of zeroing an input).
    """
    X = _check_X(X)
    p = _check_rate(p)
    return p / (1.0 - p) * (X * X).sum(0)


def dropout_expected_loss(X, y, w, c: float, p: float) -> float:
    """The dropout loss marginalized over the masks, in closed form::

        1/2 E_m ||y - X (m (.) w) / (1 - p) - c||^2
            = 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2,  lam_j = p/(1-p) sum_i x_ij^2.
    """
    X, y = check_data(X, y)
    w = torch.as_tensor(w, dtype=DTYPE).reshape(-1)
    if w.shape[0] != X.shape[1]:
        raise ValueError(f"w must have {X.shape[1]} entries (the columns of X); got "
                         f"{w.shape[0]}")
    lam = dropout_penalty_weights(X, p)
    r = y - X @ w - float(c)
    return float(0.5 * (r @ r) + 0.5 * (lam * w * w).sum())


@dataclass(frozen=True, eq=False)
class DropoutRidgeResult(FrozenResult):
    """The exact minimiser of the marginalized dropout loss (frozen; tensors read as copies).

    Attributes
    ----------
    coef, intercept
        argmin 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2 (c unpenalized).
    p
        The dropout rate.
    penalty_weights
        lam_j = p/(1-p) sum_i x_ij^2 (raw columns).
    objective
        The minimum value, 1/2 E_m ||y - X (m (.) w) / (1 - p) - c||^2 at the minimiser.
    kkt_residual
        max_j |Xc_j'(yc - Xc w) - lam_j w_j| / (|Xc_j|'(|yc| + |Xc w|) + lam_j |w_j|):
        the stationarity residual relative to the size of its terms (rounding only).
    """

    coef: torch.Tensor
    intercept: float
    p: float
    penalty_weights: torch.Tensor
    objective: float
    kkt_residual: float


def dropout_ridge(X, y, p: float) -> DropoutRidgeResult:
    """Exact minimiser of the dropout loss marginalized over the masks (generalized ridge).

    Minimises 1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2 over (w, c), with
    lam_j = p/(1-p) sum_i x_ij^2 on the raw columns (:func:`dropout_penalty_weights`) and
    c unpenalized: w = (Xc'Xc + diag(lam))^-1 Xc'yc by Cholesky (one step of iterative
    refinement), c = mean(y) - mean(X).w. Equivalently it minimises the mean dropout loss
    (1/n) 1/2 E_m ||y - X (m (.) w) / (1 - p) - c||^2 that :func:`train_dropout` trains.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
        Every column of X must have a non-zero entry (an all-zero column's weight is not
        determined: it neither fits nor is penalized).
    p : float
        Dropout rate in (0, 1).
    """
    X, y = check_data(X, y)
    p = _check_rate(p)
    lam = dropout_penalty_weights(X, p)
    dead = torch.nonzero(lam == 0).squeeze(1).tolist()
    if dead:
        raise ValueError(f"X has all-zero columns {dead}: their weights are not determined "
                         f"(dropout neither fits nor penalizes them)")
    Xc, yc, xm, ym = centre(X, y)
    G = Xc.T @ Xc + torch.diag(lam)
    rhs = Xc.T @ yc
    L = torch.linalg.cholesky(G)
    w = torch.cholesky_solve(rhs[:, None], L)[:, 0]
    w = w + torch.cholesky_solve((rhs - G @ w)[:, None], L)[:, 0]
    c = float(ym - xm @ w)
    fit = Xc @ w
    grad = Xc.T @ (yc - fit) - lam * w
    scale = Xc.abs().T @ (yc.abs() + fit.abs()) + lam * w.abs()
    kkt = float((grad.abs() / scale.clamp(min=torch.finfo(DTYPE).tiny)).max())
    return DropoutRidgeResult(
        coef=w,
        intercept=c,
        p=p,
        penalty_weights=lam,
        objective=dropout_expected_loss(X, y, w, c, p),
        kkt_residual=kkt,
    )


@dataclass(frozen=True, eq=False)
class DropoutTrainResult(FrozenResult):
    """Outcome of :func:`train_dropout` (frozen; tensors read as copies).

    Attributes
    ----------
    coef, intercept
        The averaged iterate over all chains and all kept steps.
    coef_se, intercept_se
        Its Monte Carlo standard error: the standard deviation of the ``chains``
        independent chain averages divided by sqrt(chains).
    chain_coef, chain_intercept
        Each chain's average, shapes (chains, d) and (chains,).
    p, lr, steps, burn_in, chains, seed
        The settings; each chain ran ``burn_in + steps`` full-batch steps and averaged the
        last ``steps``.
    burn_in_factor
        (1 - lr mu)^burn_in, mu the smallest curvature of the expected mean loss: the
        factor by which the start's pull on the chain mean has decayed when averaging
        starts (an upper bound).
    stationarity
        max |gradient of the expected (marginalized) mean loss at the average| relative to
        the scale of its terms: not zero -- the average carries Monte Carlo error -- but of
        the order of that error; reported, not tested against a tolerance.
    wall_time
        Seconds.
    """

    coef: torch.Tensor
    intercept: float
    coef_se: torch.Tensor
    intercept_se: float
    chain_coef: torch.Tensor
    chain_intercept: torch.Tensor
    p: float
    lr: float
    steps: int
    burn_in: int
    chains: int
    seed: int
    burn_in_factor: float
    stationarity: float
    wall_time: float = field(compare=False)


def train_dropout(
    X,
    y,
    p: float,
    *,
    lr: float | None = None,
    steps: int = 20_000,
    burn_in: int | None = None,
    chains: int = 16,
    seed: int = 0,
) -> DropoutTrainResult:
    """Full-batch SGD with inverted input dropout (fresh masks every step), iterates averaged.

    Each chain minimises the mean dropout loss

        (1/n) sum_i 1/2 (y_i - x~_i.w - c)^2,   x~_ij = m_ij x_ij / (1 - p),

    m_ij ~ Bernoulli(1 - p) drawn afresh for every example, feature and step (what
    ``nn.Dropout(p)`` in front of ``nn.Linear`` does in train mode; the bias is never
    dropped), by theta <- theta - lr g(theta; m) from theta = 0, and averages theta over the
    last ``steps`` steps. Its expectation over the masks is (1/n) times the canonical
    1/2 ||y - Xw - c||^2 + 1/2 sum_j lam_j w_j^2 (module docstring); because g is affine in
    theta with E g = the gradient of that expectation, the chain's stationary mean is its
    minimiser exactly, so the average estimates :func:`dropout_ridge` without step-size
    bias. ``chains`` independent chains (one seeded ``numpy`` generator, advanced in
    lockstep) give an honest standard error.

    Parameters
    ----------
    X, y : array-like of shapes (n, d) and (n,)
    p : float
        Dropout rate in (0, 1).
    lr : float, optional
        Constant step size. Default 1 / B with B = (1/n) sum_i (||x_i||^2 / (1-p)^2 + 1), an
        upper bound of the largest curvature of *every* mask's loss, so that no step can
        expand (I - lr A(m) has its eigenvalues in [0, 1]).
    steps : int
        Steps averaged per chain.
    burn_in : int, optional
        Steps discarded first; default ceil(30 / (lr mu)) (start's pull decayed by e^-30),
        mu the smallest curvature of the expected mean loss.
    chains : int
        Independent chains (>= 2) for the standard error.
    seed : int
        Seed of the numpy generator that draws the masks.
    """
    X, y = check_data(X, y)
    p = _check_rate(p)
    steps = check_positive_int("steps", steps)
    chains = check_positive_int("chains", chains)
    if chains < 2:
        raise ValueError(f"chains must be an integer >= 2 (the standard error needs two); "
                         f"got {chains}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    n, d = X.shape
    Xn, yn = X.numpy(), y.numpy()
    keep = 1.0 - p
    A = np.hstack([Xn, np.ones((n, 1))])
    lam = p / keep * (Xn * Xn).sum(0)
    H = A.T @ A / n
    H[:d, :d] += np.diag(lam) / n
    mu = float(np.linalg.eigvalsh(H)[0])
    if mu <= 0:
        raise ValueError("the expected dropout loss is not strictly convex (an all-zero column "
                         "of X?): its minimiser is not unique")
    bound = float(((Xn * Xn).sum(1) / keep**2 + 1.0).mean())
    if lr is None:
        lr = 1.0 / bound
    elif isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive finite number; got {lr!r}")
    lr = float(lr)
    if burn_in is None:
        burn_in = math.ceil(30.0 / (lr * mu))
    elif isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be an integer >= 0; got {burn_in!r}")

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    w = np.zeros((chains, d))
    c = np.zeros(chains)
    sw = np.zeros((chains, d))
    sc = np.zeros(chains)
    total = burn_in + steps
    block = max(1, min(total, 4_000_000 // (chains * n * d)))  # masks drawn in blocks
    Xs = Xn / keep
    k = 0
    while k < total:
        m = min(block, total - k)
        masks = rng.random((m, chains, n, d)) < keep
        for t in range(m):
            Xt = np.where(masks[t], Xs, 0.0)  # (chains, n, d): this step's dropped inputs
            r = np.einsum("knd,kd->kn", Xt, w) + c[:, None] - yn  # residuals
            w -= lr / n * np.einsum("knd,kn->kd", Xt, r)
            c -= lr * r.mean(1)
            if k + t >= burn_in:
                sw += w
                sc += c
        k += m
    wall = time.perf_counter() - start
    cw, cc = sw / steps, sc / steps
    wbar, cbar = cw.mean(0), float(cc.mean())
    se_w = cw.std(0, ddof=1) / math.sqrt(chains)
    se_c = float(cc.std(ddof=1) / math.sqrt(chains))
    # stationarity of the expected mean loss at the average
    theta = np.append(wbar, cbar)
    b = A.T @ yn / n
    grad = H @ theta - b
    terms = np.abs(A).T @ (np.abs(A @ theta) + np.abs(yn)) / n
    terms[:d] += lam * np.abs(wbar) / n
    stat = float((np.abs(grad) / np.maximum(terms, np.finfo(float).tiny)).max())
    return DropoutTrainResult(
        coef=torch.as_tensor(wbar, dtype=DTYPE),
        intercept=cbar,
        coef_se=torch.as_tensor(se_w, dtype=DTYPE),
        intercept_se=se_c,
        chain_coef=torch.as_tensor(cw, dtype=DTYPE),
        chain_intercept=torch.as_tensor(cc, dtype=DTYPE),
        p=p,
        lr=lr,
        steps=steps,
        burn_in=burn_in,
        chains=chains,
        seed=seed,
        burn_in_factor=float((1.0 - lr * mu) ** burn_in),
        stationarity=stat,
        wall_time=wall,
    )
