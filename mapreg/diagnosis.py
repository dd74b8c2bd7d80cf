"""Do the MAP and the penalized optimum agree, and if not, why: the evidence behind
:meth:`mapreg.CompareResult.verdict`.

Agreement (the promise), with w the penalized optimum's coefficients, c its intercept and
d the differences between the two points::

    max_j |dw_j| <= 1e-6 * ||w||_inf
    |dc|         <= 1e-6 * (|mean(y)| + sum_j |mean(X_j) w_j|)   (sd(y) if that is 0)
    identical exact-zero patterns (priors with exact zeros)

An all-zero optimum w = 0 has no scale of its own: with exact zeros (lasso) both points
must then be exactly zero; for the ridge, which has no exact zeros, the fitted values of
the MAP's w must be negligible next to the fit, which is then the constant c:
max_i |x_i . dw| <= 1e-6 * (the intercept scale above).

Each number is measured on its own scale: a y offset of 1e10 enlarges the intercept's
scale but not the coefficients', and the rule does not change with the units of y.

When they do not agree, :func:`classify` names a cause only with evidence for it:

* ``"not_unique"``: both points attain the canonical objective J to 1e-9 relative
  (|J_map - J_pen| <= 1e-9 max(J_map, J_pen), the difference computed from the
  differences of the points, not by subtracting two large sums) AND the penalty is not
  strictly convex AND the centred columns of X on the union of both supports are
  rank-deficient. (If they had full rank, two optima would have to be equal: every lasso
  optimum has the same fitted values.)
* ``"rounding"``: the same objective to 1e-9, a unique optimum, and
  cond(H) * 1e-15 >= the observed relative difference, H the Hessian of J in w on centred
  data (Xc'Xc + lam I for the ridge, Xc_U'Xc_U on the union U of the supports for the
  lasso). 1e-15 (~4.5 float64 epsilons) is the relative accuracy of a float64 gradient
  evaluation; a solver's optimality test cannot resolve w better than cond(H) times it.
* ``"disagree"`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Agreement the package promises between the MAP and the penalized optimum.
AGREEMENT_RTOL = 1e-6
#: Two points attain "the same objective" when |dJ| <= this * max(J_map, J_pen).
OBJECTIVE_RTOL = 1e-9
#: Relative float64 accuracy of a gradient evaluation (~4.5 eps); cond(H) * this is the
#: relative difference in w that rounding can explain.
ROUNDING_UNIT = 1e-15
#: Columns whose standard deviations differ by more than this are "badly scaled".
SCALE_RATIO = 1e3

KINDS = ("agree", "not_unique", "rounding", "disagree")
HEADLINES = {"agree": "AGREE", "not_unique": "NOT UNIQUE", "rounding": "DIFFER BY ROUNDING ONLY",
             "disagree": "DISAGREE"}


def intercept_scale(X: torch.Tensor, y: torch.Tensor, coef: torch.Tensor) -> float:
    """The magnitudes that form c = mean(y) - mean(X) . w: |mean(y)| + sum_j |mean(X_j) w_j|;
    sd(y) when that is 0 (and 0 when y is identically 0)."""
    scale = abs(float(y.mean())) + float((X.mean(0) * coef).abs().sum())
    return scale if scale > 0 else float(y.std(correction=0))


def objective_difference(X, y, penalty: str, lam: float, a: tuple[torch.Tensor, float],
                         b: tuple[torch.Tensor, float], lam2: float = 0.0) -> float:
    """J(a) - J(b) for the canonical objective J, from the differences of the two points.

    With e = X (w_a - w_b) + (c_a - c_b) and r_b = y - X w_b - c_b,
    1/2 ||r_a||^2 - 1/2 ||r_b||^2 = -e . r_b + 1/2 ||e||^2: no cancellation between the two
    large sums, so the difference is accurate even when J itself is not (large y offsets).
    """
    (wa, ca), (wb, cb) = a, b
    e = X @ (wa - wb) + (ca - cb)
    rb = y - X @ wb - cb
    if penalty == "ridge":
        pen = 0.5 * float((wa - wb) @ (wa + wb))
    else:
        pen = float(wa.abs().sum() - wb.abs().sum())
    if lam2:  # the elastic net's (lam2/2) ||w||^2, lam being its L1 weight
        pen2 = 0.5 * float((wa - wb) @ (wa + wb))
        return -float(e @ rb) + 0.5 * float(e @ e) + lam * pen + lam2 * pen2
    return -float(e @ rb) + 0.5 * float(e @ e) + lam * pen


def relative(diff: float, scale: float) -> float:
    """diff / scale, with 0/0 = 0 and x/0 = inf."""
    if scale > 0:
        return diff / scale
    return 0.0 if diff == 0 else math.inf


@dataclass(frozen=True)
class Conditioning:
    """The Hessian of J in w on the relevant columns, and what makes it ill-conditioned.

    ``columns``: the union of both supports (lasso) or all columns (ridge); ``rank``: the
    numerical rank of the centred X on them (singular values above s_max * max(n, k) * eps);
    ``cond``: the condition number of Xc'Xc + ridge_lam I there (``inf`` when singular);
    ``sd_min``, ``sd_max``: the smallest and largest non-zero column standard deviations;
    ``cond_standardized``: the same design's cond after dividing each column by its sd;
    ``collinear``: the columns loading most on its smallest singular direction.
    """

    columns: tuple[int, ...]
    rank: int
    cond: float
    sd_min: float
    sd_max: float
    cond_standardized: float
    collinear: tuple[int, ...]
    ridge_lam: float

    @property
    def rank_deficient(self) -> bool:
        return self.rank < len(self.columns)

    @property
    def scale_ratio(self) -> float:
        return self.sd_max / self.sd_min if self.sd_min > 0 else 1.0

    def causes(self, rel_diff: float) -> str:
        """What makes the Hessian ill-conditioned enough to explain ``rel_diff``.

        Column scales more than SCALE_RATIO apart: standardize (with the cond that would
        leave); a rank-deficient design: the directions only the prior holds; columns that
        stay ill-conditioned after standardizing (cond_standardized x 1e-15 >= rel_diff):
        near-collinear, named by their loadings on the smallest singular direction.
        """
        k = len(self.columns)
        out = []
        if self.scale_ratio > SCALE_RATIO:
            out.append(f"columns of X on scales {self.scale_ratio:.1e} apart (sd "
                       f"{self.sd_min:.1e} .. {self.sd_max:.1e}; standardized, cond would be "
                       f"{self.cond_standardized:.1e}): standardize the columns of X")
        if self.rank_deficient:
            held = (f"only the prior's curvature lam = {self.ridge_lam:.3g} holds w"
                    if self.ridge_lam > 0 else "nothing holds w")
            out.append(f"the centred X has rank {self.rank} on {k} columns: in "
                       f"{k - self.rank} directions {held}")
        elif self.collinear and self.cond_standardized * ROUNDING_UNIT >= rel_diff:
            names = ", ".join(f"w{j}" for j in self.collinear)
            out.append(f"near-collinear columns {names} (cond of the standardized columns "
                       f"{self.cond_standardized:.1e})")
        return "; ".join(out) or (f"column scales {self.scale_ratio:.1e} apart and standardized "
                                  f"cond {self.cond_standardized:.1e}")


def _svdvals(A: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(A) if A.numel() else torch.zeros(0, dtype=A.dtype)


def conditioning(X: torch.Tensor, columns: torch.Tensor, ridge_lam: float = 0.0) -> Conditioning:
    """:class:`Conditioning` of the centred ``X[:, columns]`` (+ ridge_lam I)."""
    cols = tuple(int(j) for j in torch.nonzero(columns).flatten())
    n, k = X.shape[0], len(cols)
    if k == 0:
        return Conditioning(cols, 0, 1.0, 0.0, 0.0, 1.0, (), ridge_lam)
    Xc = X[:, list(cols)] - X[:, list(cols)].mean(0)
    s = _svdvals(Xc)
    s_max = float(s[0]) if len(s) else 0.0
    rank = int((s > s_max * max(n, k) * torch.finfo(X.dtype).eps).sum()) if s_max > 0 else 0
    ev_min = (float(s[-1]) ** 2 if len(s) == k and rank == k else 0.0) + ridge_lam
    cond = (s_max**2 + ridge_lam) / ev_min if ev_min > 0 else math.inf
    sd = Xc.norm(dim=0) / math.sqrt(n)
    pos = sd > 0
    if not bool(pos.any()):
        return Conditioning(cols, rank, cond, 0.0, 0.0, math.inf, (), ridge_lam)
    Xs = Xc[:, pos] / sd[pos]
    _, ss, vh = torch.linalg.svd(Xs, full_matrices=False)
    cond_std = float(ss[0] / ss[-1]) ** 2 if float(ss[-1]) > 0 and Xs.shape[1] <= n else math.inf
    collinear: tuple[int, ...] = ()
    if Xs.shape[1] <= n and Xs.shape[1] > 1:
        v = vh[-1].abs()
        order = torch.argsort(v, descending=True)[:5]
        idx = [cols[j] for j in torch.nonzero(pos).flatten().tolist()]
        collinear = tuple(sorted(idx[int(j)] for j in order if float(v[j]) >= 0.3 * float(v.max())))
    return Conditioning(cols, rank, cond, float(sd[pos].min()), float(sd[pos].max()), cond_std,
                        collinear, ridge_lam)


def classify(*, agrees: bool, same_objective: bool, unique: bool, cond: float,
             rel_diff: float) -> str:
    """The verdict's kind from the evidence (see the module docstring for the rules).

    ``unique``: the optimum is provably unique (strictly convex penalty, or full column
    rank of the centred design on the union of supports); ``rel_diff``: the larger of the
    coefficients' and the intercept's relative differences.
    """
    if agrees:
        return "agree"
    if not same_objective:
        return "disagree"
    if not unique:
        return "not_unique"
    if cond * ROUNDING_UNIT >= rel_diff:
        return "rounding"
    return "disagree"


@dataclass(frozen=True)
class Agreement:
    """The promise's numbers (cheap: no factorization); see the module docstring."""

    penalty: str
    max_abs_diff: float
    coef_scale: float
    zero_fit_diff: float | None
    intercept_abs_diff: float
    intercept_scale: float
    zero_pattern_diffs: int
    zero_pattern_max: float  # max |w| where one point is exactly 0 and the other is not

    @property
    def exact_zeros(self) -> bool:
        """Whether the penalty produces exact zeros (lasso), so zero patterns must match."""
        return self.penalty != "ridge"

    @property
    def rel_coef(self) -> float:
        """max_j |dw_j| / ||w_pen||_inf; for an all-zero ridge optimum
        max_i |x_i . dw| / (the intercept scale)."""
        if self.zero_fit_diff is not None:
            return relative(self.zero_fit_diff, self.intercept_scale)
        return relative(self.max_abs_diff, self.coef_scale)

    @property
    def rel_intercept(self) -> float:
        """|dc| / (|mean y| + sum_j |mean X_j w_j|)."""
        return relative(self.intercept_abs_diff, self.intercept_scale)

    @property
    def rel_diff(self) -> float:
        """The larger of the two relative differences."""
        return max(self.rel_coef, self.rel_intercept)

    @property
    def agrees(self) -> bool:
        return (self.rel_coef <= AGREEMENT_RTOL and self.rel_intercept <= AGREEMENT_RTOL
                and (self.zero_pattern_diffs == 0 or not self.exact_zeros))

    def __str__(self) -> str:
        if self.coef_scale == 0:
            coef = f"w_{self.penalty} = 0 and max|dw| = {self.max_abs_diff:.1e}"
            if self.zero_fit_diff is not None:
                coef += (f" (fitted values max|X dw| = {self.zero_fit_diff:.1e} = "
                         f"{self.rel_coef:.1e} x the intercept scale)")
        else:
            coef = f"max|dw| = {self.max_abs_diff:.1e} = {self.rel_coef:.1e} x |w|_inf"
        zeros = ("zero patterns identical" if self.zero_pattern_diffs == 0 else
                 f"zero patterns differ in {self.zero_pattern_diffs} coordinate"
                 f"{'s' if self.zero_pattern_diffs > 1 else ''}")
        return (f"{coef}, |dc| = {self.intercept_abs_diff:.1e} = {self.rel_intercept:.1e} x "
                f"the intercept scale {self.intercept_scale:.3g}; {zeros}")


