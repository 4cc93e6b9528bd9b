"""The code that runs in a fit's child process: limits, then the statistics core.

The address-space limit is set before the data is even decoded, so a fit that needs more
memory fails here with ``MemoryError`` (or dies) and never takes the worker down. Only the
statistics core runs here: no database, no settings.
"""

from __future__ import annotations

import io
import os
import resource
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(frozen=True)
class FitRequest:
    formula: str
    method: str
    parquet: bytes
    pool: bool = True  # per-group fits: pooled residual SD (lme4's default)


def run_child(connection: Connection, lifeline: Connection, request: FitRequest,
              memory_bytes: int) -> None:
    """Entry point of the child: fit ``request`` and send the outcome tuple back."""
    die_with_parent(lifeline)
    limit_memory(memory_bytes)
    outcome = fit(request)
    try:
        connection.send(outcome)
    except MemoryError:
        connection.send(("memory", "out of memory while sending the result"))
    connection.close()


def die_with_parent(lifeline: Connection) -> None:
    """End this process as soon as the worker that asked for the fit is gone.

    The worker holds the only writing end of ``lifeline`` and never writes: end of file
    means it died (even by SIGKILL), and the fit's result would go nowhere. Without this an
    orphaned fit would run on next to the worker that takes its job over.
    """

    def watch() -> None:
        try:
            lifeline.poll(None)
        finally:
            os._exit(3)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def limit_memory(memory_bytes: int) -> None:
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def fit(request: FitRequest) -> tuple[Any, ...]:
    """The outcome tuple: ("ok", FittedModel), ("invalid", error class, message),
    ("memory", message) or ("error", traceback)."""
    try:
        import pyarrow.parquet as pq

        from service.stats.errors import StatsError
        from service.stats.fit import fit_model

        try:
            data = pq.read_table(io.BytesIO(request.parquet)).to_pandas()
            return ("ok", fit_model(request.formula, data, request.method, request.pool))
        except StatsError as error:
            return ("invalid", type(error).__name__, str(error))
    except MemoryError:
        return ("memory", traceback.format_exc(limit=-3))
    except Exception:
        return ("error", traceback.format_exc())
