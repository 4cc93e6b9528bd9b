"""A worker's stop event that can also be nudged: ``wait`` returns early when work may be
there, so a queued job is claimed at once instead of at the next poll.

The worker loop waits on its stop event between polls (``stop.wait(poll_seconds)``); with a
``WakeableStop`` that wait also ends on ``wake()``, called when a job is queued: by the API
in the same process (embedded mode), or on a PostgreSQL notification (``service.db.notify``).
``is_set`` and ``set`` keep their meaning, so a running fit is still cut short only by a stop.
"""

from __future__ import annotations

import threading


class WakeableStop(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self._nudged = threading.Event()

    def set(self) -> None:
        super().set()
        self._nudged.set()

    def wake(self) -> None:
        """End the current (or the next) wait early; the worker then looks for work."""
        self._nudged.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        self._nudged.wait(timeout)
        self._nudged.clear()
        return self.is_set()


def pause(stop: threading.Event, seconds: float) -> bool:
    """Wait out ``seconds`` (a back-off) unless stopped; True if stopped. A nudge neither
    ends this wait nor is used up by it: it is left for the idle wait, so a job queued
    during a back-off is claimed when the worker is next free, not at the next poll."""
    return threading.Event.wait(stop, seconds)
