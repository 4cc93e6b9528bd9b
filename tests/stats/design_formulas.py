"""Parse trees built by hand for the design unit tests (independent of the parser), and
the reference cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from service.stats.design.expr import deparse
from service.stats.formula.tree import (
    BinOp,
    Call,
    Column,
    Expr,
    Formula,
    Number,
    RandomTerm,
    Term,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def c(name: str) -> Column:
    return Column(name)


def num(value: float) -> Number:
    text = str(int(value)) if float(value).is_integer() else str(value)
    return Number(float(value), text)


def call(function: str, *args: Expr) -> Call:
    return Call(function, tuple(args))


def power(left: Expr, right: Expr) -> BinOp:
    return BinOp("^", left, right)


def term(*factors: Expr | str) -> Term:
    exprs = tuple(Column(f) if isinstance(f, str) else f for f in factors)
    return Term(exprs, ":".join(deparse(e) for e in exprs))


def bar(group: str | tuple[str, ...], *terms: Term, intercept: bool = True) -> RandomTerm:
    columns = (group,) if isinstance(group, str) else group
    return RandomTerm(intercept, tuple(terms), columns, ":".join(columns))


def formula(response: str | Expr, *fixed: Term, random: tuple[RandomTerm, ...] = (),
            intercept: bool = True, text: str = "") -> Formula:
    resp = Column(response) if isinstance(response, str) else response
    return Formula(text, resp, intercept, tuple(fixed), random)


def reference_cases() -> list[dict[str, Any]]:
    """Every expected/*.json with a ``fixef`` key."""
    cases = []
    for path in sorted((DATA / "expected").glob("*.json")):
        case = json.loads(path.read_text())
        if isinstance(case.get("fixef"), dict):
            cases.append(case)
    return cases


def load(case_or_name: dict[str, Any] | str) -> pd.DataFrame:
    name = case_or_name if isinstance(case_or_name, str) else case_or_name["dataset"]
    return pd.read_csv(DATA / name)


def case(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DATA / "expected" / f"{name}.json").read_text())
    return result
