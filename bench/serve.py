"""Benchmark of issue 9: the service as a client sees it, in embedded and production mode.

Usage::

    python bench/serve.py [--quick] [--postgres URL] [--workers 2]
                          [--modes embedded production] [--parts fit mathach predict bulk]
                          [--concurrency 8] [--duration S] [--client wrk|httpx]
                          [--mlflow-venv DIR] [--commit REV] [--json FILE] [--keep]

One run starts each mode in turn on a database of its own: embedded (``mixedfit serve``,
SQLite, the in-process worker) and production (``mixedfit serve --no-worker`` and
``--workers`` ``mixedfit worker`` processes on a new database of the PostgreSQL server
``--postgres``, dropped at the end). Against each it measures, over real HTTP:

1. ``fit``: sleepstudy, ``Reaction ~ Days + (Days | Subject)``, one ``POST
   /v1/models?wait=30`` at a time (201 with the finished model): the client's latency
   p50/p90 next to the engine's own time (the model's ``result.fit_seconds``); target p50
   at most the engine's p50 + 15 ms. The model's timestamps split the time (queued,
   running, the rest);
2. ``mathach``: ``MathAch ~ SES + (1 + SES | School)`` on R's ``nlme::MathAchieve`` (7,185
   rows; simulated with the same shape when R is not installed, and the table says so);
3. ``predict``: one-row predictions from a least-squares model (``Reaction ~ Days``) and
   from the mixed model, closed loop at ``--concurrency`` clients (``wrk`` when installed,
   else an asyncio httpx client): p50/p99 and requests/s; targets p50 <= 1 ms, p99 <= 5 ms
   and at least 3 x the requests/s of MLflow's scoring server serving the same least-squares
   model (scikit-learn, ``mlflow models serve --env-manager local``, from the separate
   virtualenv ``--mlflow-venv``), measured with the same client at the same concurrency;
4. ``bulk``: a 100,000-row prediction from the mixed model, the body as JSON records, JSON
   columns, CSV and Parquet, the answer as JSON and Parquet: time per request, rows/s, and
   whether every answer equals the per-subject lines of ``/coefficients``.

Then, with no server of this benchmark running, the references: lme4 in R
(``bench/lme4_fit.R``: the median over repeats of the time of ``lmer()``) for parts 1 and
2, and MLflow for part 3. It prints one table: each figure per mode, its reference, its
target and whether it is met. It is a benchmark: nothing is asserted. A part that fails is
reported in the table and the run goes on; the servers are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from responsive import Stack, export_commit, free_port, git_commit, percentile

from simulate import SLEEPSTUDY_CSV, data_dir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("embedded", "production")
PARTS = ("fit", "mathach", "predict", "bulk")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MLFLOW_VENV = Path("/tmp/mlflow-venv")

LMM = "Reaction ~ Days + (Days | Subject)"
OLS = "Reaction ~ Days"
MATHACH = "MathAch ~ SES + (1 + SES | School)"
PARQUET = "application/vnd.apache.parquet"

# issue 9's targets
FIT_OVERHEAD_MS = 15.0  # POST-to-finished p50 <= engine p50 + this
PREDICT_P50_MS = 1.0
PREDICT_P99_MS = 5.0
VS_MLFLOW = 3.0  # requests/s at least this many times MLflow's


@dataclass(frozen=True)
class Sizes:
    fits: int = 30  # part 1, measured
    warm_fits: int = 3  # part 1, first (not measured): fork server, imports
    pause: float = 0.5  # a random pause of up to this many seconds between fits
    lme4_repeats: int = 30
    math_fits: int = 10
    math_lme4_repeats: int = 10
    duration: float = 10.0  # seconds of each closed-loop run
    warm_duration: float = 2.0
    bulk_rows: int = 100_000
    bulk_repeats: int = 5
    batch_rows: int = 1_000_000  # part 4's batch job: a stored dataset scored


FULL = Sizes()
QUICK = Sizes(fits=5, warm_fits=1, pause=0.25, lme4_repeats=5, math_fits=2,
              math_lme4_repeats=2, duration=2.0, warm_duration=0.5, bulk_rows=10_000,
              bulk_repeats=2, batch_rows=50_000)


class PartFailed(RuntimeError):
    """A part could not be measured; the message says why."""


# --- processes ---------------------------------------------------------------------------


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path,
               seconds: float = 300.0) -> None:
    """Until ``url`` answers 200; the process exiting first is an error."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PartFailed(f"exited with {process.returncode}: "
                                 f"{log.read_text(errors='replace')[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise PartFailed(f"{url} did not answer 200 within {seconds:.0f} s")


