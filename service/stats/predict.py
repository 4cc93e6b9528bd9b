"""Predictions from a stored model: the prediction state and ``predict``.

The state is plain JSON (the design encoder, the fixed effects by name and the conditional
modes per random term and level), so a stored model predicts without its data or a refit.
A prediction is X β plus, per random term, the covariates times the level's modes, as
lme4's ``predict.merMod``; ``include_random_effects=False`` is its ``re.form = NA``, and
levels not seen in fitting get the population-level prediction (``allow.new.levels``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.stats.design.encoder import DesignEncoder, RandomSpec
from service.stats.design.types import Design, FloatArray, IntArray, RandomBlock
from service.stats.errors import PredictionError
from service.stats.predict_by_group import by_group, empty_table, put_table, put_values
from service.stats.prediction_intervals import (
    Conditioned,
    Interval,
    IntervalTable,
    Uncertainty,
    Unconditioned,
    interval_table,
    term_covariates,
    uncertainty_state,
)
from service.stats.results import ConditionalModes, FitResult, GroupFit, estimates
from service.stats.rows import row_numbers


def make_prediction_state(design: Design, fixed: Mapping[str, float],
                          modes: Sequence[ConditionalModes],
                          uncertainty: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON prediction state of a fitted model.

    Parameters
    ----------
    design
        The design the model was fitted on (its encoder is stored).
    fixed
        Fixed-effect estimates by column name (every name in ``design.fixed_names``).
    modes
        Conditional modes per random term (empty for ``lm``).
    uncertainty
        What prediction intervals need (``prediction_intervals.uncertainty_state``).
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
        **({"uncertainty": dict(uncertainty)} if uncertainty is not None else {}),
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
    index: int  # in the state's random_effects
    # the stored row of each of an encoder's levels, by the identity of its levels tuple
    # (each prediction would otherwise look up every level of the group)
    _rows_of: dict[int, tuple[tuple[str, ...], IntArray]] = field(
        default_factory=dict, compare=False, repr=False)

    def rows_of(self, levels: tuple[str, ...], group: str) -> IntArray:
        """The stored row of each of ``levels`` (an encoder's levels of this term)."""
        known = self._rows_of.get(id(levels))
        if known is not None and known[0] is levels:
            return known[1]
        missing = [level for level in levels if level not in self.rows]
        if missing:
            raise PredictionError(f"the stored model has no modes for level(s) "
                                  f"{', '.join(missing[:10])} of {group}")
        rows = np.array([self.rows[level] for level in levels], dtype=np.intp)
        self._rows_of[id(levels)] = (levels, rows)
        return rows


@dataclass(frozen=True, eq=False)
class _Encoded:
    """New rows encoded for a prediction, with the included random terms' parts."""

    frame: pd.DataFrame
    encoder: DesignEncoder  # restricted to the included random terms
    design: Design
    entries: list[_StoredModes]  # per included block
    no_group: list[np.ndarray]  # per included block
    prediction: FloatArray


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
                         rows={str(level): i for i, level in enumerate(entry["levels"])},
                         index=index)
            for index, entry in enumerate(state.get("random_effects", [])))
        self._uncertainty_state = state.get("uncertainty")
        # encoders restricted to a selection of grouping factors (lme4's re.form)
        self._restricted: dict[frozenset[str], DesignEncoder] = {}
        # the fixed effects in the order of an encoder's columns
        self._betas: dict[tuple[str, ...], FloatArray] = {}

    @cached_property
    def uncertainty(self) -> Uncertainty | None:
        """What intervals need, decoded at the first interval asked for (None: the model
        was stored before predictions had intervals)."""
        return Uncertainty.from_state(self._uncertainty_state)

    def predict(self, data: pd.DataFrame, *, include_random_effects: bool = True,
                new_levels: Literal["population", "error"] = "population",
                groups: Collection[str] | None = None) -> FloatArray:
        """As :func:`predict`, from the compiled state; ``groups`` names the grouping
        factors whose effects are included (lme4's ``re.form``; None: all of them)."""
        if self.kind == "lm_by_group":
            _refuse_groups(groups)
            return by_group(self, data, lambda group, part: group.predict(part),
                            lambda n: np.empty(n), put_values)
        return self._encode(data, include_random_effects, new_levels, groups).prediction

    def predict_arrays(self, columns: Mapping[str, np.ndarray], n: int, *,
                       include_random_effects: bool = True,
                       new_levels: Literal["population", "error"] = "population",
                       groups: Collection[str] | None = None) -> FloatArray | None:
        """As :meth:`predict` for ``n`` complete rows given as arrays (float64 for numeric
        columns, level labels for categorical ones: ``DesignEncoder.transform_arrays``),
        by the same arithmetic; None when :meth:`predict` must answer (a per-group model,
        rows or a model that the arrays' encoding does not cover, or an error to name)."""
        if self.kind == "lm_by_group":
            return None
        try:
            encoder = self._encoder_for(include_random_effects, groups)
        except PredictionError:
            return None
        try:
            encoded = encoder.transform_arrays(columns, n, new_levels=new_levels,
                                               random=bool(encoder.random))
            if encoded is None:
                return None
            X, blocks = encoded
            beta = self._beta_for(encoder.fixed_names)
            if beta is None:
                return None
            prediction: FloatArray = X @ beta
            entries = list(self.modes)
            for block in blocks:
                prediction += _random_part(block, _take_entry(entries, block))
        except PredictionError:  # a stored model that does not fit its encoder: said there
            return None
        return prediction

    def _beta_for(self, names: tuple[str, ...]) -> FloatArray | None:
        """The fixed effects in the order of an encoder's columns (None: one has no
        estimate), made once and shared by every prediction, so read-only."""
        known = self._betas.get(names)
        if known is None:
            if any(name not in self.fixed for name in names):
                return None
            known = np.array([self.fixed[name] for name in names])
            known.setflags(write=False)
            self._betas[names] = known
        return known

    def predict_intervals(self, data: pd.DataFrame, *, interval: Interval, level: float,
                          include_random_effects: bool = True,
                          new_levels: Literal["population", "error"] = "population",
                          groups: Collection[str] | None = None) -> IntervalTable:
        """Predictions with their standard errors and ``interval`` at ``level``
        (``service.stats.prediction_intervals``); per-group models use each group's lm."""
        if self.kind == "lm_by_group":
            _refuse_groups(groups)
            return by_group(self, data, lambda group, part: group.predict_intervals(
                part, interval=interval, level=level), empty_table, put_table)
        uncertainty = self.uncertainty
        if uncertainty is None:
            raise PredictionError("The model was stored before predictions had intervals: "
                                  "fit it again to get se_fit, lower and upper")
        encoded = self._encode(data, include_random_effects, new_levels, groups)
        conditioned = []
        unconditioned = []
        for block, entry, no_group in zip(encoded.design.random, encoded.entries,
                                          encoded.no_group, strict=True):
            term = uncertainty.terms[entry.index]
            seen, level_rows = _seen_levels(block, entry, no_group)
            conditioned.append(Conditioned(block.covariates, seen, level_rows, term))
            unconditioned.append(Unconditioned(block.covariates, ~seen, term))
        if interval == "prediction":
            # the terms left out, matched to their stored entries by group and terms (the
            # encoder keeps the formula's order, the entries lme4's)
            included = {entry.index for entry in encoded.entries}
            left_out = [entry for entry in self.modes if entry.index not in included]
            for spec in self.encoder.random:
                stored = _take_spec_entry(left_out, spec)
                if stored is not None:
                    unconditioned.append(Unconditioned(
                        term_covariates(self.encoder, spec, encoded.frame),
                        np.ones(len(encoded.frame), dtype=bool),
                        uncertainty.terms[stored.index]))
        return interval_table(encoded.prediction, encoded.design.X, uncertainty, conditioned,
                              unconditioned, interval, level)

    def _encode(self, data: pd.DataFrame, include_random_effects: bool,
                new_levels: Literal["population", "error"],
                groups: Collection[str] | None) -> _Encoded:
        encoder = self._encoder_for(include_random_effects, groups)
        with_random = bool(encoder.random)
        frame = data.reset_index(drop=True)
        # named here, before placeholders fill the missing groups, as R numbers the rows
        encoder.refuse_missing_values(frame, with_random)
        specs = encoder.random
        no_group = [_missing_group(frame, spec.group) for spec in specs]
        if new_levels == "error":
            _refuse_missing_groups(specs, no_group)
        design = encoder.transform(_with_placeholders(encoder, frame, specs),
                                   new_levels=new_levels, random=with_random,
                                   values_checked=True)
        beta = self._beta_for(design.fixed_names)
        if beta is None:
            absent = [name for name in design.fixed_names if name not in self.fixed]
            raise PredictionError(f"the stored model has no estimate for {', '.join(absent)}")
        # R's predict adds the offset of the new data
        prediction: FloatArray = design.with_offset(design.X @ beta)
        entries = list(self.modes)
        taken = []
        for block, rows_without in zip(design.random, no_group, strict=True):
            entry = _take_entry(entries, block)
            taken.append(entry)
            prediction += _random_part(block, entry, rows_without)
        return _Encoded(frame=frame, encoder=encoder, design=design, entries=taken,
                        no_group=no_group, prediction=prediction)

    def _encoder_for(self, include_random_effects: bool,
                     groups: Collection[str] | None) -> DesignEncoder:
        """The encoder with only the random terms a prediction includes (all, none, or
        those of the named grouping factors)."""
        encoder = self.encoder
        if groups:  # names to check, also against a model without random effects
            return self._restricted_to(frozenset(groups))
        if not encoder.random or (include_random_effects and groups is None):
            return encoder
        return self._restricted_to(frozenset())

    def _restricted_to(self, groups: frozenset[str]) -> DesignEncoder:
        found = self._restricted.get(groups)
        if found is not None:
            return found
        known = [spec.group_label for spec in self.encoder.random]
        unknown = sorted(groups - set(known))
        if unknown:
            raise PredictionError(
                f"random_effects names {', '.join(unknown)}, which the model has no random "
                f"effects for; its grouping factors: "
                f"{', '.join(dict.fromkeys(known)) or 'none (it has no random effects)'}")
        restricted = replace(self.encoder, random=tuple(
            spec for spec in self.encoder.random if spec.group_label in groups))
        self._restricted[groups] = restricted
        return restricted

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


