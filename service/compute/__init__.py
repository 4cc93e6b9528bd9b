"""Bounded computation outside the API process: a few child processes, each task under a
time and memory limit, cancelled when its client leaves (see pool.py)."""

from service.compute.pool import ComputeBusy, ComputeLimitExceeded, ComputePool

__all__ = ["ComputeBusy", "ComputeLimitExceeded", "ComputePool"]