def end_session(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL to the session the process leads (what it forked)."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def log_errors(mode: str, folder: Path) -> list[str]:
    """Per log: its ERROR lines and the exceptions of its tracebacks, counted."""
    found = []
    for path in sorted(folder.glob("*.log")):
        errors, raised = 0, Counter[str]()
        in_traceback = False
        for line in path.read_text(errors="replace").splitlines():
            errors += " ERROR " in line or " CRITICAL " in line
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and line and not line[0].isspace():
                raised[line.split(":", 1)[0]] += 1
                in_traceback = False
        if errors or raised:
            found.append(f"{mode} {path.stem}.log: {errors} ERROR lines; tracebacks: "
                         + (", ".join(f"{n} x {k}" for k, n in raised.most_common())
                            or "none"))
    return found


# --- what is measured --------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``responsive.percentile`` takes sorted values)."""
    return percentile(sorted(values), q)


@dataclass
class Fits:
    """Parts 1 and 2: fits one at a time, in seconds."""

    latency: list[float] = field(default_factory=list)  # the client's, POST to 201
    engine: list[float] = field(default_factory=list)  # result.fit_seconds
    queued: list[float] = field(default_factory=list)  # started_at - created_at
    running: list[float] = field(default_factory=list)  # finished_at - started_at
    outcomes: dict[str, int] = field(default_factory=dict)
    loglik: float | None = None
    rows: int = 0
    source: str = ""


@dataclass
class Loop:
    """Part 3: a closed-loop run."""

    client: str
    concurrency: int
    requests: int
    seconds: float
    errors: int
    p50: float
    p90: float
    p99: float
    maximum: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Bulk:
    """Part 4: one body and answer type."""

    body: str
    answer: str
    body_bytes: int
    seconds: list[float] = field(default_factory=list)
    answer_bytes: int = 0  # on the wire
    agrees: str = ""
    rows: int = 0  # 0: the sizes' bulk_rows


@dataclass
class Report:
    sizes: Sizes
    served: str = ""
    header: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # mode -> description
    fits: dict[str, dict[str, Fits]] = field(default_factory=dict)  # part -> mode -> Fits
    loops: dict[str, dict[str, Loop]] = field(default_factory=dict)  # row key -> column
    bulk: dict[str, list[Bulk]] = field(default_factory=dict)  # mode -> runs
    lme4: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> R's answer
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # part -> column
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load: list[str] = field(default_factory=list)

    def failed(self, part: str, column: str, error: BaseException) -> None:
        text = str(error) if isinstance(error, PartFailed) else \
            f"{type(error).__name__}: {error}"
        line = " ".join(text.split())  # one line for the table: its start and its end
        self.failures.setdefault(part, {})[column] = line if len(line) <= 160 else \
            f"{line[:60]} ... {line[-95:]}"
        self.notes.append(f"{part} / {column} failed: {text[-1500:]}" if isinstance(
            error, PartFailed) else f"{part} / {column}: " + "".join(
                traceback.format_exception(error)[-3:]).strip()[-1500:])
        print(f"  {part} / {column} FAILED: {line[-300:]}", flush=True)

    def mark_load(self, what: str) -> None:
        self.load.append(f"{what}: {os.getloadavg()[0]:.2f}")


@contextlib.contextmanager
def part(report: Report, name: str, column: str) -> Iterator[None]:
    """Run a part; its failure is recorded, never raised."""
    print(f"{column}: {name} ...", flush=True)
    try:
        yield
    except Exception as error:  # reported in the table, the run goes on
        report.failed(name, column, error)
    finally:
        report.mark_load(f"after {name} / {column}")


# --- the service's side ------------------------------------------------------------------


@dataclass
class Session:
    """What a mode's parts share: its client and the models made so far."""

    stack: Stack
    client: httpx.Client
    mode: str
    sleepstudy: str = ""
    lmm: str = ""
    ols: str = ""

    def check_alive(self) -> None:
        dead = self.stack.dead()
        if dead:
            raise PartFailed(f"{dead}: {self.stack.log_tail('serve', 500)}")


def upload(client: httpx.Client, path: Path, name: str, categorical: str) -> str:
    return upload_bytes(client, path.read_bytes(), "text/csv", name, categorical)


def upload_bytes(client: httpx.Client, content: bytes, media: str, name: str,
                 categorical: str) -> str:
    answer = client.post("/v1/datasets", params={"name": name, "categorical": categorical},
                         content=content, headers={"Content-Type": media})
    if answer.status_code != 201:
        raise PartFailed(f"upload {name}: {answer.status_code} {answer.text[:200]}")
    dataset: str = answer.json()["id"]
    return dataset


def post_fit(client: httpx.Client, dataset: str, formula: str,
             wait: float) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = client.post("/v1/models", params={"wait": wait},
                         json={"dataset_id": dataset, "formula": formula})
    return time.perf_counter() - started, answer


def finished_model(client: httpx.Client, dataset: str, formula: str) -> dict[str, Any]:
    """Fit and wait (not timed); the succeeded model."""
    _, answer = post_fit(client, dataset, formula, 60)
    model: dict[str, Any] = answer.json()
    for _ in range(10):
        if answer.status_code in (200, 201) and model.get("status") in ("succeeded", "failed"):
            break
        answer = client.get(f"/v1/models/{model['id']}", params={"wait": 60})
        model = answer.json()
    if model.get("status") != "succeeded":
        raise PartFailed(f"fit {formula}: {answer.status_code} {str(model)[:300]}")
    return model


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def time_fits(client: httpx.Client, dataset: str, formula: str, count: int, warm: int,
              pause: float, wait: float) -> tuple[Fits, str]:
    """``warm`` fits, then ``count`` measured ones, one at a time, each after a random
    pause (so that the requests do not fall into step with the workers' polling); the
    id of the last model that succeeded."""
    rng = random.Random(9)
    fits = Fits()
    outcomes: Counter[str] = Counter()
    last = ""
    for i in range(warm + count):
        time.sleep(rng.uniform(0, pause))
        seconds, answer = post_fit(client, dataset, formula, wait)
        try:
            model = answer.json()
        except ValueError:
            model = {}
        outcome = f"{answer.status_code} {model.get('status', '')}".strip()
        if i < warm:
            continue
        outcomes[outcome] += 1
        if answer.status_code != 201 or model.get("status") != "succeeded":
            continue
        last = model["id"]
        fits.latency.append(seconds)
        fits.engine.append(float(model["result"]["fit_seconds"]))
        fits.loglik = model["result"]["metrics"]["loglik"]
        fits.rows = int(model["result"]["metrics"]["n_obs"])
        queued = seconds_between(model["created_at"], model["started_at"])
        running = seconds_between(model["started_at"], model["finished_at"])
        if queued is not None and running is not None:
            fits.queued.append(queued)
            fits.running.append(running)
    fits.outcomes = dict(outcomes)
    if not fits.latency:
        raise PartFailed(f"no fit answered 201 succeeded: {dict(outcomes)}")
    return fits, last


def ensure_sleepstudy(session: Session) -> None:
    if not session.sleepstudy:
        session.sleepstudy = upload(session.client, SLEEPSTUDY_CSV, "sleepstudy", "Subject")


def part_fit(session: Session, report: Report) -> None:
    ensure_sleepstudy(session)
    sizes = report.sizes
    fits, last = time_fits(session.client, session.sleepstudy, LMM, sizes.fits,
                           sizes.warm_fits, sizes.pause, 30)
    fits.source = "tests/data/sleepstudy.csv"
    report.fits.setdefault("fit", {})[session.mode] = fits
    session.lmm = last


def part_mathach(session: Session, report: Report, data: tuple[Path, str]) -> None:
    path, source = data
    dataset = upload(session.client, path, "MathAchieve", "School")
    sizes = report.sizes
    fits, _ = time_fits(session.client, dataset, MATHACH, sizes.math_fits, 1, sizes.pause, 60)
    fits.source = source
    report.fits.setdefault("mathach", {})[session.mode] = fits


def ensure_models(session: Session) -> None:
    ensure_sleepstudy(session)
    if not session.lmm:
        session.lmm = finished_model(session.client, session.sleepstudy, LMM)["id"]
    if not session.ols:
        session.ols = finished_model(session.client, session.sleepstudy, OLS)["id"]


def subject_lines(client: httpx.Client, model: str) -> dict[str, tuple[float, float]]:
    """The mixed model's per-subject (intercept, slope), R's coef()."""
    answer = client.get(f"/v1/models/{model}/coefficients")
    if answer.status_code != 200:
        raise PartFailed(f"coefficients: {answer.status_code} {answer.text[:200]}")
    (group,) = answer.json()["coefficients"]
    return {level["level"]: (level["values"][0], level["values"][1])
            for level in group["levels"]}


def ols_line(client: httpx.Client, model: str) -> tuple[float, float]:
    result = client.get(f"/v1/models/{model}").json()["result"]
    estimates = {fe["term"]: fe["estimate"] for fe in result["fixed_effects"]}
    return estimates["(Intercept)"], estimates["Days"]


def one_row(client: httpx.Client, model: str, body: bytes) -> float:
    answer = client.post(f"/v1/models/{model}/predictions", content=body,
                         headers={"Content-Type": "application/json"})
    if answer.status_code != 200:
        raise PartFailed(f"prediction: {answer.status_code} {answer.text[:200]}")
    value: float = answer.json()["predictions"][0]
    return value


def agreement(got: float | np.ndarray, want: float | np.ndarray) -> tuple[bool, float]:
    """Whether predictions equal the expected ones (relative 1e-9), and the largest
    relative difference."""
    got_a, want_a = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got_a.shape != want_a.shape:
        return False, math.inf
    worst = float(np.max(np.abs(got_a - want_a) / np.maximum(np.abs(want_a), 1e-300)))
    return worst <= 1e-9, worst


ONE_ROW = {"ols": {"Days": 3.5}, "lmm": {"Days": 3.5, "Subject": "308"}}


def part_predict(session: Session, report: Report, args: argparse.Namespace) -> None:
    ensure_models(session)
    client, mode = session.client, session.mode
    lines = subject_lines(client, session.lmm)
    b0, b1 = ols_line(client, session.ols)
    expected = {"ols": b0 + b1 * 3.5, "lmm": lines["308"][0] + lines["308"][1] * 3.5}
    models = {"ols": session.ols, "lmm": session.lmm}
    for kind, model in models.items():
        body = orjson.dumps({"records": [ONE_ROW[kind]]})
        value = one_row(client, model, body)
        ok, worst = agreement(value, expected[kind])
        report.checks.append(f"{mode}: one-row {kind} prediction {value:.10g} "
                             + ("equals" if ok else f"DIFFERS ({worst:.1e}) from")
                             + f" the model's own line {expected[kind]:.10g}")
        if kind == "ols":
            report.notes.append(f"{mode}: OLS prediction at Days 3.5 = {value!r}")
        url = f"{session.stack.base_url}/v1/models/{model}/predictions"
        closed_loop(args.client, url, body, args.concurrency, report.sizes.warm_duration)
        report.loops.setdefault(f"{kind}@{args.concurrency}", {})[mode] = closed_loop(
            args.client, url, body, args.concurrency, report.sizes.duration)
        if kind == "ols" and args.concurrency != 1:  # the time of one request alone
            report.loops.setdefault("ols@1", {})[mode] = closed_loop(
                args.client, url, body, 1, report.sizes.duration)
        session.check_alive()
    # the floor: the server's cheapest route (no database, answered on the event loop)
    report.loops.setdefault(f"healthz@{args.concurrency}", {})[mode] = closed_loop(
        args.client, f"{session.stack.base_url}/healthz", None, args.concurrency,
        report.sizes.duration)


def bulk_bodies(rows: int, levels: list[str]) -> tuple[pd.DataFrame, dict[str, tuple[
        bytes, str]]]:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"Days": np.round(rng.uniform(0, 9, rows), 3),
                          "Subject": rng.choice(np.array(levels, dtype=object), rows)})
    parquet = io.BytesIO()
    pq.write_table(pa.table({"Days": pa.array(frame["Days"], pa.float64()),
                             "Subject": pa.array(frame["Subject"].tolist(), pa.string())}),
                   parquet)
    records = frame.to_dict(orient="records")
    columns = {"Days": frame["Days"].tolist(), "Subject": frame["Subject"].tolist()}
    return frame, {
        "JSON records": (orjson.dumps({"records": records}), "application/json"),
        "JSON columns": (orjson.dumps({"columns": columns}), "application/json"),
        "CSV": (frame.to_csv(index=False).encode(), "text/csv"),
        "Parquet": (parquet.getvalue(), PARQUET),
    }


