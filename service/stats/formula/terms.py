"""R's term algebra (``terms.formula``): expanding ``* / : ^ + -`` into a set of terms.

This follows R's ``EncodeVars``: every distinct variable (a column or an allowed call) gets
an index in order of first appearance, a term is the set of its variables, and

- ``a + b`` appends new terms, ``a - b`` deletes them (and flips what ``0``/``1`` mean),
- ``a:b`` pairs every term of ``a`` with every term of ``b``,
- ``a*b`` = ``a + b + a:b``; ``a/b`` = ``a + (all of a):b``; ``(a+b)^k`` crosses k times.

Duplicates collapse, and terms are finally sorted by order (number of variables) keeping
the order of appearance within an order. A work budget and a term cap make explosive
input such as ``(a+b+...+j)^10`` fail quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.stats.formula._source import Source
from service.stats.formula.calls import offset_expr, term_call
from service.stats.formula.syntax import (
    Node,
    SCall,
    SChain,
    SName,
    SNumber,
    SParen,
    SPower,
    SUnary,
    deparse,
    name_label,
    position,
    unwrap,
)
from service.stats.formula.tree import Column, Expr, Term

#: Most terms a formula may expand to.
MAX_TERMS = 1000
#: Most term combinations formed while expanding (bounds the work on hostile input).
MAX_WORK = 100_000

TermSet = frozenset[int]


@dataclass
class Variable:
    expr: Expr
    label: str
    pos: int


@dataclass
class TermEncoder:
    """Expands one formula side (fixed part, or one random term's left-hand side)."""

    source: Source
    intercept: bool = True
    #: Whether ``offset(...)`` may appear (the fixed part; not a random term's left side).
    offsets_allowed: bool = True
    #: The expressions of ``offset(...)`` items, in order (R's ``attr(terms, "offset")``).
    offsets: list[Expr] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    #: Where each variable was seen again after its first appearance (for error carets).
    reused_at: dict[int, int] = field(default_factory=dict)
    _parity: bool = True
    _work: int = 0

    # -- public --------------------------------------------------------------------------

    def register(self, expr: Expr, label: str, pos: int) -> int:
        """The index of a variable, registering it on first sight (R's variable order)."""
        index = self._index.get(label)
        if index is None:
            index = self._index[label] = len(self.variables)
            self.variables.append(Variable(expr, label, pos))
        else:
            self.reused_at.setdefault(index, pos)
        return index

    def expand(self, items: list[tuple[str, Node]]) -> list[TermSet]:
        """The terms of a ``+``/``-`` sequence of items (one formula side).

        Variables are registered as encoding meets them, which is their textual order, as
        R 4.2's ``ExtractVars`` orders them (names under ``-`` included).
        """
        return self.encode_items(items)

    def encode_items(self, items: list[tuple[str, Node]]) -> list[TermSet]:
        """Fold ``+``/``-`` items left to right, starting from no terms.

        An insertion-ordered dict keeps this linear in the number of items (a long sum is
        the common case for wide data).
        """
        terms: dict[TermSet, None] = {}
        for op, node in items:
            if op == "+":
                for term in self.encode(node, allow_numbers=True):
                    if term:
                        terms.setdefault(term)
                self._check_count(len(terms))
            else:
                for term in self._removed(node):
                    terms.pop(term, None)
        return list(terms)

    def to_terms(self, sets: list[TermSet]) -> tuple[Term, ...]:
        """R's final order: by number of variables, then order of appearance."""
        ordered = sorted((s for s in sets if s), key=len)
        return tuple(self._term(s) for s in ordered)

    # -- expansion ---------------------------------------------------------------------------

    def encode(self, node: Node, allow_numbers: bool) -> list[TermSet]:
        if isinstance(node, SName):
            return [frozenset({self.register(Column(node.name), name_label(node.name),
                                             node.pos)})]
        if isinstance(node, SCall) and node.function == "offset":
            return self._offset(node, allow_numbers)
        if isinstance(node, SCall):
            expr = term_call(self.source, node)
            return [frozenset({self.register(expr, deparse(node), node.pos)})]
        if isinstance(node, SNumber):
            return self._number(node, allow_numbers)
        if isinstance(node, SParen):
            return self.encode(node.inner, allow_numbers)
        if isinstance(node, SUnary):
            if node.op == "+":
                return self.encode(node.operand, allow_numbers)
            return self._delete([], node.operand)
        if isinstance(node, SPower):
            return self._power(node)
        return self._chain(node)

    def _chain(self, node: SChain) -> list[TermSet]:
        ops = node.ops
        if ops & {"|", "||"}:
            op, pos, _ = next(item for item in node.rest if item[0] in ("|", "||"))
            raise self.source.error(
                f"'{op}' is only allowed in a random-effects term '(terms | group)' added to "
                "the formula, or once at the top of the right-hand side for per-group fits "
                "('y ~ x | g')", pos, op)
        if ops <= {"+", "-"}:
            items = [("+", node.first)] + [(op, operand) for op, _, operand in node.rest]
            return self.encode_items(items)
        terms = self.encode(node.first, allow_numbers=False)
        for op, _, operand in node.rest:
            right = self.encode(operand, allow_numbers=False)
            if op == ":":
                terms = self._interact(terms, right)
            elif not terms:
                # R's CrossTerms/NestTerms append to the left list in place, so an empty
                # left side stays empty: (a - a)*b has no terms in R.
                continue
            elif op == "*":
                terms = self._plus(self._plus(terms, right), self._interact(terms, right))
            else:  # "/": R's NestTerms
                whole = frozenset().union(*terms)
                terms = self._plus(terms, self._interact([whole], right))
        return terms

    def _offset(self, node: SCall, allow: bool) -> list[TermSet]:
        """``offset(expr)``: no term, an offset (only added, and only to the fixed part)."""
        if not self.offsets_allowed:
            raise self.source.error(
                "offset() belongs in the fixed part of the formula, as in "
                "'y ~ x + offset(log(t)) + (1 | g)', not in a random-effects term",
                node.pos, "offset")
        if not allow or not self._parity:
            raise self.source.error(
                "offset() must be added as a term of its own ('+ offset(x)'): it cannot be "
                "part of an interaction, a power or a removed part", node.pos, "offset")
        self.offsets.append(offset_expr(self.source, node))
        return []

    def _number(self, node: SNumber, allow: bool) -> list[TermSet]:
        if allow and node.value in (0.0, 1.0):
            # R: '1' adds the intercept and '0' removes it; under '-' the meanings swap.
            self.intercept = (node.value == 1.0) == self._parity
            return []
        if allow:
            message = (f"the number {node.text} cannot be a term: only 0 (no intercept) and "
                       "1 (intercept) may be added or removed; use I() for arithmetic")
        else:
            message = (f"the number {node.text} cannot be part of an interaction; use I() "
                       "for arithmetic")
        raise self.source.error(message, node.pos, node.text)

    def _power(self, node: SPower) -> list[TermSet]:
        exponent = unwrap(node.exponent)
        if (not isinstance(exponent, SNumber) or exponent.value != int(exponent.value)
                or exponent.value < 2):
            raise self.source.error(
                "the power of a formula term must be a whole number of at least 2, as in "
                "(a + b + c)^2", position(node.exponent), "^")
        base = self.encode(node.base, allow_numbers=False)
        result = base
        # Crossing more times than there are variables changes nothing; stop at a fixpoint.
        for _ in range(int(min(exponent.value, len(self.variables) + 1)) - 1):
            crossed = self._interact(base, result)
            if crossed == result:
                break
            result = crossed
        return result

    def _delete(self, left: list[TermSet], node: Node) -> list[TermSet]:
        removed = self._removed(node)
        return [t for t in left if t not in removed]

    def _removed(self, node: Node) -> set[TermSet]:
        """The terms of a removed part; R flips what 0 and 1 mean while encoding it."""
        self._parity = not self._parity
        try:
            return set(self.encode(node, allow_numbers=True))
        finally:
            self._parity = not self._parity

    def _plus(self, left: list[TermSet], right: list[TermSet]) -> list[TermSet]:
        return self._unique(left + right)

    def _interact(self, left: list[TermSet], right: list[TermSet]) -> list[TermSet]:
        self._spend(len(left) * len(right))
        return self._unique([a | b for a in left for b in right])

    def _unique(self, terms: list[TermSet]) -> list[TermSet]:
        # R's TrimRepeats: drop repeats (keeping the first) and empty terms.
        result = [t for t in dict.fromkeys(terms) if t]
        self._check_count(len(result))
        return result

    def _check_count(self, count: int) -> None:
        if count > MAX_TERMS:
            raise self.source.error(
                f"the formula expands to more than {MAX_TERMS} terms; simplify the "
                "interactions", None)

    def _spend(self, work: int) -> None:
        self._work += work
        if self._work > MAX_WORK:
            raise self.source.error(
                "the formula is too complex to expand (too many interaction terms); "
                "simplify the interactions", None)

    def _term(self, term: TermSet) -> Term:
        indices = sorted(term)
        labels = tuple(self.variables[i].label for i in indices)
        return Term(tuple(self.variables[i].expr for i in indices), ":".join(labels), labels)
