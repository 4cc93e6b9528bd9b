"""One BLAS thread per fit, however the engine is called.

A fit's linear algebra is many small operations: with a thread per core, OpenBLAS spends
more time waking and syncing threads than computing (measured: twice the CPU time for the
same wall time), and several workers on one machine oversubscribe it. Setting
OMP_NUM_THREADS works only before numpy is imported, so the limit is set at run time with
threadpoolctl, around each fit: it holds for the worker's fit processes and for a library
user calling ``fit_model`` alike.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

import numpy  # noqa: F401  (the BLAS libraries must be loaded before they are inspected)
import scipy.linalg  # noqa: F401
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_controller: ThreadpoolController | None = None


def _get_controller() -> ThreadpoolController:
    global _controller
    with _lock:
        if _controller is None:
            # inspecting the loaded libraries costs ~0.2 ms: once per process
            _controller = ThreadpoolController()
        return _controller


def single_threaded_blas() -> AbstractContextManager[object]:
    """A context in which every loaded BLAS library runs one thread."""
    return _get_controller().limit(limits=1, user_api="blas")
