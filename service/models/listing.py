"""How a list of models is filtered, sorted and paged: the filters, the sort orders and
the opaque cursor that continues a page where the previous one ended.

A cursor is the sort key of the page's last model (and its id, which breaks ties),
base64url-encoded JSON: it names a position in the order, not an offset, so a page is not
shifted by models created or deleted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from service.db.models import ModelRow
from service.errors import InvalidInput

Sort = Literal["created_at", "-created_at", "name"]
SORTS: tuple[Sort, ...] = ("created_at", "-created_at", "name")


@dataclass(frozen=True)
class ModelFilter:
    status: str | None = None
    kind: str | None = None
    name: str | None = None
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    dataset_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def parse_tags(tags: list[str]) -> tuple[tuple[str, str], ...]:
    """``key:value`` pairs (a value may hold further colons); 422 for one without."""
    pairs = []
    for tag in tags:
        key, colon, value = tag.partition(":")
        if not colon or not key:
            raise InvalidInput(f"The tag filter {tag!r} is not of the form key:value "
                               "(?tag=team:mood).", field="tag")
        pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class Cursor:
    """The position after a model in one sort order."""

    sort: Sort
    key: tuple[Any, ...]  # the sort key's values (created_at as datetime; or name, version)
    model_id: str


def sort_key(row: ModelRow, sort: Sort) -> tuple[Any, ...]:
    if sort == "name":
        return (row.name or "", row.version or 0)
    return (row.created_at,)


def encode_cursor(row: ModelRow, sort: Sort) -> str:
    key = [value.isoformat() if isinstance(value, datetime) else value
           for value in sort_key(row, sort)]
    raw = json.dumps({"s": sort, "k": key, "i": row.id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, sort: Sort) -> Cursor:
    """The cursor ``text`` encodes; 422 if it is not one of ours or of another sort."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        cursor_sort, key, model_id = raw["s"], list(raw["k"]), str(raw["i"])
        if cursor_sort == "name":
            parsed: tuple[Any, ...] = (str(key[0]), int(key[1]))
        else:
            parsed = (datetime.fromisoformat(key[0]),)
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error) as error:
        raise InvalidInput("The cursor is not one this service gave: use the 'next' link "
                           "of a page as it is.", field="cursor") from error
    if cursor_sort != sort:
        raise InvalidInput(f"The cursor continues a list sorted by {cursor_sort}, not "
                           f"{sort}: keep the sort of the page it came from.", field="cursor")
    return Cursor(sort, parsed, model_id)
