"""Retention of failed and cancelled models (``MIXEDFIT_FAILED_MODEL_RETENTION_DAYS``).

A fit that failed or was cancelled is worth keeping for a while (its error says what went
wrong) but not for ever: the workers delete such models some days after they ended, with
what is stored about them, once a minute at most, a bounded batch at a time. A model an
alias points at is kept (the alias must be moved first, as for DELETE).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session, sessionmaker

from service.db.models import utcnow
from service.models import repository
from service.settings import Settings

SWEEP_SECONDS = 60.0
BATCH = 100
ENDED = ("failed", "cancelled")

_last_sweep: WeakKeyDictionary[sessionmaker[Session], float] = WeakKeyDictionary()
_lock = threading.Lock()


def maybe_prune(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Delete expired failed and cancelled models if retention is on and no sweep on this
    database has run in the last minute; how many were deleted."""
    if settings.failed_model_retention_days <= 0:
        return 0
    now = time.monotonic()
    with _lock:
        if now - _last_sweep.get(session_factory, -SWEEP_SECONDS) < SWEEP_SECONDS:
            return 0
        _last_sweep[session_factory] = now
    with session_factory.begin() as session:
        return prune_expired(session, settings.failed_model_retention_days)


def prune_expired(session: Session, retention_days: float) -> int:
    """Delete up to ``BATCH`` failed or cancelled models that ended more than
    ``retention_days`` ago and that no alias points at, with their derived rows."""
    cutoff = utcnow() - timedelta(days=retention_days)
    rows = repository.ended_before(session, ENDED, cutoff, BATCH)
    for row in rows:
        repository.delete_jobs_of(session, row.id, queued=False)
        repository.delete_model(session, row)
    return len(rows)
