"""A prediction request's body read and predicted from a model's stored prediction state.

Pure: no database. A small body is predicted on the request thread; a large one in a
compute child (``service.compute``), where parsing and predicting run under its limits.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from service.datasets.ingest import frame_from_columns, frame_from_records, read_csv
from service.errors import InvalidInput, PayloadTooLarge, field_errors
from service.models.plain_rows import plain_columns
from service.models.schemas import IntervalKind, NewLevels, PredictionRequest
from service.models.signature import check_frame
from service.stats.predict import Predictor

# the Python types of a JSON cell (a row's value) as orjson reads it
CELL_TYPES = frozenset({str, int, float, bool, type(None)})
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
# the media types a prediction body may have
BODY_TYPES = ("application/json", CSV, PARQUET)


@dataclass(frozen=True)
class PredictionOptions:
    """How to predict: the request's options (a JSON body's own, or the query's for a CSV
    or Parquet body)."""

    include_random_effects: bool = True
    new_levels: NewLevels = "population"
    interval: IntervalKind = "none"
    level: float = 0.95
    random_effects: tuple[str, ...] | None = None  # grouping factors included (re.form)

    @classmethod
    def of(cls, spec: PredictionRequest) -> PredictionOptions:
        return cls(spec.include_random_effects, spec.new_levels, spec.interval, spec.level,
                   None if spec.random_effects is None else tuple(spec.random_effects))


@dataclass(frozen=True)
class PredictionAnswer:
    """One prediction per row (float64; NaN: R's NA) and, with an interval, its columns:
    arrays, since they are pickled from a compute child and written as JSON (orjson) or
    Parquet straight from the buffer."""

    predictions: np.ndarray
    interval: IntervalKind | None = None
    level: float | None = None
    se_fit: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


@dataclass(frozen=True)
class PredictionBody:
    """A prediction body checked for its shape: JSON records or columns (with the request's
    own options), or CSV or Parquet bytes; read into a frame once the model's categorical
    columns are known."""

    media: str
    body: bytes
    records: list[dict[str, Any]] | None
    columns: dict[str, list[Any]] | None
    options: PredictionOptions
    # the Python types in each of ``columns``, as the quick check found them (None: not
    # known), so that the arrays' way does not go over every value again
    column_types: dict[str, frozenset[type]] | None = None


def read_body_shape(body: bytes, media: str, options: PredictionOptions,
                    max_rows: int) -> PredictionBody:
    """Check a JSON body against the prediction request's schema and its row limit (the
    options of a CSV or Parquet body come from the query)."""
    if media in (CSV, PARQUET):
        return PredictionBody(media, body, None, None, options)
    spec, column_types = _prediction_request(body)
    check_rows(spec.n_rows, max_rows)
    return PredictionBody(media, b"", spec.records, spec.columns, PredictionOptions.of(spec),
                          column_types)


def predict_rows(predictor: Predictor, categorical: list[str], request: PredictionBody,
                 max_rows: int) -> PredictionAnswer:
    """Predictions for the rows of a checked body from a compiled model, whose
    ``categorical`` columns are read as text."""
    answered = _predict_plainly(predictor, categorical, request)
    if answered is not None:
        return answered
    frame = _as_frame(_frame(request, categorical, max_rows), max_rows)
    options = request.options
    groups = options.random_effects
    check_frame(predictor, frame, options.include_random_effects and groups != (),
                partial=groups is not None)
    if options.interval == "none":
        return PredictionAnswer(_floats(predictor.predict(
            frame, include_random_effects=options.include_random_effects,
            new_levels=options.new_levels, groups=groups)))
    table = predictor.predict_intervals(
        frame, interval=options.interval, level=options.level,
        include_random_effects=options.include_random_effects,
        new_levels=options.new_levels, groups=groups)
    return PredictionAnswer(_floats(table.fit), options.interval, options.level,
                            _floats(table.se_fit), _floats(table.lower), _floats(table.upper))


def _predict_plainly(predictor: Predictor, categorical: list[str],
                     request: PredictionBody) -> PredictionAnswer | None:
    """Predictions without a data frame for JSON rows that need none (``plain_rows``);
    None when the frame's way must answer: the same numbers by the same arithmetic."""
    options = request.options
    if request.media in (CSV, PARQUET) or options.interval != "none":
        return None
    if options.random_effects:
        # some grouping factors only: the signature check still reads the columns of the
        # terms left out (a 422 for text in a numeric one), which the arrays never see
        return None
    arrays = plain_columns(request.records, request.columns, categorical,
                           request.column_types)
    if arrays is None:
        return None
    prediction = predictor.predict_arrays(
        *arrays, include_random_effects=options.include_random_effects,
        new_levels=options.new_levels, groups=options.random_effects)
    return None if prediction is None else PredictionAnswer(_floats(prediction))


def _frame(request: PredictionBody, categorical: list[str], max_rows: int) -> pd.DataFrame:
    if request.media == CSV:
        # the model's categorical columns are read as written, as they were uploaded
        return read_csv(request.body, categorical, strict=False, max_rows=max_rows + 1)
    if request.media == PARQUET:
        return _parquet_frame(request.body, categorical, max_rows)
    # numbers for a categorical column are its levels as R writes them (1 -> "1")
    if request.columns is not None:
        return frame_from_columns(request.columns, categorical, strict=False)
    return frame_from_records(request.records or [], categorical, strict=False)


