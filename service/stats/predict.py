"""Predictions from a stored model: the prediction state and ``predict``.

The state is plain JSON (the design encoder, the fixed effects by name and the conditional
modes per random term and level), so a stored model predicts without its data or a refit.
A prediction is X β plus, per random term, the covariates times the level's modes, as
lme4's ``predict.merMod``; ``include_random_effects=False`` is its ``re.form = NA``, and
levels not seen in fitting get the population-level prediction (``allow.new.levels``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.stats.design.encoder import DesignEncoder, RandomSpec
from service.stats.design.types import Design, FloatArray, RandomBlock
from service.stats.errors import PredictionError
from service.stats.lmlist import split_rows
from service.stats.results import ConditionalModes, GroupFit, estimates
from service.stats.rows import row_numbers


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
    return Predictor(state).predict(data, include_random_effects=include_random_effects,
                                    new_levels=new_levels)


@dataclass(frozen=True)
class _StoredModes:
    """One random term's conditional modes as arrays, with each level's row."""

    group: str
    terms: tuple[str, ...]
    modes: FloatArray  # levels x terms
    rows: dict[str, int]


class Predictor:
    """A prediction state compiled once: its encoder, coefficients and conditional modes
    decoded from JSON into objects and arrays, so that each prediction does only the
    arithmetic (models are immutable: a predictor is cached and shared; it holds no
    state that a prediction changes)."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.kind = state.get("kind")
        if self.kind == "lm_by_group":
            self.by = tuple(state["by"])
            self.groups = {str(level): Predictor(group)
                           for level, group in state["groups"].items()}
            return
        if self.kind not in ("lm", "lmm"):
            raise PredictionError(f"cannot predict from a model of kind {self.kind!r}")
        self.encoder = DesignEncoder.from_json(state["encoder"])
        self.fixed = {str(k): float(v) for k, v in state["fixed_effects"].items()}
        self.modes = tuple(
            _StoredModes(group=entry["group"], terms=tuple(entry["terms"]),
                         modes=np.asarray(entry["modes"], dtype=np.float64).reshape(
                             len(entry["levels"]), len(entry["terms"])),
                         rows={str(level): i for i, level in enumerate(entry["levels"])})
            for entry in state.get("random_effects", []))

    def predict(self, data: pd.DataFrame, *, include_random_effects: bool = True,
                new_levels: Literal["population", "error"] = "population") -> FloatArray:
        """As :func:`predict`, from the compiled state."""
        if self.kind == "lm_by_group":
            return _predict_by_group(self, data)
        encoder = self.encoder
        with_random = include_random_effects and self.kind == "lmm"
        frame = data.reset_index(drop=True)
        # named here, before placeholders fill the missing groups, as R numbers the rows
        encoder.refuse_missing_values(frame, with_random)
        specs = encoder.random if with_random else ()
        no_group = [_missing_group(frame, spec.group) for spec in specs]
        if new_levels == "error":
            _refuse_missing_groups(specs, no_group)
        design = encoder.transform(_with_placeholders(encoder, frame, specs),
                                   new_levels=new_levels, random=with_random,
                                   values_checked=True)
        absent = [name for name in design.fixed_names if name not in self.fixed]
        if absent:
            raise PredictionError(f"the stored model has no estimate for {', '.join(absent)}")
        beta = np.array([self.fixed[name] for name in design.fixed_names])
        # R's predict adds the offset of the new data
        prediction: FloatArray = design.with_offset(design.X @ beta)
        entries = list(self.modes) if with_random else []
        for block, rows_without in zip(design.random, no_group, strict=True):
            prediction += _random_part(block, _take_entry(entries, block), rows_without)
        return prediction


    def predict_available(self, data: pd.DataFrame, *, include_random_effects: bool = True,
                          new_levels: Literal["population", "error"] = "population"
                          ) -> FloatArray:
        """As ``predict``, but a row with a missing value in a column the model reads is
        NaN instead of an error (R's ``predict`` with ``na.action = na.pass``, its default
        for new data); a missing group value is still a new level."""
        columns = [c for c in self.term_columns(include_random_effects) if c in data.columns]
        incomplete = (data[columns].isna().any(axis=1).to_numpy() if columns
                      else np.zeros(len(data), dtype=bool))
        prediction = np.full(len(data), np.nan)
        if not incomplete.all():
            complete = data.loc[~incomplete].reset_index(drop=True)
            prediction[~incomplete] = self.predict(
                complete, include_random_effects=include_random_effects, new_levels=new_levels)
        return prediction

    def term_columns(self, include_random_effects: bool = True) -> list[str]:
        """The data columns the model's terms read (not its grouping columns, whose missing
        values are new levels), and a per-group model's grouping columns."""
        if self.kind == "lm_by_group":
            names = list(self.by) + [c for group in self.groups.values()
                                     for c in group.term_columns(include_random_effects)]
            return list(dict.fromkeys(names))
        return self.encoder.columns_used(
            random=include_random_effects and self.kind == "lmm", groups=False)


def _missing_group(frame: pd.DataFrame, group: tuple[str, ...]) -> np.ndarray:
    """Rows whose value of some grouping column is missing (absent columns: none here;
    the encoder names them)."""
    present = [c for c in group if c in frame.columns]
    if not present:
        return np.zeros(len(frame), dtype=bool)
    return np.logical_or.reduce([np.asarray(frame[c].isna().to_numpy(), dtype=bool)
                                 for c in present])