def _refuse_groups(groups: Collection[str] | None) -> None:
    if groups:
        raise PredictionError("random_effects names grouping factors, but a per-group model "
                              "(y ~ x | g) has no random effects: each row is predicted by "
                              "its own group's regression")


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
                        groups: Sequence[GroupFit],
                        own_fits: Mapping[str, FitResult] | None = None) -> dict[str, Any]:
    """The JSON prediction state of a per-group model (lme4's ``lmList``).

    Parameters
    ----------
    columns
        The grouping columns (``g`` of ``y ~ x | g``).
    designs
        The design of each fitted level, by level label.
    groups
        The per-level fits; levels without estimates (not fitted) are left out.
    own_fits
        Each level's own lm fit, whose vcov, σ and df its prediction intervals use.
    """
    states = {}
    for group in groups:
        if group.level in designs and group.fixed_effects:
            own = (own_fits or {}).get(group.level)
            states[group.level] = make_prediction_state(
                designs[group.level], estimates(group.fixed_effects), (),
                uncertainty_state(own) if own is not None else None)
    return {"kind": "lm_by_group", "by": list(columns), "groups": states}


def _take_entry(entries: list[_StoredModes], block: RandomBlock) -> _StoredModes:
    """The stored modes of a block's term (matched by group and terms, each used once)."""
    for i, entry in enumerate(entries):
        if entry.group == block.group and entry.terms == block.terms:
            return entries.pop(i)
    raise PredictionError(f"the stored model has no conditional modes for the term "
                          f"({' + '.join(block.terms)} | {block.group})")


