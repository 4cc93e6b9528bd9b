"""Waiting for fits to finish without every waiting client re-reading the database.

A long poll (``GET /v1/models/{id}?wait=S``) registers its model with the process's
``FinishWatch`` and sleeps on an asyncio event. One task asks the database which of the
watched models have finished, in one query of ids and statuses every ``poll_seconds``, on a
thread of its own (a busy request threadpool does not delay it). So 500 waiting clients
cost one small query per interval, not 500 reads of result documents, and while they wait
they hold no database connection, no transaction and no thread. A worker in the same
process (embedded mode) calls ``wake`` when it finishes a job, so its waiters are answered
at once instead of at the next interval.

The watch only says "look again": the waiter re-reads its model through its own
tenant-scoped session, so the watch's unscoped query never shows anyone another tenant's row.
The one exception is the client that has just queued a fit (``POST /v1/models?wait=``): the
worker of its own process may hand over the finished model's document with the wake
(``finished``), read and rendered on the worker's thread, and that client takes it
(``take_handed``) instead of reading again: it is the model the client itself created.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("service.models.watch")

POLL_SECONDS = 0.25
# how often a waiter checks whether its client has gone away
GONE_CHECK_SECONDS = 1.0
# ids per query: well under SQLite's limit on bound parameters
BATCH = 500
# after a failed check (the database unavailable), wait this long before the next
ERROR_PAUSE_SECONDS = 1.0
# documents handed over by a worker and not yet taken (their waiter left first): at most
# this many are kept, the oldest dropped first
HANDED_MAX = 64


# (session, ids) -> the ids among them whose work has finished
FinishedAmong = Callable[[Session, list[str]], set[str]]


class FinishWatch:
    """Wakes long polls when their models' fits (or other jobs' targets) finish."""

    def __init__(self, session_factory: Callable[[], sessionmaker[Session] | None],
                 finished_among: FinishedAmong, poll_seconds: float = POLL_SECONDS) -> None:
        self._session_factory = session_factory
        self._finished_among = finished_among
        self._poll_seconds = poll_seconds
        self._waiters: dict[str, set[asyncio.Event]] = {}
        # model id -> what its worker handed over with the wake (touched on the loop only)
        self._handed: OrderedDict[str, object] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # the checks run one at a time on a thread of their own
        self._limiter = CapacityLimiter(1)

    @property
    def waiting(self) -> int:
        """How many long polls are waiting now."""
        return sum(len(events) for events in self._waiters.values())

    def register(self, model_id: str) -> asyncio.Event:
        """Watch ``model_id`` from now on, for a ``wait`` to come (on the event loop). A
        client that has just queued a fit registers before any worker is woken: then its
        fit cannot finish unseen, and it need not read the model before waiting."""
        self._start(asyncio.get_running_loop())
        event = asyncio.Event()
        self._waiters.setdefault(model_id, set()).add(event)
        return event

    def forget(self, model_id: str, registered: asyncio.Event) -> None:
        """Stop watching for a ``register`` whose wait will not come (on the event loop)."""
        events = self._waiters.get(model_id)
        if events is not None:
            events.discard(registered)
            if not events:
                del self._waiters[model_id]

    async def wait(self, model_id: str, timeout: float,
                   gone: Callable[[], Awaitable[bool]] | None = None,
                   registered: asyncio.Event | None = None) -> bool:
        """Sleep until ``model_id`` has finished (True), ``timeout`` seconds have passed or
        the client has gone (``gone()``; both False). The caller reads the model again.
        ``registered``: what ``register`` gave for it (no longer watched afterwards)."""
        loop = asyncio.get_running_loop()
        event = registered or self.register(model_id)
        deadline = loop.time() + timeout
        try:
            while not event.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(event.wait(), min(remaining, GONE_CHECK_SECONDS))
                except TimeoutError:
                    if gone is not None and await gone():
                        return False
            return True
        finally:
            self.forget(model_id, event)

    def watching(self, model_id: str) -> bool:
        """Whether a client waits for ``model_id`` now (callable from any thread)."""
        return model_id in self._waiters

    def finished(self, model_id: str, handed: object = None) -> None:
        """This process's worker has just ended ``model_id``'s job: wake its waiters now,
        without a check (callable from any thread). A waiter reads the model again and,
        should the job have been queued again instead, waits on. ``handed``: the model as
        the worker read it after the job, for the waiter that queued it (``take_handed``)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_waiters_of, model_id, handed)

    def _wake_waiters_of(self, model_id: str, handed: object = None) -> None:
        events = self._waiters.get(model_id, ())
        if handed is not None and events:
            self._handed[model_id] = handed
            while len(self._handed) > HANDED_MAX:
                self._handed.popitem(last=False)
        for event in events:
            event.set()

    def take_handed(self, model_id: str) -> object:
        """What the worker handed over with ``model_id``'s wake (None: nothing), once; only
        for the client that queued that model (on the event loop)."""
        return self._handed.pop(model_id, None)

    def wake(self) -> None:
        """Check the watched models now (callable from any thread: a worker's)."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._loop = None

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(self._wakeup), name="mixedfit-finish-watch")

    async def _run(self, wakeup: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.wait_for(wakeup.wait(), self._poll_seconds)
            except TimeoutError:
                pass
            wakeup.clear()
            if not self._waiters:
                continue
            try:
                done = await anyio.to_thread.run_sync(self._check, list(self._waiters),
                                                      limiter=self._limiter)
            except Exception as error:  # the database unavailable: waiters time out
                log.warning("finish watch: cannot check fits (%s); retrying",
                            type(error).__name__)
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            for model_id in done:
                for event in self._waiters.get(model_id, ()):
                    event.set()

    def _check(self, model_ids: list[str]) -> set[str]:
        factory = self._session_factory()
        if factory is None:
            return set()
        done: set[str] = set()
        with factory() as session:
            try:
                for start in range(0, len(model_ids), BATCH):
                    done |= self._finished_among(session, model_ids[start:start + BATCH])
            finally:
                session.rollback()
        return done


class HasStatus(Protocol):
    @property
    def status(self) -> str: ...


class HasIdAndStatus(HasStatus, Protocol):
    @property
    def id(self) -> str: ...


Read = TypeVar("Read", bound=HasStatus)


async def read_when_finished(watch: FinishWatch, target_id: str, read: Callable[[], Read],
                             finished: Collection[str], wait_seconds: float,
                             gone: Callable[[], Awaitable[bool]] | None = None) -> Read:
    """``read()`` on the threadpool; if its status is not one of ``finished`` and the
    client waits, again once the watch says ``target_id`` finished or the wait is over (a
    job's long poll: ``read`` ends its transaction, so the wait holds none)."""
    row = await run_in_threadpool(read)
    if row.status not in finished and wait_seconds > 0:
        await watch.wait(target_id, wait_seconds, gone)
        row = await run_in_threadpool(read)
    return row
