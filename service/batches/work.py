"""What a batch prediction's child process does: read the dataset, predict, write Parquet.

Pure (no database, no settings): it runs in a worker's warm process under the fit's time
and memory limits, like a fit (``service.jobs.child.ChildWork``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from service.jobs.child import Report, read_parquet
from service.models.predicting import categorical_columns, label_categoricals
from service.stats.predict import Predictor

PREDICTION_COLUMN = "prediction"
# the job kind of a batch prediction (service.jobs.kinds)
KIND = "predict"


@dataclass(frozen=True)
class BatchOutcome:
    n_rows: int
    parquet: bytes  # one column, ``prediction``, in the dataset's row order


@dataclass(frozen=True)
class BatchPredictionWork:
    state: dict[str, Any]  # the model's prediction state
    parquet: bytes  # the dataset
    include_random_effects: bool
    new_levels: str

    @property
    def label(self) -> str:
        return "batch prediction"

    def run(self, report: Report) -> BatchOutcome:
        frame = label_categoricals(read_parquet(self.parquet), categorical_columns(self.state))
        values = Predictor(self.state).predict_available(
            frame, include_random_effects=self.include_random_effects,
            new_levels="error" if self.new_levels == "error" else "population")
        return BatchOutcome(len(frame), predictions_parquet(values))


def predictions_parquet(values: np.ndarray) -> bytes:
    """The predictions as a Parquet file; NaN (a row R's predict gives NA) is null."""
    array = pa.array(values, type=pa.float64(), mask=~np.isfinite(values))
    sink = io.BytesIO()
    pq.write_table(pa.table({PREDICTION_COLUMN: array}), sink, compression="zstd")
    return sink.getvalue()