def _take_spec_entry(entries: list[_StoredModes], spec: RandomSpec) -> _StoredModes | None:
    """The stored entry of a coded random term among ``entries`` (taken out), or None."""
    for i, entry in enumerate(entries):
        if entry.group == spec.group_label and entry.terms == spec.names:
            return entries.pop(i)
    return None


def _seen_levels(block: RandomBlock, entry: _StoredModes,
                 no_group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose level has modes (not unseen, not marked in ``no_group``, whose group
    is missing), and for each of them its level's row in the stored modes."""
    rows = entry.rows_of(block.levels, block.group)
    seen = block.codes >= 0
    if no_group is not None:
        seen &= ~no_group
    return seen, rows[block.codes[seen]]


def _random_part(block: RandomBlock, entry: _StoredModes,
                 no_group: np.ndarray | None = None) -> FloatArray:
    """Row-wise covariates · modes of the row's level (0 for unseen levels and for the rows
    marked in ``no_group``, whose group is missing)."""
    seen, level_rows = _seen_levels(block, entry, no_group)
    if seen.all():  # the usual case: no rows to leave out, no copies of the covariates
        return np.einsum("ij,ij->i", block.covariates, entry.modes[level_rows])
    out = np.zeros(len(block.codes))
    out[seen] = np.einsum("ij,ij->i", block.covariates[seen], entry.modes[level_rows])
    return out