def predictions_of(answer: httpx.Response) -> np.ndarray:
    if answer.headers.get("content-type", "").startswith(PARQUET):
        table = pq.read_table(io.BytesIO(answer.content))
        return np.asarray(table.column("prediction").to_numpy(zero_copy_only=False),
                          dtype=float)
    return np.asarray(orjson.loads(answer.content)["predictions"], dtype=float)


def part_bulk(session: Session, report: Report) -> None:
    ensure_models(session)
    client, mode = session.client, session.mode
    lines = subject_lines(client, session.lmm)
    frame, bodies = bulk_bodies(report.sizes.bulk_rows, sorted(lines))
    slope = frame["Subject"].map(lambda s: lines[s][1]).to_numpy(dtype=float)
    intercept = frame["Subject"].map(lambda s: lines[s][0]).to_numpy(dtype=float)
    want = intercept + slope * frame["Days"].to_numpy()
    url = f"/v1/models/{session.lmm}/predictions"
    runs: list[Bulk] = []
    report.bulk[mode] = runs
    # one first, not measured: the compute children's first use
    client.post(url, content=bodies["Parquet"][0], headers={"Content-Type": PARQUET})
    for body_name, (body, media) in bodies.items():
        for answer_name, accept in (("JSON", "application/json"), ("Parquet", PARQUET)):
            run = Bulk(body_name, answer_name, len(body))
            runs.append(run)
            statuses: Counter[int] = Counter()
            for _ in range(report.sizes.bulk_repeats):
                started = time.perf_counter()
                answer = client.post(url, content=body, headers={
                    "Content-Type": media, "Accept": accept})
                seconds = time.perf_counter() - started
                statuses[answer.status_code] += 1
                if answer.status_code != 200:
                    run.agrees = f"answered {answer.status_code}: {answer.text[:150]}"
                    continue
                run.seconds.append(seconds)
                run.answer_bytes = answer.num_bytes_downloaded
                ok, worst = agreement(predictions_of(answer), want)
                run.agrees = "equal to coef()" if ok else f"DIFFER by up to {worst:.1e}"
            if set(statuses) != {200}:
                run.agrees += f" ({dict(statuses)})"
    runs.append(batch_job(session, report, lines))
    session.check_alive()


