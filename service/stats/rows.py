"""Rows named as R numbers them, from 1, in every message."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def row_numbers(rows: Sequence[int] | np.ndarray, limit: int = 10) -> str:
    """0-based positions as R numbers rows (from 1): ``rows 1, 4, 9`` or ``row 2``."""
    numbers = [int(r) + 1 for r in list(rows)]
    shown = ", ".join(str(n) for n in numbers[:limit]) + (" ..." if len(numbers) > limit else "")
    return f"row{'s' if len(numbers) > 1 else ''} {shown}"
