"""Model use cases: validate a spec against its dataset and queue the fit; read models;
predict from a stored model (its prediction state only, never the dataset)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from service.auth.principal import Principal
from service.datasets import repository as datasets
from service.datasets.service import clean_name
from service.db.models import DatasetRow, JobRow, ModelRow, utcnow
from service.db.session import end_reads
from service.db.tenancy import tenant_read
from service.errors import PROBLEM_TYPE_PREFIX, Conflict, InvalidInput, NotFound
from service.jobs import repository as jobs
from service.models import repository
from service.models.listing import ModelFilter, decode_cursor, encode_cursor, parse_tags
from service.models.predictors import CachedModel, PredictorCache, compile_model
from service.models.schemas import ModelCreate, ModelListQuery, ModelPatch
from service.models.watch import FinishWatch, HasIdAndStatus
from service.registry import service as registry
from service.registry.names import MAX_TAGS, parse_reference
from service.settings import Settings
from service.stats.design import check_columns
from service.stats.design.checks import resolve_contrasts
from service.stats.design.size import DesignSize, design_size
from service.stats.design.weights import check_weights_column
from service.stats.errors import ArgumentError
from service.stats.formula import formula_columns, parse_formula
from service.stats.formula.columns import bind_constants
from service.stats.formula.tree import Formula, with_contrasts, with_weights
from service.stats.lmm.structure import MAX_DENSE_COLUMNS

# a model in one of these never changes again (but for its tags)
FINISHED = ("succeeded", "failed", "cancelled")
FIT_JOB = "fit"
# Long-poll re-reads start quick (small fits finish in milliseconds) and slow down.


@dataclass(frozen=True)
class DesignLimits:
    """How large a model's design may be (the settings of the same names)."""

    max_design_columns: int
    max_random_effects: int
    fit_memory_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> DesignLimits:
        return cls(settings.max_design_columns, settings.max_random_effects,
                   settings.fit_memory_bytes)


class DesignTooLarge(InvalidInput):
    slug = "design-too-large"
    title = "Design too large"


def create_model(session: Session, spec: ModelCreate, max_attempts: int,
                 limits: DesignLimits | None = None, label: str | None = None) -> ModelRow:
    """Check the formula against the dataset (and, with ``limits``, the size of its
    design), store the model (the next version of ``spec.name``, if given) and queue its
    fit. ``label``: a free-text name for a model outside the registry (a refit)."""
    return create_model_and_job(session, spec, max_attempts, limits, label)[0]


def create_model_and_job(session: Session, spec: ModelCreate, max_attempts: int,
                         limits: DesignLimits | None = None, label: str | None = None, *,
                         model_id: str | None = None, claimed: jobs.Lease | None = None,
                         ) -> tuple[ModelRow, JobRow]:
    """``create_model``, and the fit's job. ``model_id``: the new model's id, chosen by the
    caller (who watches it before it exists); ``claimed``: the job inserted already
    claimed by that worker, and the model running (a fit handed to an idle worker)."""
    formula = parse_formula(spec.formula)
    dataset = datasets.get_dataset(session, spec.dataset_id)
    if dataset is None:
        raise NotFound(f"There is no dataset with id {spec.dataset_id!r}.")
    kinds = {c["name"]: c["dtype"] for c in dataset.columns}
    check_columns(formula, kinds)
    check_arguments(with_weights(with_contrasts(formula, spec.contrasts), spec.weights), kinds)
    if limits is not None:
        size = design_size(bind_constants(formula, kinds), kinds,
                           _levels(session, dataset, formula), dataset.n_rows)
        check_design_size(size, limits)
    now = utcnow()
    row = ModelRow(
        id=model_id or str(uuid.uuid4()), name=clean_name(label), dataset_id=dataset.id,
        formula=spec.formula, method=spec.method, kind=formula.kind,
        status="queued" if claimed is None else "running",
        started_at=None if claimed is None else now,
        pool=spec.pool if formula.kind == "lm_by_group" else None, created_at=now,
        contrasts=dict(spec.contrasts) if spec.contrasts else None, weights=spec.weights,
    )
    if spec.name is not None:
        # last, just before the insert: the name's counter row stays locked until commit
        row.name = spec.name
        row.registered_model_id, row.version = registry.register_version(session, spec.name)
    # same transaction as the model (a model is never stored without its job), and one
    # flush for both: enqueue's
    repository.add_model(session, row, flush=False)
    job = jobs.enqueue(session, FIT_JOB, row.id, max_attempts, claimed)
    return row, job


