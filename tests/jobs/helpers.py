"""Data that takes a real mixed-model fit seconds, and reading a fit's end state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import FixedEffectRow, JobRow, ModelMetricRow, ModelRow

SLOW_FORMULA = "y ~ x + (x | a) + (1 | b)"
T = TypeVar("T")
StartWorker = Callable[..., subprocess.Popen[bytes]]


@contextmanager
def worker_processes(database_url: str, log_dir: Path, **defaults: object
                     ) -> Iterator[StartWorker]:
    """Start real ``python -m service.jobs.worker`` processes on ``database_url``.

    ``start(name, **settings)`` starts one, its settings (``lease_seconds=2``) over
    ``defaults``, logging to ``log_dir/name.log``; at exit any still alive are killed and
    each log's tail is printed (pytest shows it when the test failed).
    """
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(name: str, **settings: object) -> subprocess.Popen[bytes]:
        env = {**os.environ, "MIXEDFIT_DATABASE_URL": database_url,
               "MIXEDFIT_WORKER_POLL_SECONDS": "0.1",
               **{f"MIXEDFIT_{key.upper()}": str(value)
                  for key, value in {**defaults, **settings}.items()}}
        log = log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "service.jobs.worker"], env=env,
                                       stdout=out, stderr=subprocess.STDOUT)
        started.append((process, log))
        return process

    try:
        yield start
    finally:
        for process, log in started:
            if process.poll() is None:
                process.kill()
                process.wait()
            print(f"--- {log.name} (exit {process.returncode}) ---\n"
                  f"{log.read_text()[-6000:]}")


def slow_lmm_data(n: int = 40_000, n_a: int = 600, n_b: int = 300, seed: int = 7
                  ) -> pd.DataFrame:
    """Crossed random effects with a random slope; the default takes the mixed-model
    engine seconds (about 10 on two busy cores), long enough to kill a worker mid-fit."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    y = (1.0 + 0.5 * x + rng.normal(size=n_a)[a] + 0.3 * rng.normal(size=n_a)[a] * x
         + rng.normal(size=n_b)[b] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})


def endless_lmm_data() -> pd.DataFrame:
    """The same model with 5,000 random effects on 200,000 rows: minutes of fitting, for
    tests that stop a fit (its time limit, SIGTERM) and must not see it end first."""
    return slow_lmm_data(200_000, 2_000, 1_000)


@dataclass(frozen=True)
class Stored:
    """What the database says about one model and its job."""

    model_status: str
    error: dict[str, Any] | None
    job_status: str
    attempts: int
    n_fixed_effects: int
    n_metrics: int


def stored(session_factory: sessionmaker[Session], model_id: str, job_id: str) -> Stored:
    with session_factory() as session:
        # the job first: under PostgreSQL's READ COMMITTED each statement sees what was
        # committed when it started, so a model read before the job could predate the
        # transaction that stored the result and ended the job together
        job = session.get(JobRow, job_id)
        model = session.get(ModelRow, model_id)
        assert model is not None and job is not None
        n_fixed = session.scalar(select(func.count()).select_from(FixedEffectRow)
                                 .where(FixedEffectRow.model_id == model_id))
        n_metrics = session.scalar(select(func.count()).select_from(ModelMetricRow)
                                   .where(ModelMetricRow.model_id == model_id))
        return Stored(model.status, model.error, job.status, job.attempts, n_fixed or 0,
                      n_metrics or 0)


def wait_for(check: Callable[[], T | None], what: str, limit: float = 300.0) -> T:
    """Poll ``check`` until it returns something; the limit only stops a hung test."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting {limit:g} s for {what}")
