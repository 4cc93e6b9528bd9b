"""``build_design``: a parsed formula plus a DataFrame -> the design the engines consume.

The steps follow R's ``model.frame`` then ``model.matrix`` and lme4's ``mkReTrms``:
check the columns, learn the ``scale``/``poly`` parameters on every row (R's
``model.frame`` evaluates the variables before its ``na.action`` drops rows), drop rows with
missing values, learn the rest of the coding (levels, contrasts), build X and drop aliased
columns, build the random blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from service.stats.design.checks import check_columns, resolve_contrasts
from service.stats.design.encoder import (
    DesignEncoder,
    RandomSpec,
    evaluate_variables,
    group_codes,
    recode,
)
from service.stats.design.expr import (
    deparse,
    expr_columns,
    factor_column,
    is_categorical_expr,
)
from service.stats.design.functions import Evaluator
from service.stats.design.rank import aliased_columns, rank_message
from service.stats.design.terms import TermSpec, Variable, code_terms, model_columns
from service.stats.design.types import Design, FloatArray, IntArray
from service.stats.design.values import (
    ColumnKind,
    ColumnKinds,
    factor_codes,
    infer_kinds,
    numeric_values,
    sort_levels,
)
from service.stats.design.weights import (
    check_weights_column,
    refuse_missing_weights,
    scale_rows,
    weight_values,
)
from service.stats.errors import DesignError
from service.stats.formula import formula_columns
from service.stats.formula.columns import bind_constants
from service.stats.formula.tree import BinOp, Call, Expr, Formula, Negate, Number, Term


def build_design(formula: Formula, data: pd.DataFrame) -> Design:
    """Build the response, fixed-effects matrix and random-effects blocks of a model.

    Parameters
    ----------
    formula
        A parsed formula (``service.stats.formula.parse_formula``).
    data
        The dataset; rows with a missing value in any column the formula uses are dropped.

    Returns
    -------
    Design
        With R's column names and order, aliased columns dropped (and named in
        ``messages``), and an encoder that rebuilds the same coding for new data.

    Raises
    ------
    DesignError
        Unknown columns, categorical columns where numbers are needed, no rows left,
        a factor or grouping factor with fewer than 2 levels, fewer rows than columns.
    """
    data_kinds = ColumnKinds(data)
    formula = bind_constants(formula, data_kinds)
    check_columns(formula, data_kinds)
    codings = resolve_contrasts(formula, data_kinds)
    check_weights_column(formula.weights, data_kinds)
    used = list(formula_columns(formula))
    kinds = {name: data_kinds[name] for name in used}
    if formula.weights is not None:
        refuse_missing_weights(data, used, formula.weights)
    frame, rows = _drop_missing(data, used + ([formula.weights] if formula.weights else []))
    n_dropped = len(data) - len(frame)
    weights = None
    n_zero_weight = 0
    if formula.weights is not None:
        frame, rows, weights = _positive_weights(frame, rows, formula.weights,
                                                 data_kinds[formula.weights])
        n_zero_weight = len(data) - n_dropped - len(frame)

    variables, exprs = _learn_variables(formula, frame, kinds)
    params = learn_parameters([*exprs.values(), formula.response, *formula.offsets], data,
                              kinds)
    categorical = {label for label, v in variables.items() if v.categorical}
    fixed = code_terms([_labels(t) for t in formula.fixed], categorical, formula.intercept,
                       codings)
    encoder = DesignEncoder(
        response=formula.response, intercept=formula.intercept, kinds=kinds,
        variables=variables, exprs=exprs, params=params, fixed=fixed, all_fixed_names=(),
        by_group=formula.by_group, offsets=formula.offsets)
    values = evaluate_variables(encoder, frame, list(variables), params=params,
                                error=DesignError, learn=False)
    n = len(frame)
    X_all, names = model_columns(formula.intercept, fixed, variables, values, n)
    if n < X_all.shape[1]:
        # Checked before dropping aliased columns: with n < p some always alias, hiding why.
        raise DesignError(f"only {n} rows are left for {X_all.shape[1]} fixed-effect columns; "
                          "a fit needs at least as many rows as columns")
    coded = [_random_spec(r, frame, kinds, variables, values, n) for r in formula.random]
    random = tuple(spec for spec, _ in coded)
    dropped = tuple(names[j] for j in aliased_columns(X_all))
    y = _response(formula.response, frame, kinds, params)
    encoder = DesignEncoder(
        response=formula.response, intercept=formula.intercept, kinds=kinds,
        variables=variables, exprs=exprs, params=params, fixed=fixed,
        all_fixed_names=tuple(names), random=random, dropped_aliased=dropped,
        by_group=formula.by_group, offsets=formula.offsets)
    offset = encoder.offset_values(frame, DesignError)
    if offset is not None:
        y = y - offset  # R's lm.fit(x, y - offset); lme4 likewise
    X = encoder.fixed_matrix(values, n)
    # the rows' level codes as _random_spec found them, not found again (the encoder's
    # block does that for new data)
    blocks = tuple(encoder.coded_block(spec, codes, values, n) for spec, codes in coded)
    messages: tuple[str, ...] = (rank_message(list(dropped)),) if dropped else ()
    if weights is not None:
        y, X, blocks = scale_rows(weights, y, X, blocks)
        if n_zero_weight:
            messages += (f"{n_zero_weight} row(s) with weight 0 are left out of the fit (as "
                         "R's lm leaves them out of the likelihood and residual df)",)
    return Design(
        y=y, X=X, fixed_names=encoder.fixed_names, random=blocks, rows=rows,
        response_name=deparse(formula.response), encoder=encoder, n_dropped_missing=n_dropped,
        dropped_aliased=dropped, messages=messages, offset=offset, weights=weights)


def learn_parameters(exprs: list[Expr], data: pd.DataFrame, kinds: dict[str, ColumnKind]
                     ) -> dict[str, dict[str, Any]]:
    """The ``scale``/``poly`` parameters of numeric expressions, learned on every row.

    As R's ``model.frame``: each call sees its argument on all rows of the data, before rows
    with a missing value anywhere are dropped, so ``scale(x)`` centres on the mean of every
    present ``x`` (rows dropped later for a missing response included) and ``poly()`` of a
    column with missing values is refused (R: "missing values are not allowed in 'poly'").
    """
    params: dict[str, dict[str, Any]] = {}
    if not any(_has_learned_call(e) for e in exprs):
        return params
    names = dict.fromkeys(c for e in exprs for c in expr_columns(e))
    columns = {c: numeric_values(data[c], kinds[c], DesignError) for c in names}
    evaluator = Evaluator(columns, params, learn=True, error=DesignError)
    for expr in exprs:
        if _has_learned_call(expr):
            evaluator.variable(expr)
    return params


def check_poly_inputs(formula: Formula, data: pd.DataFrame) -> None:
    """Refuse what R's ``poly()`` refuses on every row of ``data`` (missing values, too few
    distinct values), as ``lmList``'s first ``model.frame`` over the whole data does."""
    formula = bind_constants(formula, [str(c) for c in data.columns])
    terms = list(formula.fixed) + [t for r in formula.random for t in r.terms]
    polys = [f for t in terms for f in t.factors
             if isinstance(f, Call) and f.function == "poly"]
    if polys:
        kinds = infer_kinds(data[list(dict.fromkeys(c for p in polys for c in expr_columns(p)))])
        learn_parameters(list(polys), data, kinds)


