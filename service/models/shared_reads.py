"""Reads that callers waiting at the same moment share.

Long polls arrive and time out by the hundred, many on the same few models; each would read
the same row (and render the same document) on the threadpool, and on a 2-core machine
those trips, not the waiting, are what delays everyone else. A ``SharedReads`` runs one
read per key at a time: the first caller's read runs on the threadpool and those who ask
for the same key meanwhile await its result (or its error). The key must say everything
the answer depends on, the caller's tenant scope included (``scope_of``), since a read made
for one caller is given to another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from service.auth.principal import Principal

T = TypeVar("T")


def scope_of(principal: Principal) -> Hashable:
    """What a tenant-scoped read's answer depends on of the caller: the rows it may see."""
    return "all" if principal.sees_all else ("tenant", principal.tenant)


class SharedReads(Generic[T]):
    def __init__(self) -> None:
        self._pending: dict[Hashable, asyncio.Task[T]] = {}

    async def read(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()`` on the threadpool, or the result of the one running for ``key``.

        The read is a task of its own: a caller that goes away (its client left, its
        request cancelled) does not cancel it for the others."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(run_in_threadpool(read))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when nobody waits
