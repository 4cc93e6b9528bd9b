"""A prediction's answer in the media type the client asks for (``Accept``): JSON (by
default), CSV or Parquet, each with one prediction per row in the order given.

JSON is written with orjson straight from the floats: a 100,000-row answer is not built as
pydantic objects first. A missing prediction (R's NA) is null in JSON, an empty CSV field
and a null in Parquet.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import Response

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
ANSWER_TYPES = (JSON, CSV, PARQUET)

OPENAPI_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {
    CSV: {"schema": {"type": "string"},
          "description": "One column, prediction, one row per new row"},
    PARQUET: {"schema": {"type": "string", "format": "binary"},
              "description": "One float64 column, prediction"}}}}


def answer_type(accept: str | None) -> str:
    """The first of the answer types that ``Accept`` names (``*/*`` or none: JSON)."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ANSWER_TYPES:
            return media
        if media in ("*/*", "application/*", "application/json", "text/*"):
            return CSV if media == "text/*" else JSON
    return JSON


def predictions_response(model_id: str, values: Sequence[float | None],
                         media: str) -> Response:
    if media == CSV:
        lines = ["prediction", *("" if v is None else repr(v) for v in values)]
        return Response("\n".join(lines) + "\n", media_type="text/csv; charset=utf-8")
    if media == PARQUET:
        sink = io.BytesIO()
        pq.write_table(pa.table({"prediction": pa.array(values, type=pa.float64())}), sink)
        return Response(sink.getvalue(), media_type=PARQUET)
    return Response(orjson.dumps({"model_id": model_id, "predictions": list(values)}),
                    media_type=JSON)
