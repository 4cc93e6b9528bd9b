"""What runs in a compute child: its limits, then one function of the API's data after
another (a warm child serves many tasks, as the fits' warm processes do).

As for fits (``service.jobs.child``), the address-space limit comes first, so work that
needs more memory fails here and never takes the API down, and the child ends as soon as
the process that started it is gone.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from service.jobs.child import die_with_parent, limit_memory, lower_priority


def serve_tasks(connection: Connection, lifeline: Connection, memory_bytes: int,
                max_tasks: int) -> None:
    """Entry point of a warm compute child: ``task(*args)`` for each ``(task, args)``
    received, its outcome sent back as a tuple: ("ok", value), ("raised", exception) for an
    exception the API answers (a refusal of the input), ("memory",) or ("error",
    traceback). After ``max_tasks``, an outcome other than a value or a refusal (its state
    is no longer to be trusted), or a task that left the process large, it ends (and the
    pool starts another when it needs one)."""
    die_with_parent(lifeline)
    limit_memory(memory_bytes)
    lower_priority()
    for _ in range(max_tasks):
        try:
            task, args = connection.recv()
        except (EOFError, OSError):
            return  # the API closed the connection: nothing more to do
        outcome = _call(task, args)
        try:
            connection.send(outcome)
        except MemoryError:
            connection.send(("memory",))
            return
        if outcome[0] not in ("ok", "raised") or resident_bytes() > RECYCLE_RESIDENT_BYTES:
            return


# a child that a task left larger than this ends rather than keep the memory while idle
RECYCLE_RESIDENT_BYTES = 512 * 2**20


def resident_bytes() -> int:
    """This process's resident set (Linux; elsewhere 0)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _call(task: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1):  # one core per child: the pool is the parallelism
            return ("ok", task(*args))
    except MemoryError:
        return ("memory",)
    except Exception as error:
        if _answerable(error):
            return ("raised", error)
        return ("error", traceback.format_exc())


def _answerable(error: Exception) -> bool:
    """A refusal the API turns into a problem document (and that survives pickling)."""
    from service.errors import ServiceError
    from service.stats.errors import StatsError

    if not isinstance(error, (ServiceError, StatsError)):
        return False
    try:
        pickle.dumps(error)
    except Exception:
        return False
    return True
