"""What a registered name and an alias may be, and how ``name@version`` and ``name@alias``
are read.

A name stands in a URL path segment unescaped, so it is letters, digits, ``.``, ``_`` and
``-``; ``@`` separates it from a version or alias. An alias starts with a letter, so
``name@3`` is always version 3 and never an alias called ``3``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_RULE = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
ALIAS_RULE = "[A-Za-z][A-Za-z0-9._-]{0,99}"
NAME = re.compile(NAME_RULE)
ALIAS = re.compile(ALIAS_RULE)
TAG_KEY_RULE = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
TAG_KEY = re.compile(TAG_KEY_RULE)
MAX_TAG_VALUE = 500
MAX_TAGS = 50

NAME_MESSAGE = (
    "A model name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or "
    f"digit ({NAME_RULE}), so that it can stand in a URL (/v1/models/<name>@<version>)")
ALIAS_MESSAGE = (
    "An alias is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter "
    f"({ALIAS_RULE}): name@3 is always version 3")


def check_name(name: str) -> str:
    if NAME.fullmatch(name) is None:
        raise ValueError(NAME_MESSAGE)
    return name


@dataclass(frozen=True)
class Reference:
    """``name@version`` or ``name@alias`` (one of ``version`` and ``alias`` is set)."""

    name: str
    version: int | None
    alias: str | None


def parse_reference(text: str) -> Reference | None:
    """The reference ``text`` spells, or None when it is no ``name@...`` (a model id)."""
    name, at, selector = text.partition("@")
    if not at or NAME.fullmatch(name) is None:
        return None
    if selector.isascii() and selector.isdigit() and len(selector) <= 9:
        return Reference(name, int(selector), None)
    if ALIAS.fullmatch(selector) is not None:
        return Reference(name, None, selector)
    return None
