"""The code that runs in a job's child process: limits, then the statistics core.

The address-space limit is set before the data is even decoded, so a fit that needs more
memory fails here with ``MemoryError`` (or dies) and never takes the worker down. Only the
statistics core runs here: no database, no settings. A warm process serves any ``ChildWork``
(a fit, a batch of predictions, a bootstrap): each is a picklable request whose ``run``
does the work from the bytes it carries. Work that takes long (a bootstrap) reports its
progress through the ``report(done, total)`` it is given: the process sends
``("progress", done, total)`` before its outcome, at most every ``PROGRESS_SECONDS``.
"""

from __future__ import annotations

import fcntl
import io
import os
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

# (done, total): how far a work item has come, in its own units (simulations, parameters)
Report = Callable[[int, int], None]

# a child sends progress at most this often (the worker stores it at most every 0.5 s)
PROGRESS_SECONDS = 0.1


class ChildWork(Protocol):
    """A job's work for a child process: picklable, self-contained, pure."""

    # what the work is called in messages ("fit", "batch prediction")
    @property
    def label(self) -> str: ...

    def run(self, report: Report) -> Any: ...


def no_report(done: int, total: int) -> None:
    """A ``Report`` for work run outside a child process (tests, the request thread)."""


@dataclass(frozen=True)
class FitRequest:
    formula: str
    method: str
    # the dataset's Parquet bytes; None when the warm process holds ``dataset_key``'s frame
    parquet: bytes | None
    pool: bool = True  # per-group fits: pooled residual SD (lme4's default)
    # {column: "contr.sum"}: R's contrasts argument; None: treatment for every factor
    contrasts: dict[str, str] | None = None
    weights: str | None = None  # the column of prior weights (R's weights argument)
    # the dataset's id: its frame may be kept for the next fit (datasets never change)
    dataset_key: str | None = None

    @property
    def label(self) -> str:
        return "fit"

    def run(self, report: Report) -> Any:
        from service.stats.fit import fit_model

        return fit_model(self.formula, dataset_frame(self.dataset_key, self.parquet),
                         self.method, self.pool, self.contrasts, self.weights)


def read_parquet(content: bytes) -> Any:
    """A stored dataset's Parquet bytes as a pandas frame."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(content)).to_pandas()


# A warm process keeps the frame of the last dataset it decoded, so that the next fit on the
# same data (a refit, another formula, ML after REML) is sent no bytes and decodes nothing:
# for a small fit that is a tenth of its time. One frame at most, and a small one: a fit on
# another dataset drops it before decoding its own, so what is kept never costs a fit the
# memory it would have had without it.
HELD_MAX_BYTES = 64 * 2**20
_held: dict[str, Any] = {}


class DatasetNotHeld(Exception):
    """The work named a dataset without its bytes, and this process does not hold it."""


def dataset_frame(key: str | None, content: bytes | None) -> Any:
    """The frame of dataset ``key``: the one this process holds, else decoded from
    ``content`` (and held, if small). The fit gets a shallow copy: with pandas'
    copy-on-write nothing it does reaches the held frame."""
    import pyarrow.parquet as pq

    frame = _held.get(key) if key is not None else None
    if frame is None:
        if content is None:
            raise DatasetNotHeld(key)
        _held.clear()
        table = pq.read_table(io.BytesIO(content))
        frame = table.to_pandas()
        if key is not None and table.nbytes <= HELD_MAX_BYTES:
            _held[key] = frame
    return frame.copy(deep=False)


def held_dataset() -> str | None:
    """The key of the dataset whose frame this process holds, if any."""
    return next(iter(_held), None)


def serve_fits(connection: Connection, lifeline: Connection, memory_bytes: int,
               max_fits: int) -> None:
    """Entry point of a warm process: run each work item received (``ChildWork``), send
    ``("done", outcome, held)`` (``held``: the dataset whose frame it keeps now), up to
    ``max_fits`` (then the process ends and is replaced, as Celery's max-tasks-per-child).
    After a fit that ran out of memory or failed internally the process ends at once: its
    state is no longer to be trusted."""
    die_with_parent(lifeline)
    limit_memory(memory_bytes)
    lower_priority()
    for _ in range(max_fits):
        name_process(IDLE_NAME)
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return  # the worker closed the connection: nothing more to fit
        name_process(FITTING_NAME)
        outcome = perform(request, ProgressSender(connection))
        try:
            connection.send(("done", outcome, held_dataset()))
        except MemoryError:
            connection.send(("done", ("memory", "out of memory while sending the result"),
                             None))
            return
        if outcome[0] not in ("ok", "invalid", "missing"):
            return


# what ps, top and /proc/<pid>/comm show a warm fit process doing (at most 15 characters)
FITTING_NAME = "mixedfit-fit"
IDLE_NAME = "mixedfit-idle"


def name_process(name: str) -> None:
    """Set the process's name as the kernel shows it (Linux; elsewhere nothing happens)."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


def die_with_parent(lifeline: Connection) -> None:
    """End this process as soon as the worker that asked for the fit is gone.

    The worker holds the only writing end of ``lifeline`` and never writes: end of file
    means it died (even by SIGKILL), and the fit's result would go nowhere. Without this an
    orphaned fit would run on next to the worker that takes its job over.

    The kernel ends the fit: the lifeline is armed for SIGIO (``O_ASYNC``), which the pipe
    raises when its last writer closes, and whose default action ends the process at once,
    even while the fit holds the GIL in one long native call (where a watching thread would
    wait seconds for its turn). The thread stays for a worker already gone before the
    lifeline was armed, and for systems without ``O_ASYNC`` on pipes.
    """
    _arm_sigio(lifeline.fileno())

    def watch() -> None:
        try:
            lifeline.poll(None)
        finally:
            os._exit(3)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _arm_sigio(fd: int) -> None:
    try:
        signal.signal(signal.SIGIO, signal.SIG_DFL)  # terminate: no Python handler runs
        fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    except OSError:
        pass  # the watching thread still ends the fit


# the scheduler's niceness of a fit or compute child: its work yields the CPU to the API's
# event loop and the worker's lease renewals (a 100,000-row fit beside /healthz on two
# cores), and still gets all of an idle machine
CHILD_NICENESS = 10


def lower_priority() -> None:
    try:
        os.nice(CHILD_NICENESS)
    except OSError:
        pass  # not allowed here: the work runs at its parent's priority


def limit_memory(memory_bytes: int) -> None:
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


class ProgressSender:
    """The ``Report`` of work in a warm process: ("progress", done, total) to the worker,
    at most every ``PROGRESS_SECONDS`` (a bootstrap reports after each of thousands of
    refits; the last report is left to the outcome that follows it)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if done >= total:
            return  # the outcome follows at once and says it is done
        now = time.monotonic()
        if now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        self._connection.send(("progress", int(done), int(total)))


def perform(work: ChildWork, report: Report = no_report) -> tuple[Any, ...]:
    """The outcome tuple: ("ok", value), ("invalid", error class, message) for input the
    statistics core refuses, ("missing",) for work whose dataset was not sent and is not
    held, ("memory", message) or ("error", traceback)."""
    try:
        from service.stats.errors import StatsError

        try:
            return ("ok", work.run(report))
        except StatsError as error:
            return ("invalid", type(error).__name__, str(error))
        except DatasetNotHeld:
            return ("missing",)
    except MemoryError:
        return ("memory", traceback.format_exc(limit=-3))
    except Exception:
        return ("error", traceback.format_exc())