def batch_job(session: Session, report: Report,
              lines: dict[str, tuple[float, float]]) -> Bulk:
    """A stored dataset of ``batch_rows`` scored as a job: POST {"dataset_id"}, wait, then
    download the Parquet answer; the time is all three, as the client waits for them."""
    client = session.client
    rows = report.sizes.batch_rows
    frame, bodies = bulk_bodies(rows, sorted(lines))
    want = (frame["Subject"].map(lambda s: lines[s][0]).to_numpy(dtype=float)
            + frame["Subject"].map(lambda s: lines[s][1]).to_numpy(dtype=float)
            * frame["Days"].to_numpy())
    parquet = bodies["Parquet"][0]
    dataset = upload_bytes(client, parquet, PARQUET, "batch", "Subject")
    run = Bulk(f"stored dataset, batch job, {rows:,} rows", "Parquet", len(parquet), rows=rows)
    url = f"/v1/models/{session.lmm}/predictions"
    for _ in range(report.sizes.bulk_repeats):
        started = time.perf_counter()
        created = client.post(url, json={"dataset_id": dataset})
        if created.status_code != 202:
            run.agrees = f"answered {created.status_code}: {created.text[:150]}"
            continue
        batch = client.get(f"{created.headers['Location']}?wait=120").json()
        if batch.get("status") != "succeeded":
            run.agrees = f"batch {batch.get('status')}: {str(batch.get('error'))[:150]}"
            continue
        answer = client.get(batch["links"]["result"], headers={"Accept": PARQUET})
        run.seconds.append(time.perf_counter() - started)
        run.answer_bytes = answer.num_bytes_downloaded
        ok, worst = agreement(predictions_of(answer), want)
        run.agrees = "equal to coef()" if ok else f"DIFFER by up to {worst:.1e}"
    return run


# --- the closed-loop client --------------------------------------------------------------


WRK_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %.0f, "p50_us": %.1f, "p90_us": %.1f, ' ..
    '"p99_us": %.1f, "max_us": %.1f, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def closed_loop(client: str, url: str, body: bytes | None, concurrency: int,
                duration: float) -> Loop:
    """``concurrency`` clients, each sending its next request (a POST of the JSON ``body``,
    or a GET) as soon as the last is answered, for ``duration`` seconds."""
    if client == "wrk":
        return wrk_loop(url, body, concurrency, duration)
    return asyncio.run(httpx_loop(url, body, concurrency, duration))


def wrk_loop(url: str, body: bytes | None, concurrency: int, duration: float) -> Loop:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(("" if body is None else WRK_POST.format(body=body.decode())) + WRK_DONE)
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
             "--timeout", "10s", "-s", script.name, url],
            capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script.name)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise PartFailed(f"wrk: {done.returncode} {(done.stderr or done.stdout)[-300:]}")
    out = json.loads(lines[-1])
    return Loop("wrk", concurrency, int(out["requests"]), out["duration_us"] / 1e6,
                int(out["errors"]), out["p50_us"] / 1e6, out["p90_us"] / 1e6,
                out["p99_us"] / 1e6, out["max_us"] / 1e6)


