"""Configuration from environment variables prefixed ``MIXEDFIT_``.

Read through ``get_settings``, never at import time.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # how long an Idempotency-Key's first answer is kept for replay (per tenant and key)
    idempotency_ttl_seconds: float = 24 * 3600.0
    # per-tenant request rate, in the `limits` library's notation ("600/minute", several
    # separated by ";"); empty or "none" turns rate limiting off, the default
    rate_limit: str = ""
    # where the counters live: "memory://" (one process) or "redis://host:6379" (shared by
    # every API process)
    rate_limit_storage: str = "memory://"


@lru_cache
def get_settings() -> Settings:
    return Settings()
