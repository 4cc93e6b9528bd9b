"""Predictions from a stored model: the prediction state and ``predict``.

The state is plain JSON (the design encoder, the fixed effects by name and the conditional
modes per random term and level), so a stored model predicts without its data or a refit.
A prediction is X β plus, per random term, the covariates times the level's modes, as
lme4's ``predict.merMod``; ``include_random_effects=False`` is its ``re.form = NA``, and
levels not seen in fitting get the population-level prediction (``allow.new.levels``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.stats.design.encoder import DesignEncoder
from service.stats.design.types import Design, FloatArray, RandomBlock
from service.stats.errors import PredictionError
from service.stats.lmlist import split_rows
from service.stats.results import ConditionalModes, GroupFit, estimates


def make_prediction_state(design: Design, fixed: Mapping[str, float],
                          modes: Sequence[ConditionalModes]) -> dict[str, Any]:
    """The JSON prediction state of a fitted model.

    Parameters
    ----------
    design
        The design the model was fitted on (its encoder is stored).
    fixed
        Fixed-effect estimates by column name (every name in ``design.fixed_names``).
    modes
        Conditional modes per random term (empty for ``lm``).
    """
    absent = [name for name in design.fixed_names if name not in fixed]
    if absent:
        raise PredictionError(f"no estimate for fixed effect(s) {', '.join(absent)}")
    return {
        "kind": "lmm" if design.random else "lm",
        "encoder": design.encoder.to_json(),
        "fixed_effects": {name: float(fixed[name]) for name in design.fixed_names},
        "random_effects": [{
            "group": m.group,
            "terms": list(m.terms),
            "levels": list(m.levels),
            "modes": [[float(v) for v in row] for row in m.modes],
        } for m in modes],
    }


def predict(state: Mapping[str, Any], data: pd.DataFrame, *,
            include_random_effects: bool = True,
            new_levels: Literal["population", "error"] = "population") -> FloatArray:
    """Predict the response for new rows from a stored prediction state.

    Parameters
    ----------
    state
        The output of :func:`make_prediction_state` (after a JSON round trip).
    data
        New rows with the columns the formula uses (the response may be absent).
    include_random_effects
        Add the conditional modes of each row's group levels (False: population level).
    new_levels
        ``"population"``: unseen group levels contribute 0; ``"error"``: raise.

    Returns
    -------
    numpy.ndarray
        One prediction per row of ``data``.

    Raises
    ------
    PredictionError
        Missing columns or values, unknown factor levels, unseen group levels with
        ``new_levels="error"``, or an inconsistent state.
    """
    if state.get("kind") == "lm_by_group":
        return _predict_by_group(state, data)
    if state.get("kind") not in ("lm", "lmm"):
        raise PredictionError(f"cannot predict from a model of kind {state.get('kind')!r}")
    encoder = DesignEncoder.from_json(state["encoder"])
    with_random = include_random_effects and state["kind"] == "lmm"
    design = encoder.transform(data, new_levels=new_levels, random=with_random)
    fixed = state["fixed_effects"]
    absent = [name for name in design.fixed_names if name not in fixed]
    if absent:
        raise PredictionError(f"the stored model has no estimate for {', '.join(absent)}")
    beta = np.array([float(fixed[name]) for name in design.fixed_names])
    prediction: FloatArray = design.X @ beta
    entries = list(state.get("random_effects", [])) if with_random else []
    for block in design.random:
        prediction += _random_part(block, _take_entry(entries, block))
    return prediction


def make_by_group_state(columns: Sequence[str], designs: Mapping[str, Design],
                        groups: Sequence[GroupFit]) -> dict[str, Any]:
    """The JSON prediction state of a per-group model (lme4's ``lmList``).

    Parameters
    ----------
    columns
        The grouping columns (``g`` of ``y ~ x | g``).
    designs
        The design of each fitted level, by level label.
    groups
        The per-level fits; levels without estimates (not fitted) are left out.
    """
    states = {}
    for group in groups:
        if group.level in designs and group.fixed_effects:
            states[group.level] = make_prediction_state(
                designs[group.level], estimates(group.fixed_effects), ())
    return {"kind": "lm_by_group", "by": list(columns), "groups": states}


def _predict_by_group(state: Mapping[str, Any], data: pd.DataFrame) -> FloatArray:
    """Each row predicted by its own level's regression, as R's ``predict`` on an lmList.

    Separate regressions have no population-level model, so a level without a fit (unseen,
    or not fitted for lack of rows) is an error whatever ``new_levels`` says.
    """
    groups, n_missing = split_rows(tuple(state["by"]), data)
    label = ":".join(state["by"])
    if n_missing:
        raise PredictionError(f"{n_missing} row(s) have no value for {label}; each row needs "
                              "its group to be predicted by that group's regression")
    fitted = state["groups"]
    unknown = [g.level for g in groups if g.level not in fitted]
    if unknown:
        raise PredictionError(f"no regression was fitted for {label} level(s) "
                              f"{', '.join(unknown[:20])}; levels with a fit: "
                              f"{', '.join(list(fitted)[:20])}")
    prediction = np.empty(len(data))
    for group in groups:
        part = data.iloc[group.rows].reset_index(drop=True)
        prediction[group.rows] = predict(fitted[group.level], part)
    return prediction


def _take_entry(entries: list[Mapping[str, Any]], block: RandomBlock) -> Mapping[str, Any]:
    """The stored modes of a block's term (matched by group and terms, each used once)."""
    for i, entry in enumerate(entries):
        if entry["group"] == block.group and tuple(entry["terms"]) == block.terms:
            return entries.pop(i)
    raise PredictionError(f"the stored model has no conditional modes for the term "
                          f"({' + '.join(block.terms)} | {block.group})")


def _random_part(block: RandomBlock, entry: Mapping[str, Any]) -> FloatArray:
    """Row-wise covariates · modes of the row's level (0 for unseen levels)."""
    modes = np.asarray(entry["modes"], dtype=np.float64).reshape(-1, block.q)
    stored = {str(level): i for i, level in enumerate(entry["levels"])}
    missing = [level for level in block.levels if level not in stored]
    if missing:
        raise PredictionError(f"the stored model has no modes for level(s) "
                              f"{', '.join(missing[:10])} of {block.group}")
    rows = np.array([stored[level] for level in block.levels], dtype=np.intp)
    seen = block.codes >= 0
    out = np.zeros(len(block.codes))
    level_modes = modes[rows[block.codes[seen]]]
    out[seen] = np.einsum("ij,ij->i", block.covariates[seen], level_modes)
    return out
