"""Configuration from environment variables prefixed ``MIXEDFIT_``.

Read through ``get_settings``, never at import time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXEDFIT_")

    database_url: str = "sqlite:///./mixedfit.db"
    max_upload_bytes: int = 200 * 1024 * 1024
    fit_timeout_seconds: float = 900.0
    fit_memory_bytes: int = 8 * 1024 * 1024 * 1024
    lease_seconds: float = 30.0
    max_attempts: int = 3
    worker_poll_seconds: float = 0.25
    max_wait_seconds: float = 60.0
    embedded_worker: bool = True
    # once an API key exists (`mixedfit keys create`), /v1 always needs one; these put the
    # docs (/docs, /openapi.json, /static) and /metrics behind a key too (default: open)
    protect_docs: bool = False
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
