"""lmerTest's ``anova(fit, type, ddf)`` of a stored mixed model, on its rebuilt design.

The hypothesis of each term comes from ``anova_contrasts`` (they need X, and Type 3 the
fully coded design, so the data; with contrasts other than treatment, Type 3 maps the
treatment-coded model's hypotheses to the model's coding, as lmerTest); its F test from
``lmm.contrast_tests``: Satterthwaite's needs the Jacobian of vcov(β̂) and the Hessian of
the deviance at the optimum, taken at the stored θ̂ (``lmm.at_optimum``); Kenward-Roger's
the adjusted covariance (``lmm.kenward_roger``), from the design's X and Z. Nothing is
refitted. The table has one row per fixed term and, as lmerTest's, no intercept and no
residual row.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from service.stats.anova_contrasts import ModelTerm, term_contrasts, zapsmall
from service.stats.design import build_design
from service.stats.design.encoder import evaluate_variables
from service.stats.design.terms import TermSpec, term_block
from service.stats.design.types import Design
from service.stats.errors import DesignError
from service.stats.formula.tree import Formula
from service.stats.inference import AnovaRow, AnovaTable, InferenceError, term_columns
from service.stats.lmm.at_optimum import stored_optimum
from service.stats.lmm.contrast_tests import FTest, kenward_roger_test, satterthwaite_test
from service.stats.lmm.kenward_roger import adjusted_covariance
from service.stats.results import FitResult
from service.stats.threads import single_threaded_blas

Ddf = Literal["Satterthwaite", "Kenward-Roger"]


def lmm_anova(formula: Formula, data: pd.DataFrame, result: FitResult, type: int,
              ddf: Ddf) -> AnovaTable:
    """The anova table of a mixed model, as lmerTest 3.1-3's ``anova(fit, type, ddf)``.

    Parameters
    ----------
    formula
        The model's parsed formula.
    data
        The dataset it was fitted to.
    result
        The stored fit.
    type
        1 (sequential), 2 or 3 (lmerTest's default).
    ddf
        ``"Satterthwaite"`` or ``"Kenward-Roger"`` (pbkrtest's; REML fits only, as lmerTest).

    Returns
    -------
    AnovaTable
        One row per fixed term: sum and mean of squares, numerator and denominator df,
        F and its p-value.

    Raises
    ------
    InferenceError
        Not a mixed model, Kenward-Roger on an ML fit, a type other than 1-3, or a
        design that no longer matches the stored fit.
    """
    if type not in (1, 2, 3):
        raise InferenceError(f"The anova type must be 1, 2 or 3, not {type}")
    if result.kind != "lmm":
        raise InferenceError("lmerTest's anova tables are for mixed models")
    if ddf == "Kenward-Roger" and result.method != "REML":
        raise InferenceError("Kenward-Roger's method is only available for REML fits, as in "
                             "lmerTest; use ddf=Satterthwaite for an ML fit, or fit the "
                             "model by REML.")
    if ddf == "Kenward-Roger" and formula.weights is not None:
        # pbkrtest builds the residual covariance as σ² I whatever lmer's weights, so its
        # numbers are not those of the weighted model, and there is nothing to match
        raise InferenceError("Kenward-Roger's method is not available for a model with "
                             "prior weights: pbkrtest, whose method it is, leaves lmer's "
                             "weights out of the residual covariance. Use "
                             "ddf=Satterthwaite (lmerTest's default), which does take them.")
    with single_threaded_blas():
        design = build_design(formula, data)
        beta = _stored_beta(design, result)
        terms = model_terms(design, data)
        if type == 3 and formula.contrasts and len(terms) > 1 and design.X.shape[1] > 1:
            contrasts = _type3_in_model_coding(formula, data, design)
        else:
            contrasts = term_contrasts(type, design.X, design.fixed_names, terms,
                                       design.encoder.intercept)
        optimum = stored_optimum(design, "REML" if result.method == "REML" else "ML",
                                 np.asarray(result.theta), result.residual_std_dev)
        sigma = result.residual_std_dev
        tests: dict[str, FTest | None]
        if ddf == "Satterthwaite":
            tests = {label: satterthwaite_test(matrix, beta, optimum.derivatives, sigma)
                     if matrix.shape[0] else None for label, matrix in contrasts.items()}
        else:
            adjusted = adjusted_covariance(design.X, optimum.blocks, optimum.covariances,
                                           sigma, optimum.derivatives.covariance)
            tests = {label: kenward_roger_test(matrix, beta, adjusted, sigma)
                     if matrix.shape[0] else None for label, matrix in contrasts.items()}
    return AnovaTable(type=type, rows=tuple(_row(label, test) for label, test in tests.items()),
                      ddf=ddf)


def _type3_in_model_coding(formula: Formula, data: pd.DataFrame,
                           design: Design) -> dict[str, np.ndarray]:
    """lmerTest's Type 3 hypotheses of a model with other contrasts than treatment: those
    of the treatment-coded model (the same model, another basis of X's span) mapped to the
    model's coefficients, ``L ginv(X_treatment) X`` (lmerTest's ``get_contrasts_type3``),
    so the table is the treatment-coded model's whatever the coding."""
    treatment = build_design(replace(formula, contrasts=()), data)
    coded = term_contrasts(3, treatment.X, treatment.fixed_names,
                           model_terms(treatment, data), treatment.encoder.intercept)
    basis, *_ = np.linalg.lstsq(treatment.X, design.X, rcond=None)
    to_model = zapsmall(np.asarray(basis, dtype=np.float64))
    return {label: matrix @ to_model for label, matrix in coded.items()}


def _row(label: str, test: FTest | None) -> AnovaRow:
    if test is None:  # lmerTest's NA row for a term with nothing left to test
        return AnovaRow(term=label, sum_sq=None, mean_sq=None, num_df=None, den_df=None,
                        f_value=None, p_value=None)
    return AnovaRow(term=label, sum_sq=test.sum_sq, mean_sq=test.mean_sq,
                    num_df=float(test.num_df), den_df=test.den_df, f_value=test.f_value,
                    p_value=test.p_value)


def _stored_beta(design: Design, result: FitResult) -> np.ndarray:
    fitted = [fe for fe in result.fixed_effects if not fe.aliased]
    if tuple(fe.term for fe in fitted) != design.fixed_names:
        raise InferenceError("The model's data no longer give the design it was fitted to; "
                             "fit it again.")
    return np.array([fe.estimate for fe in fitted], dtype=np.float64)


def model_terms(design: Design, data: pd.DataFrame) -> list[ModelTerm]:
    """The fixed terms (no intercept) with their columns in X and fully coded columns.

    Parameters
    ----------
    design
        The model's design.
    data
        The data it was built from (the rows ``design.rows`` are the fitted ones).
    """
    encoder = design.encoder
    frame = data.iloc[design.rows].reset_index(drop=True)
    labels = list(dict.fromkeys(v for term in encoder.fixed for v in term.variables))
    values = evaluate_variables(encoder, frame, labels, params=dict(encoder.params),
                                error=DesignError, learn=False)
    position = {name: j for j, name in enumerate(design.fixed_names)}
    columns = dict(term_columns(encoder))
    out = []
    for term in encoder.fixed:
        label = ":".join(term.variables)
        full_spec = TermSpec(term.variables, (False,) * len(term.variables))
        full, full_names = term_block(full_spec, encoder.variables, values, len(frame))
        numerics = frozenset(
            v for v in term.variables
            if not encoder.variables[v].categorical and len(encoder.variables[v].suffixes) == 1)
        out.append(ModelTerm(
            label=label, variables=frozenset(term.variables), numerics=numerics,
            columns=tuple(position[c] for c in columns[label] if c in position),
            full=full, full_names=tuple(full_names)))
    return out