async def httpx_loop(url: str, body: bytes | None, concurrency: int,
                     duration: float) -> Loop:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    answer = await (client.get(url) if body is None else
                                    client.post(url, content=body, headers=headers))
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - sent)
                errors += not ok

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if not latencies:
        raise PartFailed("no request was sent")
    return Loop("httpx", concurrency, len(latencies), elapsed, errors,
                quantile(latencies, 50), quantile(latencies, 90),
                quantile(latencies, 99), max(latencies))


# --- the references: lme4 in R and MLflow -------------------------------------------------


MATHACH_R = """
d <- as.data.frame(nlme::MathAchieve)
for (name in names(d)) if (is.factor(d[[name]])) d[[name]] <- as.character(d[[name]])
write.csv(d, commandArgs(trailingOnly = TRUE)[[1]], row.names = FALSE)
cat(as.character(packageVersion("nlme")), "\\n")
"""


def mathachieve_data() -> tuple[Path, str]:
    """R's nlme::MathAchieve as CSV (once, in the benchmark's data folder); without R, a
    simulated set of the same shape."""
    if shutil.which("Rscript"):
        path = data_dir() / "mathachieve.csv"
        done = subprocess.run(["Rscript", "-e", MATHACH_R, str(path)], capture_output=True,
                              text=True, timeout=300)
        if done.returncode == 0 and path.exists():
            return path, f"nlme::MathAchieve (nlme {done.stdout.strip()})"
        print(f"  could not export nlme::MathAchieve: {done.stderr[-300:]}", flush=True)
    path = data_dir() / "mathachieve-simulated.csv"
    simulate_mathachieve().to_csv(path, index=False)
    return path, ("SIMULATED (R's nlme not available): 160 schools, 7,185 rows, "
                  "the shape of nlme::MathAchieve")


def simulate_mathachieve(seed: int = 9) -> pd.DataFrame:
    """160 schools of 44 or 45 pupils (7,185 rows): random intercept and SES slope per
    school, about the sizes lme4 finds in MathAchieve (sd 2.9 and 0.6, sigma 6.1)."""
    rng = np.random.default_rng(seed)
    sizes = np.full(160, 44)
    sizes[:145] += 1
    school = np.repeat(np.arange(160), sizes)
    ses = rng.normal(0, 0.4, 160)[school] + rng.normal(0, 0.66, len(school))
    u0, u1 = rng.normal(0, 2.9, 160), rng.normal(0, 0.6, 160)
    math_ach = (12.7 + 2.4 * ses + u0[school] + u1[school] * ses
                + rng.normal(0, 6.1, len(school)))
    return pd.DataFrame({"School": [f"S{s + 1000}" for s in school],
                         "SES": np.round(ses, 3), "MathAch": np.round(math_ach, 3)})


def run_lme4(csv: Path, formula: str, group: str, repeats: int) -> dict[str, Any]:
    if shutil.which("Rscript") is None:
        raise PartFailed("Rscript not found (apt-get install r-cran-lme4)")
    done = subprocess.run(["Rscript", str(HERE / "lme4_fit.R"), str(csv), formula, "REML",
                           group, str(repeats)], capture_output=True, text=True,
                          timeout=1800, cwd=ROOT)
    if done.returncode != 0:
        raise PartFailed(f"lme4: {done.stderr.strip()[-300:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out["median_seconds"] = statistics.median(out["all_seconds"])
    return out


MLFLOW_MODEL = """
import json, sys
import mlflow, mlflow.sklearn, pandas as pd, sklearn
from sklearn.linear_model import LinearRegression
data = pd.read_csv(sys.argv[1]).astype({"Days": float})  # an int signature would cut 3.5
model = LinearRegression().fit(data[["Days"]], data["Reaction"])
mlflow.sklearn.save_model(model, sys.argv[2], input_example=data[["Days"]].head(3))
print(json.dumps({"mlflow": mlflow.__version__, "sklearn": sklearn.__version__,
                  "intercept": float(model.intercept_), "slope": float(model.coef_[0])}))
"""


def run_mlflow(venv: Path, workdir: Path, report: Report, args: argparse.Namespace) -> None:
    """MLflow's scoring server on the same least-squares model, the same closed loops."""
    python, mlflow = venv / "bin" / "python", venv / "bin" / "mlflow"
    if not (python.exists() and mlflow.exists()):
        raise PartFailed(f"no MLflow in {venv}: python -m venv {venv} && {venv}/bin/pip "
                         "install mlflow scikit-learn")
    folder = workdir / "mlflow"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(), "VIRTUAL_ENV": str(venv)})
    made = subprocess.run([str(python), "-c", MLFLOW_MODEL, str(SLEEPSTUDY_CSV),
                           str(folder / "model")], capture_output=True, text=True,
                          timeout=600, env=env, cwd=folder)
    if made.returncode != 0:
        raise PartFailed(f"saving the MLflow model: {made.stderr.strip()[-300:]}")
    fitted = json.loads(made.stdout.strip().splitlines()[-1])
    report.notes.append(f"MLflow {fitted['mlflow']}, scikit-learn {fitted['sklearn']}: "
                        f"LinearRegression intercept {fitted['intercept']:.10g}, slope "
                        f"{fitted['slope']:.10g}")
    port = free_port()
    log = folder / "mlflow.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(mlflow), "models", "serve", "-m", str(folder / "model"), "--env-manager",
             "local", "-h", "127.0.0.1", "-p", str(port)],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/ping", server, log)
        body = orjson.dumps({"dataframe_split": {"columns": ["Days"], "data": [[3.5]]}})
        with httpx.Client(timeout=30) as client:
            answer = client.post(f"{base}/invocations", content=body,
                                 headers={"Content-Type": "application/json"})
        if answer.status_code != 200:
            raise PartFailed(f"MLflow /invocations: {answer.status_code} {answer.text[:200]}")
        value = answer.json()["predictions"][0]
        want = fitted["intercept"] + fitted["slope"] * 3.5
        ok, worst = agreement(value, want)
        report.checks.append(f"MLflow: one-row prediction {value:.10g} "
                             + ("equals" if ok else f"DIFFERS ({worst:.1e}) from")
                             + f" its model's line {want:.10g}")
        url = f"{base}/invocations"
        closed_loop(args.client, url, body, args.concurrency, report.sizes.warm_duration)
        report.loops.setdefault(f"ols@{args.concurrency}", {})["MLflow"] = closed_loop(
            args.client, url, body, args.concurrency, report.sizes.duration)
        if args.concurrency != 1:
            report.loops.setdefault("ols@1", {})["MLflow"] = closed_loop(
                args.client, url, body, 1, report.sizes.duration)
        if server.poll() is not None:
            raise PartFailed(f"MLflow exited with {server.returncode}")
    finally:
        end_session(server)


