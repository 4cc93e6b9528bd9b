"""Imported once by the fork server (``service.compute.forkserver``), so that every fit and
every compute child of the API starts warm.

Importing the statistics stack (scipy.stats, statsmodels, pyarrow) takes seconds; the fork
server pays that once and each fit is a fork of it. BLAS is pinned to one thread first:
each fit is one process, and scaling is by worker processes.
"""

from __future__ import annotations

import importlib
import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# fit_model imports its engines lazily; an engine that cannot be imported here is
# imported (and its error reported) by the fit that needs it
for _module in ("numpy", "pandas", "pyarrow.parquet", "service.stats.fit",
                "service.stats.formula", "service.stats.design", "service.stats.predict",
                "service.stats.ols", "service.stats.lmm", "service.stats.lmlist",
                # the API's compute children: residuals, plots, ingest
                "service.stats.inspection", "service.stats.plots",
                "matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg",
                "service.datasets.ingest", "service.errors", "service.compute.child",
                # each child re-runs the worker's main module (multiprocessing's rule)
                "service.jobs.worker"):
    try:
        importlib.import_module(_module)
    except Exception:  # noqa: S110 - see above
        pass
