"""Long polling (``?wait=S``): re-read something until it is done or the wait is over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

# Short first pauses answer a quick fit quickly; the pause grows so that a long wait does not
# keep the database busy.
FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.5


async def poll_until(read: Callable[[], T], done: Callable[[T], bool], wait_seconds: float,
                     gone: Callable[[], Awaitable[bool]] | None = None) -> T:
    """``read()`` (blocking, run in the threadpool) until ``done`` or ``wait_seconds`` pass.

    ``gone`` tells whether the client has stopped waiting (then the last read is returned).
    """
    deadline = time.monotonic() + wait_seconds
    pause = FIRST_POLL_SECONDS
    while True:
        value = await run_in_threadpool(read)
        remaining = deadline - time.monotonic()
        if done(value) or remaining <= 0 or (gone is not None and await gone()):
            return value
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 1.5, MAX_POLL_SECONDS)
