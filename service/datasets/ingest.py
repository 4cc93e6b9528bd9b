"""Uploaded bytes -> a typed data frame -> Parquet bytes, with R's reading conventions.

Every column ends up as one of three types: numeric (float64), boolean (bool, or pandas'
nullable ``boolean`` when values are missing) and categorical (strings). As in R's
``read.csv``, ``NA`` and empty cells are missing, a column of ``TRUE``/``FALSE``/``T``/``F``
is logical (R 4.2's ``type.convert``: ``true``/``True``/``false``/``False`` are text, so such
a column is a factor) and a column that mixes numbers and text is text. Columns declared
categorical are factors whatever they hold (:mod:`service.datasets.rtext`). Anything that
cannot be read becomes an ``InvalidInput`` (422) naming the problem.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from service.datasets.rtext import (
    FALSE_TEXT,
    TEXT_OR_NONE,
    TRUE_TEXT,
    series_as_r_labels,
    values_as_r_labels,
)
from service.errors import InvalidInput, PayloadTooLarge

DType = Literal["numeric", "categorical", "boolean"]
Format = Literal["csv", "parquet"]

PARQUET_MAGIC = b"PAR1"
# R's read.csv reads these as missing (na.strings = "NA", plus empty fields); "NaN" is R's
# not-a-number, which a model frame drops like a missing value.
NA_STRINGS = ["NA", "", "NaN"]
# R's type.convert turns a column of these, and only these, into a logical vector (R 4.2.2:
# type.convert(c("True", "False")) is character; tests/data/r/logical_spellings.R)
_TRUE = TRUE_TEXT
_FALSE = FALSE_TEXT


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    dtype: DType
    n_missing: int
    # distinct values present (a factor's levels): stored, not shown, for the design-size
    # check of POST /v1/models
    n_levels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype,
                               "n_missing": self.n_missing}
        if self.n_levels is not None:
            out["n_levels"] = self.n_levels
        return out


@dataclass(frozen=True)
class Table:
    """A normalized upload: the frame, its column profile and its Parquet encoding."""

    frame: pd.DataFrame
    columns: tuple[ColumnInfo, ...]
    parquet: bytes

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def sniff_format(data: bytes, filename: str | None = None) -> Format:
    """Parquet when the bytes carry Parquet's magic number (or the name says so), else CSV."""
    if data[:4] == PARQUET_MAGIC or (filename or "").lower().endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


@dataclass(frozen=True)
class Limits:
    """What an upload may hold, each the value of a setting (None: no limit). Each is
    checked before the work it bounds: the bytes before parsing, a CSV's header line before
    its rows, a Parquet file's metadata before a value is decoded."""

    upload_bytes: int | None = None  # MIXEDFIT_MAX_UPLOAD_BYTES
    decoded_bytes: int | None = None  # MIXEDFIT_MAX_DECODED_BYTES
    columns: int | None = None  # MIXEDFIT_MAX_COLUMNS
    rows: int | None = None  # MIXEDFIT_MAX_ROWS


def too_many_columns(n_columns: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The data has {n_columns} columns, more than the limit of {limit} "
        "(MIXEDFIT_MAX_COLUMNS); upload only the columns the models use.",
        setting="MIXEDFIT_MAX_COLUMNS", limit=limit, n_columns=n_columns)


def too_many_rows(limit: int, n_rows: int | None = None) -> PayloadTooLarge:
    held = f"{n_rows} rows" if n_rows is not None else f"more than {limit} rows"
    return PayloadTooLarge(
        f"The data has {held}, more than the limit of {limit} (MIXEDFIT_MAX_ROWS).",
        setting="MIXEDFIT_MAX_ROWS", limit=limit)


def too_large_decoded(size: int, limit: int, how: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload decodes to {how} {size} bytes, more than the limit of {limit} bytes "
        "(MIXEDFIT_MAX_DECODED_BYTES).", setting="MIXEDFIT_MAX_DECODED_BYTES", limit=limit,
        decoded_bytes=size)


def check_shape(limits: Limits, n_columns: int | None = None, n_rows: int | None = None
                ) -> None:
    """A 413 naming the limit when ``n_columns`` or ``n_rows`` pass it."""
    if limits.columns is not None and n_columns is not None and n_columns > limits.columns:
        raise too_many_columns(n_columns, limits.columns)
    if limits.rows is not None and n_rows is not None and n_rows > limits.rows:
        raise too_many_rows(limits.rows, n_rows)


