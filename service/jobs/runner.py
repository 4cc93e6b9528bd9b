"""Runs a fit in a child process with a time limit and a memory limit.

The worker's own process never fits: a fit that runs away (too long, too much memory, a
crash in native code) ends its child, and the worker reports why and lives on. While the
child runs, ``on_tick`` is called every ``tick_seconds`` (the worker renews its lease there);
when it returns False the child is killed and the fit is abandoned.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from service.jobs.child import FitRequest
from service.stats.fit import FittedModel

OutcomeStatus = Literal["succeeded", "invalid", "timeout", "memory", "crashed", "cancelled"]

# One fit per child: BLAS threads would only fight the other workers for the cores.
_CHILD_ENV_DEFAULTS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class FitOutcome:
    status: OutcomeStatus
    fitted: FittedModel | None = None
    error_type: str | None = None  # the StatsError subclass for "invalid"
    message: str = ""


def run_fit(request: FitRequest, *, timeout_seconds: float, memory_bytes: int,
            tick_seconds: float, on_tick: Callable[[], bool]) -> FitOutcome:
    """Fit ``request`` in a child process and say how it ended."""
    env = {**_CHILD_ENV_DEFAULTS, **os.environ}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.jobs.child", str(memory_bytes)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    deadline = time.monotonic() + timeout_seconds
    payload: bytes | None = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill(process)
            return FitOutcome("timeout", message=(
                f"the fit ran longer than its time limit of {timeout_seconds:g} seconds "
                "and was stopped"))
        try:
            # communicate() may be called again after a timeout without losing output
            stdout, stderr = process.communicate(payload, timeout=min(tick_seconds, remaining))
            break
        except subprocess.TimeoutExpired:
            payload = None
            if not on_tick():
                _kill(process)
                return FitOutcome("cancelled", message="the fit was cancelled")
    return _read_outcome(process.returncode, stdout, stderr, memory_bytes)


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.communicate()


def _read_outcome(returncode: int, stdout: bytes, stderr: bytes,
                  memory_bytes: int) -> FitOutcome:
    tail = stderr.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
    if returncode == 0 and stdout:
        outcome = pickle.loads(stdout)  # our own child's output
        kind = outcome[0]
        if kind == "ok":
            return FitOutcome("succeeded", fitted=outcome[1])
        if kind == "invalid":
            return FitOutcome("invalid", error_type=outcome[1], message=outcome[2])
        if kind == "memory":
            return FitOutcome("memory", message=_memory_message(memory_bytes))
        return FitOutcome("crashed", message=f"the fit failed unexpectedly:\n{outcome[1]}")
    if _looks_like_memory(tail):
        return FitOutcome("memory", message=_memory_message(memory_bytes))
    how = (f"was killed by signal {signal.Signals(-returncode).name}" if returncode < 0
           else f"exited with status {returncode}")
    return FitOutcome("crashed", message=f"the fit process {how}" + (f": {tail}" if tail else ""))


def _looks_like_memory(stderr_tail: str) -> bool:
    markers = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory")
    return any(marker in stderr_tail for marker in markers)


def _memory_message(memory_bytes: int) -> str:
    return (f"the fit needed more memory than its limit of {memory_bytes / 2**20:,.0f} MiB "
            "and was stopped")