def agreement(X: torch.Tensor, y: torch.Tensor, penalty: str,
              map_point: tuple[torch.Tensor, float],
              pen_point: tuple[torch.Tensor, float]) -> Agreement:
    """The promise's numbers for the MAP point against the penalized optimum."""
    (wm, cm), (wp, cp) = map_point, pen_point
    coef_scale = float(wp.abs().max())
    # an all-zero ridge optimum: judge the MAP's w by its fitted values (module docstring)
    zero_fit = (float((X @ (wm - wp)).abs().max()) if coef_scale == 0 and penalty == "ridge"
                else None)
    differ = (wm == 0) != (wp == 0)
    return Agreement(penalty, float((wm - wp).abs().max()), coef_scale, zero_fit, abs(cm - cp),
                     intercept_scale(X, y, wp), int(differ.sum()),
                     float((wm - wp)[differ].abs().max()) if bool(differ.any()) else 0.0)


@dataclass(frozen=True)
class Diagnosis:
    """The verdict's kind, the numbers it rests on, and its text (``str(diagnosis)``).

    ``conditioning`` is ``None`` where the verdict did not need it (the points agree, or
    their objectives differ).
    """

    kind: str
    agreement: Agreement
    objective_diff: float
    objective_scale: float
    conditioning: Conditioning | None
    solvers: str

    @property
    def penalty(self) -> str:
        return self.agreement.penalty

    @property
    def strictly_convex(self) -> bool:
        """(lam/2)||w||^2 with lam > 0 is strictly convex: the ridge (and elastic-net)
        optimum is unique."""
        return self.penalty in ("ridge", "elasticnet")

    @property
    def objective_rel_diff(self) -> float:
        """|J_map - J_pen| / max(J_map, J_pen)."""
        return relative(abs(self.objective_diff), self.objective_scale)

    def _objective(self) -> str:
        worse = ("" if self.objective_diff == 0 else " (higher at the MAP)"
                 if self.objective_diff > 0 else f" (higher at the {self.penalty} optimum)")
        return f"objective rel. diff {self.objective_rel_diff:.1e}{worse}"

    def _hessian(self) -> str:
        if self.strictly_convex:
            return "Xc'Xc + lam I"
        k = len(self.conditioning.columns) if self.conditioning is not None else 0
        return f"Xc_U'Xc_U on the union U of the supports, {k} columns"

    def __str__(self) -> str:
        head, c, a = HEADLINES[self.kind], self.conditioning, self.agreement
        if self.kind == "agree":
            return f"{head} -- {a}"
        if self.kind == "not_unique":
            return (f"{head} -- the {self.penalty} optimum is not unique: both points attain "
                    f"the objective ({self._objective()} <= {OBJECTIVE_RTOL:.0e}) and the "
                    f"centred columns of X on the union of both supports have rank {c.rank} < "
                    f"{len(c.columns)}, so a null direction exists; {a}")
        if self.kind == "rounding" and a.rel_diff <= AGREEMENT_RTOL:  # only the zeros differ
            z = a.zero_pattern_max
            return (f"{head} -- the coefficients agree, but the zero patterns differ where the "
                    f"non-zero side is at most {z:.1e} = {relative(z, a.coef_scale):.1e} x "
                    f"|w|_inf <= cond({self._hessian()}) x {ROUNDING_UNIT:.0e} = "
                    f"{c.cond * ROUNDING_UNIT:.1e}: float64 rounding decides whether a "
                    f"coefficient at the {self.penalty} threshold is exactly 0; "
                    f"{self._objective()}; {a}")
        if self.kind == "rounding":
            return (f"{head} -- ill-conditioned: cond({self._hessian()}) = {c.cond:.1e}, and "
                    f"float64 rounding (cond x {ROUNDING_UNIT:.0e} = "
                    f"{c.cond * ROUNDING_UNIT:.1e}) explains the relative difference "
                    f"{a.rel_diff:.1e}; {self._objective()}; {a}. Cause: {c.causes(a.rel_diff)}")
        if c is None:
            why = (f"the objectives differ by more than {OBJECTIVE_RTOL:.0e} relative, so at "
                   f"least one point is not optimal (rounding moves w only along directions "
                   f"that leave the objective unchanged)")
        else:
            proof = ("strictly convex penalty" if self.strictly_convex
                     else "full column rank on the union of the supports")
            why = (f"cond({self._hessian()}) = {c.cond:.1e}, so float64 rounding explains "
                   f"only {c.cond * ROUNDING_UNIT:.1e} < {a.rel_diff:.1e}, and the optimum is "
                   f"unique ({proof})")
        return f"{head} -- {a}; {self._objective()}; not explained: {why}. Solvers: {self.solvers}"


