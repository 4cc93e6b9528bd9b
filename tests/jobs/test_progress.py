"""Work in a warm process reports its progress before its outcome: the child sends
("progress", done, total) at most every PROGRESS_SECONDS, the runner passes each to its
``on_progress`` and keeps renewing the lease at its own pace meanwhile; the process stays
warm for the next work item. A real bootstrap in a real fit process."""

from __future__ import annotations

import time

import pandas as pd

from service.inference.work import IntervalWork
from service.jobs.child import FitRequest
from service.jobs.runner import run_work, warm_process_pid
from service.stats.inference import Intervals
from tests.db.factories import DATA, parquet_bytes

GiB = 1024**3
SLEEPSTUDY = parquet_bytes(pd.read_csv(DATA / "sleepstudy.csv"))


def test_progress_arrives_before_the_outcome_and_ticks_keep_their_pace() -> None:
    work = IntervalWork(formula="Reaction ~ Days + (Days | Subject)", fit_method="REML",
                        parquet=SLEEPSTUDY, method="boot", level=0.95, nsim=400, seed=5)
    progress: list[tuple[int, int, float]] = []
    ticks: list[float] = []

    def tick() -> bool:
        ticks.append(time.monotonic())
        return True

    outcome = run_work(work, timeout_seconds=120, memory_bytes=4 * GiB, tick_seconds=0.05,
                       on_tick=tick,
                       on_progress=lambda done, total: progress.append(
                           (done, total, time.monotonic())))
    assert outcome.status == "succeeded", outcome
    table: Intervals = outcome.value
    assert (table.method, len(table.rows)) == ("boot", 6)
    assert progress, "no progress arrived"
    dones = [done for done, _, _ in progress]
    assert dones == sorted(dones) and all(total == 400 for _, total, _ in progress)
    assert 1 <= dones[0] and dones[-1] < 400  # the last report is left to the outcome
    # the child sends at most every 0.1 s (a little less between arrivals, by scheduling)
    gaps = [b - a for (_, _, a), (_, _, b) in zip(progress, progress[1:], strict=False)]
    assert all(gap > 0.05 for gap in gaps), gaps
    # the lease was renewed while progress arrived, every tick (0.05 s) or so
    first, last = progress[0][2], progress[-1][2]
    during = [t for t in ticks if first <= t <= last]
    assert len(during) >= (last - first) / 0.05 / 2, (len(during), last - first)

    # the process stays warm: the next work item (a fit) runs in the same one
    pid = warm_process_pid()
    fit = run_work(FitRequest("Reaction ~ Days + (1 | Subject)", "REML", SLEEPSTUDY),
                   timeout_seconds=60, memory_bytes=4 * GiB, tick_seconds=0.05,
                   on_tick=lambda: True)
    assert fit.status == "succeeded"
    assert warm_process_pid() == pid