# --- the table ---------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 \
        else f"{value:.0f} ms"


def verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


@dataclass
class Line:
    part: str
    figure: str
    cells: dict[str, str]  # column -> text
    target: str = "(no target)"


class Table:
    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.lines: list[Line] = []

    def add(self, part: str, figure: str, cells: dict[str, str],
            target: str = "(no target)") -> None:
        self.lines.append(Line(part, figure, cells, target))

    def print(self) -> None:
        print("\n| # | figure | " + " | ".join(self.columns) + " | target |")
        print("|---|---|" + "---:|" * len(self.columns) + "---|")
        for line in self.lines:
            cells = " | ".join(line.cells.get(c, "") for c in self.columns)
            print(f"| {line.part} | {line.figure} | {cells} | {line.target} |")


def fit_lines(table: Table, report: Report, key: str, number: str, modes: list[str]) -> None:
    runs = report.fits.get(key, {})
    failures = report.failures.get(key, {})
    lme4 = report.lme4.get(key)
    lme4_cell = {"reference": f"lme4 {ms(lme4['median_seconds'])}"} if lme4 else \
        {"reference": f"lme4: {failures.get('lme4', 'not run')}"}

    def each(fn: Callable[[Fits], str]) -> dict[str, str]:
        return {m: fn(runs[m]) if m in runs else f"failed: {failures.get(m, 'not run')}"
                for m in modes}

    if key == "fit":
        table.add(number, "POST ?wait=30 to 201, p50", {
            **each(lambda f: f"{ms(quantile(f.latency, 50))} "
                   + verdict(quantile(f.latency, 50) - quantile(f.engine, 50)
                             <= FIT_OVERHEAD_MS / 1000)), **lme4_cell},
            f"<= engine p50 + {FIT_OVERHEAD_MS:.0f} ms")
    else:
        table.add(number, "POST ?wait=60 to 201, p50", {**each(
            lambda f: ms(quantile(f.latency, 50))), **lme4_cell}, "side by side with lme4")
    table.add(number, "POST to 201, p90", each(lambda f: ms(quantile(f.latency, 90))))
    table.add(number, "engine (result.fit_seconds), p50",
              each(lambda f: ms(quantile(f.engine, 50))))
    table.add(number, "POST p50 - engine p50 (service overhead)",
              each(lambda f: ms(quantile(f.latency, 50) - quantile(f.engine, 50))),
              f"<= {FIT_OVERHEAD_MS:.0f} ms" if key == "fit" else "(no target)")
    # each fit's own overhead: steadier than the difference of the two medians when the
    # engine's time varies from fit to fit (a busy machine), as it does from run to run
    table.add(number, "median of each fit's POST - its engine time", each(
        lambda f: ms(quantile([t - e for t, e in zip(f.latency, f.engine, strict=True)], 50))))
    table.add(number, "of which queued (started - created), p50",
              each(lambda f: ms(quantile(f.queued, 50)) if f.queued else "n/a"))
    table.add(number, "of which running (finished - started), p50",
              each(lambda f: ms(quantile(f.running, 50)) if f.running else "n/a"))
    if lme4:
        median = lme4["median_seconds"]
        table.add(number, "POST p50 / lme4 median", each(
            lambda f: f"{quantile(f.latency, 50) / median:.2f}"))
        table.add(number, "engine p50 / lme4 median", each(
            lambda f: f"{quantile(f.engine, 50) / median:.2f}"))
        table.add(number, "loglik - lme4's", each(
            lambda f: "n/a" if f.loglik is None else f"{f.loglik - lme4['loglik']:+.1e}"),
            ">= -2e-4 (issue 4)")


def loop_cells(report: Report, key: str, modes: list[str], show: Callable[[Loop], str],
               reference: bool) -> dict[str, str]:
    """One figure of the closed-loop run ``key`` per mode (and MLflow's, ``reference``)."""
    loops = report.loops.get(key, {})
    failures = report.failures.get("predict", {})
    cells = {m: show(loops[m]) if m in loops else f"failed: {failures.get(m, 'not run')}"
             for m in modes}
    if reference:
        cells["reference"] = ("MLflow " + show(loops["MLflow"]) if "MLflow" in loops else
                              "MLflow: " + report.failures.get("mlflow", {}).get(
                                  "MLflow", "not run"))
    return cells