def _parquet_frame(body: bytes, categorical: list[str], max_rows: int) -> pd.DataFrame:
    """A Parquet body's rows; numbers in a categorical column become R's labels of them."""
    try:
        file = pq.ParquetFile(io.BytesIO(body))
    except (pa.ArrowException, OSError) as error:
        raise InvalidInput(f"The body is not a readable Parquet file: {error}") from None
    check_rows(file.metadata.num_rows, max_rows)
    return label_categoricals(file.read().to_pandas(), categorical)


def label_categoricals(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Numbers in a column the model reads as a factor become R's labels of them (1 -> "1"),
    as numbers in an uploaded factor column did."""
    for name in categorical:
        if name in frame.columns and not pd.api.types.is_string_dtype(frame[name]):
            values = frame[name].astype(object).where(frame[name].notna(), None).tolist()
            frame[name] = frame_from_columns({name: values}, [name])[name]
    return frame


def predict_body(state: dict[str, Any], body: bytes, media: str, options: PredictionOptions,
                 max_rows: int) -> PredictionAnswer:
    """``read_body_shape`` then ``predict_rows``: all of a large body's work, for a compute
    child."""
    request = read_body_shape(body, media, options, max_rows)
    return predict_rows(Predictor(state), categorical_columns(state), request, max_rows)


def prediction_request(body: bytes) -> PredictionRequest:
    return _prediction_request(body)[0]


def _prediction_request(body: bytes
                        ) -> tuple[PredictionRequest, dict[str, frozenset[type]] | None]:
    """The request, and the types in each of its columns when the quick check knows them."""
    quick = _rows_checked_quickly(body)
    if quick is not None:
        return quick
    try:
        return PredictionRequest.model_validate_json(body), None
    except ValidationError as exc:
        errors = field_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        raise InvalidInput("The JSON body is not a prediction request: " + "; ".join(
            f"{e['field'] or 'body'}: {e['detail']}" for e in errors), errors=errors) from None


def _rows_checked_quickly(body: bytes
                          ) -> tuple[PredictionRequest, dict[str, frozenset[type]] | None] | None:
    """A well-formed request whose rows are checked by their values' types (a pass in C
    over each list) rather than by pydantic value by value, which took 1.3 s per million
    cells; the options are validated by the schema as always. None when anything is not
    plainly well formed: the schema's validation then says what is wrong. With the
    request, the types found in each column (of a columns body)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:  # also integers beyond 64 bits, which the schema takes
        return None
    if not isinstance(document, dict):
        return None
    records, columns = document.get("records"), document.get("columns")
    if records is not None and columns is None:
        if not (type(records) is list and records
                and set(map(type, records)) == {dict}
                and set(map(type, chain.from_iterable(map(dict.values, records))))
                <= CELL_TYPES):
            return None
        placeholder: dict[str, Any] = {"records": [{}]}
        column_types = None
    elif columns is not None and records is None:
        if not (type(columns) is dict and columns
                and set(map(type, columns.values())) == {list}):
            return None
        column_types = {name: frozenset(map(type, values))
                        for name, values in columns.items()}
        if not frozenset().union(*column_types.values()) <= CELL_TYPES:
            return None
        placeholder = {"columns": {"": []}}
    else:
        return None
    options = {name: value for name, value in document.items()
               if name not in ("records", "columns")}
    try:
        # no options (the usual body): every such request validates to the same defaults
        spec = (_default_spec("records" in placeholder) if not options
                else PredictionRequest.model_validate({**options, **placeholder}))
    except ValidationError:
        return None
    return spec.model_copy(update={"records": records, "columns": columns}), column_types


@lru_cache(maxsize=2)
def _default_spec(records: bool) -> PredictionRequest:
    """The validated request of rows with no options (records, or columns), made once:
    ``model_copy`` of it gives every such request its rows."""
    return PredictionRequest.model_validate({"records": [{}]} if records
                                            else {"columns": {"": []}})


def categorical_columns(state: dict[str, Any]) -> list[str]:
    """The data columns a stored model encodes as factors (per-group models: their
    groups' formulas; the grouping columns themselves are labelled from the new data)."""
    encoders = ([group["encoder"] for group in state.get("groups", {}).values()]
                if state.get("kind") == "lm_by_group" else [state.get("encoder", {})])
    names = (str(name) for encoder in encoders
             for name, kind in encoder.get("kinds", {}).items() if kind == "categorical")
    return list(dict.fromkeys(names))


def check_rows(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise PayloadTooLarge(
            f"The prediction body has more than {max_rows} rows, the limit "
            "(MIXEDFIT_MAX_PREDICTION_ROWS); send them in smaller batches.",
            setting="MIXEDFIT_MAX_PREDICTION_ROWS", limit=max_rows)


def _as_frame(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    if len(frame) == 0:
        raise InvalidInput("There are no rows to predict.")
    check_rows(len(frame), max_rows)
    return frame


def _floats(values: Sequence[Any] | Any) -> np.ndarray:
    """float64 values with every non-finite one NaN (an NA: null in JSON and Parquet)."""
    out = np.array(values, dtype=np.float64)  # a copy: the caller's array is left alone
    out[~np.isfinite(out)] = np.nan
    return out
