"""A model's signature (vetiver's prototype, the Open Inference Protocol's model metadata):
the input columns a prediction reads, their types and known levels, and the output; and
the check of a prediction's rows against it, which names every wrong column at once.

Computed from the compiled predictor (``service.stats.predict.Predictor``), so it is what
predictions actually read: no database, no dataset.
"""

from __future__ import annotations

from typing import Literal
from weakref import WeakKeyDictionary

import pandas as pd
from pydantic import BaseModel, Field

from service.errors import InvalidInput
from service.stats.design.encoder import DesignEncoder
from service.stats.predict import Predictor


class InputColumn(BaseModel):
    name: str
    type: str = Field(description="How the column was read when fitting: numeric, "
                                  "categorical or logical")
    required: bool = Field(description=(
        "true: every prediction reads it; false: read only with include_random_effects "
        "(the default), as a grouping column"))
    levels: list[str] | None = Field(description=(
        "A factor term's levels: a value outside them is a 422 (null for other columns)"))


class GroupLevels(BaseModel):
    group: str = Field(description="The grouping factor as lme4 names it (cask:batch)")
    columns: list[str]
    levels: list[str] = Field(description=(
        "The levels with conditional modes; any other level (or a missing value) is "
        "predicted at the population level, or refused with new_levels=error"))


class Output(BaseModel):
    name: Literal["prediction"] = "prediction"
    type: Literal["number"] = "number"
    nullable: bool = Field(default=True, description="null where R's predict gives NA")


class Signature(BaseModel):
    model_id: str
    kind: str
    inputs: list[InputColumn]
    groups: list[GroupLevels] = Field(description="Per-level effects: mixed models' "
                                                  "grouping factors, per-group fits' groups")
    output: Output = Output()


def signature(model_id: str, predictor: Predictor) -> Signature:
    inputs, groups = _inputs(predictor)
    return Signature(model_id=model_id, kind=str(predictor.kind), inputs=inputs,
                     groups=groups)


# per compiled predictor (immutable, cached and shared): a prediction's check reads them
# without building them again; an entry goes with its predictor
_KNOWN: WeakKeyDictionary[Predictor, tuple[list[InputColumn], list[GroupLevels]]] = \
    WeakKeyDictionary()


def _inputs(predictor: Predictor) -> tuple[list[InputColumn], list[GroupLevels]]:
    known = _KNOWN.get(predictor)
    if known is None:
        known = _KNOWN[predictor] = _read_inputs(predictor)
    return known


def _read_inputs(predictor: Predictor) -> tuple[list[InputColumn], list[GroupLevels]]:
    if predictor.kind == "lm_by_group":
        return _by_group(predictor)
    encoder = predictor.encoder
    fixed = set(encoder.columns_used(random=False))
    inputs = [InputColumn(name=name, type=str(encoder.kinds.get(name, "numeric")),
                          required=name in fixed, levels=_factor_levels(encoder, name))
              for name in encoder.columns_used(random=True)]
    groups = [GroupLevels(group=spec.group_label, columns=list(spec.group),
                          levels=list(spec.levels)) for spec in encoder.random]
    return inputs, groups


def _by_group(predictor: Predictor) -> tuple[list[InputColumn], list[GroupLevels]]:
    inputs: dict[str, InputColumn] = {}
    for name in predictor.by:
        inputs[name] = InputColumn(name=name, type="categorical", required=True, levels=None)
    for group in predictor.groups.values():
        for column in _inputs(group)[0]:
            inputs.setdefault(column.name, column)
    return list(inputs.values()), [GroupLevels(group=":".join(predictor.by),
                                               columns=list(predictor.by),
                                               levels=list(predictor.groups))]


def _factor_levels(encoder: DesignEncoder, column: str) -> list[str] | None:
    for variable in encoder.variables.values():
        if variable.categorical and variable.column == column:
            return list(variable.levels)
    return None


def check_frame(predictor: Predictor, frame: pd.DataFrame,
                include_random_effects: bool, *, partial: bool = False) -> None:
    """A 422 naming each input column that is absent, of the wrong type or has a level the
    model does not know (the predictor would stop at the first). With ``partial`` (only
    some grouping factors' effects included) an absent grouping column is left to the
    predictor, which names those it needs."""
    errors: list[dict[str, str]] = []
    for column in _inputs(predictor)[0]:
        if not column.required and (not include_random_effects
                                    or (partial and column.name not in frame.columns)):
            continue
        if column.name not in frame.columns:
            errors.append({"column": column.name, "problem": "missing",
                           "detail": f"{column.name}: absent ({column.type} expected)"})
            continue
        values = frame[column.name]
        if column.name in _grouping_only(predictor):
            # a grouping factor is a factor whatever its column held when fitting: any
            # value is a level, matched by R's label of it (308 and "308" alike), and an
            # unseen one is predicted at the population level (or refused by new_levels)
            continue
        if column.type == "numeric" and column.levels is None:
            bad = _not_numbers(values)
            if bad is not None:
                errors.append({"column": column.name, "problem": "type",
                               "detail": f"{column.name}: numbers expected, got {bad!r}"})
        elif column.levels is not None and column.type == "categorical":
            # (a factor() of a numeric column is labelled by the encoder, R's way: the
            # predictor checks its levels)
            unknown = sorted({str(v) for v in values.dropna()} - set(column.levels))
            if unknown:
                errors.append({"column": column.name, "problem": "level", "detail": (
                    f"{column.name}: level(s) not seen when fitting: "
                    f"{', '.join(unknown[:5])} (known: {', '.join(column.levels[:20])})")})
    if errors:
        raise InvalidInput("The rows do not fit the model's signature (GET "
                           "/v1/models/{id}/signature lists its inputs): "
                           + "; ".join(e["detail"] for e in errors), columns=errors)


_GROUPING_ONLY: WeakKeyDictionary[Predictor, frozenset[str]] = WeakKeyDictionary()


def _grouping_only(predictor: Predictor) -> frozenset[str]:
    """The columns a mixed model reads only as grouping factors (no term reads them)."""
    known = _GROUPING_ONLY.get(predictor)
    if known is None:
        if predictor.kind == "lm_by_group":
            known = frozenset()
        else:
            encoder = predictor.encoder
            groups = {c for spec in encoder.random for c in spec.group}
            known = frozenset(groups - set(encoder.columns_used(random=True, groups=False)))
        _GROUPING_ONLY[predictor] = known
    return known


def _not_numbers(values: pd.Series) -> object | None:
    """The first value that is present but no number, if any."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    present = values.dropna()
    parsed = pd.to_numeric(present, errors="coerce")
    wrong = present[parsed.isna()]
    return None if wrong.empty else wrong.iloc[0]
