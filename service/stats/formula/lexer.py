"""Tokens of the formula language, produced one at a time.

Lexing is lazy so that the first problem reported is the leftmost one: ``open('/etc/passwd')``
is refused as an unknown function, not for its string. Every character that has no meaning
in a formula is refused here with a message that says what it would have been in R or Python.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from service.stats.formula._source import Source, is_forbidden_char, show

TokenKind = Literal["name", "number", "op", "end"]

# R's reserved words (?Reserved) cannot be bare names, in R or here; written in backticks
# they are ordinary names. Python's keywords (class, lambda, yield, import...) are ordinary
# names in R, and so they are here: nothing in a formula is evaluated, so refusing them
# would protect nothing (nlme's Oats has a column called yield).
R_RESERVED = frozenset({
    "if", "else", "repeat", "while", "function", "for", "in", "next", "break",
    "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_",
    "NA_complex_", "NA_character_",
})
# ... and ..1, ..2 etc. (arguments passed down to a function) are reserved too.
_DOTS = re.compile(r"\.\.\.|\.\.[0-9]+")


def is_reserved(name: str) -> bool:
    """Whether ``name`` is one of R's reserved words (only backticks make it a name)."""
    return name in R_RESERVED or _DOTS.fullmatch(name) is not None

_OPERATORS = frozenset("~+-*/:^(),|=")

_REFUSED: dict[str, str] = {
    "'": "strings are not allowed in a formula",
    '"': "strings are not allowed in a formula",
    "[": "subscripts and lists are not allowed in a formula",
    "]": "subscripts and lists are not allowed in a formula",
    "{": "braces are not allowed in a formula",
    "}": "braces are not allowed in a formula",
    "$": "element access is not allowed in a formula",
    "@": "attribute access is not allowed in a formula",
    "<": "comparisons and assignments are not allowed in a formula",
    ">": "comparisons and assignments are not allowed in a formula",
    "!": "logical operators are not allowed in a formula",
    "&": "logical operators are not allowed in a formula",
    ";": "a formula is a single expression: ';' is not allowed",
    "#": "comments are not allowed in a formula",
    "\\": "lambdas and escapes are not allowed in a formula",
    "?": "'?' is not allowed in a formula",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token. For names ``text`` is the name without backticks."""

    kind: TokenKind
    text: str
    pos: int
    end: int
    quoted: bool = False

    @property
    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the formula"
        if self.quoted:
            return show(f"`{self.text}`")
        return show(self.text)


def _is_space(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_name_start(ch: str) -> bool:
    return ch == "." or ch.isalpha()


def _is_name_char(ch: str) -> bool:
    return ch in "._" or ch.isalnum()


class Lexer:
    """Hands out the tokens of ``source`` one by one (``next``), refusing bad characters."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.text = source.text
        self.i = 0

    def next(self) -> Token:
        text, n = self.text, len(self.text)
        i = self.i
        while i < n and _is_space(text[i]):
            i += 1
        if i >= n:
            self.i = n
            return Token("end", "", n, n)
        ch = text[i]
        if _is_digit(ch) or (ch == "." and i + 1 < n and _is_digit(text[i + 1])):
            tok = self._number(i)
        elif ch == "`":
            tok = self._backticked(i)
        elif _is_name_start(ch):
            tok = self._name(i)
        elif ch == "|" and text.startswith("||", i):
            tok = Token("op", "||", i, i + 2)
        elif ch in _OPERATORS:
            if ch == "=" and text.startswith("==", i):
                raise self.source.error(
                    "comparisons are not allowed in a formula: found '=='", i, "==")
            tok = Token("op", ch, i, i + 1)
        else:
            raise self._refuse(i)
        self.i = tok.end
        return tok

    def _refuse(self, i: int) -> Exception:
        ch = self.text[i]
        if is_forbidden_char(ch):
            return self.source.error(
                f"control or invisible character U+{ord(ch):04X} is not allowed in a formula",
                i, ch)
        if ch == "%":
            end = self.text.find("%", i + 1)
            op = self.text[i: end + 1] if 0 < end - i <= 20 else "%"
            return self.source.error(
                f"operator {show(op)} is not supported; use ':' for interactions "
                "and '/' for nesting", i, op)
        if ch == "_":
            j = i
            while j < len(self.text) and _is_name_char(self.text[j]):
                j += 1
            name = self.text[i:j]
            if name.startswith("__"):
                return self.source.error(
                    f"name {show(name)} is not allowed: names containing '__' are refused",
                    i, name)
            return self.source.error(
                f"{show(name)} is not a valid name (names cannot start with '_'); "
                f"write a column name like this in backticks: `{name}`", i, name)
        message = _REFUSED.get(ch, "unexpected character in a formula")
        return self.source.error(f"{message}: found {show(ch)}", i, ch)

    def _number(self, i: int) -> Token:
        text, n = self.text, len(self.text)
        j = i
        while j < n and _is_digit(text[j]):
            j += 1
        if j < n and text[j] == ".":
            j += 1
            while j < n and _is_digit(text[j]):
                j += 1
        if j < n and text[j] in "eE":
            k = j + 1
            if k < n and text[k] in "+-":
                k += 1
            if k < n and _is_digit(text[k]):
                j = k
                while j < n and _is_digit(text[j]):
                    j += 1
        if j < n and text[j] == "L":  # R's integer suffix: 2L
            j += 1
        if j < n and _is_name_char(text[j]):
            k = j
            while k < n and _is_name_char(text[k]):
                k += 1
            bad = text[i:k]
            raise self.source.error(f"malformed number {show(bad)}", i, bad)
        return Token("number", text[i:j], i, j)

    def _name(self, i: int) -> Token:
        text, n = self.text, len(self.text)
        j = i + 1
        while j < n and _is_name_char(text[j]):
            j += 1
        name = text[i:j]
        if "__" in name:
            raise self.source.error(
                f"name {show(name)} is not allowed: names containing '__' are refused "
                f"(write a column name like this in backticks: `{name}`)", i, name)
        if name.startswith(".") and i > 0 and (text[i - 1] == ")" or _is_name_char(text[i - 1])):
            raise self.source.error(
                f"attribute access {show(name)} is not allowed in a formula", i, name)
        if not name.strip("."):
            raise self.source.error(
                f"{show(name)} is not supported: R's '.' (all other columns) must be written "
                "out as the column names", i, name)
        if is_reserved(name):
            raise self.source.error(
                f"{show(name)} is a reserved word and cannot be used as a name; write a "
                f"column name like this in backticks: `{name}`", i, name)
        return Token("name", name, i, j)

    def _backticked(self, i: int) -> Token:
        text = self.text
        end = text.find("`", i + 1)
        if end < 0:
            raise self.source.error("unterminated backtick: a `name` needs a closing '`'", i, "`")
        name = text[i + 1: end]
        if not name:
            raise self.source.error("empty name ``", i, "``")
        for k, ch in enumerate(name):
            if is_forbidden_char(ch) or ch in "\t\n\r":
                raise self.source.error(
                    f"control or invisible character U+{ord(ch):04X} is not allowed in a "
                    "formula", i + 1 + k, ch)
        return Token("name", name, i, end + 1, quoted=True)