def _refuse_missing_groups(specs: Sequence[RandomSpec], no_group: Sequence[np.ndarray]) -> None:
    # lme4: "NAs are not allowed in prediction data for grouping variables unless
    # allow.new.levels is TRUE"
    for spec, missing in zip(specs, no_group, strict=True):
        rows = np.flatnonzero(missing)
        if len(rows):
            raise PredictionError(
                f"group '{spec.group_label}' has no value in {row_numbers(rows)}: a missing "
                "group is a level not seen when fitting, which new_levels 'error' refuses "
                "(with 'population', the default, such rows get the population-level "
                "prediction, as lme4's allow.new.levels = TRUE)")


def _with_placeholders(encoder: DesignEncoder, frame: pd.DataFrame,
                       specs: Sequence[RandomSpec]) -> pd.DataFrame:
    """The frame with missing values of grouping-only columns replaced by a placeholder of
    the column's kind, so the encoder labels every row; the rows' random parts are then
    left out (``_random_part``'s ``missing``), as for an unseen level."""
    terms = set(encoder.columns_used(random=bool(specs), groups=False))
    out = frame
    for column in dict.fromkeys(c for spec in specs for c in spec.group):
        if column in terms or column not in frame.columns or not frame[column].isna().any():
            continue
        placeholder = _PLACEHOLDERS[encoder.kinds.get(column, "categorical")]
        if out is frame:
            out = frame.copy()
        out[column] = frame[column].astype(object).where(frame[column].notna(), placeholder)
    return out


# a value of each column kind (never seen: the rows holding it are left out anyway)
_PLACEHOLDERS: dict[str, object] = {"categorical": "", "numeric": 0.0, "boolean": False}


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


def _predict_by_group(predictor: Predictor, data: pd.DataFrame) -> FloatArray:
    """Each row predicted by its own level's regression, as R's ``predict`` on an lmList.

    Separate regressions have no population-level model, so a level without a fit (unseen,
    or not fitted for lack of rows) is an error whatever ``new_levels`` says.
    """
    by = predictor.by
    label = ":".join(by)
    present = [c for c in by if c in data.columns]
    no_group: np.ndarray = (np.flatnonzero(data[present].isna().any(axis=1).to_numpy())
                            if present else np.array([], dtype=np.intp))
    if len(no_group):
        # R's predict on an lmList: "nonexistent group in 'newdata'"
        raise PredictionError(
            f"{len(no_group)} row(s) have no value for {label}: {row_numbers(no_group)}. A "
            "per-group model predicts each row by its own group's regression, and has no "
            "population-level regression for a row without a group")
    groups, _ = split_rows(by, data)
    fitted = predictor.groups
    resolved = {g.level: _fitted_level(g.level, fitted) for g in groups}
    unknown = [level for level, found in resolved.items() if found is None]
    if unknown:
        raise PredictionError(f"no regression was fitted for {label} level(s) "
                              f"{', '.join(unknown[:20])}; levels with a fit: "
                              f"{', '.join(list(fitted)[:20])}")
    prediction = np.empty(len(data))
    for group in groups:
        part = data.iloc[group.rows].reset_index(drop=True)
        level = resolved[group.level]
        assert level is not None  # unknown levels were refused above
        prediction[group.rows] = fitted[level].predict(part)
    return prediction


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _fitted_level(level: str, fitted: Mapping[str, Any]) -> str | None:
    """The fitted level that ``level`` (a label of new data) names, or None.

    New data may write a numeric group another way than the data it was fitted on
    (100000.0 or 1e5 for an integer column's 100000): numeric parts are matched by value.
    """
    if level in fitted:
        return level
    parts = level.split(":")
    values = [_as_number(p) for p in parts]
    if any(v is None for v in values):
        return None
    for candidate in fitted:
        other = candidate.split(":")
        if len(other) == len(parts) and all(
                _as_number(o) == v for o, v in zip(other, values, strict=True)):
            return str(candidate)
    return None


def _take_entry(entries: list[_StoredModes], block: RandomBlock) -> _StoredModes:
    """The stored modes of a block's term (matched by group and terms, each used once)."""
    for i, entry in enumerate(entries):
        if entry.group == block.group and entry.terms == block.terms:
            return entries.pop(i)
    raise PredictionError(f"the stored model has no conditional modes for the term "
                          f"({' + '.join(block.terms)} | {block.group})")


def _random_part(block: RandomBlock, entry: _StoredModes,
                 no_group: np.ndarray | None = None) -> FloatArray:
    """Row-wise covariates · modes of the row's level (0 for unseen levels and for the rows
    marked in ``no_group``, whose group is missing)."""
    stored = entry.rows
    missing = [level for level in block.levels if level not in stored]
    if missing:
        raise PredictionError(f"the stored model has no modes for level(s) "
                              f"{', '.join(missing[:10])} of {block.group}")
    rows = np.array([stored[level] for level in block.levels], dtype=np.intp)
    seen = block.codes >= 0
    if no_group is not None:
        seen &= ~no_group
    out = np.zeros(len(block.codes))
    level_modes = entry.modes[rows[block.codes[seen]]]
    out[seen] = np.einsum("ij,ij->i", block.covariates[seen], level_modes)
    return out
