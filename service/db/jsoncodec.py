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
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# 19 digits in a row, found by mapping every digit to 0 and looking for nineteen 0s: two
# passes in C (4.5 microseconds on a sleepstudy fit's 3 kB of conditional modes) where a
# regular expression took 330, on every model read
DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
NINETEEN_DIGITS = b"0" * 19


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    # orjson reads an integer beyond 64 bits as a float; 19 digits in a row (never in a
    # double's shortest text) may be one, read exactly by json
    data = text.encode() if isinstance(text, str) else text
    if data.translate(DIGITS_AS_ZEROS).find(NINETEEN_DIGITS) != -1:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
