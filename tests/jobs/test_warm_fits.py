"""A worker thread's fit process stays warm: consecutive fits run in the same process, and
a fit that does not end cleanly (timeout, cancel, crash) ends its process, so the next fit
starts a fresh one. Real fit processes from the workers' fork server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd

from service.jobs.child import FitRequest
from service.jobs.runner import run_work, warm_process_pid
from tests.db.factories import DATA, parquet_bytes

GiB = 1024**3
MOOD = parquet_bytes(pd.read_csv(DATA / "mood.csv"))


def _fit(formula: str = "Mood ~ Exercise + (1 | State)", timeout: float = 60.0) -> str:
    outcome = run_work(FitRequest(formula, "REML", MOOD), timeout_seconds=timeout,
                      memory_bytes=4 * GiB, tick_seconds=0.05, on_tick=lambda: True)
    return outcome.status


def _wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def test_consecutive_fits_share_one_warm_process() -> None:
    assert _fit() == "succeeded"
    first = warm_process_pid()
    assert first is not None
    assert _fit("Mood ~ Exercise") == "succeeded"
    assert _fit("Mood ~ nothing") == "invalid"  # a refusal of the input leaves it sound
    assert warm_process_pid() == first


def test_a_fit_that_does_not_end_cleanly_ends_its_process() -> None:
    assert _fit() == "succeeded"
    first = warm_process_pid()
    assert first is not None
    # over its time limit before it could start: the process is killed, none is kept
    assert _fit(timeout=1e-6) == "timeout"
    assert warm_process_pid() is None
    assert _fit() == "succeeded"
    second = warm_process_pid()
    assert second is not None and second != first
    os.kill(second, signal.SIGKILL)  # a warm process that died between fits is replaced
    _wait_until_dead(second)
    assert _fit() == "succeeded"
    assert warm_process_pid() not in (None, second)
