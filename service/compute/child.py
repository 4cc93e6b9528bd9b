"""What runs in a compute child: its limits, then one function of the API's data.

As for fits (``service.jobs.child``), the address-space limit comes first, so work that
needs more memory fails here and never takes the API down, and the child ends as soon as
the process that started it is gone.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from service.jobs.child import die_with_parent, limit_memory


def run_task(connection: Connection, lifeline: Connection, task: Callable[..., Any],
             args: tuple[Any, ...], memory_bytes: int) -> None:
    """Entry point of the child: ``task(*args)``, its outcome sent back as a tuple:
    ("ok", value), ("raised", exception) for an exception the API answers (a refusal of the
    input), ("memory",) or ("error", traceback)."""
    die_with_parent(lifeline)
    limit_memory(memory_bytes)
    try:
        outcome = _call(task, args)
        try:
            connection.send(outcome)
        except MemoryError:
            connection.send(("memory",))
    finally:
        connection.close()


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
