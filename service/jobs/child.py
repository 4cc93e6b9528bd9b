"""The code that runs in a fit's child process: limits, then the statistics core.

The address-space limit is set before the data is even decoded, so a fit that needs more
memory fails here with ``MemoryError`` (or dies) and never takes the worker down. Only the
statistics core runs here: no database, no settings.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(frozen=True)
class FitRequest:
    formula: str
    method: str
    parquet: bytes


def run_child(connection: Connection, request: FitRequest, memory_bytes: int) -> None:
    """Entry point of the child: fit ``request`` and send the outcome tuple back."""
    die_with_parent()
    limit_memory(memory_bytes)
    outcome = fit(request)
    try:
        connection.send(outcome)
    except MemoryError:
        connection.send(("memory", "out of memory while sending the result"))
    connection.close()


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent (the fork server) dies.

    The fork server exits when its worker does, even by SIGKILL, so an orphaned fit does
    not run on. Elsewhere the fit runs to its end and its result goes nowhere.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


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
            return ("ok", fit_model(request.formula, data, request.method))
        except StatsError as error:
            return ("invalid", type(error).__name__, str(error))
    except MemoryError:
        return ("memory", traceback.format_exc(limit=-3))
    except Exception:
        return ("error", traceback.format_exc())
