"""Benchmark of issue 11: does the API stay responsive while it is under load?

Usage::

    python bench/responsive.py [--quick] [--postgres URL] [--period S] [--loads ...]
                               [--json results.json]

It starts a real server on a temporary database (embedded mode by default: ``mixedfit
serve``, SQLite and the in-process worker; with ``--postgres URL`` production mode on a new
database of that server: ``mixedfit serve --no-worker`` and two ``mixedfit worker``), then
measures the latency of ``GET /healthz`` while one load at a time runs:

1. idle (the baseline);
2. plots of a fitted 100,000-row lm and lmm (one plot of each in progress at any time:
   ``residuals_vs_fitted`` and ``residuals_by_group`` by a 2,000-level column), and a
   one-row prediction every 100 ms;
3. a 150 MB CSV upload (uploads back to back until the period is over);
4. 500 concurrent long polls (``GET /v1/models/{id}?wait=30``) on models whose fits are
   still queued, after a row "4a" with the same queued fits and no polls (what the fits
   alone cost);
5. hostile bodies, each of which should be refused before the work: a Parquet
   decompression bomb, a CSV of 100,000 columns, a 300 MB JSON model spec (declared length
   and chunked), formulas whose design cannot fit.

``/healthz`` is probed from a separate process, on a fresh connection per probe, at a fixed
rate (every 50 ms, whether or not the previous probe has been answered, so that a stall is
seen by every probe it delays). It prints one table: per load, healthz p50/p99/max, the
probes that failed or timed out, and what the load's own requests got (status codes and
durations). It is a benchmark: nothing is asserted. ``--quick`` shrinks every size for a
smoke run. Loads 4 and 4a run last, so that the fits they queue do not run under another
load; the table keeps the numbering above.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from simulate import simulate_crossed, simulate_slopes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOAL_P99_MS = 50.0  # issue 11: healthz p99 under 50 ms during each load
MB = 1024 * 1024
LOADS = ("idle", "plots", "upload", "hostile", "polls")
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Sizes:
    """How big each load is; ``QUICK`` for a smoke run."""

    period: float = 30.0  # seconds each load runs (at least)
    control_period: float = 10.0  # row 4a
    plot_rows: int = 100_000
    plot_groups: int = 2_000
    prediction_interval: float = 0.1
    upload_bytes: int = 150 * MB
    polls: int = 500
    poll_wait: float = 30.0
    min_queued_fits: int = 20
    slow_rows: int = 100_000
    slow_levels: tuple[int, int, int] = (3_000, 1_000, 20)
    json_body_bytes: int = 300 * MB
    bomb_rows: int = 3_000_000
    wide_columns: int = 100_000
    design_rows: int = 40_000
    design_levels: int = 20_000


FULL = Sizes()
QUICK = Sizes(period=3.0, control_period=2.0, plot_rows=10_000, plot_groups=200,
              upload_bytes=10 * MB, polls=100, poll_wait=4.0, min_queued_fits=4,
              slow_rows=10_000, slow_levels=(300, 100, 20), json_body_bytes=30 * MB)


# --- the probe ---------------------------------------------------------------------------


async def probe_forever(url: str, interval: float, timeout: float) -> None:
    """``--probe`` mode: GET /healthz every ``interval`` s on a new connection each time,
    until a line (or the end) arrives on stdin; then print the samples as JSON:
    ``[seconds since start, latency s, "ok" | "timeout" | "HTTP 503" | error name]``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
               "User-Agent: mixedfit-bench-probe\r\n\r\n").encode()
    samples: list[tuple[float, float, str]] = []
    started = time.perf_counter()

    async def probe() -> None:
        sent = time.perf_counter()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                await writer.drain()
                head = await reader.readline()
                await reader.read()  # Connection: close: the answer ends with the connection
            words = head.split()
            outcome = "ok" if words[1:2] == [b"200"] else (
                f"HTTP {words[1].decode(errors='replace')}" if len(words) > 1 else "no answer")
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:  # refused, reset, ...: counted, never fatal
            outcome = type(exc).__name__
        finally:
            if writer is not None:
                writer.close()
        samples.append((sent - started, time.perf_counter() - sent, outcome))

    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    print("ready", flush=True)
    tasks: set[asyncio.Task[None]] = set()
    ticks = 0
    while not stop.done():
        task = asyncio.create_task(probe())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        ticks += 1
        delay = started + ticks * interval - time.perf_counter()
        if delay > 0:
            await asyncio.wait([stop], timeout=delay)
    if tasks:
        await asyncio.wait(tasks)  # each ends within its timeout
    try:
        sys.stdout.write(json.dumps(samples) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the benchmark has gone (interrupted): nobody to tell
        os.close(sys.stdout.fileno())


@dataclass
class ProbeStats:
    n: int = 0
    answered: int = 0
    failed: int = 0
    timed_out: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    slow: list[tuple[float, float]] = field(default_factory=list)  # (s into the load, ms)
    note: str = ""

    @classmethod
    def of(cls, samples: list[list[Any]]) -> ProbeStats:
        """Percentiles over the answered probes and the timed-out ones (as infinitely
        slow: a p99 of "> timeout" says at least 1 % did not answer in time); probes that
        failed at once (refused, reset, an error status) are counted apart."""
        outcomes = Counter(str(s[2]) for s in samples)
        answered = [float(s[1]) for s in samples if s[2] == "ok"]
        timed_out = outcomes.get("timeout", 0)
        values = sorted(answered) + [math.inf] * timed_out
        stats = cls(n=len(samples), answered=len(answered), timed_out=timed_out,
                    failed=len(samples) - len(answered) - timed_out, outcomes=dict(outcomes),
                    slow=[(round(float(s[0]), 2), round(float(s[1]) * 1000, 1))
                          for s in samples if s[2] != "ok" or s[1] * 1000 >= GOAL_P99_MS])
        if values:
            stats.p50_ms = percentile(values, 50) * 1000
            stats.p99_ms = percentile(values, 99) * 1000
            stats.max_ms = values[-1] * 1000
        return stats


# The clients of a real deployment are on other machines; here the load generator (500
# long polls' connections, a 150 MB body pushed through httpx) shares the server's two
# cores, and at the same priority it takes the CPU from the server it loads: the probes
# then measured the benchmark's own client. So once the servers run, the benchmark
# lowers its priority; the probe, a process of its own, runs at the server's.
LOAD_NICENESS = 10


def lower_load_priority(niceness: int) -> str:
    if niceness <= 0:
        return "the load generator runs at the servers' priority (--load-niceness 0)"
    os.nice(niceness)
    return (f"the load generator runs at niceness {niceness} (the servers and the probe at "
            "0), as clients on other machines would not take the server's CPU")


def _probe_priority() -> None:
    """In the probe process, before it runs: back to the servers' priority (lowering
    niceness needs CAP_SYS_NICE; without it the probe stays at the generator's)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass


class Prober:
    """The probe process, started for one load and stopped when the load ends."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, base_url: str, interval: float, timeout: float) -> Prober:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--probe", base_url,
            "--probe-interval", str(interval), "--probe-timeout", str(timeout),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=_probe_priority)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if line.strip() != b"ready":
            process.kill()
            await process.wait()
            raise RuntimeError(f"the probe did not start: {line!r}")
        return cls(process)

    async def stop(self) -> ProbeStats:
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"stop\n")
            await process.stdin.drain()
            process.stdin.close()
            out = await asyncio.wait_for(process.stdout.read(), timeout=120)
            await process.wait()
            return ProbeStats.of(json.loads(out.decode().strip().splitlines()[-1]))
        except Exception as exc:  # reported in the row, the run goes on
            if process.returncode is None:
                process.kill()
                await process.wait()
            return ProbeStats(note=f"probe failed: {exc!r}"[:200])


