"""A batch's stored Parquet predictions as the client asks for them (CSV by Accept)."""

from __future__ import annotations

import io

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


def wants_csv(accept: str | None) -> bool:
    """CSV when ``Accept`` names it before Parquet; Parquet otherwise (also for ``*/*``)."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in (CSV, "text/*"):
            return True
        if media == PARQUET:
            return False
    return False


def parquet_to_csv(content: bytes) -> bytes:
    """The predictions as CSV: a ``prediction`` header, one shortest round-trip number per
    row, empty for NA (as the inline predictions' CSV). Its cost grows with the batch: run
    it in a compute child."""
    table = pq.read_table(io.BytesIO(content))
    sink = io.BytesIO()
    options = pacsv.WriteOptions(quoting_style="none", quoting_header="none", batch_size=65536)
    pacsv.write_csv(table, sink, options)
    return sink.getvalue()
