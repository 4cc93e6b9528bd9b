"""Recursive-descent parser from formula text to the syntax tree of ``syntax.py``.

Precedence follows R (lowest first): ``~``; ``|`` ``||``; ``+`` ``-``; ``*`` ``/``; ``:``;
unary ``-`` ``+``; ``^`` (right-associative). Nesting (parentheses, calls, unary signs,
powers) is bounded so hostile input fails with a ``FormulaError``, never a RecursionError.
"""

from __future__ import annotations

import math

from service.stats.formula._source import MAX_LENGTH, Source
from service.stats.formula.calls import check_function_name
from service.stats.formula.lexer import Lexer, Token
from service.stats.formula.syntax import (
    Node,
    SArg,
    SCall,
    SChain,
    SName,
    SNumber,
    SParen,
    SPower,
    SUnary,
)

#: Deepest nesting of parentheses, calls, signs and powers accepted.
MAX_DEPTH = 50

_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"|", "||"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/"}),
    frozenset({":"}),
)


def parse_syntax(source: Source) -> tuple[Node, Node]:
    """Parse ``response ~ terms`` into the syntax trees of both sides.

    Raises
    ------
    FormulaError
        For any text that is not a well-formed two-sided formula.
    """
    text = source.text
    if len(text) > MAX_LENGTH:
        # Not echoed back: the message would be as long as the input.
        raise source.error(
            f"formula is too long ({len(text)} characters; the limit is {MAX_LENGTH})", None)
    if not text.strip():
        raise source.error("the formula is empty; write it as 'response ~ terms'", 0)
    return _Parser(source).formula()


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.lexer = Lexer(source)
        self.tok: Token = self.lexer.next()
        self.depth = 0
        self.open_parens = 0

    # -- helpers ---------------------------------------------------------------------------

    def _advance(self) -> Token:
        tok = self.tok
        self.tok = self.lexer.next()
        return tok

    def _is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def _error(self, message: str, tok: Token | None = None) -> Exception:
        tok = tok or self.tok
        return self.source.error(message, tok.pos, tok.text)

    def _enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.source.error(
                f"the formula is nested too deeply (more than {MAX_DEPTH} levels of "
                "parentheses, calls, signs or powers)", tok.pos, tok.text)

    def _leave(self) -> None:
        self.depth -= 1

    def _unexpected(self, context: str) -> Exception:
        tok = self.tok
        if tok.kind == "end":
            return self._error(f"the formula ends too early: expected {context}")
        if tok.kind == "op" and tok.text == ")":
            if self.open_parens:
                return self._error(f"unexpected ')': expected {context}")
            return self._error("unbalanced parentheses: ')' without a matching '('")
        if tok.kind == "op" and tok.text == "~":
            return self._error("a formula has exactly one '~'")
        if tok.kind == "op" and tok.text == "=":
            return self._error(
                "'=' is only allowed for a named argument, as in poly(x, degree = 2)")
        if tok.kind == "op" and tok.text == ",":
            return self._error("',' is only allowed between the arguments of a function")
        what = {"name": "name", "number": "number", "op": "operator"}[tok.kind]
        return self._error(f"unexpected {what} {tok.shown}: expected {context}")

    # -- grammar ---------------------------------------------------------------------------

    def formula(self) -> tuple[Node, Node]:
        if self._is_op("~"):
            raise self._error(
                "the formula has no response: write 'response ~ terms' (one-sided formulas "
                "are not supported)")
        lhs = self._chain(0)
        if not self._is_op("~"):
            if self.tok.kind == "end":
                raise self.source.error(
                    "the formula has no '~': write it as 'response ~ terms'", 0)
            raise self._unexpected("'~' or an operator")
        tilde = self._advance()
        if self.tok.kind == "end":
            raise self._error(
                "nothing after '~': the right-hand side is empty (write '~ 1' for an "
                "intercept-only model)", tilde)
        rhs = self._chain(0)
        if self.tok.kind != "end":
            raise self._unexpected("an operator or the end of the formula")
        return lhs, rhs

    def _chain(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self._unary()
        ops = _LEVELS[level]
        first = self._chain(level + 1)
        rest: list[tuple[str, int, Node]] = []
        while self.tok.kind == "op" and self.tok.text in ops:
            op = self._advance()
            rest.append((op.text, op.pos, self._chain(level + 1)))
        return SChain(first, tuple(rest)) if rest else first

    def _unary(self) -> Node:
        if self._is_op("-", "+"):
            op = self._advance()
            self._enter(op)
            operand = self._unary()
            self._leave()
            return SUnary(op.text, operand, op.pos)
        return self._power()

    def _power(self) -> Node:
        base = self._primary()
        if not self._is_op("^"):
            return base
        caret = self._advance()
        self._enter(caret)
        exponent = self._unary()  # R: 2^-1 and right-associative a^b^c
        self._leave()
        return SPower(base, exponent, caret.pos)

    def _primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self._advance()
            value = float(tok.text.rstrip("L"))
            if not math.isfinite(value):
                raise self._error(f"number {tok.shown} is too large", tok)
            return SNumber(tok.text, value, tok.pos)
        if tok.kind == "name":
            self._advance()
            if self._is_op("("):
                return self._call(tok)
            return SName(tok.text, tok.pos, tok.quoted)
        if self._is_op("("):
            self._enter(tok)
            self._advance()
            self.open_parens += 1
            inner = self._chain(0)
            if not self._is_op(")"):
                if self.tok.kind == "end":
                    raise self.source.error(
                        "unbalanced parentheses: this '(' is never closed", tok.pos, "(")
                raise self._unexpected(f"')' to close the '(' at position {tok.pos}")
            self._advance()
            self.open_parens -= 1
            self._leave()
            return SParen(inner, tok.pos)
        raise self._unexpected("a variable, a number or '('")

    def _call(self, name: Token) -> Node:
        check_function_name(self.source, name.text, name.pos)
        opening = self._advance()
        self._enter(opening)
        self.open_parens += 1
        args: list[SArg] = []
        if not self._is_op(")"):
            while True:
                value = self._chain(0)
                if self._is_op("="):
                    equals = self._advance()
                    if not isinstance(value, SName) or value.quoted:
                        raise self._error(
                            "'=' is only allowed for a named argument, as in "
                            "poly(x, degree = 2)", equals)
                    args.append(SArg(self._chain(0), value.name))
                else:
                    args.append(SArg(value))
                if self._is_op(","):
                    self._advance()
                    continue
                break
        if not self._is_op(")"):
            if self.tok.kind == "end":
                raise self.source.error(
                    f"unbalanced parentheses: the '(' of {name.text}() is never closed",
                    opening.pos, "(")
            raise self._unexpected(f"',' or ')' in the arguments of {name.text}()")
        self._advance()
        self.open_parens -= 1
        self._leave()
        return SCall(name.text, tuple(args), name.pos)
