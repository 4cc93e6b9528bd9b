"""Runs a job's work (a fit, a batch of predictions) in a child process with a time limit
and a memory limit.

The worker's own process never fits: a fit that runs away (too long, too much memory, a
crash in native code) ends its child, and the worker reports why and lives on. Children are
forked from a fork server that has the statistics stack imported already (see preload.py),
so a fit does not pay seconds of imports, and a child stays warm: it serves one fit after
another (the worker thread's own child, replaced after MAX_FITS_PER_PROCESS fits or any
fit that did not end cleanly), so a small fit does not pay a process start either, only
the transfer of its data. While the child runs, ``on_tick`` is called every
``tick_seconds`` (the worker renews its lease there); when it returns False the child is
killed and the fit abandoned.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from service.compute.forkserver import Child, fork_server
from service.jobs.child import ChildWork, serve_fits

log = logging.getLogger("service.jobs.runner")

# fits one warm process serves before it is replaced (memory a fit leaves fragmented is
# given back; as Celery's max-tasks-per-child)
MAX_FITS_PER_PROCESS = 100

OutcomeStatus = Literal["succeeded", "invalid", "timeout", "memory", "crashed", "cancelled",
                        "missing"]
# (done, total) as the work reported it
OnProgress = Callable[[int, int], None]

@dataclass(frozen=True)
class WorkOutcome:
    status: OutcomeStatus
    value: Any = None  # what the work's ``run`` returned, when it succeeded
    error_type: str | None = None  # the StatsError subclass for "invalid"
    message: str = ""


def warm_up() -> None:
    """Start the fork server and let it import the statistics stack now, before any claim.

    That takes seconds (more on a busy machine); paid by a worker's first fit, they would
    pass under a lease that nobody renews yet, and a short lease could run out.
    """
    process = fork_server().Process(target=os.getpid, name="mixedfit-warm-up", daemon=True)
    process.start()  # returns once the fork server, preloaded, has forked it
    process.join()
    process.close()


class _WarmProcess(Child):
    """A fit process that serves one fit after another for one worker thread."""

    def __init__(self, memory_bytes: int) -> None:
        super().__init__("mixedfit-fit", serve_fits, memory_bytes, MAX_FITS_PER_PROCESS,
                         duplex=True)
        self.memory_bytes = memory_bytes
        self.fits = 0
        # the dataset whose frame the process keeps (``child.dataset_frame``), as it said
        self.held: str | None = None


# each worker thread (the embedded worker, a worker process's loop) keeps its own
_warm = threading.local()


def _take_warm(memory_bytes: int) -> _WarmProcess:
    """This thread's warm fit process, started anew if it has ended, served its quota or
    has another memory limit."""
    process: _WarmProcess | None = getattr(_warm, "process", None)
    # an idle warm process never sends: its connection readable means it has ended
    if process is not None and (process.memory_bytes != memory_bytes
                                or process.fits >= MAX_FITS_PER_PROCESS
                                or not process.process.is_alive()
                                or process.reader.poll(0)):
        process.close()
        process = None
    if process is None:
        process = _WarmProcess(memory_bytes)
    _warm.process = None  # taken: given back only after a fit that leaves it sound
    return process


def warm_holds(dataset_key: str) -> bool:
    """Whether this thread's warm fit process keeps the frame of ``dataset_key`` (a fit on
    it may then be sent without the dataset's bytes)."""
    process: _WarmProcess | None = getattr(_warm, "process", None)
    return process is not None and process.held == dataset_key


def warm_process_pid() -> int | None:
    """The pid of this thread's warm fit process, if it has one (for tests and logs)."""
    process: _WarmProcess | None = getattr(_warm, "process", None)
    return process.process.pid if process is not None else None


