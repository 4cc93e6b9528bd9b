"""The exported model document: its format, its checksum, and its check on import.

Pure: no database. The checksum is the SHA-256 of the document's canonical JSON (keys
sorted, no spaces, UTF-8) without the ``checksum`` member, so a document that was parsed
and written again by another tool (other spacing, key order, number spelling of the same
doubles) still verifies, while any changed value does not.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import orjson

from service.errors import InvalidInput

FORMAT = "mixedfit.model"
FORMAT_VERSION = 1
KINDS = ("lm", "lmm", "lm_by_group")


def canonical_sha256(document: dict[str, Any]) -> str:
    body = {key: value for key, value in document.items() if key != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def make_document(model: dict[str, Any], result: dict[str, Any],
                  prediction_state: dict[str, Any],
                  conditional_modes: list[dict[str, Any]] | None, mixedfit_version: str,
                  exported_at: datetime) -> dict[str, Any]:
    """The export of one succeeded model, its checksum last."""
    document: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "mixedfit_version": mixedfit_version, "exported_at": exported_at.isoformat(),
        "model": model, "result": result, "prediction_state": prediction_state,
        "conditional_modes": conditional_modes,
    }
    document["checksum"] = {"algorithm": "sha256", "value": canonical_sha256(document)}
    return document


def read_document(body: bytes) -> dict[str, Any]:
    """Parse and verify an exported model (422 naming what is wrong). Its cost grows with
    the document: run it in a compute child."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"The body is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f"The body is not an exported model (its \"format\" must be "
                           f"\"{FORMAT}\": GET /v1/models/{{id}}/export gives one).")
    if document.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(
            f"The document's format_version is {document.get('format_version')!r}; this "
            f"server reads version {FORMAT_VERSION}. Export it again from a server of this "
            "release.", format_version=document.get("format_version"))
    checksum = document.get("checksum")
    stated = checksum.get("value") if isinstance(checksum, dict) else None
    if not isinstance(checksum, dict) or checksum.get("algorithm") != "sha256":
        raise InvalidInput("The document has no sha256 checksum "
                           "({\"checksum\": {\"algorithm\": \"sha256\", \"value\": ...}}).")
    actual = canonical_sha256(document)
    if stated != actual:
        raise InvalidInput(
            "The document's checksum does not match its content: it was changed or "
            f"damaged after export (stated {stated!r}, computed {actual!r}).",
            stated=stated, computed=actual)
    _require(document)
    return document


def _require(document: dict[str, Any]) -> None:
    missing = [key for key in ("model", "result", "prediction_state")
               if not isinstance(document.get(key), dict)]
    model: dict[str, Any] = document["model"] if not missing else {}
    missing += [f"model.{key}" for key in ("formula", "method", "kind", "dataset_id")
                if not missing and not isinstance(model.get(key), str)]
    if missing:
        raise InvalidInput(f"The document lacks {', '.join(missing)}.", missing=missing)
    if model["kind"] not in KINDS:
        raise InvalidInput(f"The model's kind {model['kind']!r} is none of "
                           f"{', '.join(KINDS)}.")
