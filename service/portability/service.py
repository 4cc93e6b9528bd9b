"""Export and import use cases: a succeeded model as one verified document, and a
document stored as a new succeeded model of the importer's tenant."""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.db.models import ModelRow, utcnow
from service.errors import InvalidInput
from service.models import repository as models_repository
from service.models import service as models
from service.models.schemas import FitResult as ResultSchema
from service.models.schemas import ModelPatch
from service.portability.document import make_document, read_document
from service.registry import service as registry
from service.registry.names import NAME
from service.stats.design.contrasts import CODINGS
from service.stats.formula import parse_formula
from service.stats.predict import Predictor
from service.stats.results import (
    Convergence,
    FitResult,
    FixedEffect,
    Metrics,
    RandomEffectsTerm,
)

T = TypeVar("T")


def export_model(session: Session, model_id: str, mixedfit_version: str) -> dict[str, Any]:
    """The export document of a succeeded model (409 otherwise)."""
    row = models.get_fitted_model(session, model_id)
    assert row.result is not None and row.prediction_state is not None
    model = {
        "id": row.id, "name": row.name, "version": row.version, "tags": row.tags or {},
        "dataset_id": row.dataset_id, "formula": row.formula, "method": row.method,
        "kind": row.kind, "pool": row.pool, "contrasts": row.contrasts, "weights": row.weights,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }
    return make_document(model, row.result, row.prediction_state, row.conditional_modes,
                         mixedfit_version, utcnow())


def verified_document(body: bytes) -> dict[str, Any]:
    """Parse and verify an exported model, and compile its prediction state (the work
    that grows with the model: for a compute child)."""
    document = read_document(body)
    Predictor(document["prediction_state"])  # a state that cannot predict is refused here
    try:
        ResultSchema.model_validate(document["result"])
    except ValidationError as error:
        raise InvalidInput(f"The document's result is not a fit result: {error}") from None
    return document


def import_model(session: Session, document: dict[str, Any]) -> ModelRow:
    """Store a verified document as a new succeeded model; a registered name becomes the
    next version of that name in the importer's tenant."""
    model = document["model"]
    formula = parse_formula(model["formula"])
    if formula.kind != model["kind"]:
        raise InvalidInput(f"The formula {model['formula']!r} makes a {formula.kind} model, "
                           f"not the document's {model['kind']}.")
    tags = ModelPatch.model_validate({"tags": model.get("tags") or {}}).tags
    now = utcnow()
    row = ModelRow(
        id=str(uuid.uuid4()), dataset_id=model["dataset_id"], formula=model["formula"],
        method=model["method"], kind=model["kind"], pool=model.get("pool"),
        contrasts=_contrasts(model.get("contrasts")), weights=_weights(model.get("weights")),
        status="succeeded", created_at=now, finished_at=now, result=document["result"],
        prediction_state=document["prediction_state"],
        conditional_modes=document.get("conditional_modes"),
        tags={key: value for key, value in tags.items() if value is not None} or None)
    name = model.get("name")
    if isinstance(name, str) and model.get("version") is not None and NAME.fullmatch(name):
        row.name = name
        row.registered_model_id, row.version = registry.register_version(session, name)
    elif isinstance(name, str):
        row.name = name[:200]  # a free-text label stays one
    models_repository.add_model(session, row)
    models_repository.add_result_rows(session, row.id, _fit_result(row, document["result"]))
    return row


def _contrasts(value: Any) -> dict[str, str] | None:
    """The document's contrasts (absent in documents exported before they existed)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and v in CODINGS for k, v in value.items()):
        raise InvalidInput(f"The document's contrasts are not column: coding pairs ("
                           f"codings: {', '.join(CODINGS)}): {value!r}")
    return dict(value) or None


def _weights(value: Any) -> str | None:
    """The document's weights column (absent in documents exported before weights)."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"The document's weights must name a column: {value!r}")
    return value


def _fit_result(row: ModelRow, result: dict[str, Any]) -> FitResult:
    """The stored result as the statistics core's object, for its queryable rows."""
    try:
        return FitResult(
            kind=row.kind, method=row.method,  # type: ignore[arg-type]
            fixed_effects=tuple(_make(FixedEffect, fe) for fe in result["fixed_effects"]),
            metrics=_make(Metrics, result["metrics"]),
            convergence=_make(Convergence, result["convergence"]),
            residual_std_dev=result.get("residual_std_dev"),  # type: ignore[arg-type]
            random_effects=tuple(_make(RandomEffectsTerm, term)
                                 for term in result.get("random_effects") or []))
    except (KeyError, TypeError) as error:
        raise InvalidInput(f"The document's result is incomplete: {error}") from None


def _make(cls: type[T], values: dict[str, Any]) -> T:
    names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in values.items() if key in names})
