"""One fit in a child process: ``python -m service.jobs.child MEMORY_BYTES``.

The parent writes a pickled :class:`FitRequest` to stdin and reads a pickled outcome tuple
from stdout. The address-space limit is set before the data is even read, so a fit that
needs more memory fails here with ``MemoryError`` (or dies) and never takes the worker down.
Only the statistics core runs here: no database, no settings.
"""

from __future__ import annotations

import io
import os
import pickle
import resource
import sys
import traceback
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitRequest:
    formula: str
    method: str
    parquet: bytes


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


def main() -> int:
    memory_bytes = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    # stdout carries the pickled outcome only: keep a private handle on it and send
    # anything a library prints to stderr instead
    result_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    limit_memory(memory_bytes)
    request: FitRequest = pickle.load(sys.stdin.buffer)
    outcome = fit(request)
    try:
        payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        payload = pickle.dumps(("memory", "out of memory while sending the result"))
    result_stream.write(payload)
    result_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
