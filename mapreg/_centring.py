"""Centring for models with an unpenalized (or flat) intercept, robust to uncentred data.

With an intercept c that carries no penalty, c = mean(y) - mean(X) . w at the optimum, so
the constrained solvers and the evidence work on Xc = X - 1 mean(X)' and yc = y - mean(y).
Two rounding effects of that subtraction matter for data far from the origin (a column
~2000 +- 1, y offset by 1e6):

* ``fl(mean(x))`` is off by up to ~n eps max|x|, which shifts the whole centred column by a
  constant: Xc picks up a component along 1 of size n eps max|x| sqrt(n) that exact
  centring does not have. For n <= d it shows up as an n-th singular value (exactly 0 in
  exact arithmetic) far above the usual cut-off max(n, d) eps s_max. A second centring pass
  removes it: the mean of the centred column is computed with an error relative to the
  *centred* values, so after the pass 1'Xc = 0 to rounding of |Xc|, not of |X|.
* a column that is constant to working precision -- every |x_i - fl(mean)| within the
  (n + 1) eps max|x| that the subtraction and the mean's rounding can produce -- is centred
  to exactly 0, the value exact arithmetic gives (a column of 0.1s whose mean rounds one
  ulp away from 0.1 would otherwise become a column of +-1e-17 "signal"). y likewise.
"""

from __future__ import annotations

import torch

EPS = torch.finfo(torch.float64).eps


def _centre_columns(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A - 1 m', m) for a 2-D A, by two passes; constant-to-rounding columns become 0."""
    n = A.shape[0]
    m = A.mean(0)
    # max_i |Ac_ij| and max_i |A_ij| from column maxima and minima (no |.| copies of A;
    # torch.aminmax along dim 0 measured 4x slower than amax + amin here). Rounding is
    # monotone, so max_i fl(A_ij - m_j) = fl(max_i A_ij - m_j): the extremes of Ac come from
    # those of A, bit for bit, without two more passes over the data.
    hi, lo = A.amax(0), A.amin(0)
    spread = torch.maximum(hi - m, m - lo)
    size = torch.maximum(hi, -lo)
    Ac = A - m
    constant = spread <= (n + 1) * EPS * size
    if bool(constant.any()):
        Ac[:, constant] = 0.0
    m2 = Ac.mean(0)
    Ac -= m2
    return Ac, m + m2


def centre(X: torch.Tensor, y: torch.Tensor):
    """Return ``(Xc, yc, x_mean, y_mean)``: the centred data and the means that produced it.

    ``Xc`` and ``yc`` are orthogonal to 1 to the rounding of their own entries (two passes,
    see the module docstring); columns of X, and y, that are constant to working precision
    are exactly 0. The intercept of a solution w is ``y_mean - x_mean @ w``.
    """
    Xc, xm = _centre_columns(X)
    yc, ym = _centre_columns(y[:, None])
    return Xc, yc[:, 0], xm, ym[0]


def svd(M: torch.Tensor):
    """Thin SVD ``M = U diag(s) Vh``, computed on the tall orientation.

    LAPACK's path for a wide matrix (rows < columns) is up to ~7000x slower in torch's build
    when the cores are shared (0.36 s against 50 us for a 20 x 201 matrix on a loaded 2-core
    machine); the SVD of M' gives the same factors with U and V swapped.
    """
    if M.shape[0] >= M.shape[1]:
        return torch.linalg.svd(M, full_matrices=False)
    V, s, Uh = torch.linalg.svd(M.T, full_matrices=False)
    return Uh.T, s, V.T


def centred_svd(Xc: torch.Tensor):
    """Thin SVD of centred data with the rank cut-off s_i > max(n, d) eps s_max.

    Returns ``(U, s, Vh)`` restricted to the kept singular values (``s`` may be empty when
    Xc = 0). Columns of Xc that are exactly 0 (constant columns, see :func:`centre`) are left
    out of the factorisation, so their entries of V are exactly 0 (a zero column's would
    otherwise come out ~1e-16, and so would its weight). Directions below the cut-off are
    rounding: a perturbation of Xc of that size (the SVD's own backward error is a modest
    multiple of eps s_max) can create or remove them.
    """
    n, d = Xc.shape
    varies = (Xc != 0).any(0)  # all-zero (constant) columns get exactly 0 rows in V
    if not bool(varies.any()):  # Xc = 0: no direction at all
        return Xc.new_zeros(n, 0), Xc.new_zeros(0), Xc.new_zeros(0, d)
    U, s, Vh_v = svd(Xc[:, varies])
    keep = s > float(s.max()) * max(n, d) * EPS
    Vh = Xc.new_zeros(int(keep.sum()), d)
    Vh[:, varies] = Vh_v[keep]
    return U[:, keep], s[keep], Vh
