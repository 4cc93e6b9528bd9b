"""lmerTest's hypothesis matrices of the anova tables of a mixed model, one per term.

Each term's F test is of ``L β = 0`` for a matrix ``L`` whose rows span the term's
hypothesis; the Satterthwaite test's df depend on the rows themselves (their eigen-
decomposition), so they are built exactly as lmerTest 3.1-3 builds them
(``get_contrasts_type1``, ``get_contrasts_type2_unfolded``, ``get_contrasts_type3``):

- Type 1: rows of the unit upper-triangular factor of a Doolittle LU of XᵀX, the
  term's columns (sequential: each term adjusted for the terms before it).
- Type 2: a term that no other term contains (lmerTest's ``containment``) is tested
  marginally (its coefficients); a contained term by the Type 1 rows of XᵀX with the
  columns reordered (unrelated terms, the term, the terms that contain it).
- Type 3: the term's columns of the treatment-coded X regressed on the fully coded
  design (every level of every factor), made orthogonal to the terms that contain it.

A model with at most one term (or one column) gets the Type 1 rows whatever the type, as
lmerTest does. Type 3 here is lmerTest's path for treatment coding
(``extract_contrasts_type3`` on the model's own X); a model with other contrasts maps
these hypotheses to its coding (``lmm_anova``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.stats.design.terms import INTERCEPT
from service.stats.design.types import FloatArray

# lmerTest's doolittle() tolerance: factor entries below it are set to zero
_DOOLITTLE_EPS = 1e-6
# lmerTest keeps the rows of a Type 3 matrix whose absolute sum exceeds this
_ZERO_ROW = 1e-8


@dataclass(frozen=True, eq=False)
class ModelTerm:
    """One fixed term as lmerTest sees it.

    ``columns`` are its positions in X (aliased columns left out), ``numerics`` the
    variables of R's data class ``"numeric"`` (one-column numeric expressions: a
    ``poly()`` basis is a matrix to R), ``full`` its columns coded with every level of
    every factor (R's ``model.matrix(~ 0 + term)``, lmerTest's ``get_rdX``).
    """

    label: str
    variables: frozenset[str]
    numerics: frozenset[str]
    columns: tuple[int, ...]
    full: FloatArray
    full_names: tuple[str, ...]

    @property
    def order(self) -> int:
        return len(self.variables)


def containment(terms: Sequence[ModelTerm]) -> dict[str, list[str]]:
    """lmerTest's ``containment``: for each term, the terms that contain it (all of its
    variables and more, with the same numeric variables)."""
    return {t.label: [u.label for u in terms
                      if t.variables < u.variables and t.numerics == u.numerics]
            for t in terms}


def doolittle_upper(a: FloatArray) -> FloatArray:
    """Lᵀ of lmerTest's ``doolittle(a)``: the unit lower factor of an LU decomposition
    without pivoting, a column zeroed where the pivot is below 1e-6, then every entry
    below 1e-6 in absolute value set to zero (as lmerTest, so that the rows match its)."""
    n = a.shape[0]
    lower = np.eye(n)
    upper = np.zeros((n, n))
    for i in range(n):
        upper[i, :] = a[i, :] - lower[i, :i] @ upper[:i, :]
        if i + 1 < n:
            column = a[i + 1:, i] - lower[i + 1:, :i] @ upper[:i, i]
            lower[i + 1:, i] = 0.0 if abs(upper[i, i]) < _DOOLITTLE_EPS else column / upper[i, i]
    lower[np.abs(lower) < _DOOLITTLE_EPS] = 0.0
    return np.asarray(lower.T)


def zapsmall(x: FloatArray, digits: int = 7) -> FloatArray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    largest = float(np.max(np.abs(x))) if x.size else 0.0
    if not largest > 0.0:
        return np.asarray(np.round(x, digits))
    return np.asarray(np.round(x, max(0, digits - int(np.ceil(np.log10(largest))))))


def type1_contrasts(x: FloatArray, terms: Sequence[ModelTerm]) -> dict[str, FloatArray]:
    """Sequential hypotheses: each term's rows of the Doolittle factor of XᵀX."""
    p = x.shape[1]
    factor = np.eye(1) if p == 1 else doolittle_upper(x.T @ x)
    return {t.label: factor[list(t.columns)] for t in terms}


