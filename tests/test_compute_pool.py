"""The compute pool runs work in real child processes under its limits: results and refusals
come back, work over its time or memory limit is stopped with a 422 naming the setting, a
task whose client leaves is stopped, and a full queue is refused at once."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from service.compute import ComputeBusy, ComputeLimitExceeded, ComputePool
from service.errors import InvalidInput

GiB = 1024**3


def _square(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _refuse(column: str) -> None:
    raise InvalidInput(f"no column {column!r}", column=column)


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def _allocate(n_bytes: int) -> int:
    return len(bytearray(n_bytes))


def _write_pid_then_sleep(path: str) -> None:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)


def _pool(**overrides: float) -> ComputePool:
    values = {"processes": 2, "queue": 2, "timeout_seconds": 30.0, "memory_bytes": 2 * GiB}
    values.update(overrides)
    return ComputePool(int(values["processes"]), int(values["queue"]),
                       values["timeout_seconds"], int(values["memory_bytes"]))


def test_a_task_runs_in_a_child_and_returns_its_value() -> None:
    value, pid = asyncio.run(_pool().run("squaring", _square, 12))
    assert value == 144
    assert pid != os.getpid()


def test_a_refusal_of_the_input_comes_back_as_raised() -> None:
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(_pool().run("grouping", _refuse, "Stat"))
    assert caught.value.detail == "no column 'Stat'"
    assert caught.value.extensions == {"column": "Stat"}


def test_work_over_the_time_limit_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(ComputeLimitExceeded) as caught:
        asyncio.run(_pool(timeout_seconds=0.5).run("drawing the plot", _sleep, 30))
    assert time.monotonic() - started < 10
    assert caught.value.extensions["setting"] == "MIXEDFIT_COMPUTE_TIMEOUT_SECONDS"
    assert "Drawing the plot took longer than the limit of 0.5 seconds" in caught.value.detail


def test_work_over_the_memory_limit_is_stopped() -> None:
    with pytest.raises(ComputeLimitExceeded) as caught:
        asyncio.run(_pool(memory_bytes=1 * GiB).run("parsing", _allocate, 3 * GiB))
    assert caught.value.extensions["setting"] == "MIXEDFIT_COMPUTE_MEMORY_BYTES"


def test_a_task_whose_client_left_is_stopped(tmp_path: object) -> None:
    pid_file = f"{tmp_path}/pid"

    async def gone() -> bool:
        return os.path.exists(pid_file)  # the client "leaves" once the child has started

    with pytest.raises(Exception) as caught:
        asyncio.run(_pool().run("drawing", _write_pid_then_sleep, pid_file, gone=gone))
    assert type(caught.value).__name__ == "ComputeCancelled"
    pid = int(open(pid_file).read())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"compute child {pid} still runs after its client left")


def test_a_full_queue_is_refused_at_once() -> None:
    pool = _pool(processes=1, queue=1)

    async def main() -> list[object]:
        tasks = [asyncio.create_task(pool.run("sleeping", _sleep, 1.0)) for _ in range(3)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert outcomes.count("slept") == 2
    refused = [o for o in outcomes if isinstance(o, ComputeBusy)]
    assert len(refused) == 1
    assert refused[0].status == 503 and refused[0].retry_after_seconds


def test_a_child_stays_warm_for_the_next_task_unless_it_was_stopped() -> None:
    pool = _pool(processes=1, timeout_seconds=1.0)

    async def scenario() -> tuple[int, int, int, int]:
        _, first = await pool.run("squaring", _square, 2)
        _, second = await pool.run("squaring", _square, 3)
        with pytest.raises(InvalidInput):  # a refusal leaves the child sound: kept
            await pool.run("grouping", _refuse, "Stat")
        _, third = await pool.run("squaring", _square, 4)
        with pytest.raises(ComputeLimitExceeded):  # stopped at its time limit: killed
            await pool.run("sleeping", _sleep, 5.0)
        _, fourth = await pool.run("squaring", _square, 5)
        return first, second, third, fourth

    try:
        first, second, third, fourth = asyncio.run(scenario())
    finally:
        pool.close()
    assert first == second == third  # one warm child served them all
    assert fourth != third  # the stopped child was never reused
    with pytest.raises(ProcessLookupError):
        os.kill(third, 0)


def test_an_idle_child_killed_meanwhile_is_replaced_without_failing_the_task() -> None:
    pool = _pool(processes=1)
    try:
        _, first = asyncio.run(pool.run("squaring", _square, 2))
        os.kill(first, 9)
        time.sleep(0.2)
        value, second = asyncio.run(pool.run("squaring", _square, 3))
    finally:
        pool.close()
    assert value == 9 and second != first
