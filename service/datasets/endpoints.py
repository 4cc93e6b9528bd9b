"""HTTP routes of /v1/datasets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.body import Body, media_type, read_body, read_body_spooled, replay, unsupported
from service.datasets import service
from service.datasets.ingest import Limits
from service.datasets.schemas import Dataset, DatasetList, DatasetRecords
from service.dependencies import ComputeDep, SessionDep, SettingsDep
from service.errors import InvalidInput, problem_responses
from service.pagination import PageQuery
from service.settings import Settings

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

# tab-separated text is read as CSV: the separator is detected from the header line
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "text/tab-separated-values")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet",
                 "application/octet-stream")
ACCEPTED = ["text/csv", "multipart/form-data (a 'file' part)", "application/json",
            "application/vnd.apache.parquet"]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"},
                         "description": "Comma-, tab- or semicolon-separated, UTF-8"},
            "text/tab-separated-values": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary",
                                        "description": "A CSV or Parquet file"},
                               "name": {"type": "string"},
                               "categorical": {
                                   "type": "string",
                                   "description": "Columns to store as categorical, "
                                                  "comma-separated (as ?categorical=)"}},
            }},
            "application/json": {"schema": DatasetRecords.model_json_schema()},
        },
    }
}


def upload_limits(settings: Settings) -> Limits:
    return Limits(upload_bytes=settings.max_upload_bytes,
                  decoded_bytes=settings.max_decoded_bytes, columns=settings.max_columns,
                  rows=settings.max_rows)


async def _read_upload(request: Request, limits: Limits, name: str | None,
                       categorical: tuple[str, ...], memory_bytes: int) -> service.Upload:
    """The upload; a raw body over ``memory_bytes`` is spooled to a temporary file (its
    ``path``), which the caller removes (``_discard``)."""
    media = media_type(request)
    limit = limits.upload_bytes
    assert limit is not None
    kinds = {**dict.fromkeys(CSV_TYPES, "csv"), **dict.fromkeys(PARQUET_TYPES, "sniff")}
    if media == "application/json" or media.endswith("+json"):
        kinds[media] = "records"
    if media in kinds:
        spooled = await read_body_spooled(request, limit, memory_bytes)
        return service.Upload(spooled.data, kinds[media], name, limits=limits,
                              categorical=categorical, path=spooled.path,
                              spooled_bytes=spooled.size)
    if media == "multipart/form-data":
        body = await read_body(request, limit)
        try:
            form = await replay(request, body).form(max_files=1, max_fields=10)
        except StarletteHTTPException as exc:
            # Starlette calls a body it cannot split into parts a 400; like every other
            # unreadable upload it is a 422 that says what is wrong
            raise InvalidInput(f"The multipart body cannot be read: {exc.detail}") from None
        try:
            part = form.get("file")
            if not isinstance(part, UploadFile):
                raise InvalidInput("The multipart body has no 'file' part holding the data.")
            form_name = form.get("name")
            declared = service.declared_columns(
                [*categorical, *(v for v in form.getlist("categorical") if isinstance(v, str))])
            return service.Upload(await part.read(), "sniff",
                                  name or (form_name if isinstance(form_name, str) else None),
                                  filename=part.filename, limits=limits,
                                  categorical=declared)
        finally:
            await form.close()  # removes the spooled temporary file
    raise unsupported(request, ACCEPTED)


def _parse_inline(upload: service.Upload, settings: Settings) -> bool:
    """Whether to parse an upload on the request thread: a small text body (CSV or JSON),
    whose parse costs less than starting a child. Parquet always goes to a compute child:
    a small compressed file can decode to far more than it weighs."""
    return (upload.kind in ("csv", "records") and upload.path is None
            and len(upload.data) <= settings.inline_upload_bytes)


@router.post("", status_code=201, response_model=Dataset, openapi_extra=_UPLOAD_BODY,
             responses=problem_responses(413, 415, 422))
async def create_dataset(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    pool: ComputeDep,
    name: Annotated[str | None, Query(max_length=200,
                                      description="Name for a raw CSV or Parquet body")] = None,
    categorical: Annotated[list[str], Query(description=(
        "Columns to store as categorical (factors) whatever they hold, comma-separated or "
        "repeated: a CSV's cells as written (R's read.csv colClasses = \"factor\"), numbers "
        "of Parquet or JSON as R's as.character writes them (1e5 -> \"1e+05\"). An unknown "
        "name is a 422"))] = [],  # noqa: B006 - FastAPI copies query defaults
) -> Dataset:
    """Upload a dataset as CSV, Parquet (raw or multipart) or JSON records."""
    upload = await _read_upload(request, upload_limits(settings), name,
                                service.declared_columns(categorical),
                                settings.inline_upload_bytes)
    try:
        if _parse_inline(upload, settings):
            parsed = await run_in_threadpool(service.read_upload, upload)
        else:
            # what the file's footer or header line shows too large is refused before a
            # child; the child reads a spooled body from its file
            await run_in_threadpool(service.precheck_upload, upload)
            parsed = await pool.run("reading the upload", service.read_upload, upload,
                                    gone=request.is_disconnected)
    finally:
        if upload.path is not None:
            Body(b"", upload.path).discard()
    row = await run_in_threadpool(service.store_dataset, session, upload, parsed)
    response.headers["Location"] = f"/v1/datasets/{row.id}"
    return Dataset.from_row(row)


@router.get("", response_model=DatasetList, responses=problem_responses(422))
def list_datasets(session: SessionDep, page: Annotated[PageQuery, Query()]) -> DatasetList:
    """List datasets, newest first (an unknown query parameter is a 422)."""
    rows, total = service.list_datasets(session, page.limit, page.offset)
    return DatasetList(items=[Dataset.from_row(r) for r in rows], total=total,
                       limit=page.limit, offset=page.offset)


@router.get("/{dataset_id}", response_model=Dataset, responses=problem_responses(404))
def get_dataset(dataset_id: str, session: SessionDep) -> Dataset:
    """Read one dataset's description."""
    return Dataset.from_row(service.get_dataset(session, dataset_id))


@router.delete("/{dataset_id}", status_code=204, response_class=Response,
               responses=problem_responses(404))
def delete_dataset(dataset_id: str, session: SessionDep) -> None:
    """Delete a dataset; models fitted on it stay and keep predicting."""
    service.delete_dataset(session, dataset_id)
