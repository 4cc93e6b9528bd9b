"""SQLAlchemy 2 table models, identical on SQLite and PostgreSQL.

Results live in rows of their own tables (fixed_effects, variance_components,
model_metrics) so they can be queried with SQL; ``models.result`` keeps the API's result
document and ``models.prediction_state`` what prediction needs (encoder and estimates), so
predictions never need the dataset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from service.context import MAX_REQUEST_ID_LENGTH, current_request_id


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timestamp type and hands back naive values; storing UTC and re-attaching
    the zone on the way out makes rows read the same on SQLite and PostgreSQL, and keeps
    SQLite's text comparisons (lease expiry) in one zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # a naive value is taken to be UTC already
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Tenanted:
    """A client's resource: it belongs to the tenant whose API key created it.

    NULL: created while no key existed (open local mode); such rows are seen by admin keys
    only once keys exist. Sessions opened for a request see only their caller's tenant's
    rows (``service.db.tenancy``), so no query can forget the filter.
    """

    tenant: Mapped[str | None] = mapped_column(String(200), index=True)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of the key is stored, never the key itself."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    admin: Mapped[bool] = mapped_column(Boolean)
    key_sha256: Mapped[str] = mapped_column(String(64))
    # the key's first characters ("mf_" and four more), to tell keys apart in listings
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DatasetRow(Tenanted, Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    n_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)  # Parquet bytes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelRow(Tenanted, Base):
    __tablename__ = "models"
    # the last line of defence of gapless numbering (service.db.registry): one model per
    # version of a name; unregistered models (NULLs) are distinct
    __table_args__ = (UniqueConstraint("registered_model_id", "version",
                                       name="uq_models_registered_model_id_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # a registered name (service.db.registry) when ``version`` is set; else a free-text
    # label (models stored before the registry, a comparison's ML refits)
    name: Mapped[str | None] = mapped_column(String(200))
    registered_model_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int | None] = mapped_column(Integer)
    # the one mutable part of a model; ``tags_revision`` counts its changes (in its ETag)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    tags_revision: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # no foreign key: a stored model outlives its dataset and still predicts
    dataset_id: Mapped[str] = mapped_column(String(36), index=True)
    formula: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8))
    # per-group fits (lm_by_group): pooled residual SD in the coefficient tables; else null
    pool: Mapped[bool | None] = mapped_column(Boolean)
    # {column: "contr.sum", ...}: the coding of factors of the fixed part (R's contrasts
    # argument); null: treatment for every factor
    contrasts: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    # the column of prior weights (R's weights argument); null: unit weights
    weights: Mapped[str | None] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    prediction_state: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True))
    # [asdict(ConditionalModes), ...]: the BLUPs and their conditional SDs per grouping
    # term, which the result document leaves out (served by /random-effects)
    conditional_modes: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON(none_as_null=True))


class JobRow(Tenanted, Base):
    """The queue: a worker claims a queued job (or one whose lease expired) atomically.

    ``tenant`` is the tenant of the model it fits: workers take turns between tenants
    (``service.jobs.repository.claim_next``), which reads the newest claim per tenant.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_tenant_started_at", "tenant", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "fit" (later "compare")
    target_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued/running/succeeded/failed
    # attempts spent by the fit (a claim of a queued job starts one)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    # takeovers of the running attempt after its worker stopped (lease expired): they spend
    # no attempt, and MIXEDFIT_MAX_RECOVERIES caps them so that every job ends
    recoveries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # the X-Request-ID of the request that queued the job (set when the row is inserted
    # inside a request), for the worker's log lines
    request_id: Mapped[str | None] = mapped_column(String(MAX_REQUEST_ID_LENGTH),
                                                   default=current_request_id)


class FixedEffectRow(Base):
    __tablename__ = "fixed_effects"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(300))
    estimate: Mapped[float | None] = mapped_column(Float)  # R gives NA for aliased terms
    std_error: Mapped[float | None] = mapped_column(Float)
    statistic: Mapped[float | None] = mapped_column(Float)
    df: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    conf_low: Mapped[float | None] = mapped_column(Float)
    conf_high: Mapped[float | None] = mapped_column(Float)
    # not estimable (rank-deficient model matrix): the numbers are null, as R's NA
    aliased: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class VarianceComponentRow(Base):
    """One row of R's ``as.data.frame(VarCorr(m))``: a variance (term2 null) or a covariance."""

    __tablename__ = "variance_components"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(300))
    term1: Mapped[str | None] = mapped_column(String(300))
    term2: Mapped[str | None] = mapped_column(String(300))
    variance: Mapped[float | None] = mapped_column(Float)  # covariance when term2 is set
    std_dev: Mapped[float | None] = mapped_column(Float)  # correlation when term2 is set


class ModelMetricRow(Base):
    __tablename__ = "model_metrics"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)


class ComparisonRow(Tenanted, Base):
    """A likelihood-ratio comparison of stored models (R's ``anova``).

    ``refits`` maps a compared REML mixed model's id to the id of its ML refit;
    ``result`` is the table, stored once every member fit has finished.
    """

    __tablename__ = "comparisons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_ids: Mapped[list[str]] = mapped_column(JSON)
    refits: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class IdempotencyRecordRow(Base):
    """The first answer to a POST sent with an Idempotency-Key, per tenant and key.

    ``status`` is null while the first request is still being handled (``lock_token`` names
    that request); ``expires_at`` is then the end of its lease, and afterwards the end of
    the replay period. An expired record counts as absent and is deleted lazily.
    """

    __tablename__ = "idempotency_records"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)  # "" in open mode
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request
    lock_token: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSON(none_as_null=True))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StorageReserveRow(Base):
    """Space held back on PostgreSQL for when its disk fills (``service.db.reserve``).

    Rows of incompressible filler, one per 8 KiB page (the migration stores ``filler``
    PLAIN: neither compressed nor moved to a TOAST table). Deleted and vacuumed, they give
    their pages back to the file system, which a VACUUM of the datasets needs on a full
    disk. No tenant: it is the server's, and no route reads it. Empty on SQLite, whose
    reserve is a file next to the database.
    """

    __tablename__ = "storage_reserve"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    filler: Mapped[bytes] = mapped_column(LargeBinary)


class ChangeCountRow(Base):
    """SQLite: a count of the changes that caches of key lookups and of models must see
    (API keys written, models or datasets deleted), kept by migration 0016's triggers and
    read by ``service.db.changes`` when the file has changed; so a fit stored, a dataset
    uploaded, do not make every cache check again. One row. On PostgreSQL the same changes
    are notified instead (0013) and the row stays at 0.
    """

    __tablename__ = "change_count"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    changes: Mapped[int] = mapped_column(Integer)
