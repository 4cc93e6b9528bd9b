"""A fit's lifeline (service.jobs.child.die_with_parent) ends the fit the moment its worker
dies, even while the fit holds the GIL in a long native call, where a watching thread
would have to wait for its turn: the kernel's SIGIO ends it."""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection

import pytest

from service.compute.forkserver import fork_server
from service.jobs.child import die_with_parent

pytestmark = pytest.mark.slow  # a real fit process, from the workers' fork server


def _hold_the_gil(lifeline: Connection, ready: Connection) -> None:
    die_with_parent(lifeline)
    ready.send("fitting")
    ready.close()
    pow(3, 3 * 10**7)  # one native call of seconds that never lets another thread run


def test_a_fit_holding_the_gil_ends_at_once_when_its_worker_dies() -> None:
    context = fork_server()  # the fork server that fits are forked from
    lifeline, keep_alive = context.Pipe(duplex=False)
    reader, ready = context.Pipe(duplex=False)
    process = context.Process(target=_hold_the_gil, args=(lifeline, ready), daemon=True)
    process.start()
    lifeline.close()
    ready.close()
    try:
        assert reader.poll(60) and reader.recv() == "fitting"
        time.sleep(0.3)  # well inside the native call
        assert process.is_alive()
        died = time.monotonic()
        keep_alive.close()  # what the worker's death does to its end of the lifeline
        process.join(5)
        elapsed = time.monotonic() - died
        assert process.exitcode == -signal.SIGIO  # the kernel, not the watching thread
        assert elapsed < 0.5
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        reader.close()