def check_arguments(formula: Formula, kinds: dict[str, str]) -> None:
    """A 422 naming each field of the spec beside the formula that the dataset refuses
    (``contrasts.<column>``, ``weights``)."""
    try:
        resolve_contrasts(bind_constants(formula, kinds), kinds)
        check_weights_column(formula.weights, kinds)
    except ArgumentError as error:
        raise InvalidInput(str(error), errors=[
            {"location": "body", "field": field, "type": "value_error", "detail": why}
            for field, why in error.problems.items()]) from None


def _levels(session: Session, dataset: DatasetRow, formula: Formula) -> dict[str, int]:
    """The number of levels of each column the formula uses: stored with the dataset's
    columns; counted from the stored data for a dataset stored before they were."""
    used = set(formula_columns(formula))
    levels = {c["name"]: int(c["n_levels"]) for c in dataset.columns
              if c["name"] in used and c.get("n_levels") is not None}
    missing = [c["name"] for c in dataset.columns
               if c["name"] in used and c["name"] not in levels]
    if missing:
        content = datasets.get_dataset(session, dataset.id, with_content=True)
        if content is not None:
            table = pq.read_table(io.BytesIO(content.content), columns=missing)
            for name in missing:
                levels[name] = int(pc.count_distinct(table.column(name)).as_py())
    return levels


def check_design_size(size: DesignSize, limits: DesignLimits) -> None:
    """A 422 naming the limit when the design is too large to fit (before it is queued)."""
    if size.fixed_columns > limits.max_design_columns:
        term = size.largest_fixed
        raise DesignTooLarge(
            f"The fixed-effects design has {size.fixed_columns:,} columns, more than the limit "
            f"of {limits.max_design_columns:,} (MIXEDFIT_MAX_DESIGN_COLUMNS); the term "
            f"{term.label} alone has {term.columns:,}. Drop or simplify that term (an "
            "interaction of factors has the product of their levels), or group the levels "
            "of its factors more coarsely.",
            setting="MIXEDFIT_MAX_DESIGN_COLUMNS", limit=limits.max_design_columns,
            fixed_columns=size.fixed_columns, term=term.label, term_columns=term.columns)
    if size.random_columns > limits.max_random_effects:
        bar = max(size.random, key=lambda r: r.columns)
        raise DesignTooLarge(
            f"The random-effects design has {size.random_columns:,} columns (levels x terms), "
            f"more than the limit of {limits.max_random_effects:,} "
            f"(MIXEDFIT_MAX_RANDOM_EFFECTS); the group {bar.group} has {bar.levels:,} levels "
            f"x {bar.terms} terms. Use fewer terms per group or a coarser group.",
            setting="MIXEDFIT_MAX_RANDOM_EFFECTS", limit=limits.max_random_effects,
            random_columns=size.random_columns, group=bar.group)
    if size.random and size.schur_columns > MAX_DENSE_COLUMNS:
        raise DesignTooLarge(
            f"The random-effects terms other than the one with most levels "
            f"({size.largest_random.group}) have {size.schur_columns:,} columns together; "
            f"the engine factors them densely and handles at most {MAX_DENSE_COLUMNS:,} "
            "(its MAX_DENSE_COLUMNS, not a setting). Group the data more coarsely or drop a "
            "crossed term with many levels.",
            limit_name="MAX_DENSE_COLUMNS", limit=MAX_DENSE_COLUMNS,
            schur_columns=size.schur_columns)
    if size.memory_bytes > limits.fit_memory_bytes:
        raise DesignTooLarge(
            f"The fit would need at least {_mib(size.memory_bytes)} of memory "
            f"(X: {size.n_rows:,} rows x {size.fixed_columns:,} columns, {_mib(size.x_bytes)}; "
            f"random effects: {_mib(size.z_bytes)}; their dense block: "
            f"{_mib(size.schur_bytes)}), more than the fit's limit of "
            f"{_mib(limits.fit_memory_bytes)} (MIXEDFIT_FIT_MEMORY_BYTES = "
            f"{limits.fit_memory_bytes:,} bytes). Simplify the model, fit it to fewer rows, "
            "or raise MIXEDFIT_FIT_MEMORY_BYTES.",
            setting="MIXEDFIT_FIT_MEMORY_BYTES", limit=limits.fit_memory_bytes,
            memory_bytes=size.memory_bytes)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


@dataclass(frozen=True)
class ModelRef:
    """What a model path segment named: the model's id, and whether the segment may name
    another model later (an alias moves; an id or ``name@version`` never does)."""

    model_id: str
    moves: bool