# --- the server under test ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Stack:
    """The processes of one server under test, on a database of their own: ``serve``
    (with its embedded worker) on a SQLite file, or ``serve --no-worker`` and ``workers``
    ``mixedfit worker`` processes on a new PostgreSQL database, dropped at the end."""

    def __init__(self, workdir: Path, postgres: str | None, workers: int = 2,
                 source: Path = ROOT, api_processes: int = 1) -> None:
        self.workdir = workdir
        self.api_processes = api_processes
        self.postgres = postgres
        self.workers = workers if postgres else 1
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.base_url = ""
        self.database: str | None = None
        self.starts = 0
        self.created = False
        if postgres:
            self.database = f"mixedfit_bench_{uuid.uuid4().hex[:8]}"
            self.database_url = make_url(postgres).set(database=self.database) \
                .render_as_string(hide_password=False)
        else:
            self.database_url = f"sqlite:///{workdir / 'mixedfit.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
        self.env.update({
            "MIXEDFIT_DATABASE_URL": self.database_url,
            # the service of this checkout (or of --commit), whatever the virtualenv has
            "PYTHONPATH": os.pathsep.join(filter(None, [str(source),
                                                        os.environ.get("PYTHONPATH")])),
            # serve --processes N (each API process with its own embedded worker on SQLite)
            "MIXEDFIT_API_PROCESSES": str(api_processes),
        })

    @property
    def mode(self) -> str:
        api = f" ({self.api_processes} API processes)" if self.api_processes > 1 else ""
        return ("production: PostgreSQL, serve --no-worker + "
                f"{self.workers} workers{api}" if self.postgres else
                f"embedded: SQLite, serve with its in-process worker{api}")

    def _admin(self) -> Any:
        assert self.postgres is not None
        url = make_url(self.postgres)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "service.cli", *args]

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        # a session of its own: the fit processes it forks are ended with it (stop())
        self.processes[name] = subprocess.Popen(
            command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()

    def start(self) -> None:
        if self.postgres and not self.created:
            admin = self._admin()
            try:
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{self.database}"'))
                self.created = True
            finally:
                admin.dispose()
            done = subprocess.run(self._cli("migrate"), cwd=self.workdir, env=self.env,
                                  capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"mixedfit migrate failed: {done.stderr[-1000:]}")
        self.starts += 1
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        serve = self._cli("serve", "--port", str(port))
        self._spawn("serve", serve + ["--no-worker"] if self.postgres else serve)
        if self.postgres:
            for i in range(self.workers):
                self._spawn(f"worker{i + 1}", self._cli("worker"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            dead = self.dead()
            if dead:
                raise RuntimeError(f"{dead}: {self.log_tail('serve')}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"serve was not ready within 120 s: {self.log_tail('serve')}")

    def dead(self) -> str:
        """Which processes have exited (empty when all run)."""
        return ", ".join(f"{name} exited with {p.returncode}"
                         for name, p in self.processes.items() if p.poll() is not None)

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def log_problems(self) -> dict[str, list[str]]:
        """Every log's ERROR, CRITICAL and Traceback lines, by process."""
        found: dict[str, list[str]] = {}
        for path in sorted(self.workdir.glob("*.log")):
            lines = [line for line in path.read_text(errors="replace").splitlines()
                     if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
            if lines:
                found[path.stem] = lines
        return found

    def stop(self) -> None:
        """SIGTERM each process, SIGKILL what is left of its session after 30 s."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:  # the process and whatever it forked (fork server, fit children)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        self.processes.clear()

    def drop(self) -> None:
        if not self.created:
            return
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        finally:
            admin.dispose()


# --- requests and what they got ----------------------------------------------------------


@dataclass
class Call:
    """One request of a load: its status (None when it got no answer) and duration."""

    what: str
    status: int | None
    seconds: float
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return str(self.status) if self.status is not None else self.error


async def timed(client: httpx.AsyncClient, what: str, method: str, url: str,
                keep: Callable[[httpx.Response], dict[str, Any]] | None = None,
                **kwargs: Any) -> Call:
    """Send one request; whatever happens is a Call, never an exception."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except Exception as exc:  # timeouts, resets, ...: what the load got
        return Call(what, None, time.perf_counter() - started, type(exc).__name__)
    call = Call(what, response.status_code, time.perf_counter() - started)
    try:
        if keep is not None:
            call.info = keep(response)
        if response.status_code >= 500:
            call.info["body"] = response.text[:300]
    except Exception as exc:
        call.info["unreadable"] = repr(exc)[:200]
    return call


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """A problem document's type (last part), setting and limit; a model's status."""
    try:
        body = response.json()
    except ValueError:
        return {"content_type": response.headers.get("content-type", "")}
    if not isinstance(body, dict):
        return {}
    kept = {k: body[k] for k in ("setting", "limit", "status", "id") if k in body}
    if "type" in body:
        kept["type"] = str(body["type"]).rsplit(":", 1)[-1]
    return kept


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(1, math.ceil(q / 100 * len(values))) - 1]


def fmt_seconds(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def tally(calls: list[Call]) -> str:
    """'12 × 200, 1 × ReadTimeout'"""
    return ", ".join(f"{n} × {k}" for k, n in Counter(c.outcome for c in calls).most_common())


def durations(calls: list[Call], p99: bool = False, least: bool = False) -> str:
    values = sorted(c.seconds for c in calls)
    if not values:
        return "none sent"
    parts = [f"min {fmt_seconds(values[0])}"] if least else []
    parts.append(f"p50 {fmt_seconds(percentile(values, 50))}")
    if p99:
        parts.append(f"p99 {fmt_seconds(percentile(values, 99))}")
    parts.append(f"max {fmt_seconds(values[-1])}")
    return ", ".join(parts)


def describe(label: str, calls: list[Call], p99: bool = False, least: bool = False) -> str:
    return f"{label}: {tally(calls) or 'none'} ({durations(calls, p99, least)})"


# --- rows of the table -------------------------------------------------------------------


@dataclass
class Row:
    key: str
    load: str
    seconds: float = 0.0
    load_average: float | None = None  # the machine's, 1 minute, as the load ended
    probes: ProbeStats = field(default_factory=ProbeStats)
    got: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)


@dataclass
class Context:
    stack: Stack
    sizes: Sizes
    workdir: Path
    probe_interval: float
    probe_timeout: float
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.stack.base_url

    def client(self, timeout: float = 300.0, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(timeout), **kwargs)


async def measure(ctx: Context, row: Row, load: Callable[[], Awaitable[None]]) -> Row:
    """Probe /healthz for as long as ``load`` runs; its failure is reported in the row."""
    try:
        prober = await Prober.start(ctx.base, ctx.probe_interval, ctx.probe_timeout)
    except Exception as exc:
        row.got.append(f"not measured: {exc!r}"[:300])
        return row
    started = time.monotonic()
    try:
        await load()
    except Exception as exc:  # the load's own failure: reported, the run goes on
        row.got.append(f"LOAD FAILED: {type(exc).__name__}: {exc}"[:400])
    finally:
        row.seconds = time.monotonic() - started
        row.load_average = os.getloadavg()[0]
        row.probes = await prober.stop()
    dead = ctx.stack.dead()
    if dead:
        row.got.append(f"SERVER DIED: {dead}")
    return row


async def prepare(row: Row, setup: Awaitable[Any]) -> Any:
    """Run a load's setup; None (and a note in the row) when it failed."""
    try:
        return await setup
    except Exception as exc:
        row.got.append(f"not run, setup failed: {type(exc).__name__}: {exc}"[:400])
        return None


class SetupError(RuntimeError):
    pass


async def upload(client: httpx.AsyncClient, name: str, data: bytes,
                 content_type: str = "text/csv") -> str:
    response = await client.post("/v1/datasets", params={"name": name}, content=data,
                                 headers={"Content-Type": content_type})
    if response.status_code != 201:
        raise SetupError(f"upload {name}: {response.status_code} {response.text[:300]}")
    dataset_id: str = response.json()["id"]
    return dataset_id


async def queue_fit(client: httpx.AsyncClient, dataset_id: str, formula: str) -> str:
    response = await client.post("/v1/models", json={"dataset_id": dataset_id,
                                                     "formula": formula})
    if response.status_code != 202:
        raise SetupError(f"fit {formula}: {response.status_code} {response.text[:300]}")
    model_id: str = response.json()["id"]
    return model_id


async def wait_fitted(client: httpx.AsyncClient, model_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/models/{model_id}", params={"wait": 30})
        status = response.json().get("status") if response.status_code == 200 else None
        if status == "succeeded":
            return
        if status == "failed" or response.status_code != 200:
            raise SetupError(f"model {model_id}: {response.status_code} {response.text[:300]}")
    raise SetupError(f"model {model_id} was not fitted within {timeout:.0f} s")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# --- 1. idle -----------------------------------------------------------------------------


async def load_idle(ctx: Context) -> Row:
    row = Row("1", "idle (baseline)")
    row.got.append("no requests but the probes")
    return await measure(ctx, row, lambda: asyncio.sleep(ctx.sizes.period))


# --- 2. plots and predictions ------------------------------------------------------------


async def setup_plots(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    frame = simulate_slopes(n_rows=sizes.plot_rows, n_groups=sizes.plot_groups, seed=11)
    async with ctx.client() as client:
        dataset = await upload(client, "plots", csv_bytes(frame))
        models = {"lm": await queue_fit(client, dataset, "y ~ x"),
                  "lmm": await queue_fit(client, dataset, "y ~ x + (x | g)")}
        urls: dict[str, list[str]] = {}
        for kind, model_id in models.items():
            await wait_fitted(client, model_id)
            listed = await client.get(f"/v1/models/{model_id}/plots", params={"group": "g"})
            if listed.status_code != 200:
                raise SetupError(f"plots of the {kind}: {listed.status_code} "
                                 f"{listed.text[:300]}")
            links = {p["name"]: p["png"] for p in listed.json()["plots"]}
            wanted = [links[name] for name in ("residuals_vs_fitted", "residuals_by_group")
                      if name in links]
            if len(wanted) < 2:
                raise SetupError(f"the {kind} lists no residuals_by_group: {sorted(links)}")
            urls[kind] = wanted
        # one of each first (not measured): the server's first plot pays for imports
        warm = [await timed(client, url, "GET", url) for kind in urls for url in urls[kind]]
        warm.append(await predict_once(client, models["lmm"]))
    return {"models": models, "urls": urls, "warm": warm, "dataset": dataset}


async def predict_once(client: httpx.AsyncClient, model_id: str) -> Call:
    return await timed(client, "prediction", "POST", f"/v1/models/{model_id}/predictions",
                       json={"records": [{"x": 2.5, "g": "g0001"}]})


async def load_plots(ctx: Context) -> Row:
    sizes = ctx.sizes
    row = Row("2", f"plots of a {sizes.plot_rows:,}-row lm and lmm, a 1-row prediction "
                   f"every {sizes.prediction_interval * 1000:.0f} ms")
    setup = await prepare(row, setup_plots(ctx))
    if setup is None:
        return row
    row.details.append(describe("warm-up (not measured)", setup["warm"]))
    calls: dict[str, list[Call]] = {"lm": [], "lmm": [], "prediction": []}

    async def plots(kind: str, deadline: float) -> None:
        async with ctx.client() as client:
            i = 0
            while time.monotonic() < deadline:
                url = setup["urls"][kind][i % len(setup["urls"][kind])]
                i += 1
                call = await timed(client, url.split("/plots/")[1], "GET", url)
                calls[kind].append(call)
                if call.status is None:
                    await asyncio.sleep(0.1)  # a dead server: do not spin

    async def predictions(deadline: float) -> None:
        async with ctx.client(timeout=60) as client:
            tasks = []
            tick = time.monotonic()
            while tick < deadline:
                tasks.append(asyncio.create_task(predict_once(client, setup["models"]["lmm"])))
                tick += sizes.prediction_interval
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
            calls["prediction"].extend(await asyncio.gather(*tasks))

    async def load() -> None:
        deadline = time.monotonic() + sizes.period
        await asyncio.gather(plots("lm", deadline), plots("lmm", deadline),
                             predictions(deadline))

    await measure(ctx, row, load)
    for kind in ("lm", "lmm"):
        row.got.append(describe(f"{kind} plots", calls[kind]))
        for name in setup["urls"][kind]:
            some = [c for c in calls[kind] if c.what == name.split("/plots/")[1]]
            row.details.append(describe(f"{kind} {name.split('/plots/')[1]}", some))
    row.got.append(describe("predictions", calls["prediction"], p99=True))
    row.calls = [c for kind in calls.values() for c in kind]
    return row


# --- 3. a large CSV upload ---------------------------------------------------------------


def write_upload_csv(path: Path, size: int) -> int:
    """A CSV of at least ``size`` bytes (y, x, g of 2,000 levels), from a few blocks."""
    blocks = [csv_bytes(simulate_slopes(n_rows=50_000, n_groups=2_000, seed=seed))
              for seed in range(4)]
    header, *_ = blocks[0].split(b"\n", 1)
    bodies = [b.split(b"\n", 1)[1] for b in blocks]
    written = 0
    with path.open("wb") as out:
        out.write(header + b"\n")
        written += len(header) + 1
        i = 0
        while written < size:
            out.write(bodies[i % len(bodies)])
            written += len(bodies[i % len(bodies)])
            i += 1
    return written


async def load_upload(ctx: Context) -> Row:
    sizes = ctx.sizes
    row = Row("3", f"{sizes.upload_bytes / MB:.0f} MB CSV uploads, back to back")
    path = ctx.workdir / "upload.csv"
    written = await prepare(row, asyncio.to_thread(write_upload_csv, path, sizes.upload_bytes))
    if written is None:
        return row
    data = path.read_bytes()
    calls: list[Call] = []

    async def load() -> None:
        deadline = time.monotonic() + sizes.period
        async with ctx.client(timeout=900) as client:
            while not calls or time.monotonic() < deadline:
                calls.append(await timed(client, "upload", "POST", "/v1/datasets",
                                         keep=problem_of, params={"name": "bench-upload"},
                                         content=data, headers={"Content-Type": "text/csv"}))
                if calls[-1].status is None:
                    await asyncio.sleep(0.1)

    await measure(ctx, row, load)
    row.got.append(describe(f"uploads of {len(data) / 1e6:.0f} MB", calls))
    ok = [c for c in calls if c.status == 201]
    if ok:
        row.details.append(f"upload rate {len(data) / 1e6 / min(c.seconds for c in ok):.1f} "
                           "MB/s (fastest upload)")
    row.calls = calls
    return row


# --- 5. hostile bodies -------------------------------------------------------------------


def parquet_bomb(rows: int) -> bytes:
    """``rows`` copies of one 1 KB string: dictionary-encoded and zstd, a few hundred KB."""
    repeated = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                              pa.array(["x" * 1024]))
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": repeated}), buffer, compression="zstd", use_dictionary=True)
    return buffer.getvalue()


def wide_csv(columns: int) -> bytes:
    return (",".join(f"col_{i}" for i in range(columns)) + "\n"
            + ",".join(["1.5"] * columns) + "\n").encode()


def crossed_levels(n: int, levels: int) -> pd.DataFrame:
    """Two factors of ``levels`` levels each: ``a * b`` has about levels² columns."""
    rng = np.random.default_rng(3)
    i = np.arange(n)
    return pd.DataFrame({"y": np.round(rng.normal(size=n), 3),
                         "a": np.char.add("a", (i % levels).astype(str)),
                         "b": np.char.add("b", ((i * 7919) % levels).astype(str))})


def eight_factors(n: int) -> pd.DataFrame:
    """Eight factors of four levels: ``(c1 + ... + c8)^8`` has 4^8 = 65,536 columns."""
    rng = np.random.default_rng(4)
    columns: dict[str, Any] = {"y": np.round(rng.normal(size=n), 3)}
    for k in range(1, 9):
        columns[f"c{k}"] = np.char.add("l", rng.integers(0, 4, n).astype(str))
    return pd.DataFrame(columns)


EIGHT_WAY = "y ~ (c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8)^8"


def spec_pieces(size: int) -> Iterator[bytes]:
    """A JSON model spec of ``size`` bytes (one long formula), made as it is sent."""
    prefix, suffix = b'{"dataset_id": "x", "formula": "y ~ ', b'"}'
    chunk = b"x" * MB
    yield prefix
    left = size - len(prefix) - len(suffix)
    while left > 0:
        piece = chunk if left >= len(chunk) else chunk[:left]
        left -= len(piece)
        yield piece
    yield suffix


async def raw_post(base_url: str, what: str, path: str, size: int, declared: bool,
                   timeout: float = 120) -> Call:
    """POST a ``size``-byte JSON body on a socket of its own, reading while it sends, and
    sending on after the answer, as clients that write the whole body first do (httpx,
    requests): the status and time of the answer, the bytes sent by then, and what the
    server did with the rest (closed or reset the connection, or read it all: work done
    for a body already refused). A reset can also lose the answer."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()
    started = time.perf_counter()
    sent = 0
    sent_at_answer: int | None = None
    status: int | None = None
    answered_at: float | None = None
    notes: list[str] = []
    writer: asyncio.StreamWriter | None = None

    async def read_answer(reader: asyncio.StreamReader) -> None:
        nonlocal status, answered_at, sent_at_answer
        line = await reader.readline()
        if not line:
            notes.append("closed without an answer")
            return
        answered_at, sent_at_answer = time.perf_counter(), sent
        words = line.split()
        status = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            if name.strip().lower() == "connection":
                notes.append(f"Connection: {value.strip()}")
        await reader.readexactly(length)

    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            answer = asyncio.create_task(read_answer(reader))
            try:
                writer.write(head)
                for piece in spec_pieces(size):
                    writer.write(piece if declared else
                                 b"%x\r\n" % len(piece) + piece + b"\r\n")
                    # once answered, a server that neither reads nor closes ends the test
                    await asyncio.wait_for(writer.drain(), None if answered_at is None else 5)
                    sent += len(piece)
                    await asyncio.sleep(0)  # the answer is read as soon as it comes
                else:
                    if not declared:
                        writer.write(b"0\r\n\r\n")
                        await writer.drain()
                    notes.append(f"the server read all {sent / MB:.0f} MB")
            except OSError as exc:
                notes.append(f"after {sent / MB:.0f} MB sent: {type(exc).__name__}")
            except TimeoutError:
                notes.append(f"the server stopped reading at {sent / MB:.0f} MB")
            try:
                await answer
            except (OSError, asyncio.IncompleteReadError) as exc:
                notes.append(f"reading the answer: {type(exc).__name__}")
    except TimeoutError:
        notes.append(f"timed out after {timeout:.0f} s")
    finally:
        if writer is not None:
            writer.close()
    seconds = (answered_at or time.perf_counter()) - started
    return Call(what, status, seconds, error="no answer" if status is None else "",
                info={"sent_bytes": sent, "sent_at_answer": sent_at_answer,
                      "body_seconds": time.perf_counter() - started,
                      "connection": ", ".join(notes)})


def connection_end(notes: str) -> str:
    """What the server did with the rest of a refused body, from ``raw_post``'s notes."""
    if "read all" in notes:
        return "the server read the whole body"
    if "stopped reading" in notes:
        return "the server stopped reading, connection open"
    if "timed out" in notes:
        return "timed out"
    if "Error" in notes:
        return "the server reset the connection"
    return notes or "closed"


async def setup_hostile(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    bomb = await asyncio.to_thread(parquet_bomb, sizes.bomb_rows)
    wide = wide_csv(sizes.wide_columns)
    async with ctx.client() as client:
        crossed = await upload(client, "crossed-levels", csv_bytes(
            crossed_levels(sizes.design_rows, sizes.design_levels)))
        factors = await upload(client, "eight-factors", csv_bytes(eight_factors(
            sizes.design_rows)))
    return {"bomb": bomb, "wide": wide, "crossed": crossed, "factors": factors}


async def load_hostile(ctx: Context) -> Row:
    sizes = ctx.sizes
    row = Row("5", "hostile bodies, one after another, repeated")
    setup = await prepare(row, setup_hostile(ctx))
    if setup is None:
        return row
    json_mb = sizes.json_body_bytes / MB
    raw = ("json declared", "json chunked")

    labels = {
        "bomb": f"Parquet bomb ({len(setup['bomb']) / 1000:.0f} KB, {sizes.bomb_rows:,} rows "
                "of one 1 KB string)",
        "wide": f"CSV of {sizes.wide_columns:,} columns ({len(setup['wide']) / 1e6:.1f} MB)",
        "json declared": f"{json_mb:.0f} MB JSON to POST /v1/models, Content-Length",
        "json chunked": f"{json_mb:.0f} MB JSON to POST /v1/models, chunked",
        "a * b": f"y ~ a * b, two {sizes.design_levels:,}-level factors, "
                 f"{sizes.design_rows:,} rows",
        "^8": f"{EIGHT_WAY.replace('c3 + c4 + c5 + c6 + c7', '...')} on "
              f"{sizes.design_rows:,} rows",
    }

    def requests() -> list[tuple[str, str, str, dict[str, Any]]]:
        return [
            ("bomb", "POST", "/v1/datasets", {
                "content": setup["bomb"], "params": {"name": "bomb"},
                "headers": {"Content-Type": "application/vnd.apache.parquet"}}),
            ("wide", "POST", "/v1/datasets", {
                "content": setup["wide"], "params": {"name": "wide"},
                "headers": {"Content-Type": "text/csv"}}),
            ("json declared", "POST", "/v1/models", {}),
            ("json chunked", "POST", "/v1/models", {}),
            ("a * b", "POST", "/v1/models", {"json": {
                "dataset_id": setup["crossed"], "formula": "y ~ a * b"}}),
            ("^8", "POST", "/v1/models", {"json": {
                "dataset_id": setup["factors"], "formula": EIGHT_WAY}}),
        ]

    calls: list[Call] = []

    async def load() -> None:
        deadline = time.monotonic() + sizes.period
        # a new connection for each: a refused body ends its connection
        async with ctx.client(timeout=120, limits=httpx.Limits(
                max_keepalive_connections=0)) as client:
            while not calls or time.monotonic() < deadline:
                for what, method, url, kwargs in requests():
                    if what in raw:
                        calls.append(await raw_post(ctx.base, what, url, sizes.json_body_bytes,
                                                    declared=what == "json declared"))
                    else:
                        calls.append(await timed(client, what, method, url, keep=problem_of,
                                                 **kwargs))

    await measure(ctx, row, load)
    for what, label in labels.items():
        some = [c for c in calls if c.what == what]
        if not some:
            continue
        kinds = Counter(f"{c.info.get('type', '')} {c.info.get('setting', '')}".strip()
                        for c in some)
        answer = "; ".join(k for k in kinds if k)
        sent = ""
        if what in raw:
            before = max(int(c.info.get("sent_at_answer") or 0) for c in some)
            most = max(int(c.info.get("sent_bytes") or 0) for c in some)
            ends = Counter(connection_end(str(c.info.get("connection"))) for c in some)
            slowest = max(float(c.info.get("body_seconds", 0)) for c in some)
            sent = (f"; answered once at most {before / MB:.0f} MB were sent; then "
                    + ", ".join(f"{n} × {k}" for k, n in ends.most_common())
                    + f" (at most {most / MB:.0f} MB sent, done within "
                      f"{fmt_seconds(slowest)})")
        row.got.append(f"{what}: {tally(some)} ({durations(some)}){sent}")
        row.details.append(f"{label}: {tally(some)} in {durations(some)}"
                           f"{' — ' + answer if answer else ''}{sent}")
    row.calls = calls
    return row


# --- 4. long polls on queued fits --------------------------------------------------------


async def model_statuses(client: httpx.AsyncClient, model_ids: list[str]) -> Counter[str]:
    seen: Counter[str] = Counter()
    wanted = set(model_ids)
    offset = 0
    while True:
        response = await client.get("/v1/models", params={"limit": 1000, "offset": offset})
        if response.status_code != 200:
            seen[f"list answered {response.status_code}"] += 1
            return seen
        page = response.json()
        seen.update(m["status"] for m in page["items"] if m["id"] in wanted)
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return seen


def fmt_statuses(seen: Counter[str]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(seen.items()))


async def setup_polls(ctx: Context) -> dict[str, Any]:
    """A slow model (crossed random effects), timed alone, then queued often enough to
    stay unfinished through row 4a and the polls."""
    sizes = ctx.sizes
    frame = simulate_crossed(n_rows=sizes.slow_rows, levels=sizes.slow_levels, seed=12)
    formula = "y ~ x + (1 | f1) + (1 | f2) + (1 | f3)"
    async with ctx.client() as client:
        dataset = await upload(client, "slow", csv_bytes(frame))
        for _ in range(2):  # the second: the first pays for starting the fit processes
            started = time.monotonic()
            await wait_fitted(client, await queue_fit(client, dataset, formula))
            fit_seconds = time.monotonic() - started
        needed = sizes.control_period + sizes.poll_wait + 15
        count = max(sizes.min_queued_fits,
                    math.ceil(ctx.stack.workers * needed / fit_seconds) + ctx.stack.workers)
        count = min(count, 200)
        model_ids = [await queue_fit(client, dataset, formula) for _ in range(count)]
    return {"fit_seconds": fit_seconds, "model_ids": model_ids, "formula": formula}


async def load_polls(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    control = Row("4a", "fits queued and running, no polls (control for 4)")
    polls_row = Row("4", f"{sizes.polls} concurrent long polls "
                         f"(?wait={sizes.poll_wait:.0f}) on queued fits")
    setup = await prepare(control, setup_polls(ctx))
    if setup is None:
        polls_row.got = list(control.got)
        return [control, polls_row]
    model_ids: list[str] = setup["model_ids"]
    about = (f"{len(model_ids)} fits of {setup['formula']} on {sizes.slow_rows:,} rows "
             f"({setup['fit_seconds']:.1f} s for one, alone, POST to result)")

    async with ctx.client(timeout=60) as client:
        before = await model_statuses(client, model_ids)
    await measure(ctx, control, lambda: asyncio.sleep(sizes.control_period))
    async with ctx.client(timeout=60) as client:
        after = await model_statuses(client, model_ids)
    control.got.append(f"{about}; at the start {fmt_statuses(before)}, "
                       f"at the end {fmt_statuses(after)}")

    calls: list[Call] = []

    async def load() -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        timeout = httpx.Timeout(sizes.poll_wait + 60, connect=60, pool=None)
        async with httpx.AsyncClient(base_url=ctx.base, limits=limits,
                                     timeout=timeout) as client:
            calls.extend(await asyncio.gather(*(
                timed(client, "poll", "GET", f"/v1/models/{model_ids[i % len(model_ids)]}",
                      keep=lambda r: {"status": r.json().get("status")}
                      if r.status_code == 200 else problem_of(r),
                      params={"wait": sizes.poll_wait})
                for i in range(sizes.polls))))

    await measure(ctx, polls_row, load)
    async with ctx.client(timeout=60) as client:
        final = await model_statuses(client, model_ids)
    answered = [c for c in calls if c.status == 200]
    in_answers = Counter(str(c.info.get("status")) for c in answered)
    polls_row.got.append(f"{len(answered)} of {sizes.polls} answered 200 "
                         f"({fmt_statuses(in_answers)})")
    for status in sorted(in_answers):
        some = [c for c in answered if str(c.info.get("status")) == status]
        polls_row.details.append(f"answered {status}: {len(some)}, {durations(some, least=True)}")
    polls_row.got.append(f"{about}; after the polls {fmt_statuses(final)}")
    early = [c for c in answered if c.info.get("status") not in FINISHED
             and c.seconds < sizes.poll_wait - 1]
    if early:
        polls_row.details.append(f"{len(early)} polls answered an unfinished model before "
                                 f"their wait was over ({durations(early)})")
    others = [c for c in calls if c.status != 200]
    if others:
        polls_row.details.append(f"not 200: {tally(others)}; first: "
                                 f"{others[0].info or others[0].error}")
    polls_row.calls = calls
    return [control, polls_row]


# --- output ------------------------------------------------------------------------------


def fmt_ms(value: float | None, timeout: float) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return f"> {timeout * 1000:.0f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def slow_windows(slow: list[tuple[float, float]], gap: float = 1.0) -> str:
    """When the probes over the goal (or not answered) were sent: '12 from 0.1 to 1.6 s
    (max 540 ms), 3 from 30.2 to 30.5 s (max 80 ms)'."""
    windows: list[list[tuple[float, float]]] = []
    for sample in sorted(slow):
        if windows and sample[0] - windows[-1][-1][0] <= gap:
            windows[-1].append(sample)
        else:
            windows.append([sample])
    return ", ".join(f"{len(w)} from {w[0][0]:.1f} to {w[-1][0]:.1f} s "
                     f"(max {max(ms for _, ms in w):.0f} ms)" for w in windows)


def print_table(rows: list[Row], timeout: float) -> None:
    order = {"1": 0, "2": 1, "3": 2, "4a": 3, "4": 4, "5": 5}
    rows = sorted(rows, key=lambda r: order.get(r.key, 9))
    print("\n| # | load | s | load avg | healthz probes | p50 ms | p99 ms | max ms "
          "| failed / timed out | what the load got |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        p = r.probes
        verdict = "" if p.p99_ms is None else (" ok" if p.p99_ms < GOAL_P99_MS else " OVER")
        errors = f"{p.failed} / {p.timed_out}"
        if p.failed:
            errors += " (" + ", ".join(f"{n} {k}" for k, n in p.outcomes.items()
                                       if k not in ("ok", "timeout")) + ")"
        got = "; ".join(r.got) + (f"; {p.note}" if p.note else "")
        average = "" if r.load_average is None else f"{r.load_average:.1f}"
        print(f"| {r.key} | {r.load} | {r.seconds:.1f} | {average} | {p.n} "
              f"| {fmt_ms(p.p50_ms, timeout)} "
              f"| {fmt_ms(p.p99_ms, timeout)}{verdict} | {fmt_ms(p.max_ms, timeout)} "
              f"| {errors} | {got} |")
    for r in rows:
        if r.probes.slow:
            r.details.append(f"healthz probes of {GOAL_P99_MS:.0f} ms or more (or not answered), "
                             f"by when they were sent into the load: "
                             f"{slow_windows(r.probes.slow)}")
    details = [(r.key, d) for r in rows for d in r.details]
    if details:
        print("\nDetails:")
        for key, line in details:
            print(f"  {key}. {line}")


def git_commit() -> str:
    """The working tree's commit, and whether its service/ has uncommitted changes."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "service", "migrations"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        return done.stdout.strip() + (" + uncommitted changes to service/" if dirty.strip()
                                      else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def export_commit(rev: str, into: Path) -> Path:
    """service/ and migrations/ of commit ``rev``, extracted into ``into``."""
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "service", "migrations"],
                             cwd=ROOT, capture_output=True, timeout=120, check=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def restart_if_dead(ctx: Context, name: str) -> None:
    dead = ctx.stack.dead()
    if dead:
        ctx.notes.append(f"before load {name}: {dead}; restarted the server")
        await asyncio.to_thread(ctx.stack.stop)
        await asyncio.to_thread(ctx.stack.start)


async def run_loads(ctx: Context, loads: list[str], rows: list[Row]) -> None:
    """Run the chosen loads one after another, adding their rows to ``rows``."""
    # a few requests first: the server's first answers pay for lazy imports
    async with ctx.client(timeout=30) as client:
        for _ in range(10):
            await client.get("/healthz")
    for name in LOADS:  # the polls last: their queued fits go on after them
        if name not in loads:
            continue
        print(f"load {name} ...", flush=True)
        await restart_if_dead(ctx, name)
        if name == "idle":
            made = [await load_idle(ctx)]
        elif name == "plots":
            made = [await load_plots(ctx)]
        elif name == "upload":
            made = [await load_upload(ctx)]
        elif name == "hostile":
            made = [await load_hostile(ctx)]
        else:
            made = await load_polls(ctx)
        for row in made:
            p = row.probes
            print(f"  {row.key}: {row.seconds:.1f} s, healthz p50 "
                  f"{fmt_ms(p.p50_ms, ctx.probe_timeout)} p99 "
                  f"{fmt_ms(p.p99_ms, ctx.probe_timeout)} max "
                  f"{fmt_ms(p.max_ms, ctx.probe_timeout)} ms; " + "; ".join(row.got),
                  flush=True)
        rows.extend(made)
        await asyncio.sleep(1.0)  # let the server settle between loads


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--postgres", metavar="URL",
                        help="production mode on a new database of this PostgreSQL server, "
                             "e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=2,
                        help="mixedfit worker processes with --postgres (default 2)")
    parser.add_argument("--api-processes", type=int, default=1, metavar="N",
                        help="API processes of serve (MIXEDFIT_API_PROCESSES; default 1)")
    parser.add_argument("--period", type=float, help="seconds each load runs "
                        "(default 30, 3 with --quick)")
    parser.add_argument("--loads", nargs="+", default=list(LOADS), choices=LOADS)
    parser.add_argument("--probe-interval", type=float, default=0.05,
                        help="seconds between healthz probes (default 0.05)")
    parser.add_argument("--probe-timeout", type=float, default=5.0,
                        help="a probe not answered within this many seconds timed out")
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (server logs, database)")
    parser.add_argument("--commit", metavar="REV",
                        help="run the service/ and migrations/ of this commit (exported with "
                             "git archive) instead of the working tree's")
    parser.add_argument("--load-niceness", type=int, default=LOAD_NICENESS, metavar="N",
                        help="the load generator's scheduler niceness once the servers run "
                             f"(default {LOAD_NICENESS}; 0: none); the probe stays at 0")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        asyncio.run(probe_forever(args.probe, args.probe_interval, args.probe_timeout))
        return 0

    sizes = QUICK if args.quick else FULL
    if args.period is not None:
        sizes = replace(sizes, period=args.period)
    raise_file_limit(4 * sizes.polls + 256)

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # through the finally below: servers stopped

    signal.signal(signal.SIGTERM, terminated)
    workdir = Path(tempfile.mkdtemp(prefix="mixedfit-responsive-"))
    source, served = ROOT, git_commit()
    if args.commit:
        try:
            source, served = export_commit(args.commit, workdir / "source"), args.commit
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"cannot export {args.commit}: {exc}", file=sys.stderr)
            return 2
    stack = Stack(workdir, args.postgres, args.workers, source, args.api_processes)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python "
          f"{platform.python_version()}, service at {served}", flush=True)
    print(f"# {stack.mode}; {'quick' if args.quick else 'full'} sizes, {sizes.period:.0f} s "
          f"per load; healthz probed every {args.probe_interval * 1000:.0f} ms on a new "
          f"connection, timeout {args.probe_timeout:.0f} s; goal p99 < {GOAL_P99_MS:.0f} ms",
          flush=True)
    rows: list[Row] = []
    interrupted = False
    ctx = Context(stack, sizes, workdir, args.probe_interval, args.probe_timeout)
    try:
        stack.start()
        ctx.notes.append(lower_load_priority(args.load_niceness))
        asyncio.run(run_loads(ctx, args.loads, rows))
    except Exception as exc:  # the server did not start, ...: say so, clean up
        ctx.notes.append(f"run stopped: {type(exc).__name__}: {exc}"[:2000])
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: the rows so far are printed
        ctx.notes.append("run interrupted; the loads measured until then are above")
        interrupted = True
    finally:
        stack.stop()
        problems = stack.log_problems()
        try:
            stack.drop()
        except Exception as exc:
            ctx.notes.append(f"could not drop database {stack.database}: {exc!r}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, args.probe_timeout)
    for kind, lines in problems.items():
        print(f"\n{kind} log: {len(lines)} ERROR/Traceback lines, first: {lines[0][:300]}")
    for note in ctx.notes:
        print(f"\nNote: {note}")
    if args.keep:
        print(f"\nLogs and database kept in {workdir}")
    if args.json:
        document = {"sizes": asdict(sizes), "mode": stack.mode,
                    "service": served,
                    "rows": [asdict(r) for r in rows], "notes": ctx.notes,
                    "log_problems": problems}
        args.json.write_text(json.dumps(document, indent=2, default=str))
    return 1 if interrupted or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
