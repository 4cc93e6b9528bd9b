"""A bounded pool of compute children for the API's work whose cost grows with the data.

Residuals, plots, the parsing of uploads and of large prediction bodies never run in the
event loop or on the request threadpool: each runs in a child process forked from the warm
fork server, under a time limit and an address-space limit, at most ``processes`` at a
time. A child that ends its task cleanly stays warm for the next (a fork costs tens of
milliseconds, more on a busy machine); one stopped for its limits, its client's leaving or
a failure is killed and never reused. The API process only waits (on a thread of the
pool's own, not the request threadpool), so however heavy the work, /healthz, predictions
and reads are answered meanwhile, and a child that runs away is killed without touching the
API. A task whose client leaves is stopped. When every child is busy and ``queue`` more
tasks wait, the next is refused at once (503 with Retry-After) instead of piling up.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from service.compute.child import serve_tasks
from service.compute.forkserver import Child
from service.errors import ClientClosedRequest, ServiceError, ServiceUnavailable

T = TypeVar("T")

# how often the waiting thread checks for a cancelled task, and the API for a gone client
TICK_SECONDS = 0.1
GONE_CHECK_SECONDS = 0.5
# tasks a warm child serves before it is replaced (as the fits' warm processes)
MAX_TASKS_PER_CHILD = 200


class ComputeBusy(ServiceUnavailable):
    slug = "compute-busy"
    title = "The server's compute processes are all busy"
    retry_after_seconds = 2


class ComputeLimitExceeded(ServiceError):
    """The work needs more time or memory than one request may take. Repeating it would
    end the same way, so it is a 422 that names the setting, not a 503."""

    status = 422
    slug = "compute-limit-exceeded"
    title = "The request needs more than its time or memory limit"


class ComputeFailed(Exception):
    """A compute child failed unexpectedly (a bug: answered as a 500 and logged)."""


class ComputePool:
    def __init__(self, processes: int, queue: int, timeout_seconds: float,
                 memory_bytes: int) -> None:
        self.processes = max(1, processes)
        self.queue = max(0, queue)
        self.timeout_seconds = timeout_seconds
        self.memory_bytes = memory_bytes
        self._limiter = CapacityLimiter(self.processes)
        self._admitted = 0
        # warm children between tasks, at most one per process slot
        self._idle: list[Child] = []
        self._idle_lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Tasks running or waiting for a child now."""
        return self._admitted

    async def run(self, what: str, task: Callable[..., T], *args: Any,
                  gone: Callable[[], Awaitable[bool]] | None = None) -> T:
        """``task(*args)`` in a child; ``what`` names the work in errors ("drawing the plot").

        Raises what the task raised to refuse its input (a ``ServiceError`` or
        ``StatsError``), ``ComputeBusy``, ``ComputeLimitExceeded``, or ``ComputeFailed``.
        """
        if self._admitted >= self.processes + self.queue:
            raise ComputeBusy(
                f"The server is busy with {self._admitted} requests of heavy work "
                f"(MIXEDFIT_COMPUTE_PROCESSES = {self.processes} at a time, "
                f"MIXEDFIT_COMPUTE_QUEUE = {self.queue} waiting); retry shortly.",
                setting="MIXEDFIT_COMPUTE_QUEUE", limit=self.queue)
        self._admitted += 1
        cancel = threading.Event()
        watcher = (asyncio.create_task(_watch_client(gone, cancel))
                   if gone is not None else None)
        try:
            outcome = await anyio.to_thread.run_sync(
                self._run_child, task, args, cancel, limiter=self._limiter)
        finally:
            cancel.set()  # also when this request was cancelled: its child is stopped
            self._admitted -= 1
            if watcher is not None:
                watcher.cancel()
        return self._result(what, outcome)

    def close(self) -> None:
        """End the idle children (at the app's shutdown; they would end with it anyway)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def _take(self) -> tuple[Child, bool]:
        """An idle warm child (True: reused) or a new one."""
        with self._idle_lock:
            while self._idle:
                child = self._idle.pop()
                # an idle child never sends: its connection readable means it has ended
                if child.process.is_alive() and not child.reader.poll(0):
                    return child, True
                child.close()
        return Child("mixedfit-compute", serve_tasks, self.memory_bytes,
                     MAX_TASKS_PER_CHILD, duplex=True), False

    def _give_back(self, child: Child) -> None:
        with self._idle_lock:
            if len(self._idle) < self.processes:
                self._idle.append(child)
                return
        child.close()

    def _run_child(self, task: Callable[..., Any], args: tuple[Any, ...],
                   cancel: threading.Event) -> tuple[Any, ...]:
        if cancel.is_set():
            return ("cancelled",)
        deadline = time.monotonic() + self.timeout_seconds
        child, reused = self._take()
        outcome = self._run_in(child, task, args, cancel, deadline)
        if outcome[0] == "died" and reused:
            # an idle child found dead when handed the task (killed while it waited) is no
            # failure of the task: a new child runs it
            outcome = self._run_in(self._take()[0], task, args, cancel, deadline)
        return outcome

    def _run_in(self, child: Child, task: Callable[..., Any], args: tuple[Any, ...],
                cancel: threading.Event, deadline: float) -> tuple[Any, ...]:
        keep = False
        try:
            child.reader.send((task, args))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ("timeout",)
                if child.reader.poll(min(TICK_SECONDS, remaining)):
                    break
                if cancel.is_set():
                    return ("cancelled",)
            try:
                outcome: tuple[Any, ...] = child.reader.recv()
            except EOFError:
                return ("died", child.exit_code())
            keep = outcome[0] in ("ok", "raised")
            return outcome
        except (BrokenPipeError, ConnectionResetError):
            return ("died", child.exit_code())
        finally:
            if keep:
                self._give_back(child)
            else:  # stopped (time, cancel), failed or dead: killed, never reused
                child.close()

    def _result(self, what: str, outcome: tuple[Any, ...]) -> Any:
        kind = outcome[0]
        if kind == "ok":
            return outcome[1]
        if kind == "raised":
            raise outcome[1]
        if kind == "timeout":
            raise ComputeLimitExceeded(
                f"{what.capitalize()} took longer than the limit of "
                f"{self.timeout_seconds:g} seconds (MIXEDFIT_COMPUTE_TIMEOUT_SECONDS) and was "
                "stopped.", setting="MIXEDFIT_COMPUTE_TIMEOUT_SECONDS",
                limit=self.timeout_seconds)
        if kind == "memory" or (kind == "died" and outcome[1] == -signal.SIGKILL):
            raise ComputeLimitExceeded(
                f"{what.capitalize()} needed more memory than the limit of "
                f"{self.memory_bytes / 2**20:,.0f} MiB (MIXEDFIT_COMPUTE_MEMORY_BYTES) and was "
                "stopped.", setting="MIXEDFIT_COMPUTE_MEMORY_BYTES", limit=self.memory_bytes)
        if kind == "cancelled":
            # the client has gone: nobody reads this answer
            raise ComputeCancelled(what)
        if kind == "died":
            raise ComputeFailed(f"{what}: the compute process exited with {outcome[1]}")
        raise ComputeFailed(f"{what} failed:\n{outcome[1]}")


class ComputeCancelled(ClientClosedRequest):
    """The client left before the work was done (the answer goes nowhere)."""


async def _watch_client(gone: Callable[[], Awaitable[bool]], cancel: threading.Event) -> None:
    while not cancel.is_set():
        if await gone():
            cancel.set()
            return
        await asyncio.sleep(GONE_CHECK_SECONDS)
