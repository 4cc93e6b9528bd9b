"""What an interval job's child process does: read the dataset, refit the model as its
profile or bootstrap needs, return the table.

Pure (no database, no settings): it runs in a worker's warm process under the fit's time
and memory limits, like a fit (``service.jobs.child.ChildWork``), and reports its progress
(parameters profiled, or simulations done) through the ``report`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.jobs.child import Report, read_parquet
from service.stats.inference import Intervals

# the job kind of profile and bootstrap intervals (service.jobs.kinds)
KIND = "interval"


@dataclass(frozen=True)
class IntervalWork:
    formula: str
    fit_method: str  # the model's REML or ML
    parquet: bytes  # the model's dataset
    method: str  # "profile" or "boot"
    level: float
    nsim: int
    seed: int
    contrasts: dict[str, str] | None = None  # the model's coding of factors
    weights: str | None = None  # the model's column of prior weights

    @property
    def label(self) -> str:
        return "profile" if self.method == "profile" else "bootstrap"

    def run(self, report: Report) -> Intervals:
        from service.stats.confint import refit_intervals

        return refit_intervals(self.formula, read_parquet(self.parquet), self.fit_method,
                               "profile" if self.method == "profile" else "boot",
                               self.level, nsim=self.nsim, seed=self.seed, report=report,
                               contrasts=self.contrasts, weights=self.weights)
