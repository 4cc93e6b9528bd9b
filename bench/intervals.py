"""Benchmark of issue 12's intervals: mixedfit's parametric bootstrap and likelihood
profile against lme4's ``bootMer`` and ``profile``, per refit and in all.

Usage::

    python bench/intervals.py [--datasets sleepstudy penicillin] [--nsim 1000] [--seed 1]
                              [--json results.json]

For each dataset both engines bootstrap the same fit ``--nsim`` times (percentile
intervals, as ``confint(fit, method = "boot")``) and profile it (``confint(fit, method =
"profile")``): mixedfit in this process through ``service.stats.bootstrap`` and
``service.stats.profile`` (the functions the interval job runs in its child), after a
warm-up; lme4 through ``Rscript bench/lme4_intervals.R``. It prints elapsed and CPU
seconds, seconds per refit and their ratio, and the two bootstraps' intervals side by side
(they differ by Monte Carlo error: the random numbers differ). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from service.stats.bootstrap import bootstrap_intervals, parametric_bootstrap
from service.stats.design import build_design
from service.stats.formula import parse_formula
from service.stats.lmm import fit_lmm
from service.stats.profile import profile_intervals

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Case:
    csv: str
    formula: str
    groups: str


CASES = {
    "sleepstudy": Case("sleepstudy.csv", "Reaction ~ Days + (Days | Subject)", "Subject"),
    "penicillin": Case("penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)",
                       "plate,sample"),
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def mixedfit(case: Case, nsim: int, seed: int) -> dict[str, Any]:
    data = pd.read_csv(ROOT / "tests" / "data" / case.csv)
    design = build_design(parse_formula(case.formula), data)
    result = fit_lmm(design, "REML")
    parametric_bootstrap(design, result, 20, seed)  # warm-up (lazy imports, caches)
    started, cpu = time.perf_counter(), _cpu()
    sample = parametric_bootstrap(design, result, nsim, seed)
    boot_seconds, boot_cpu = time.perf_counter() - started, _cpu() - cpu
    table = bootstrap_intervals(sample, 0.95)
    started, cpu = time.perf_counter(), _cpu()
    profile_intervals(design, 0.95)
    profile_seconds, profile_cpu = time.perf_counter() - started, _cpu() - cpu
    return {"engine": "mixedfit", "nsim": nsim, "boot_seconds": boot_seconds,
            "boot_cpu_seconds": boot_cpu, "seconds_per_refit": boot_seconds / nsim,
            "failed": sample.failed,
            "boot_rows": [{"parm": r.parm, "lower": r.lower, "upper": r.upper}
                          for r in table.rows],
            "profile_seconds": profile_seconds, "profile_cpu_seconds": profile_cpu}


def lme4(case: Case, nsim: int, seed: int) -> dict[str, Any] | None:
    if shutil.which("Rscript") is None:
        return None
    csv = ROOT / "tests" / "data" / case.csv
    command = ["Rscript", str(HERE / "lme4_intervals.R"), str(csv), case.formula, "REML",
               case.groups, str(nsim), str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print(name: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> None:
    print(f"\n{name}: bootstrap nsim {ours['nsim']} (REML refits), profile at 95%")
    print(f"{'engine':10s} {'boot s':>8s} {'CPU s':>7s} {'ms/refit':>9s} {'failed':>7s} "
          f"{'profile s':>10s} {'CPU s':>7s}")
    for row in (ours, theirs):
        if row is None:
            print(f"{'lme4':10s} unavailable (no Rscript)")
            continue
        print(f"{row['engine']:10s} {row['boot_seconds']:8.2f} {row['boot_cpu_seconds']:7.2f} "
              f"{1000 * row['seconds_per_refit']:9.2f} {row['failed']:7d} "
              f"{row['profile_seconds']:10.2f} {row['profile_cpu_seconds']:7.2f}")
    if theirs is None:
        return
    refit_ratio = theirs["seconds_per_refit"] / ours["seconds_per_refit"]
    profile_ratio = theirs["profile_seconds"] / ours["profile_seconds"]
    print(f"per refit, lme4 / mixedfit: {refit_ratio:.1f}; profile: {profile_ratio:.1f}")
    print(f"{'parameter':32s} {'mixedfit 2.5%':>14s} {'lme4 2.5%':>10s} {'mixedfit 97.5%':>15s} "
          f"{'lme4 97.5%':>11s}")
    for a, b in zip(ours["boot_rows"], theirs["boot_rows"], strict=True):
        print(f"{a['parm']:32s} {a['lower']:14.4f} {b['lower']:10.4f} {a['upper']:15.4f} "
              f"{b['upper']:11.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--nsim", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for name in args.datasets:
        ours = mixedfit(CASES[name], args.nsim, args.seed)
        theirs = lme4(CASES[name], args.nsim, args.seed)
        _print(name, ours, theirs)
        results[name] = {"mixedfit": ours, "lme4": theirs}
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
