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