def loop_lines(table: Table, report: Report, modes: list[str], concurrency: int) -> None:
    rows = [(f"ols@{concurrency}", f"OLS, {concurrency} clients", True),
            (f"lmm@{concurrency}", f"LMM, {concurrency} clients", False)]
    if concurrency != 1:
        rows.append(("ols@1", "OLS, 1 client (no target)", True))
    rows.append((f"healthz@{concurrency}", f"GET /healthz (the floor), {concurrency} clients",
                 False))
    for key, label, reference in rows:
        judged = key.endswith(f"@{concurrency}") and not key.startswith("healthz")
        for name, limit, value in (("p50", PREDICT_P50_MS, lambda lp: lp.p50),
                                   ("p99", PREDICT_P99_MS, lambda lp: lp.p99)):
            def show(lp: Loop, value: Callable[[Loop], float] = value, limit: float = limit,
                     judged: bool = judged) -> str:
                return ms(value(lp)) + (f" {verdict(value(lp) <= limit / 1000)}"
                                        if judged else "")

            table.add("3", f"{label}: {name}", loop_cells(report, key, modes, show, reference),
                      f"<= {limit:g} ms" if judged else "(no target)")
        table.add("3", f"{label}: requests/s", loop_cells(
            report, key, modes,
            lambda lp: f"{lp.rate:,.0f}" + (f" ({lp.errors} errors)" if lp.errors else ""),
            reference))
    loops = report.loops.get(f"ols@{concurrency}", {})
    mlflow = loops.get("MLflow")
    if mlflow is not None:
        table.add("3", f"OLS, {concurrency} clients: requests/s / MLflow's", {
            m: f"{loops[m].rate / mlflow.rate:.2f} "
               f"{verdict(loops[m].rate >= VS_MLFLOW * mlflow.rate)}"
            for m in modes if m in loops}, f">= {VS_MLFLOW:g}")


def bulk_lines(table: Table, report: Report, modes: list[str]) -> None:
    failures = report.failures.get("bulk", {})
    keys: list[tuple[str, str]] = []
    for runs in report.bulk.values():
        keys += [(r.body, r.answer) for r in runs if (r.body, r.answer) not in keys]
    if not keys:
        table.add("4", f"{report.sizes.bulk_rows:,}-row prediction", {
            m: f"failed: {failures.get(m, 'not run')}" for m in modes})
    for body, answer in keys:
        cells: dict[str, str] = {}
        for mode in modes:
            run = next((r for r in report.bulk.get(mode, [])
                        if (r.body, r.answer) == (body, answer)), None)
            if run is None or not run.seconds:
                cells[mode] = f"failed: {run.agrees if run else failures.get(mode, 'not run')}"
                continue
            median = statistics.median(run.seconds)
            rows = run.rows or report.sizes.bulk_rows
            cells[mode] = (f"{ms(median)}, {rows / median:,.0f} rows/s"
                           + ("" if run.agrees == "equal to coef()" else f" ({run.agrees})"))
        some = next(r for runs in report.bulk.values() for r in runs
                    if (r.body, r.answer) == (body, answer))
        table.add("4", f"{body} body ({some.body_bytes / 1e6:.1f} MB) -> {answer} answer",
                  cells)


def build_table(report: Report, modes: list[str], concurrency: int,
                parts: list[str]) -> Table:
    table = Table([*modes, "reference"])
    if "fit" in parts:
        fit_lines(table, report, "fit", "1", modes)
    if "mathach" in parts:
        fit_lines(table, report, "mathach", "2", modes)
    if "predict" in parts:
        loop_lines(table, report, modes, concurrency)
    if "bulk" in parts:
        bulk_lines(table, report, modes)
    return table


def details(report: Report, modes: list[str]) -> list[str]:
    out = []
    for key in ("fit", "mathach"):
        for mode in modes:
            f = report.fits.get(key, {}).get(mode)
            if f is None:
                continue
            out.append(f"{key} / {mode}: {len(f.latency)} fits of {f.rows:,} rows "
                       f"({f.source}); answers {f.outcomes}; POST min "
                       f"{ms(min(f.latency))}, max {ms(max(f.latency))}; engine min "
                       f"{ms(min(f.engine))}, max {ms(max(f.engine))}; queued p90 "
                       f"{ms(quantile(f.queued, 90)) if f.queued else 'n/a'}")
        lme4 = report.lme4.get(key)
        if lme4:
            out.append(f"{key} / lme4 {lme4.get('version')}: median of "
                       f"{len(lme4['all_seconds'])} lmer() fits {ms(lme4['median_seconds'])} "
                       f"(min {ms(lme4['seconds'])}), loglik {lme4['loglik']:.4f}")
    for key, loops in report.loops.items():
        for column, lp in loops.items():
            out.append(f"predict {key} / {column}: {lp.requests:,} requests in "
                       f"{lp.seconds:.1f} s by {lp.client}, p90 {ms(lp.p90)}, max "
                       f"{ms(lp.maximum)}, {lp.errors} errors")
    for mode, runs in report.bulk.items():
        for r in runs:
            if r.seconds:
                out.append(f"bulk {r.body} -> {r.answer} / {mode}: min {ms(min(r.seconds))}, "
                           f"median {ms(statistics.median(r.seconds))} of {len(r.seconds)}; "
                           f"answer {r.answer_bytes / 1e6:.2f} MB on the wire; {r.agrees}")
    return out


# --- running it --------------------------------------------------------------------------


