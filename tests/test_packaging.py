"""The wheel carries the Alembic environment (top-level ``migrations``), so that
``mixedfit migrate`` works from an installed package, not only from a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_every_migration(tmp_path: Path) -> None:
    # built as a user builds it (pip's isolated build environment)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("mixedfit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    assert revisions, "no revision scripts found"
    for name in ["env.py", "script.py.mako", "alembic.ini",
                 *(f"versions/{r}" for r in revisions)]:
        assert f"migrations/{name}" in names, name