def marginal_contrasts(p: int, terms: Sequence[ModelTerm]) -> dict[str, FloatArray]:
    """The term's coefficients themselves."""
    identity = np.eye(p)
    return {t.label: identity[list(t.columns)] for t in terms}


def type2_contrasts(x: FloatArray, terms: Sequence[ModelTerm]) -> dict[str, FloatArray]:
    """lmerTest's Type 2 (``get_contrasts_type2_unfolded``)."""
    p = x.shape[1]
    if p <= 1 or len(terms) <= 1:
        return type1_contrasts(x, terms)
    contained = containment(terms)
    by_label = {t.label: t for t in terms}
    out: dict[str, FloatArray] = {}
    for term in terms:
        if not contained[term.label]:
            out[term.label] = marginal_contrasts(p, [term])[term.label]
            continue
        own = list(term.columns)
        tested = own + [c for label in contained[term.label] for c in by_label[label].columns]
        order = [c for c in range(p) if c not in tested] + tested
        factor = doolittle_upper(x[:, order].T @ x[:, order])
        rows = factor[[order.index(c) for c in own]]
        back = np.empty_like(rows)
        back[:, order] = rows
        out[term.label] = back
    return out


def type3_contrasts(x: FloatArray, names: Sequence[str], terms: Sequence[ModelTerm],
                    intercept: bool) -> dict[str, FloatArray]:
    """lmerTest's Type 3 for treatment coding (``extract_contrasts_type3``)."""
    p = x.shape[1]
    if p <= 1 or len(terms) <= 1:
        return type1_contrasts(x, terms)
    n = x.shape[0]
    blocks = ([np.ones((n, 1))] if intercept else []) + [t.full for t in terms]
    full = np.hstack(blocks)
    full_names = ([INTERCEPT] if intercept else []) + [n for t in terms for n in t.full_names]
    # the full design on X (X has full rank, so the least squares fit is ginv(X) @ full)
    coef, *_ = np.linalg.lstsq(x, full, rcond=None)
    # rows: the full design's columns; columns: X's
    basis = zapsmall(np.asarray(coef.T, dtype=np.float64))
    contained = containment(terms)
    by_label = {t.label: t for t in terms}
    # higher-order terms first (a stable sort, as R's order(decreasing = TRUE))
    for term in sorted(terms, key=lambda t: -t.order):
        containers = [c for label in contained[term.label] for c in by_label[label].columns]
        if containers:
            own = list(term.columns)
            basis[:, own] = zapsmall(_residuals(basis[:, containers], basis[:, own]))
    # the rows named as X's columns: every treatment-coded column is a fully coded one
    position = {name: i for i, name in enumerate(full_names)}
    kept = basis[[position[name] for name in names]]
    out = {}
    for term in terms:
        matrix = kept[:, list(term.columns)].T
        out[term.label] = matrix[np.abs(matrix).sum(axis=1) > _ZERO_ROW]
    return out


def _residuals(x: FloatArray, y: FloatArray) -> FloatArray:
    """y minus its least squares projection on x's columns (R's ``resid(lm.fit(x, y))``)."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return np.asarray(y - x @ coef)


def term_contrasts(type: int, x: FloatArray, names: Sequence[str],
                   terms: Sequence[ModelTerm], intercept: bool) -> dict[str, FloatArray]:
    """The hypothesis matrix of every term for an anova table of ``type`` 1, 2 or 3.

    Parameters
    ----------
    type
        1 (sequential), 2 or 3, as lmerTest's ``anova(type = )``.
    x
        The fixed-effects matrix (full column rank).
    names
        Its column names.
    terms
        The model's terms in R's order, without the intercept.
    intercept
        Whether X has an intercept column (the full design of Type 3 then has one).

    Returns
    -------
    dict
        Each term's label to its matrix (rows: hypotheses, columns: X's).
    """
    if type == 1:
        return type1_contrasts(x, terms)
    if type == 2:
        return type2_contrasts(x, terms)
    return type3_contrasts(x, names, terms, intercept)
