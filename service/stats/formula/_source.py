"""The formula text being parsed, and the one way to report a problem in it."""

from __future__ import annotations

import unicodedata

from service.stats.errors import FormulaError

#: Longest formula accepted. Real formulas are a few hundred characters at most; the bound
#: keeps every later step (lexing, parsing, term expansion) cheap on hostile input.
MAX_LENGTH = 5000

_SHOWN_TOKEN = 40


def is_forbidden_char(ch: str) -> bool:
    """Control, format (zero-width, bidi override), surrogate, private or unassigned."""
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch)[0] == "C"


def show(token: str) -> str:
    """A token as it may appear in an error message: escaped and truncated."""
    text = "".join(
        ch if not is_forbidden_char(ch) and ch not in "\t\n\r" else f"\\u{ord(ch):04x}"
        for ch in token[: _SHOWN_TOKEN + 1]
    )
    if len(token) > _SHOWN_TOKEN:
        text = text[:_SHOWN_TOKEN] + "..."
    return f"'{text}'"


class Source:
    """The formula text; builds ``FormulaError``s with a caret under the position.

    The text shown in an error replaces whitespace and forbidden characters one for one,
    so the caret still lines up and no control character reaches a log or a terminal.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._display: str | None = None

    @property
    def display(self) -> str:
        if self._display is None:
            self._display = "".join(
                " " if ch in "\t\n\r" else ("?" if is_forbidden_char(ch) else ch)
                for ch in self.text
            )
        return self._display

    def error(self, message: str, position: int | None, token: str | None = None) -> FormulaError:
        if position is not None:
            position = max(0, min(position, len(self.text)))
        return FormulaError(message, self.display, position, token)
