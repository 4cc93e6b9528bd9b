"""The fork server that fit and compute children are forked from.

Importing the statistics stack (numpy, pandas, scipy, statsmodels, pyarrow, matplotlib)
takes seconds; the fork server pays that once (``service.jobs.preload``) and each child is a
fork of it, so a child starts in tens of milliseconds.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from typing import Any

_context: ForkServerContext | None = None
_context_lock = threading.Lock()


def fork_server() -> ForkServerContext:
    """The process's fork-server context, with the statistics stack preloaded."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["service.jobs.preload"])
            _context = context
        return _context


class Child:
    """A child process forked from the fork server that sends one outcome back.

    ``target(connection, lifeline, *args)`` runs in the child: it sends its outcome on
    ``connection`` and watches ``lifeline``, whose end of file means this process died (the
    child then quits: its answer would go nowhere). Only the child writes, so the child's
    death is end of file on ``reader`` too.
    """

    def __init__(self, name: str, target: Callable[..., None], *args: Any,
                 duplex: bool = False) -> None:
        context = fork_server()
        # duplex: a child that serves many requests also receives them on ``reader``
        self.reader, writer = context.Pipe(duplex=duplex)
        lifeline, self._keep_alive = context.Pipe(duplex=False)
        self.process = context.Process(target=target, args=(writer, lifeline, *args),
                                       name=name, daemon=True)
        self.process.start()
        writer.close()
        lifeline.close()

    def exit_code(self) -> int | None:
        """The exit code once the child has ended without sending (after EOFError)."""
        self.process.join()
        return self.process.exitcode

    def close(self) -> None:
        """Kill the child if it still runs and release its pipes."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.process.close()
        self.reader.close()
        self._keep_alive.close()
