"""Row ids as the databases can hold them."""

from __future__ import annotations


def can_exist(row_id: str) -> bool:
    """False for an id no row can have: ids are text, and PostgreSQL refuses NUL in text
    (an error, not an empty result), so such an id is answered without a query."""
    return "\x00" not in row_id
