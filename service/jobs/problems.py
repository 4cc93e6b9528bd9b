"""RFC 9457 problem documents stored on a model whose fit failed (``models.error``)."""

from __future__ import annotations

from typing import Any

# The same URN scheme as the HTTP layer's problems (service/errors.py), so a client sees
# one family of problem types whether a request or a fit failed.
PROBLEM_BASE = "urn:mixedfit:problem:"


def problem(slug: str, title: str, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            **extra}


def fit_failed(error_type: str | None, detail: str) -> dict[str, Any]:
    """The statistics core refused the formula or the data."""
    return problem("fit-failed", "The model could not be fitted", 422, detail,
                   error_type=error_type)


def fit_aborted(reason: str, detail: str, attempts: int) -> dict[str, Any]:
    """The fit spent its attempt(s) without a result: ``reason`` is timeout, memory or
    crashed."""
    titles = {
        "timeout": ("fit-timeout", "The fit exceeded its time limit", 422),
        "memory": ("fit-memory-limit", "The fit exceeded its memory limit", 422),
        "crashed": ("fit-crashed", "The fit process crashed", 500),
    }
    slug, title, status = titles[reason]
    hint = {
        "timeout": " Simplify the model or raise MIXEDFIT_FIT_TIMEOUT_SECONDS.",
        "memory": " Simplify the model or raise MIXEDFIT_FIT_MEMORY_BYTES.",
    }.get(reason, "")
    sentence = detail[:1].upper() + detail[1:] + "."
    if reason in ("timeout", "memory"):
        sentence += " It was not retried: another attempt would end the same way."
    elif attempts > 1:
        sentence += f" That was attempt {attempts}; every attempt ended without a result."
    return problem(slug, title, status, sentence + hint, attempts=attempts)


def workers_lost(stops: int, max_recoveries: int, attempts: int) -> dict[str, Any]:
    """The workers running the fit kept dying: its takeovers (MIXEDFIT_MAX_RECOVERIES) are
    spent. A worker's death costs the fit no attempt, so ``attempts`` may well be 1."""
    return problem(
        "fit-abandoned", "The workers running the fit kept dying", 500,
        f"The worker running the fit stopped before the fit finished, {stops} times "
        "(killed, crashed or cut off from the database; for example by the system's "
        "out-of-memory killer). Another worker takes a fit over at most "
        f"{max_recoveries} times (MIXEDFIT_MAX_RECOVERIES), so it was not tried again. "
        "A fit that needs more memory than a worker's machine has ends this way: simplify "
        "the model or give the workers more memory.",
        attempts=attempts, recoveries=stops - 1)


def dataset_missing(dataset_id: str) -> dict[str, Any]:
    return problem("dataset-not-found", "The dataset is gone", 422,
                   f"Dataset {dataset_id} was deleted before the model was fitted; "
                   "upload the data again and create the model anew.")