def resolve_model_ref(session: Session, segment: str) -> ModelRef:
    """The model that a path segment names: a model id, ``name@version`` or ``name@alias``
    in the caller's tenant (404 for a name, version or alias it does not have). The one
    place a reference is read; an id is returned as given, without a query."""
    reference = parse_reference(segment)
    if reference is None:
        return ModelRef(segment, False)
    return ModelRef(registry.referenced_model_id(session, reference),
                    reference.alias is not None)


def get_model(session: Session, model_id: str, *, for_update: bool = False) -> ModelRow:
    row = repository.get_model(session, model_id, for_update=for_update)
    if row is None:
        raise NotFound(f"There is no model with id {model_id!r}.")
    return row


def patch_tags(session: Session, model_id: str, patch: ModelPatch) -> ModelRow:
    """Merge ``patch`` into the model's tags (RFC 7396: null removes a tag)."""
    row = get_model(session, model_id, for_update=True)
    tags = dict(row.tags or {})
    for key, value in patch.tags.items():
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"A model has at most {MAX_TAGS} tags; this patch would leave "
                           f"{len(tags)}. Remove some (\"key\": null).", limit=MAX_TAGS)
    if tags != (row.tags or {}):
        row.tags = tags or None
        row.tags_revision += 1
        session.flush()
    return row


def cancel_model(session: Session, model_id: str) -> ModelRow:
    """Cancel a queued or running fit: its job is cancelled (a worker running it learns so
    at its next lease tick, within a second, and stops the fit's process) and the model
    is ``cancelled``; a cancelled model stays so. 409 once the fit has finished."""
    if model_version(session, model_id).status not in ("queued", "running", "cancelled"):
        raise Conflict(_finished(get_model(session, model_id)))
    # the job first, then the model: the order in which a worker's claim locks them
    repository.cancel_fit_jobs(session, model_id)
    row = get_model(session, model_id, for_update=True)
    if row.status == "cancelled":
        return row
    if row.status not in ("queued", "running"):  # its fit ended meanwhile
        raise Conflict(_finished(row))
    row.status = "cancelled"
    row.finished_at = utcnow()
    row.error = {"type": f"{PROBLEM_TYPE_PREFIX}fit-cancelled", "title": "Fit cancelled",
                 "status": 409, "detail": f"The fit was cancelled (POST "
                 f"/v1/models/{model_id}/cancel) before it finished."}
    session.flush()
    repository.announce_finished(session, model_id)
    return row


def _finished(row: ModelRow) -> str:
    return (f"Model {row.id}'s fit has ended ({row.status}): only a queued or running fit "
            "can be cancelled.")


def delete_model(session: Session, model_id: str) -> None:
    """Delete a model and what is stored about it (its job, result rows, intervals). 409
    while an alias points at it or its fit is running."""
    row = get_model(session, model_id, for_update=True)
    pointing = registry.aliases_of_model(session, model_id)
    if pointing:
        names = ", ".join(f"{row.name}@{alias.alias}" for alias in pointing)
        raise Conflict(f"Model {model_id} is what {names} point(s) at; move or delete "
                       f"the alias first (PUT or DELETE /v1/registry/{row.name}/aliases/"
                       f"{pointing[0].alias}).", aliases=[a.alias for a in pointing])
    # a queued fit's job goes with it, unless a worker has just claimed it (then running)
    if row.status == "running" or not repository.delete_jobs_of(session, model_id,
                                                                  row.status == "queued"):
        raise Conflict(f"Model {model_id}'s fit is running; delete it once the fit has "
                       f"ended (GET /v1/models/{model_id}?wait=30).", model_status="running")
    if repository.has_unfinished_batches(session, model_id):
        raise Conflict(f"Model {model_id} has a batch prediction queued or running; delete "
                       "it once the batch has finished.", model_status=row.status)
    repository.delete_model(session, row)


@dataclass(frozen=True)
class ModelPage:
    rows: list[ModelRow]
    total: int
    next_cursor: str | None  # None: the last page


def list_models(session: Session, query: ModelListQuery) -> ModelPage:
    """A page of the models that pass the query's filters, in its sort order, and the
    cursor of the next page (one more model is read to know whether there is one)."""
    filters = ModelFilter(status=query.status, kind=query.kind, name=query.name,
                          tags=parse_tags(query.tag), dataset_id=query.dataset_id,
                          created_after=query.created_after,
                          created_before=query.created_before)
    after = decode_cursor(query.cursor, query.sort) if query.cursor is not None else None
    rows, total = repository.list_models(session, query.limit + 1, query.offset,
                                         with_result=query.include == "result",
                                         filters=filters, sort=query.sort, after=after)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return ModelPage(rows, total, encode_cursor(rows[-1], query.sort) if more else None)


