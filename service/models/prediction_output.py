"""A prediction's answer in the media type the client asks for (``Accept``): JSON (by
default), CSV or Parquet, each with one prediction per row in the order given.

JSON is written with orjson straight from the arrays: a 100,000-row answer is not built as
pydantic objects first. A missing prediction (R's NA) is null in JSON, an empty CSV field
and a null in Parquet.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import Response

from service.models.predicting import PredictionAnswer

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
ANSWER_TYPES = (JSON, CSV, PARQUET)

OPENAPI_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {
    CSV: {"schema": {"type": "string"},
          "description": "A column prediction, one row per new row; with an interval also "
                         "se_fit, lower and upper"},
    PARQUET: {"schema": {"type": "string", "format": "binary"},
              "description": "A float64 column prediction; with an interval also se_fit, "
                             "lower and upper"}}}}
INTERVAL_COLUMNS = ("se_fit", "lower", "upper")


def answer_type(accept: str | None) -> str:
    """The first of the answer types that ``Accept`` names (``*/*`` or none: JSON)."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ANSWER_TYPES:
            return media
        if media in ("*/*", "application/*", "application/json", "text/*"):
            return CSV if media == "text/*" else JSON
    return JSON


def predictions_response(model_id: str, answer: PredictionAnswer, media: str) -> Response:
    columns = _columns(answer)
    if media == CSV:
        names = list(columns)
        rows = zip(*(values.tolist() for values in columns.values()), strict=True)
        # repr: the shortest text that reads back as the same double, as R's 17 digits do
        lines = [",".join(names), *(",".join(repr(v) if v == v else "" for v in row)
                                    for row in rows)]
        return Response("\n".join(lines) + "\n", media_type="text/csv; charset=utf-8")
    if media == PARQUET:
        sink = io.BytesIO()
        pq.write_table(pa.table({name: pa.array(values, type=pa.float64(), from_pandas=True)
                                 for name, values in columns.items()}), sink)
        return Response(sink.getvalue(), media_type=PARQUET)
    document: dict[str, Any] = {"model_id": model_id, "predictions": answer.predictions}
    if answer.interval is not None:
        document.update(interval=answer.interval, level=answer.level,
                        **{name: columns[name] for name in INTERVAL_COLUMNS})
    # NaN (an NA) is written as null
    return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type=JSON)


def _columns(answer: PredictionAnswer) -> dict[str, np.ndarray]:
    """The answer's columns by name: prediction, then an interval's."""
    columns = {"prediction": answer.predictions}
    if answer.interval is not None:
        empty = np.empty(0, dtype=np.float64)
        columns.update({name: v if (v := getattr(answer, name)) is not None else empty
                        for name in INTERVAL_COLUMNS})
    return columns
