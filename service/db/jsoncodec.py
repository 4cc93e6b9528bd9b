"""How JSON columns are written and read: orjson, with the standard library behind it.

Results, prediction states and documents are JSON columns written once per fit and read
on every uncached render; orjson does both several times faster than ``json`` (a
sleepstudy fit's three documents: 1.1 ms to 0.4 ms to write). What orjson refuses is left
to ``json`` as before: integers beyond 64 bits (JSON allows them) on the way in, and on
the way out the ``NaN`` literals that ``json`` wrote into columns of databases made
before this.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
LONG_DIGITS = re.compile(r"\d{19,}")


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    # orjson reads an integer beyond 64 bits as a float; 19 digits in a row (never in a
    # double's shortest text) may be one, read exactly by json
    if LONG_DIGITS.search(text if isinstance(text, str) else text.decode()):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
