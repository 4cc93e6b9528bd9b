"""A warm fit process keeps the frame of the last dataset it decoded: the next fit on the
same dataset is sent without the dataset's bytes and gives the same numbers; a process that
does not hold it (replaced meanwhile) gets them sent again. Real fit processes from the
workers' fork server."""

from __future__ import annotations

import io
import os
import signal

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ModelRow
from service.jobs.child import FitRequest, dataset_frame, held_dataset
from service.jobs.runner import WorkOutcome, run_work, warm_holds, warm_process_pid
from service.jobs.worker import Worker
from service.settings import Settings
from tests.db.factories import DATA, add_model, enqueue, model_row, parquet_bytes, submit_fit
from tests.jobs.test_warm_fits import _wait_until_dead

GiB = 1024**3
MOOD = parquet_bytes(pd.read_csv(DATA / "mood.csv"))
SLEEP = parquet_bytes(pd.read_csv(DATA / "sleepstudy.csv"))
MOOD_FORMULA = "Mood ~ Exercise + (1 | State)"


def _run(request: FitRequest, with_data: FitRequest | None = None) -> WorkOutcome:
    return run_work(request, timeout_seconds=60, memory_bytes=4 * GiB, tick_seconds=0.05,
                    on_tick=lambda: True,
                    with_data=None if with_data is None else (lambda: with_data))


def _estimates(outcome: WorkOutcome) -> list[float]:
    assert outcome.status == "succeeded", outcome.message
    return [fe.estimate for fe in outcome.value.result.fixed_effects]


def test_a_second_fit_on_the_same_dataset_needs_no_bytes() -> None:
    sent = FitRequest(MOOD_FORMULA, "REML", MOOD, dataset_key="mood")
    first = _estimates(_run(sent))
    assert warm_holds("mood") and not warm_holds("sleep")
    pid = warm_process_pid()
    # the same fit from the held frame, in the same process: the same numbers exactly
    again = _estimates(_run(FitRequest(MOOD_FORMULA, "REML", None, dataset_key="mood")))
    assert again == first and warm_process_pid() == pid
    # another formula on it too
    slope = _run(FitRequest("Mood ~ Exercise + (Exercise | State)", "REML", None,
                            dataset_key="mood"))
    assert slope.status == "succeeded"


def test_another_dataset_takes_the_place_of_the_held_one() -> None:
    assert _run(FitRequest(MOOD_FORMULA, "REML", MOOD, dataset_key="mood")).status == \
        "succeeded"
    sleep = FitRequest("Reaction ~ Days + (1 | Subject)", "REML", SLEEP, dataset_key="sleep")
    assert _run(sleep).status == "succeeded"
    assert warm_holds("sleep") and not warm_holds("mood")
    # the process no longer holds mood: sent without bytes and with no way to load them,
    # the fit fails (as a crash: a worker always sends a way); with one, it succeeds
    bare = FitRequest(MOOD_FORMULA, "REML", None, dataset_key="mood")
    missing = _run(bare)
    assert missing.status == "crashed" and "without its data" in missing.message
    full = FitRequest(MOOD_FORMULA, "REML", MOOD, dataset_key="mood")
    assert _run(bare, with_data=full).status == "succeeded"
    assert warm_holds("mood")


def test_a_replaced_process_is_sent_the_bytes_again() -> None:
    full = FitRequest(MOOD_FORMULA, "REML", MOOD, dataset_key="mood")
    expected = _estimates(_run(full))
    pid = warm_process_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # between fits: its successor holds nothing
    _wait_until_dead(pid)
    bare = FitRequest(MOOD_FORMULA, "REML", None, dataset_key="mood")
    assert _estimates(_run(bare, with_data=full)) == expected
    assert warm_process_pid() not in (None, pid)


def test_a_fit_changes_nothing_in_the_held_frame() -> None:
    # in this process: what a fit is given is a copy-on-write view of the held frame
    frame = dataset_frame("test-mood", MOOD)
    assert held_dataset() == "test-mood"
    frame["Mood"] = 0.0
    del frame["State"]
    held = dataset_frame("test-mood", None)
    pd.testing.assert_frame_equal(held, pd.read_parquet(io.BytesIO(MOOD)))


def _result(session_factory: sessionmaker[Session], model_id: str) -> dict[str, object]:
    with session_factory() as session:
        model = session.get(ModelRow, model_id)
        assert model is not None and model.status == "succeeded", model and model.error
        assert model.result is not None
        return dict(model.result["fixed_effects"][0])


def test_a_worker_refits_a_dataset_its_process_no_longer_holds(
        database_url: str, session_factory: sessionmaker[Session]) -> None:
    settings = Settings(database_url=database_url, lease_seconds=30.0)
    worker = Worker(settings, session_factory)
    first, _ = submit_fit(session_factory, pd.read_csv(DATA / "mood.csv"), MOOD_FORMULA)
    assert worker.run_once()
    with session_factory.begin() as session:
        model = session.get(ModelRow, first)
        assert model is not None
        dataset_id = model.dataset_id
        # a second fit on the same dataset, claimed as held: sent without its bytes ...
        second = add_model(session, model_row(dataset_id, MOOD_FORMULA, "REML", "lmm")).id
        enqueue(session, "fit", second, 3)
    assert warm_holds(dataset_id)
    pid = warm_process_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # ... to a process that is gone: its successor is sent them
    _wait_until_dead(pid)
    assert worker.run_once()
    assert _result(session_factory, second) == _result(session_factory, first)
    assert warm_process_pid() not in (None, pid)
