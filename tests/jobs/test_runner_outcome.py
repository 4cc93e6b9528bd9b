"""How a child's report of an unexpected exception becomes the stored failure message."""

from __future__ import annotations

import logging

import pytest

from service.jobs.runner import _read_outcome

TRACEBACK = """Traceback (most recent call last):
  File "/srv/mixedfit/service/stats/lmm/factor.py", line 12, in update
    raise ZeroDivisionError("float division by zero")
ZeroDivisionError: float division by zero"""


def test_an_internal_error_is_logged_whole_and_stored_by_name_only(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="service.jobs.runner"):
        outcome = _read_outcome("fit", ("error", TRACEBACK), memory_bytes=2**30)
    assert outcome.status == "crashed"
    assert "ZeroDivisionError" in outcome.message
    # nothing of the traceback (paths, source lines, the message) reaches the client
    assert "/srv/mixedfit" not in outcome.message and "Traceback" not in outcome.message
    assert "float division" not in outcome.message
    assert "/srv/mixedfit/service/stats/lmm/factor.py" in caplog.text
