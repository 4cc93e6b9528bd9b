"""Random-effects terms, as lme4 (``reformulas``) reads them.

``findbars``/``nobars`` split the right-hand side into random-effects bars and the fixed
part; ``expand_bar`` applies lme4's ``expandDoubleVerts`` (``(x || g)`` becomes
``(1 | g) + (0 + x | g)``) and ``expandSlash`` (``(1 | a/b)`` becomes ``(1 | a) + (1 | b:a)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.stats.formula._source import Source
from service.stats.formula.syntax import Node, SChain, SName, deparse, name_label, position, unwrap
from service.stats.formula.terms import TermEncoder
from service.stats.formula.tree import RandomTerm, Term

#: Most random-effects terms (after expansion) accepted.
MAX_RANDOM_TERMS = 100


@dataclass(frozen=True)
class Bar:
    """A ``(lhs | group)`` or ``(lhs || group)`` found on the right-hand side."""

    lhs: Node
    op: str
    op_pos: int
    group: Node


def as_bar(source: Source, node: Node) -> Bar | None:
    """The bar a (parenthesised) node is, or None if it is not a random-effects term."""
    inner = unwrap(node)
    if not isinstance(inner, SChain) or not inner.ops & {"|", "||"}:
        return None
    if len(inner.rest) > 1:
        op, pos, _ = inner.rest[1]
        raise source.error(
            f"a random-effects term has exactly one bar, as in (1 + x | g): found a second "
            f"'{op}'", pos, op)
    op, pos, group = inner.rest[0]
    return Bar(inner.first, op, pos, group)


def split_bars(source: Source, rhs: Node) -> tuple[list[tuple[str, Node]], list[Bar]]:
    """lme4's ``nobars``/``findbars``: the fixed ``+``/``-`` items and the bars, in order."""
    fixed: list[tuple[str, Node]] = []
    bars: list[Bar] = []
    # An explicit stack (top = next item, left to right) instead of recursion: a sum may
    # have thousands of items.
    stack: list[tuple[str, Node]] = [("+", rhs)]
    while stack:
        op, node = stack.pop()
        bar = as_bar(source, node)
        if bar is not None:
            if op == "-":
                raise source.error(
                    "a random-effects term cannot be removed with '-'", position(node), "-")
            bars.append(bar)
            continue
        inner = unwrap(node)
        if (op == "+" and isinstance(inner, SChain) and inner.ops <= {"+", "-"}
                and (inner is node or _holds_bar(source, inner))):
            items = [("+", inner.first)] + [(o, n) for o, _, n in inner.rest]
            stack.extend(reversed(items))
            continue
        fixed.append((op, node))
    return fixed, bars


def _holds_bar(source: Source, chain: SChain) -> bool:
    return any(as_bar(source, n) is not None for n in [chain.first, *(n for _, _, n in chain.rest)])


def expand_bar(source: Source, bar: Bar) -> list[RandomTerm]:
    """The ``RandomTerm``s of one bar: one per (term part, grouping factor)."""
    encoder = TermEncoder(source, offsets_allowed=False)
    terms = encoder.to_terms(encoder.expand([("+", bar.lhs)]))
    if not terms and not encoder.intercept:
        raise source.error(
            "the random-effects term has no effects: put 1 or a variable before the bar, "
            "as in (1 | g) or (0 + x | g)", position(bar.lhs))
    groups = group_factors(source, bar.group)
    parts: list[tuple[bool, tuple[Term, ...]]] = []
    if bar.op == "||":
        if encoder.intercept:
            parts.append((True, ()))
        parts.extend((False, (term,)) for term in terms)
    else:
        parts.append((encoder.intercept, terms))
    return [RandomTerm(intercept, part_terms, names, label)
            for intercept, part_terms in parts for names, label in groups]


def group_factors(source: Source, node: Node) -> list[tuple[tuple[str, ...], str]]:
    """Grouping factors (column names and lme4's label) of ``g``, ``a:b`` or ``a/b``.

    lme4's ``expandSlash`` turns ``a/b/c`` into ``c:(b:a)``, ``b:a`` and ``a``, innermost
    first, each level interacted with everything it is nested in (the label is R's deparse
    of that call, which parenthesises a nested interaction on the right).
    """
    inner = unwrap(node)
    levels: list[Node] = [inner]
    if isinstance(inner, SChain) and inner.ops == {"/"}:
        levels = [inner.first, *(n for _, _, n in inner.rest)]
    groups: list[tuple[tuple[str, ...], str]] = []
    names: tuple[str, ...] = ()
    label = ""
    for level in levels:
        level_names = interaction_names(source, level, "a grouping factor")
        level_label = ":".join(name_label(n) for n in level_names)
        if names:
            outer = f"({label})" if len(names) > 1 else label
            names, label = level_names + names, f"{level_label}:{outer}"
        else:
            names, label = level_names, level_label
        groups.append((tuple(dict.fromkeys(names)), label))
    groups.reverse()
    # lme4 names groups by deparse(), which backticks names only inside a call: a lone
    # `my g` is named "my g", an interaction a:`my g` keeps its backticks.
    return [(names, names[0] if len(names) == 1 else label) for names, label in groups]


def interaction_names(source: Source, node: Node, what: str) -> tuple[str, ...]:
    """Column names of ``g`` or ``a:b:c`` (each a plain or backticked name)."""
    inner = unwrap(node)
    parts = [inner]
    if isinstance(inner, SChain) and inner.ops == {":"}:
        parts = [inner.first, *(n for _, _, n in inner.rest)]
    names: list[str] = []
    for part in parts:
        part = unwrap(part)
        if isinstance(part, SChain) and part.ops & {"|", "||"}:
            op, pos, _ = next(i for i in part.rest if i[0] in ("|", "||"))
            raise source.error(f"nested bars are not allowed: found '{op}' inside the group "
                               "of a random-effects term", pos, op)
        if not isinstance(part, SName):
            raise source.error(
                f"{what} must be a column name or names joined by ':' (or '/' for nesting "
                f"in random effects); found '{deparse(part)}'", position(part))
        names.append(part.name)
    return tuple(names)