def read_table(data: bytes, fmt: Format, limits: Limits | None = None,
               categorical: Collection[str] = ()) -> Table:
    """Parse an uploaded CSV or Parquet file into a normalized table.

    ``limits`` bound what the upload may hold; besides them, a Parquet file may hold no
    more values than a CSV within the upload limit could (one character and a separator
    each). ``categorical`` names columns declared categorical: a CSV's are read as the text
    written (R's ``colClasses = "factor"``), a Parquet file's values written as R's
    ``as.character`` writes them.
    """
    limits = limits or Limits()
    if fmt == "csv":
        # the text is the decoded data: no larger than the bytes sent
        if limits.decoded_bytes is not None and len(data) > limits.decoded_bytes:
            raise too_large_decoded(len(data), limits.decoded_bytes, "")
        frame = read_csv(data, text_columns=categorical, max_columns=limits.columns,
                         max_rows=None if limits.rows is None else limits.rows + 1)
        check_shape(limits, n_rows=len(frame))
    else:
        upload = limits.upload_bytes
        frame = read_parquet(data, None if upload is None else upload // 2,
                             exact_integers=categorical, limits=limits)
        check_declared(categorical, [str(c) for c in frame.columns])
    return normalize(frame, categorical)


def read_csv(data: bytes, text_columns: Collection[str] = (), *,
             strict: bool = True, max_columns: int | None = None,
             max_rows: int | None = None) -> pd.DataFrame:
    """Read CSV bytes (UTF-8, optionally with a byte-order mark) into a data frame.

    ``text_columns`` are read as the text written in the file (R's ``colClasses =
    "character"``); a name that is not in the header is a 422 naming it, or with
    ``strict=False`` ignored. A header of more than ``max_columns`` names is a 413 before
    any row is parsed; at most ``max_rows`` rows are read.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The upload is not UTF-8 text: byte {exc.start} (0x{data[exc.start]:02x}) cannot "
            "be decoded. Save the CSV as UTF-8, or upload Parquet.") from None
    if not text.strip():
        raise InvalidInput("The upload is empty: a CSV needs a header line and at least one row.")
    _check_no_nul(text)
    sep = delimiter(text)
    header = _check_header(text, sep, max_columns)
    if strict:
        check_declared(text_columns, header)
    as_text = [name for name in dict.fromkeys(text_columns) if name in set(header)]
    frame = _parse_csv(text, sep, as_text, nrows=max_rows)
    # pandas reads true/True/false/False (and TRUE/FALSE) as booleans; R 4.2 reads only
    # TRUE/FALSE/T/F as logical, so such columns are read again as their text, which
    # _normalize_column then types as R does
    boolean = [str(name) for name in frame.columns
               if str(name) not in as_text and _read_as_booleans(frame[name])]
    if boolean:
        raw = _parse_csv(text, sep, boolean, only=True, nrows=max_rows)
        for name in boolean:
            frame[name] = raw[name]
    return frame


def _parse_csv(text: str, sep: str, as_text: list[str], *, only: bool = False,
               nrows: int | None = None) -> pd.DataFrame:
    with warnings.catch_warnings():
        # pandas only warns when a row has more fields than the header and then drops them;
        # R refuses such a file, and silently losing data is worse than refusing.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(io.StringIO(text), sep=sep, index_col=False,
                               keep_default_na=False, na_values=NA_STRINGS, low_memory=False,
                               dtype=dict.fromkeys(as_text, object) or None,
                               usecols=as_text if only else None, nrows=nrows)
        except pd.errors.ParserWarning:
            raise InvalidInput("A row has more fields than the header line has column names."
                               ) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise InvalidInput(_csv_problem(exc)) from None


def _read_as_booleans(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    return series.dtype == object and any(isinstance(v, bool) for v in series.dropna())


def check_declared(declared: Collection[str], names: Sequence[str]) -> None:
    """A 422 naming the columns declared categorical that the data does not have."""
    known = set(names)
    unknown = [name for name in dict.fromkeys(declared) if name not in known]
    if unknown:
        raise InvalidInput(
            "Columns declared categorical are not in the data: " + ", ".join(unknown)
            + " (the data's columns: " + ", ".join(list(names)[:50])
            + (", ..." if len(names) > 50 else "") + ")",
            unknown_columns=unknown)


def _check_no_nul(text: str) -> None:
    # NUL is no character of any text (PostgreSQL cannot store it); in a "CSV" it almost
    # always means UTF-16 sent as if it were UTF-8, or a binary file.
    position = text.find("\x00")
    if position >= 0:
        line = text.count("\n", 0, position) + 1
        raise InvalidInput(
            f"The upload contains a NUL character (U+0000) on line {line}, so it is not UTF-8 "
            "text: a file saved as UTF-16 looks like this. Save the CSV as UTF-8, or upload "
            "Parquet.")


def _csv_problem(exc: BaseException) -> str:
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if fields:
        expected, line, seen = fields.groups()
        return (f"The CSV cannot be parsed: line {line} has {seen} fields but the header has "
                f"{expected} column names.")
    return f"The CSV cannot be parsed: {_first_line(exc)}"


def delimiter(text: str) -> str:
    """The field separator: a comma, unless the header line has none but has tabs (TSV) or
    semicolons (the CSV of spreadsheets in locales that write decimal commas)."""
    header = text.lstrip("\n").split("\n", 1)[0]
    if "," in header:
        return ","
    if "\t" in header:
        return "\t"
    return ";" if ";" in header else ","


def _check_header(text: str, sep: str, max_columns: int | None = None) -> list[str]:
    try:
        # the header line alone: a file too wide is refused before any row is parsed
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    except csv.Error as exc:
        raise InvalidInput(f"The CSV header cannot be parsed: {exc}") from None
    if max_columns is not None and len(header) > max_columns:
        raise too_many_columns(len(header), max_columns)
    _check_names(header)
    return header


def _check_names(names: Sequence[str]) -> None:
    if not names:
        raise InvalidInput("The data has no columns.")
    for position, name in enumerate(names, start=1):
        if "\x00" in str(name):
            raise InvalidInput(f"Column {position} has a NUL character (U+0000) in its name "
                               f"{str(name)!r}; names must be text.")
        if not str(name).strip():
            raise InvalidInput(
                f"Column {position} has no name. A CSV written by R's write.csv has an unnamed "
                "first column of row names: write it with row.names = FALSE.")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidInput("Column names must be unique; repeated: " + ", ".join(duplicates),
                           duplicate_columns=duplicates)


def read_parquet(data: bytes, max_values: int | None = None,
                 exact_integers: Collection[str] = (), limits: Limits | None = None
                 ) -> pd.DataFrame:
    """Read Parquet bytes into a data frame of at most ``max_values`` values (rows × columns).

    Integer columns named in ``exact_integers`` hold Python integers (None where missing)
    instead of pandas' float64 of an integer column with missing values. ``limits`` are
    checked against the file's metadata before any value is decoded, and the decoded size
    again while the row groups are decoded.
    """
    limits = limits or Limits()
    try:
        file = pq.ParquetFile(io.BytesIO(data))
        check_parquet_metadata(file.metadata, limits, max_values)
        if limits.decoded_bytes is not None:
            table = _read_bounded(file, limits.decoded_bytes)
        else:
            table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"The Parquet file cannot be read: {_first_line(exc)}") from None
    _check_names(table.column_names)
    for field in table.schema:
        if pa.types.is_nested(field.type):
            raise InvalidInput(f"Column {field.name!r} holds nested values ({field.type}); "
                               "only flat numeric, text and boolean columns can be modelled.")
    table = _binary_as_text(table)
    try:
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError) as exc:
        raise InvalidInput(f"The Parquet file cannot be converted: {_first_line(exc)}") from None
    for name in dict.fromkeys(exact_integers):
        if name in table.column_names and pa.types.is_integer(table.schema.field(name).type):
            frame[name] = pd.Series(table.column(name).to_pylist(), dtype=object)
    return frame


def check_parquet_metadata(metadata: pq.FileMetaData, limits: Limits,
                           max_values: int | None = None) -> None:
    """Refuse a Parquet file from its footer alone: compression and run-length encoding
    let a few kB describe billions of values, so they are counted before any is decoded."""
    check_shape(limits, metadata.num_columns, metadata.num_rows)
    values = metadata.num_rows * metadata.num_columns
    if max_values is not None and values > max_values:
        raise PayloadTooLarge(
            f"The Parquet file holds {metadata.num_rows} rows of {metadata.num_columns} "
            f"columns ({values} values), more than the {max_values} that an upload within "
            "the limit (MIXEDFIT_MAX_UPLOAD_BYTES) can hold as CSV.",
            setting="MIXEDFIT_MAX_UPLOAD_BYTES", max_values=max_values)
    if limits.decoded_bytes is not None:
        estimate = decoded_size(metadata)
        if estimate > limits.decoded_bytes:
            raise too_large_decoded(estimate, limits.decoded_bytes, "about")


# the longest header line looked for before a CSV's rows are read
HEADER_SCAN_BYTES = 16 * 2**20


def precheck(data: bytes | Path, fmt: Format, limits: Limits) -> None:
    """The limits an upload can be held to without decoding it (a Parquet file's footer, a
    CSV's header line), checked before a compute child is started to read it. ``data`` is
    the body, or the file it was spooled to (only the footer or the first line is read)."""
    if fmt == "parquet":
        try:
            source = data if isinstance(data, Path) else io.BytesIO(data)
            metadata = pq.ParquetFile(source).metadata
        except (pa.ArrowException, OSError, ValueError):
            return  # unreadable: the reader's own message says why
        upload = limits.upload_bytes
        check_parquet_metadata(metadata, limits, None if upload is None else upload // 2)
        return
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    if limits.decoded_bytes is not None and size > limits.decoded_bytes:
        raise too_large_decoded(size, limits.decoded_bytes, "")
    head = head_of(data, HEADER_SCAN_BYTES)
    first_line = head[:head.find(b"\n") + 1 or len(head)]
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return  # the reader says where
    if text.strip():
        _check_header(text, delimiter(text), limits.columns)


def head_of(data: bytes | Path, size: int) -> bytes:
    """The first ``size`` bytes of a body or of the file it was spooled to."""
    if isinstance(data, bytes):
        return data[:size]
    with data.open("rb") as file:
        return file.read(size)


_FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def decoded_size(metadata: pq.FileMetaData) -> int:
    """The bytes a Parquet file's values take decoded (in Arrow), from its metadata alone.

    Not the pages' uncompressed size: dictionary and run-length encoding keep a million
    copies of one long string in a few bytes of each. Fixed-width values take their
    width; text takes its unencoded size where the writer recorded it (Parquet's size
    statistics), else the row count times the longer of its min and max (each value has
    an offset of 4 bytes too), and never less than its uncompressed pages.
    """
    total = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            physical = chunk.physical_type
            count = chunk.num_values
            if physical in _FIXED_WIDTH:
                total += count * _FIXED_WIDTH[physical]
                continue
            size = int(chunk.total_uncompressed_size)
            sizes = getattr(chunk, "size_statistics", None)
            unencoded = getattr(sizes, "unencoded_byte_array_data_bytes", None)
            if unencoded is not None:
                size = max(size, int(unencoded) + 4 * count)
            stats = chunk.statistics
            if stats is not None and stats.has_min_max:
                longest = max(len(_raw(stats.min)), len(_raw(stats.max)))
                size = max(size, count * (longest + 4))
            total += size
    return total


def _raw(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


DECODE_BATCH_ROWS = 65_536


def _read_bounded(file: pq.ParquetFile, limit: int) -> pa.Table:
    """The file's rows, decoded a batch of rows at a time, stopping once they pass
    ``limit`` bytes (a file whose metadata understated its size, e.g. text without
    statistics)."""
    batches: list[pa.RecordBatch] = []
    size = 0
    for batch in file.iter_batches(batch_size=DECODE_BATCH_ROWS):
        size += batch.nbytes
        if size > limit:
            raise too_large_decoded(size, limit, "more than")
        batches.append(batch)
    schema = file.schema_arrow
    if not batches:
        return schema.empty_table()
    table = pa.Table.from_batches(batches)
    return table.replace_schema_metadata(schema.metadata)


def _binary_as_text(table: pa.Table) -> pa.Table:
    """Binary columns as text: bytes that are UTF-8 are a text column, others are refused."""
    for index, field in enumerate(table.schema):
        if not (pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
                or pa.types.is_fixed_size_binary(field.type)):
            continue
        try:
            column = table.column(index).cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput(f"Column {field.name!r} holds binary values that are not UTF-8 "
                               "text; only numeric, text and boolean columns can be modelled."
                               ) from None
        table = table.set_column(index, pa.field(field.name, pa.string()), column)
    return table


def frame_from_records(records: Sequence[Mapping[str, Any]],
                       categorical: Collection[str] = (), *, strict: bool = True
                       ) -> pd.DataFrame:
    """Records (JSON objects of scalars) to a data frame; a key absent in a record is missing.

    Columns named in ``categorical`` hold each value as R's ``as.character`` writes it
    (whole JSON numbers as R integers, others as doubles, booleans ``TRUE``/``FALSE``);
    the names must be keys of the records (with ``strict=False`` others are ignored).
    """
    names = dict.fromkeys(chain.from_iterable(records))  # in order of first appearance
    return frame_from_columns({name: [record.get(name) for record in records]
                               for name in names}, categorical, strict=strict)


def frame_from_columns(columns: Mapping[str, Sequence[Any]],
                       categorical: Collection[str] = (), *, strict: bool = True
                       ) -> pd.DataFrame:
    """Columns (JSON arrays of scalars, all of one length) to a data frame, typed as
    ``frame_from_records`` types them."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in list(lengths.items())[:20])
        raise InvalidInput(f"The columns have different lengths ({shown}); give every "
                           "column one value per row (null for a missing one).")
    if strict:
        check_declared(categorical, list(columns))
    declared = set(categorical)
    return pd.DataFrame({name: (_labelled_values(list(values)) if name in declared
                                else _typed_values(name, list(values)))
                         for name, values in columns.items()})


NUMBER_OR_NONE = frozenset({int, float, type(None)})


def _labelled_values(values: list[Any]) -> pd.Series:
    return pd.Series(values_as_r_labels(values), dtype=object)


def _typed_values(name: str, values: list[Any]) -> Any:
    kinds = set(map(type, values))
    if kinds <= NUMBER_OR_NONE:  # JSON's numbers: converted in C (None: NaN)
        try:
            return pd.array(np.array(values, dtype=np.float64), dtype="float64")
        except OverflowError:
            pass  # an integer beyond a double's range: said below
    if kinds <= TEXT_OR_NONE:
        return pd.Series(values, dtype=object)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.array(values, dtype="boolean")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.array([float("nan") if v is None else _float(name, v) for v in values],
                        dtype="float64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype=object)
    names = sorted({type(v).__name__ for v in present})
    raise InvalidInput(f"Column {name!r} mixes value types ({', '.join(names)}); give each "
                       "column numbers, strings or booleans only.")


def _float(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        # JSON integers have no size limit; a double's ends near 1.8e308
        raise InvalidInput(f"Column {name!r} has a number too large for a double-precision "
                           f"value ({str(value)[:20]}... with {len(str(value))} digits)."
                           ) from None


def normalize(frame: pd.DataFrame, categorical: Collection[str] = ()) -> Table:
    """Give every column one of the three types and encode the result as Parquet.

    Columns named in ``categorical`` are categorical whatever they hold, their values
    written as R's ``as.character`` writes them.
    """
    if frame.shape[1] == 0:
        raise InvalidInput("The data has no columns.")
    _check_names([str(c) for c in frame.columns])
    check_declared(categorical, [str(c) for c in frame.columns])
    if len(frame) == 0:
        raise InvalidInput("The data has no rows.")
    declared = set(categorical)
    out: dict[str, Any] = {}
    infos: list[ColumnInfo] = []
    for name in frame.columns:
        dtype: DType
        if str(name) in declared:
            series, dtype = _as_text(series_as_r_labels(frame[name])), "categorical"
        else:
            series, dtype = _normalize_column(frame[name])
        out[str(name)] = series
        infos.append(ColumnInfo(str(name), dtype, int(series.isna().sum()), n_levels(series)))
    normalized = pd.DataFrame(out)
    return Table(normalized, tuple(infos), to_parquet(normalized))


def n_levels(series: pd.Series) -> int:
    """The number of distinct values present (missing ones not counted)."""
    return int(series.nunique(dropna=True))


def _normalize_column(series: pd.Series) -> tuple[pd.Series, DType]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series, "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64"), "numeric"
    present = series.dropna()
    if len(present) and all(isinstance(v, bool) for v in present):
        return series.astype("boolean"), "boolean"
    text = present.astype(str)
    unique = set(text.unique())
    if unique and unique <= (_TRUE | _FALSE):
        mapped = series.map(lambda v: None if pd.isna(v) else str(v) in _TRUE)
        return mapped.astype("boolean"), "boolean"
    if len(present) == 0:
        # a column with nothing in it has no type to infer; numeric is R's choice too
        return series.astype("float64"), "numeric"
    return _as_text(series), "categorical"


def _as_text(series: pd.Series) -> pd.Series:
    # object, not pandas' "str" alias: in pandas 2 that alias turns missing values into "nan"
    as_text = series.map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    with_nul = as_text.map(lambda v: isinstance(v, str) and "\x00" in v)
    if with_nul.any():
        row = int(with_nul.to_numpy().argmax()) + 1
        raise InvalidInput(f"Column {str(series.name)!r} has a NUL character (U+0000) in row "
                           f"{row}; values must be text.")
    return as_text


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
