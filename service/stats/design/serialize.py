"""The encoder as plain JSON (dicts, lists, strings, numbers, booleans): never pickle.

A stored model must keep predicting after upgrades, so the format is explicit and
versioned, and reading it refuses anything it does not recognise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service.stats.design.contrasts import CODINGS
from service.stats.design.expr import expr_from_json, expr_to_json
from service.stats.design.terms import TermSpec, Variable
from service.stats.design.values import KINDS, ColumnKind
from service.stats.errors import PredictionError

if TYPE_CHECKING:
    from service.stats.design.encoder import DesignEncoder, RandomSpec

FORMAT = "mixedfit.design-encoder"
VERSION = 1


def encoder_to_json(encoder: DesignEncoder) -> dict[str, Any]:
    """Describe an encoder with plain JSON types."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "response": expr_to_json(encoder.response),
        "intercept": encoder.intercept,
        "kinds": dict(encoder.kinds),
        "variables": [_variable_to_json(v, encoder.exprs.get(v.label))
                      for v in encoder.variables.values()],
        "params": {key: dict(value) for key, value in encoder.params.items()},
        "fixed": [_term_to_json(t) for t in encoder.fixed],
        "fixed_names": list(encoder.all_fixed_names),
        "dropped_aliased": list(encoder.dropped_aliased),
        "random": [{
            "intercept": spec.intercept,
            "terms": [_term_to_json(t) for t in spec.terms],
            "names": list(spec.names),
            "group": list(spec.group),
            "group_label": spec.group_label,
            "levels": list(spec.levels),
        } for spec in encoder.random],
        "by_group": None if encoder.by_group is None else list(encoder.by_group),
        # absent in encoders stored before offsets existed
        "offsets": [expr_to_json(o) for o in encoder.offsets],
    }


def encoder_from_json(encoder_cls: type[DesignEncoder], random_cls: type[RandomSpec],
                      data: Mapping[str, Any]) -> DesignEncoder:
    """Rebuild an encoder from :func:`encoder_to_json` output."""
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise PredictionError("the stored design encoder has an unknown format or version")
    try:
        variables: dict[str, Variable] = {}
        exprs = {}
        for item in data["variables"]:
            variable = Variable(label=str(item["label"]), categorical=bool(item["categorical"]),
                                column=str(item["column"]),
                                levels=tuple(str(x) for x in item["levels"]),
                                suffixes=tuple(str(x) for x in item["suffixes"]),
                                name=str(item.get("name", "")))
            variables[variable.label] = variable
            if item.get("expr") is not None:
                exprs[variable.label] = expr_from_json(item["expr"])
        random = tuple(random_cls(
            intercept=bool(spec["intercept"]),
            terms=tuple(_term_from_json(t) for t in spec["terms"]),
            names=tuple(str(n) for n in spec["names"]),
            group=tuple(str(g) for g in spec["group"]),
            group_label=str(spec["group_label"]),
            levels=tuple(str(x) for x in spec["levels"]),
        ) for spec in data["random"])
        by_group = data.get("by_group")
        return encoder_cls(
            response=expr_from_json(data["response"]),
            intercept=bool(data["intercept"]),
            kinds={str(k): _kind(v) for k, v in data["kinds"].items()},
            variables=variables,
            exprs=exprs,
            params={str(k): _params(v) for k, v in data["params"].items()},
            fixed=tuple(_term_from_json(t) for t in data["fixed"]),
            all_fixed_names=tuple(str(n) for n in data["fixed_names"]),
            random=random,
            dropped_aliased=tuple(str(n) for n in data["dropped_aliased"]),
            by_group=None if by_group is None else tuple(str(g) for g in by_group),
            offsets=tuple(expr_from_json(o) for o in data.get("offsets", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictionError(f"the stored design encoder is malformed: {exc!r}") from None


def _variable_to_json(variable: Variable, expr: Any) -> dict[str, Any]:
    return {
        "label": variable.label,
        "categorical": variable.categorical,
        "column": variable.column,
        "levels": list(variable.levels),
        "suffixes": list(variable.suffixes),
        "name": variable.name,
        "expr": None if expr is None else expr_to_json(expr),
    }


def _term_to_json(term: TermSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"variables": list(term.variables), "contrasts": list(term.contrasts)}
    if term.codings:  # absent: treatment, as every encoder stored before codings existed
        out["codings"] = list(term.codings)
    return out


def _term_from_json(data: Mapping[str, Any]) -> TermSpec:
    variables = tuple(str(v) for v in data["variables"])
    codings = tuple(str(c) for c in data.get("codings", ()))
    if codings and len(codings) != len(variables):
        raise ValueError(f"a term of {len(variables)} variables has {len(codings)} codings")
    for coding in codings:
        if coding not in CODINGS:
            raise ValueError(f"unknown contrasts {coding!r}")
    return TermSpec(variables, tuple(bool(c) for c in data["contrasts"]), codings)


def _kind(value: Any) -> ColumnKind:
    if value not in KINDS:
        raise ValueError(f"unknown column kind {value!r}")
    kind: ColumnKind = value
    return kind


def _params(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, list):
            out[str(key)] = [float(x) for x in item]
        elif key == "degree":
            out[str(key)] = int(item)
        else:
            out[str(key)] = float(item)
    return out
