"""Benchmark of issue 4: mixedfit's LMM engine against lme4 and statsmodels' MixedLM.

Usage::

    python bench/run.py [--datasets sleepstudy slopes200k crossed100k] [--repeat 3] [--budget 60]
                        [--method REML|ML] [--engines mixedfit lme4 statsmodels]
                        [--statsmodels-timeout 300] [--json results.json]

Every engine fits the same model to the same CSV (see ``simulate.py``):

- mixedfit in this process: parse_formula -> build_design -> fit_lmm, best of ``--repeat``
  runs after a warm-up, with the design and the fit timed separately;
- lme4 through ``Rscript bench/lme4_fit.R``, best of ``--repeat`` runs of ``lmer()``
  (both stop repeating once their runs on a dataset took ``--budget`` seconds);
- statsmodels' MixedLM once, in a subprocess killed after ``--statsmodels-timeout``
  seconds (it is reported as "> N s" then);

then mixedfit's peak memory in a fresh subprocess (``mixedfit_fit.py``). It prints a table
of times and log-likelihoods, and a summary against the issue's targets: mixedfit at most
0.5 × lme4's time on the large designs, at least 10 × faster than statsmodels, its
log-likelihood no worse than lme4's by more than 2e-4, peak memory at most 3 × the frame.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mixedfit_fit import Timed, fit_timed
from simulate import DATASETS, Dataset

HERE = Path(__file__).resolve().parent
ENGINES = ("mixedfit", "lme4", "statsmodels")
LOGLIK_TOLERANCE = 2e-4  # issue 4: no worse than lme4's log-likelihood by more than this
TARGET_VS_LME4 = 0.5
TARGET_VS_STATSMODELS = 10.0
TARGET_MEMORY = 3.0
MIN_ROWS_FOR_MEMORY = 10_000


@dataclass
class Outcome:
    """What one engine did on one dataset."""

    engine: str
    seconds: float | None = None
    cpu_seconds: float | None = None
    loglik: float | None = None
    status: str = "ok"  # "ok", "timeout", "unavailable" or "failed"
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.seconds is not None


def run_mixedfit(
    dataset: Dataset, df: pd.DataFrame, method: str, repeat: int, budget: float = math.inf
) -> Outcome:
    runs: list[Timed] = []
    try:
        while len(runs) < repeat and (not runs or sum(r.total for r in runs) <= budget):
            runs.append(fit_timed(dataset.formula, df, method))
    except ImportError as exc:
        return Outcome("mixedfit", status="unavailable", note=f"engine not importable: {exc}")
    except Exception as exc:  # the benchmark reports a failing engine instead of stopping
        return Outcome("mixedfit", status="failed", note=repr(exc)[:200])
    best = min(runs, key=lambda r: r.total)
    conv = best.result.convergence
    return Outcome(
        "mixedfit",
        seconds=best.total,
        cpu_seconds=best.cpu,
        loglik=best.result.metrics.loglik,
        note=f"design {best.design:.3f} s + fit {best.fit:.3f} s"
        + "".join(f", {label} {sec:.3f} s" for label, sec in best.steps.items())
        + f"; {conv.optimizer}, {conv.iterations} evals"
        + ("" if conv.converged else ", NOT converged")
        + (", singular" if conv.singular else ""),
        detail={
            "all_seconds": [r.total for r in runs],
            "parse_seconds": best.parse,
            "design_seconds": best.design,
            "fit_seconds": best.fit,
            "fit_steps_seconds": best.steps,
            "engine_fit_seconds": best.result.fit_seconds,
            "theta": list(best.result.theta),
            "fixef": {fe.term: fe.estimate for fe in best.result.fixed_effects},
            "converged": conv.converged,
            "singular": conv.singular,
            "evaluations": conv.iterations,
        },
    )


def run_json(engine: str, command: list[str], timeout: float) -> Outcome:
    """Run a worker that prints one JSON line; a timeout kills it."""
    try:
        done = subprocess.run(  # fixed argument list, no shell
            command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired:
        return Outcome(engine, status="timeout", note=f"did not finish within {timeout:.0f} s")
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return Outcome(engine, status="failed", note=" | ".join(tail)[:300])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    messages = out.get("messages") or []
    return Outcome(
        engine,
        seconds=float(out["seconds"]),
        cpu_seconds=float(out["cpu_seconds"]),
        loglik=float(out["loglik"]),
        note="; ".join(messages)[:120],
        detail=out,
    )


def run_lme4(dataset: Dataset, method: str, repeat: int, budget: float) -> Outcome:
    if shutil.which("Rscript") is None:
        return Outcome("lme4", status="unavailable", note="Rscript not found")
    command = [
        "Rscript", str(HERE / "lme4_fit.R"), str(dataset.ensure()), dataset.formula,
        method, ",".join(dataset.groups), str(repeat), str(budget),
    ]
    outcome = run_json("lme4", command, timeout=3600)
    if outcome.ok:
        d = outcome.detail
        outcome.note = (f"{d['optimizer']}, {d['evaluations']} evals; " + outcome.note).strip(
            "; "
        )
    return outcome


def run_statsmodels(dataset: Dataset, method: str, timeout: float) -> Outcome:
    command = [sys.executable, str(HERE / "statsmodels_fit.py"), dataset.name, method]
    outcome = run_json("statsmodels", command, timeout)
    if outcome.ok and not outcome.detail.get("converged", True):
        outcome.note = ("NOT converged; " + outcome.note).strip("; ")
    return outcome


def run_memory(dataset: Dataset, method: str) -> dict[str, Any] | None:
    command = [sys.executable, str(HERE / "mixedfit_fit.py"), dataset.name, method]
    done = subprocess.run(  # fixed argument list, no shell
        command, capture_output=True, text=True, timeout=3600, cwd=HERE.parent
    )
    if done.returncode != 0:
        print(f"  memory measurement failed: {done.stderr.strip()[-300:]}", flush=True)
        return None
    memory: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return memory


def fmt_seconds(o: Outcome, timeout: float) -> str:
    if o.ok:
        assert o.seconds is not None
        return f"{o.seconds:.3f}" if o.seconds < 10 else f"{o.seconds:.1f}"
    return f"> {timeout:.0f}" if o.status == "timeout" else o.status


def fmt_loglik(o: Outcome) -> str:
    return "" if o.loglik is None else f"{o.loglik:.4f}"


def ratio(a: Outcome, b: Outcome, timeout: float) -> str:
    """a's elapsed time over b's (and CPU time's); a lower bound when a timed out."""
    if a.ok and b.ok:
        assert a.seconds is not None and b.seconds is not None
        text = f"{a.seconds / b.seconds:.2f}"
        if a.cpu_seconds and b.cpu_seconds:
            text += f" (CPU {a.cpu_seconds / b.cpu_seconds:.2f})"
        return text
    if a.status == "timeout" and b.ok:
        assert b.seconds is not None
        return f"> {timeout / b.seconds:.0f}"
    return "n/a"


def print_results(
    results: dict[str, dict[str, Outcome]],
    rows: dict[str, int],
    memory: dict[str, dict[str, Any] | None],
    timeout: float,
) -> None:
    print("\n| dataset | rows | engine | seconds | CPU s | loglik | note |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, outcomes in results.items():
        for o in outcomes.values():
            note = o.note if o.ok else o.note or o.status
            cpu = "" if o.cpu_seconds is None else f"{o.cpu_seconds:.2f}"
            print(f"| {name} | {rows[name]:,} | {o.engine} | {fmt_seconds(o, timeout)} | "
                  f"{cpu} | {fmt_loglik(o)} | {note} |")

    print(f"\n| dataset | mixedfit/lme4 (target <= {TARGET_VS_LME4}) "
          f"| statsmodels/mixedfit (target >= {TARGET_VS_STATSMODELS:.0f}) "
          f"| loglik mixedfit - lme4 (>= -{LOGLIK_TOLERANCE:.0e}) "
          f"| peak memory / frame (target <= {TARGET_MEMORY:.0f}) |")
    print("|---|---:|---:|---:|---|")
    missing = Outcome("none", status="not run")
    for name, outcomes in results.items():
        mf = outcomes.get("mixedfit", missing)
        lme4 = outcomes.get("lme4", missing)
        sm = outcomes.get("statsmodels", missing)
        if mf.loglik is not None and lme4.loglik is not None:
            diff = mf.loglik - lme4.loglik
            verdict = "ok" if diff >= -LOGLIK_TOLERANCE else "WORSE"
            loglik_diff = f"{diff:+.2e} {verdict}"
        else:
            loglik_diff = "n/a"
        print(f"| {name} | {ratio(mf, lme4, timeout)} | {ratio(sm, mf, timeout)} | "
              f"{loglik_diff} | {fmt_memory(memory.get(name))} |")


def fmt_memory(m: dict[str, Any] | None) -> str:
    if not m:
        return "n/a"
    frame = m["frame_bytes"]
    rss, traced = m["rss_growth_bytes"], m["tracemalloc_peak_bytes"]
    return (f"RSS +{rss / 1e6:.1f} MB = {rss / frame:.2f}x, traced {traced / 1e6:.1f} MB = "
            f"{traced / frame:.2f}x of {frame / 1e6:.1f} MB")


def load_earlier(path: Path) -> dict[tuple[str, str], Outcome]:
    """Outcomes saved by an earlier ``--json`` run, by (engine, dataset)."""
    document = json.loads(path.read_text())
    return {
        (o["engine"], name): Outcome(**o)
        for name, outcomes in document["results"].items()
        for o in outcomes
        if o["status"] in ("ok", "timeout")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--repeat", type=int, default=3, help="runs of mixedfit and lme4")
    parser.add_argument(
        "--budget", type=float, default=60.0,
        help="stop repeating an engine on a dataset once its runs took this many seconds",
    )
    parser.add_argument("--method", default="REML", choices=("REML", "ML"))
    parser.add_argument("--statsmodels-timeout", type=float, default=300.0)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory run")
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument(
        "--reuse", type=Path, metavar="JSON",
        help="take the results of engines not in --engines from this earlier --json file "
        "(so that statsmodels' long runs are done once)",
    )
    args = parser.parse_args()
    timeout = args.statsmodels_timeout

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python "
          f"{platform.python_version()}, method {args.method}, repeat {args.repeat}",
          flush=True)
    if "mixedfit" in args.engines:
        # Warm-up: the first fit in a process pays for lazy imports, not for the model.
        warm = run_mixedfit(DATASETS["sleepstudy"], DATASETS["sleepstudy"].load(), "REML", 1)
        if not warm.ok:
            print(f"  mixedfit warm-up: {warm.status}: {warm.note}", flush=True)

    results: dict[str, dict[str, Outcome]] = {}
    rows: dict[str, int] = {}
    memory: dict[str, dict[str, Any] | None] = {}
    earlier = load_earlier(args.reuse) if args.reuse else {}
    for name in args.datasets:
        dataset = DATASETS[name]
        df = dataset.load()
        rows[name] = len(df)
        outcomes: dict[str, Outcome] = {}
        for engine in args.engines:
            print(f"{name}: {engine} ...", end=" ", flush=True)
            if engine == "mixedfit":
                outcome = run_mixedfit(dataset, df, args.method, args.repeat, args.budget)
            elif engine == "lme4":
                outcome = run_lme4(dataset, args.method, args.repeat, args.budget)
            else:
                outcome = run_statsmodels(dataset, args.method, timeout)
            outcomes[engine] = outcome
            unit = " s" if outcome.ok else ""
            print(f"{fmt_seconds(outcome, timeout)}{unit} {outcome.note}", flush=True)
        for engine in ENGINES:
            if engine not in outcomes and (engine, name) in earlier:
                outcomes[engine] = earlier[engine, name]
                outcomes[engine].note = f"{outcomes[engine].note} (from {args.reuse.name})".strip()
        results[name] = {e: outcomes[e] for e in ENGINES if e in outcomes}
        # On a few kB of data the peak is the engine's fixed overhead: no ratio to speak of.
        big_enough = len(df) >= MIN_ROWS_FOR_MEMORY
        if "mixedfit" in args.engines and outcomes["mixedfit"].ok and big_enough \
                and not args.no_memory:
            memory[name] = run_memory(dataset, args.method)
            print(f"{name}: memory {fmt_memory(memory[name])}", flush=True)

    print_results(results, rows, memory, timeout)
    if args.json:
        document = {
            "method": args.method,
            "repeat": args.repeat,
            "rows": rows,
            "results": {k: [asdict(o) for o in v.values()] for k, v in results.items()},
            "memory": memory,
        }
        args.json.write_text(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    main()