def run_mode(mode: str, report: Report, args: argparse.Namespace, workdir: Path,
             source: Path, mathach: tuple[Path, str] | None) -> None:
    folder = workdir / mode
    folder.mkdir()
    stack = Stack(folder, args.postgres if mode == "production" else None, args.workers,
                  source)
    stack.env.update(args.settings)
    report.labels[mode] = stack.mode
    print(f"\n== {stack.mode}", flush=True)
    try:
        try:
            stack.start()
        except Exception as error:
            for name in args.parts:
                report.failed(name, mode, PartFailed(f"server did not start: {error}"[:300]))
            return
        found = subprocess.run([sys.executable, "-c", "import service; print(service.__file__)"],
                               cwd=folder, env=stack.env, capture_output=True, text=True,
                               timeout=60)
        report.notes.append(f"{mode}: the servers import "
                            f"{found.stdout.strip() or found.stderr.strip()[-200:]}")
        with httpx.Client(base_url=stack.base_url, timeout=300.0) as client:
            session = Session(stack, client, mode)
            if "fit" in args.parts:
                with part(report, "fit", mode):
                    part_fit(session, report)
            if "mathach" in args.parts and mathach is not None:
                with part(report, "mathach", mode):
                    part_mathach(session, report, mathach)
            if "predict" in args.parts:
                with part(report, "predict", mode):
                    part_predict(session, report, args)
            if "bulk" in args.parts:
                with part(report, "bulk", mode):
                    part_bulk(session, report)
    finally:
        stack.stop()
        report.notes += log_errors(mode, folder)
        try:
            stack.drop()
        except Exception as error:
            report.notes.append(f"could not drop database {stack.database}: {error!r}")


def run_references(report: Report, args: argparse.Namespace, workdir: Path,
                   mathach: tuple[Path, str] | None) -> None:
    sizes = report.sizes
    if "fit" in args.parts:
        with part(report, "fit", "lme4"):
            report.lme4["fit"] = run_lme4(SLEEPSTUDY_CSV, LMM, "Subject", sizes.lme4_repeats)
    if "mathach" in args.parts and mathach is not None:
        with part(report, "mathach", "lme4"):
            report.lme4["mathach"] = run_lme4(mathach[0], MATHACH, "School",
                                              sizes.math_lme4_repeats)
    if "predict" in args.parts and not args.no_mlflow:
        with part(report, "mlflow", "MLflow"):
            run_mlflow(args.mlflow_venv, workdir, report, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, metavar="URL",
                        help="PostgreSQL server for production mode (a new database is made "
                             f"and dropped; default {DEFAULT_POSTGRES})")
    parser.add_argument("--workers", type=int, default=2, help="production mode's workers")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="clients of the one-row prediction runs (default 8)")
    parser.add_argument("--duration", type=float, help="seconds per closed-loop run "
                        "(default 10, 2 with --quick)")
    parser.add_argument("--client", choices=("wrk", "httpx"),
                        default="wrk" if shutil.which("wrk") else "httpx",
                        help="closed-loop client (default wrk when installed)")
    parser.add_argument("--mlflow-venv", type=Path, default=DEFAULT_MLFLOW_VENV,
                        help=f"virtualenv with mlflow and scikit-learn (default "
                             f"{DEFAULT_MLFLOW_VENV}); never the project's")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow reference")
    parser.add_argument("--commit", metavar="REV", help="serve service/ and migrations/ of "
                        "this commit (git archive) instead of the working tree's")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="MIXEDFIT_NAME=VALUE",
                        help="a setting for the servers (repeatable), e.g. "
                             "MIXEDFIT_AUTH_CACHE_SECONDS=5; by default none: as deployed")
    parser.add_argument("--json", type=Path, help="also write everything measured here")
    parser.add_argument("--keep", action="store_true", help="keep the logs and databases")
    args = parser.parse_args()
    pairs = [item.partition("=") for item in args.settings]
    if any(not name.startswith("MIXEDFIT_") or not eq for name, eq, _ in pairs):
        parser.error("--set takes MIXEDFIT_NAME=VALUE")
    args.settings = {name: value for name, _, value in pairs}
    sizes = QUICK if args.quick else FULL
    if args.duration is not None:
        sizes = replace(sizes, duration=args.duration)
    report = Report(sizes)

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # through the finally blocks: servers stopped

    signal.signal(signal.SIGTERM, terminated)
    workdir = Path(tempfile.mkdtemp(prefix="mixedfit-serve-bench-"))
    try:
        source = export_commit(args.commit, workdir / "source") if args.commit else ROOT
        report.served = f"commit {args.commit} (exported)" if args.commit else git_commit()
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        report.header.append(
            f"# {started}, {platform.node()}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min), Python "
            f"{platform.python_version()}; service: {report.served}")
        report.header.append(
            f"# {'quick' if args.quick else 'full'} sizes: {sizes.fits} fits (+{sizes.warm_fits}"
            f" warm-up), {sizes.math_fits} MathAchieve fits, {sizes.duration:g} s per "
            f"closed loop ({args.client}, {args.concurrency} connections), "
            f"{sizes.bulk_rows:,} rows x {sizes.bulk_repeats}; settings: "
            + (", ".join(f"{k}={v}" for k, v in args.settings.items()) or "defaults"))
        print("\n".join(report.header), flush=True)
        mathach = None
        if "mathach" in args.parts:
            try:
                mathach = mathachieve_data()
            except Exception as error:
                report.failed("mathach", "data", error)
        for mode in args.modes:
            run_mode(mode, report, args, workdir, source, mathach)
        print("\n== references (no mixedfit server running)", flush=True)
        run_references(report, args, workdir, mathach)
    finally:
        if args.keep:
            print(f"\nLogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.mark_load("at the end")

    print()
    print("\n".join(report.header))
    for mode in args.modes:
        print(f"# {mode}: {report.labels.get(mode, '')}")
    if mathach:
        print(f"# MathAchieve data: {mathach[1]}")
    build_table(report, args.modes, args.concurrency, args.parts).print()
    sections = [("Checks", report.checks), ("Details", details(report, args.modes)),
                ("Load average (1 min)", report.load), ("Notes", report.notes)]
    for title, lines in sections:
        if lines:
            print(f"\n{title}:")
            for line in lines:
                print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
