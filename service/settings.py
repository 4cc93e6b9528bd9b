"""Configuration from environment variables prefixed ``MIXEDFIT_``.

Read through ``get_settings``, never at import time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXEDFIT_")

    database_url: str = "sqlite:///./mixedfit.db"
    max_upload_bytes: int = 200 * 1024 * 1024
    # every other request body (model and comparison specs, ...): read at most this much
    max_body_bytes: int = 1024 * 1024
    # a prediction body (JSON records or CSV) and the rows it may hold
    max_prediction_bytes: int = 32 * 1024 * 1024
    max_prediction_rows: int = 200_000
    # an upload decoded (a Parquet file's uncompressed size, from its metadata), its columns
    # and rows: refused before the data is decoded
    max_decoded_bytes: int = 1024 * 1024 * 1024
    max_columns: int = 10_000
    max_rows: int = 10_000_000
    # the design of a model, checked at POST /v1/models before the fit is queued: columns
    # of the fixed-effects matrix X, and of the random-effects matrix Z (levels x terms);
    # its memory estimate is held against MIXEDFIT_FIT_MEMORY_BYTES
    max_design_columns: int = 10_000
    max_random_effects: int = 2_000_000
    # the API's heavy work (residuals, plots, parsing uploads and large prediction bodies)
    # runs in child processes: this many at a time, this many more waiting (then 503), each
    # under these limits
    compute_processes: int = 2
    compute_queue: int = 32
    compute_timeout_seconds: float = 120.0
    compute_memory_bytes: int = 4 * 1024 * 1024 * 1024
    # prediction bodies up to this size are parsed and predicted on the request thread
    # (a child process would cost more than the work); larger ones in a compute child
    inline_prediction_bytes: int = 256 * 1024
    # likewise CSV and JSON uploads up to this size (Parquet always goes to a child)
    inline_upload_bytes: int = 256 * 1024
    # compiled predictors of models kept in memory (models never change), least recently
    # used evicted past this size; 0: none
    prediction_cache_bytes: int = 256 * 1024 * 1024
    # finished models' JSON documents kept rendered (many long polls on one fit share one)
    document_cache_bytes: int = 64 * 1024 * 1024
    fit_timeout_seconds: float = 900.0
    fit_memory_bytes: int = 8 * 1024 * 1024 * 1024
    lease_seconds: float = 30.0
    # attempts of a fit (a timeout or memory limit fails at once; a crashed fit is retried)
    max_attempts: int = 3
    # takeovers of a fit whose worker died mid-fit (they spend no attempt): a fit whose
    # workers keep dying fails after this many
    max_recoveries: int = 10
    worker_poll_seconds: float = 0.25
    # while a worker hears PostgreSQL's notifications, a queued job wakes it: its poll is
    # then only the fallback for what nobody announces (a lease that ran out: a worker died;
    # a notification lost on a connection that died silently), this often, or a quarter
    # of the lease when that is shorter, so a dead worker's fit is taken over as promptly
    worker_listening_poll_seconds: float = Field(default=5.0, gt=0)
    # failed and cancelled models are deleted this many days after they ended, unless an
    # alias points at them (the workers sweep once a minute); 0: kept for ever
    failed_model_retention_days: float = 0.0
    max_wait_seconds: float = 60.0
    embedded_worker: bool = True
    # once an API key exists (`mixedfit keys create`), /v1 always needs one; these put the
    # docs (/docs, /openapi.json, /static) and /metrics behind a key too (default: open)
    protect_docs: bool = False
    # a key lookup's outcome is reused while the database reports no change (SQLite's
    # data_version, PostgreSQL's notifications: a revocation holds at once); where no
    # change can be told, for this many seconds (0, the default: looked up every request)
    auth_cache_seconds: float = 0.0
    # API processes sharing the port (`mixedfit serve --processes`; uvicorn's workers)
    api_processes: int = Field(default=1, ge=1, le=64)
    protect_metrics: bool = False
    # origins whose pages may call the API (CORS), e.g. "https://app.example.com"; comma-
    # separated or a JSON list; empty: no cross-origin access
    cors_origins: Annotated[list[str], NoDecode] = []
    # log lines as "text" or "json" (one object per line, with the request and job ids)
    log_format: Literal["text", "json"] = "text"
    # how long an Idempotency-Key's first answer is kept for replay (per tenant and key)
    idempotency_ttl_seconds: float = 24 * 3600.0
    # per-tenant request rate, in the `limits` library's notation ("600/minute", several
    # separated by ";"); empty or "none" turns rate limiting off, the default
    rate_limit: str = ""
    # where the counters live: "memory://" (one process) or "redis://host:6379" (shared by
    # every API process)
    rate_limit_storage: str = "memory://"
    # disk space held back for when the database's disk fills, so that deletes still work
    # and free space (service.db.reserve): on SQLite a file beside the database, which must
    # cover the WAL's last checkpoint (4 MiB) plus the largest stored dataset; on PostgreSQL
    # rows of a table (at most 2 MB, room for the VACUUM that reuses what a delete freed);
    # 0: none
    storage_reserve_bytes: int = 16 * 1024 * 1024

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        origins = json.loads(text) if text.startswith("[") else text.split(",")
        # an origin has no path: "https://app.example.com/" is "https://app.example.com"
        return [str(origin).strip().rstrip("/") for origin in origins if str(origin).strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
