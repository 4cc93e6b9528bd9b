"""JSON columns are written and read by orjson, and what it refuses by ``json`` as before:
a stored document reads back as it was written, whichever library wrote it."""

from __future__ import annotations

import json
import math

import numpy as np

from service.db import jsoncodec


def test_documents_round_trip_and_non_finite_numbers_are_null() -> None:
    value = {"a": [1, 2.5, None, "x", True], "n": {"nested": (1, 2)}, "nan": math.nan,
             "array": np.array([1.5, 2.0])}
    assert jsoncodec.loads(jsoncodec.dumps(value)) == {
        "a": [1, 2.5, None, "x", True], "n": {"nested": [1, 2]}, "nan": None,
        "array": [1.5, 2.0]}


def test_what_orjson_refuses_is_written_and_read_as_json_does() -> None:
    big = {"count": 10 ** 30, 7: "seven"}  # beyond 64 bits; a key that is not text
    assert jsoncodec.loads(jsoncodec.dumps(big)) == {"count": 10 ** 30, "7": "seven"}
    # columns written by json before: its NaN literal reads back
    legacy = json.dumps({"x": math.nan})
    assert math.isnan(jsoncodec.loads(legacy)["x"])


def test_integers_of_nineteen_digits_and_more_read_exactly() -> None:
    """orjson reads an integer beyond 64 bits as a float: any 19-digit run sends the text
    to json, in text or bytes, wherever it stands; shorter runs stay with orjson."""
    for number in (10 ** 18, 2 ** 64, -(2 ** 63) - 1, 10 ** 30):
        for text in (f'{{"n": {number}}}', f'{{"tag": "é", "n": [{number}]}}'):
            assert jsoncodec.loads(text)["n"] in (number, [number])
            assert jsoncodec.loads(text.encode())["n"] in (number, [number])
    assert jsoncodec.loads('{"x": 1.2345678901234567, "n": 123456789012345678}') == {
        "x": 1.2345678901234567, "n": 123456789012345678}