def diagnose(X: torch.Tensor, y: torch.Tensor, penalty: str, lam: float,
             map_point: tuple[torch.Tensor, float], pen_point: tuple[torch.Tensor, float],
             objectives: tuple[float, float], solvers: str = "", lam2: float = 0.0) -> Diagnosis:
    """Gather the evidence and classify it (see the module docstring).

    ``objectives`` are J at the MAP and at the penalized optimum (for the scale of J);
    the difference itself comes from :func:`objective_difference`.
    """
    agree = agreement(X, y, penalty, map_point, pen_point)
    dj = objective_difference(X, y, penalty, lam, map_point, pen_point, lam2)
    j_scale = max(objectives)
    same = relative(abs(dj), j_scale) <= OBJECTIVE_RTOL
    cond = None
    if not agree.agrees and same:
        wm, wp = map_point[0], pen_point[0]
        ridge = penalty == "ridge"
        columns = torch.ones(X.shape[1], dtype=torch.bool) if ridge else (wm != 0) | (wp != 0)
        cond = conditioning(X, columns, lam if ridge else lam2)
    kind = classify(
        agrees=agree.agrees, same_objective=same,
        unique=penalty == "ridge" or lam2 > 0 or cond is None or not cond.rank_deficient,
        cond=cond.cond if cond is not None else 0.0, rel_diff=agree.rel_diff,
    )
    return Diagnosis(kind, agree, dj, j_scale, cond, solvers)