def model_version(session: Session, model_id: str) -> ModelRow:
    """A model's id, status and finish time only (404 if unknown)."""
    row = repository.get_model_version(session, model_id)
    if row is None:
        raise NotFound(f"There is no model with id {model_id!r}.")
    return row


def _read_detached(session: Session, model_id: str) -> ModelRow:
    row = model_version(session, model_id)
    # End the read transaction between polls: the next read must see the worker's newest
    # commit, and SQLite transactions here hold the write lock while open. The detached
    # row keeps its loaded values.
    session.expunge(row)
    session.rollback()
    return row


def read_model_status(factory: sessionmaker[Session], principal: Principal,
                      model_id: str) -> ModelRow:
    """The model's id, status and finish time (not its result), read in a session of its
    own scoped to ``principal`` and ended at once (a read shared by long polls outlives
    the request that started it)."""
    with tenant_read(factory, principal) as session:
        return _read_detached(session, model_id)


State = TypeVar("State", bound=HasIdAndStatus)


async def wait_for_model(read: Callable[[], Awaitable[State]], wait_seconds: float,
                         watch: FinishWatch,
                         gone: Callable[[], Awaitable[bool]] | None = None, *,
                         just_queued: tuple[str, asyncio.Event] | None = None) -> State:
    """The model as ``read`` gives it (anything with its id and status: the status row of
    ``read_model_status``, or a rendered document), read again once its fit has finished;
    the wait holds nothing (no thread, connection or transaction) and is woken by
    ``watch``. ``gone`` tells whether the client has stopped waiting.

    A wait that ends unwoken (its time is up, or the client left) reads nothing more: the
    watch's last check found the fit unfinished, and the caller's document of an
    unfinished model is read afresh once for all its waiters (``documents``), so the
    hundreds of polls that time out together cost one read per model, not one each.

    ``just_queued``: the id of a model the caller has just queued and the watch's
    registration of it, made before its worker was woken; the first read is then made
    once the fit has finished (or the wait is over), not while the worker claims it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    if just_queued is not None:  # registered with the watch before its worker was woken
        model_id, registered = just_queued
        await watch.wait(model_id, wait_seconds, gone, registered)
    row = await read()
    while row.status not in FINISHED:
        remaining = deadline - loop.time()
        if remaining <= 0 or not await watch.wait(row.id, remaining, gone):
            break
        row = await read()
    return row


def predictable_model(session: Session, model_id: str, cache: PredictorCache | None = None,
                      principal: Principal | None = None) -> CachedModel:
    """The compiled predictor of a succeeded model (409 otherwise), from ``cache`` when
    ``principal`` may see it there, else read (tenant-scoped) and compiled; the read
    transaction is ended, so predicting holds none."""
    stamp = cache.changes.stamp() if cache is not None else None  # before any read
    if cache is not None and principal is not None:
        cached = cache.get(model_id, principal)
        # a model can be deleted (by another API process too, whose cache this is not):
        # unless nothing was written since it was last seen, a hit asks the database that
        # it exists, by its primary key only
        if cached is not None:
            if cache.current(model_id, principal) is not None:
                return cached
            if repository.model_exists(session, model_id):
                end_reads(session)
                cache.confirm(model_id, stamp)
                return cached
            cache.discard(model_id)
    row = repository.get_prediction_columns(session, model_id)
    if row is None:
        raise NotFound(f"There is no model with id {model_id!r}.")
    if row.status != "succeeded":
        raise Conflict(_not_ready(row), model_status=row.status)
    if row.prediction_state is None:
        raise Conflict(f"Model {row.id} stored no prediction state.", model_status=row.status)
    model = compile_model(row.id, row.tenant, row.prediction_state)
    end_reads(session)
    if cache is not None:
        cache.add(model, stamp)
    return model


def get_fitted_model(session: Session, model_id: str) -> ModelRow:
    """A model whose fit succeeded (409 otherwise)."""
    row = get_model(session, model_id)
    if row.status != "succeeded":
        raise Conflict(_not_ready(row), model_status=row.status)
    return row


def _not_ready(row: ModelRow) -> str:
    if row.status == "cancelled":
        return f"Model {row.id} has no fit to predict from: its fit was cancelled."
    if row.status == "failed":
        return f"Model {row.id} has no fit to predict from: its fit failed (see its 'error')."
    return (f"Model {row.id} is {row.status}; predictions need a finished fit. "
            f"Wait with GET /v1/models/{row.id}?wait=30.")