def run_work(work: ChildWork, *, timeout_seconds: float, memory_bytes: int,
             tick_seconds: float, on_tick: Callable[[], bool],
             on_progress: OnProgress | None = None,
             with_data: Callable[[], ChildWork] | None = None) -> WorkOutcome:
    """Run ``work`` (a fit, say) in this thread's warm process and say how it ended.

    A fit that runs out of time, is cancelled, crashes or fails internally ends its
    process (killed if need be); the next fit starts a new one. A warm process found dead
    when handed the fit (killed while it waited) is no crash of the fit: the fit is given
    to a fresh process. The progress the work reports is passed to ``on_progress``
    (done, total) on this thread as it arrives. Work sent without its dataset's bytes
    (``warm_holds``) that reaches a process without the frame (replaced meanwhile) is
    sent again as ``with_data()`` gives it, bytes and all.
    """
    child = _take_warm(memory_bytes)
    reused = child.fits > 0
    outcome = _run_in(child, work, timeout_seconds, memory_bytes, tick_seconds, on_tick,
                      on_progress)
    if outcome.status == "crashed" and reused:
        outcome = _run_in(_take_warm(memory_bytes), work, timeout_seconds, memory_bytes,
                          tick_seconds, on_tick, on_progress)
    if outcome.status == "missing" and with_data is not None:
        outcome = _run_in(_take_warm(memory_bytes), with_data(), timeout_seconds,
                          memory_bytes, tick_seconds, on_tick, on_progress)
    if outcome.status == "missing":
        return WorkOutcome("crashed", message=(
            f"the {work.label} was sent without its data, which its process did not hold"))
    return outcome


def _run_in(child: _WarmProcess, work: ChildWork, timeout_seconds: float,
            memory_bytes: int, tick_seconds: float, on_tick: Callable[[], bool],
            on_progress: OnProgress | None) -> WorkOutcome:
    child.fits += 1
    keep = False
    label = work.label
    try:
        child.reader.send(work)
        started = time.monotonic()
        deadline = started + timeout_seconds
        next_tick = started + tick_seconds
        while True:
            now = time.monotonic()
            if now >= deadline:
                return WorkOutcome("timeout", message=(
                    f"the {label} ran longer than its time limit of {timeout_seconds:g} "
                    "seconds and was stopped"))
            if now >= next_tick:
                # ticks keep their pace however often progress arrives
                if not on_tick():
                    return WorkOutcome("cancelled", message=f"the {label} was cancelled")
                next_tick = now + tick_seconds
            if not child.reader.poll(max(0.0, min(next_tick, deadline) - now)):
                continue
            try:
                message = child.reader.recv()
            except EOFError:
                return _crashed(label, child.exit_code(), memory_bytes)
            if message[0] != "progress":
                break
            if on_progress is not None:
                on_progress(int(message[1]), int(message[2]))
        _, outcome, child.held = message  # ("done", outcome, held)
        keep = outcome[0] in ("ok", "invalid", "missing")
        return _read_outcome(label, outcome, memory_bytes)
    except (BrokenPipeError, ConnectionResetError):
        return _crashed(label, child.exit_code(), memory_bytes)
    finally:
        if keep:
            _warm.process = child
        else:
            child.close()


def _read_outcome(label: str, outcome: tuple[object, ...], memory_bytes: int) -> WorkOutcome:
    kind = outcome[0]
    if kind == "ok":
        return WorkOutcome("succeeded", value=outcome[1])
    if kind == "invalid":
        return WorkOutcome("invalid", error_type=str(outcome[1]), message=str(outcome[2]))
    if kind == "missing":
        return WorkOutcome("missing")
    if kind == "memory":
        return WorkOutcome("memory", message=_memory_message(label, memory_bytes))
    # The traceback is for operators (the worker's log), not for clients: the stored problem
    # names the exception type only, so no paths or internals reach the API.
    details = str(outcome[1]).strip()
    log.error("%s failed with an internal error:\n%s", label, details)
    last_line = details.splitlines()[-1] if details else "an unknown error"
    error_name = last_line.split(":", 1)[0].strip()
    return WorkOutcome("crashed", message=(
        f"the {label} failed with an internal error ({error_name}); the worker's log has "
        "the details"))


def _crashed(label: str, exitcode: int | None, memory_bytes: int) -> WorkOutcome:
    if exitcode is not None and exitcode < 0:
        how = f"was killed by signal {signal.Signals(-exitcode).name}"
    else:
        how = f"exited with status {exitcode}"
    message = f"the {label} process {how} before reporting a result"
    if exitcode == -signal.SIGKILL:
        message += (f" (the system may have run out of memory; the {label}'s limit is "
                    f"{memory_bytes / 2**20:,.0f} MiB)")
    return WorkOutcome("crashed", message=message)


def _memory_message(label: str, memory_bytes: int) -> str:
    return (f"the {label} needed more memory than its limit of {memory_bytes / 2**20:,.0f} MiB "
            "and was stopped")
