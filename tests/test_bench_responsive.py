"""bench/responsive.py runs every load end to end at its --quick sizes (a smoke run of the
benchmark of issue 11: the script works; no latency is checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_responsiveness_benchmark_measures_every_load(tmp_path: Path) -> None:
    results = tmp_path / "responsive.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "responsive.py"), "--quick", "--period", "1",
         "--json", str(results)],
        cwd=tmp_path, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| # | load |" in done.stdout

    rows = {row["key"]: row for row in json.loads(results.read_text())["rows"]}
    assert set(rows) == {"1", "2", "3", "4a", "4", "5"}
    for row in rows.values():
        assert row["probes"]["answered"] > 0, row
        assert not any(word in got for got in row["got"]
                       for word in ("FAILED", "not run", "DIED", "not measured")), row["got"]

    def statuses(key: str, what: str | None = None) -> set[int | None]:
        return {c["status"] for c in rows[key]["calls"] if what in (None, c["what"])}

    assert statuses("2", "prediction") == {200}
    assert statuses("3") == {201}
    assert statuses("4") == {200}
    for what, status in {"bomb": 413, "wide": 413, "a * b": 422, "^8": 422}.items():
        assert statuses("5", what) == {status}, what
    # refused at the limit and the connection closed (Connection: close): a client still
    # sending may see a reset instead of the answer
    for what in ("json declared", "json chunked"):
        assert 413 in statuses("5", what) and statuses("5", what) <= {413, None}, what