def _has_learned_call(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return expr.function in ("scale", "poly") or any(_has_learned_call(a) for a in expr.args)
    if isinstance(expr, BinOp):
        return _has_learned_call(expr.left) or _has_learned_call(expr.right)
    if isinstance(expr, Negate):
        return _has_learned_call(expr.operand)
    return False


def _drop_missing(data: pd.DataFrame, used: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """R's ``na.omit`` over the used columns: the kept rows and their positions.

    With nothing missing (the usual case) the data itself, not a copy: selecting columns
    or rows of a small frame costs pandas a fifth of a millisecond each, a good part of a
    small fit's design."""
    missing = np.zeros(len(data), dtype=bool)
    for column in dict.fromkeys(used):
        missing |= data[column].isna().to_numpy()
    if not missing.any():
        index = data.index
        numbered = (isinstance(index, pd.RangeIndex) and index.start == 0
                    and index.step == 1)
        return (data if numbered else data.reset_index(drop=True),
                np.arange(len(data), dtype=np.intp))
    rows = np.flatnonzero(~missing).astype(np.intp)
    if len(rows) == 0:
        raise DesignError("no rows are left after dropping rows with missing values in the "
                          f"columns the formula uses ({', '.join(used)})")
    return data.iloc[rows].reset_index(drop=True), rows


def _positive_weights(frame: pd.DataFrame, rows: np.ndarray, column: str, kind: ColumnKind
                      ) -> tuple[pd.DataFrame, np.ndarray, FloatArray]:
    """The rows with a positive weight, their positions and weights (negative: refused)."""
    weights = weight_values(frame, column, kind, rows)
    positive = weights > 0
    if positive.all():
        return frame, rows, weights
    if not positive.any():
        raise DesignError(f"every row has weight 0 in column '{column}': nothing to fit")
    return (frame.loc[positive].reset_index(drop=True), rows[positive], weights[positive])


def _labels(term: Term) -> tuple[str, ...]:
    return tuple(dict.fromkeys(deparse(f) for f in term.factors))


def _learn_variables(formula: Formula, frame: pd.DataFrame, kinds: dict[str, ColumnKind]
                     ) -> tuple[dict[str, Variable], dict[str, Expr]]:
    """Each distinct term factor, with the levels of categorical ones as found in ``frame``."""
    terms = list(formula.fixed) + [t for r in formula.random for t in r.terms]
    variables: dict[str, Variable] = {}
    exprs: dict[str, Expr] = {}
    for term in terms:
        written = getattr(term, "factor_labels", ())
        names = written if len(written) == len(term.factors) else ("",) * len(term.factors)
        for expr, name in zip(term.factors, names, strict=True):
            label = deparse(expr)
            if label in variables:
                continue
            if is_categorical_expr(expr, kinds):
                variables[label] = _categorical(expr, label, name, frame, kinds)
            else:
                variables[label] = Variable(label, False, suffixes=_suffixes(expr), name=name)
                exprs[label] = expr
    return variables, exprs


def _categorical(expr: Expr, label: str, name: str, frame: pd.DataFrame,
                 kinds: dict[str, ColumnKind]) -> Variable:
    column = factor_column(expr)
    _, labels = factor_codes(frame[column], kinds[column], DesignError)
    levels = sort_levels(list(labels), kinds[column])
    if len(levels) < 2:
        raise DesignError(f"{name or label} has only one level ({', '.join(levels)}); "
                          "a categorical variable needs at least 2 levels")
    return Variable(label, True, column=column, levels=levels, name=name)


def _suffixes(expr: Expr) -> tuple[str, ...]:
    """Column-name suffixes of a numeric factor: ``poly(x, k)`` has ``1``..``k``."""
    if (isinstance(expr, Call) and expr.function == "poly" and len(expr.args) == 2
            and isinstance(expr.args[1], Number) and expr.args[1].value >= 1):
        return tuple(str(i + 1) for i in range(int(expr.args[1].value)))
    return ("",)


def _random_spec(term: Any, frame: pd.DataFrame, kinds: dict[str, ColumnKind],
                 variables: dict[str, Variable], values: dict[str, Any], n: int
                 ) -> tuple[RandomSpec, IntArray]:
    """Code one random term and find its grouping factor's levels (those that occur), with
    each row's code into them."""
    categorical = {label for label, v in variables.items() if v.categorical}
    terms: tuple[TermSpec, ...] = code_terms([_labels(t) for t in term.terms], categorical,
                                             term.intercept)
    _, names = model_columns(term.intercept, terms, variables, values, n)
    if not names:
        raise DesignError(f"the random term for {term.group_label} has no columns")
    label_codes, labels = group_codes(frame, term.group, kinds, DesignError)
    if len(term.group) == 1:
        levels = sort_levels(list(labels), kinds[term.group[0]])
    else:
        levels = _interaction_levels(frame, term.group, kinds)
    if len(levels) < 2:
        raise DesignError(f"grouping factor '{term.group_label}' has {len(levels)} level(s) "
                          f"({', '.join(levels)}); a random effect needs at least 2 levels")
    _check_identifiable(term.group_label, len(levels), len(names), n)
    spec = RandomSpec(intercept=term.intercept, terms=terms, names=tuple(names),
                      group=tuple(term.group), group_label=term.group_label, levels=levels)
    # the rows' codes into the labels, as codes into the levels (as the encoder's block
    # codes new data)
    codes, _ = recode(label_codes, labels, levels,
                      tuple(kinds.get(c, "categorical") for c in term.group))
    return spec, codes


def _interaction_levels(frame: pd.DataFrame, group: tuple[str, ...],
                        kinds: dict[str, ColumnKind]) -> tuple[str, ...]:
    """The levels of an interaction grouping factor ``a:b`` as lme4 1.1-31 orders them:
    ``interaction(a, b, drop = TRUE, lex.order = TRUE)``, the combinations that occur,
    ordered by a's own levels, then b's (numbers numerically: ``g1:2`` before ``g1:10``)."""
    parts = [factor_codes(frame[c], kinds.get(c, "categorical"), DesignError) for c in group]
    rank_of = []
    for (_, labels), column in zip(parts, group, strict=True):
        order = sort_levels(list(labels), kinds.get(column, "categorical"))
        position = {label: i for i, label in enumerate(order)}
        rank_of.append(np.array([position[label] for label in labels], dtype=np.intp))
    codes = np.column_stack([c for c, _ in parts])
    combos = np.unique(codes[np.all(codes >= 0, axis=1)], axis=0)
    ranked = sorted(combos.tolist(),
                    key=lambda row: tuple(int(rank_of[i][k]) for i, k in enumerate(row)))
    return tuple(":".join(parts[i][1][k] for i, k in enumerate(row)) for row in ranked)


def _check_identifiable(group: str, n_levels: int, q: int, n: int) -> None:
    """lme4's default checks (``check.nobs.vs.nlev``, ``check.nobs.vs.nRE``): with as many
    levels, or random effects, as rows, the random effects cannot be told apart from the
    residual, and lme4 refuses the model rather than report arbitrary variances."""
    if n_levels >= n:
        raise DesignError(f"number of levels of each grouping factor must be < number of "
                          f"observations (problems: {group} has {n_levels} levels for {n} "
                          "rows); a random effect needs groups with several rows")
    if n_levels * q >= n:
        raise DesignError(f"number of observations (={n}) <= number of random effects "
                          f"(={n_levels * q}) for the term with group {group}; the "
                          "random-effects parameters and the residual variance are probably "
                          "unidentifiable: use fewer random-effect terms or more data")


def _response(response: Expr, frame: pd.DataFrame, kinds: dict[str, ColumnKind],
              params: dict[str, dict[str, Any]]) -> FloatArray:
    """The response values (a numeric expression; ``scale`` parameters learned already)."""
    columns = {c: numeric_values(frame[c], kinds[c], DesignError)
               for c in dict.fromkeys(expr_columns(response))}
    values = Evaluator(columns, params, learn=False, error=DesignError).variable(response)[0]
    if values.shape[1] != 1:
        raise DesignError(f"the response {deparse(response)} must be a single column")
    return np.ascontiguousarray(values[:, 0])
