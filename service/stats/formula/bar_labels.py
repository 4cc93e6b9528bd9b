"""R's text of each random-effects term, as ``deparse(findbars(formula))`` gives it.

lmerTest names ranova's rows by this text (``Days in (Days | Subject)``), which keeps the
bar as written: ``(Days | Subject)`` and ``(1 + Days | Subject)`` are the same term with
different names. lme4's ``findbars`` expands ``||`` (``1 | g``, ``0 + x | g``) and ``/``
(``1 | b:a``, ``1 | a``) first, as ``parse_formula`` does, so the labels come in the order
of ``Formula.random``.
"""

from __future__ import annotations

from service.stats.formula._source import Source
from service.stats.formula.bars import Bar, expand_bar, split_bars
from service.stats.formula.expand import parse_formula
from service.stats.formula.parser import parse_syntax
from service.stats.formula.syntax import SChain, deparse, unwrap


def bar_labels(text: str) -> tuple[str, ...]:
    """One label per ``parse_formula(text).random`` term, as R's ``findbars`` deparses it.

    Raises
    ------
    FormulaError
        If ``text`` is not a formula ``parse_formula`` accepts.
    """
    formula = parse_formula(text)  # validates, and is what the labels must line up with
    source = Source(text)
    _, rhs = parse_syntax(source)
    _, bars = split_bars(source, rhs)
    labels: list[str] = []
    for bar in bars:
        labels.extend(_labels(source, bar))
    if len(labels) != len(formula.random):  # never expected: the same expansion as parsing
        raise AssertionError("random-effects labels do not match the parsed terms")
    return tuple(labels)


def _labels(source: Source, bar: Bar) -> list[str]:
    terms = expand_bar(source, bar)
    group = unwrap(bar.group)
    nested = isinstance(group, SChain) and group.ops == {"/"}
    out = []
    for term in terms:
        group_text = term.group_label if nested else deparse(bar.group)
        if bar.op == "|":
            out.append(f"{deparse(bar.lhs)} | {group_text}")
        elif term.intercept:
            out.append(f"1 | {group_text}")
        else:
            out.append(f"0 + {term.terms[0].label} | {group_text}")
    return out
