"""Use cases of intervals and anova tables: checks against the stored model, then the
statistics core's functions of its stored result (service.stats.inference).

Wald intervals and lm anova tables read the result document only (no data, no refit), so
they are computed in the request: an interval is stored finished at once. Profile and
bootstrap intervals, which refit the model, are to be queued as jobs on the same table;
until they exist they are refused with a 422 that names the field.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from sqlalchemy.orm import Session

from service.db.inference import IntervalRow
from service.db.models import ModelRow, utcnow
from service.errors import Conflict, InvalidInput, NotFound
from service.inference import repository
from service.inference.schemas import AnovaTableOut, Ddf, IntervalCreate
from service.inspection.stored import stored_fit
from service.models import service as models
from service.stats.design.encoder import DesignEncoder
from service.stats.inference import lm_anova, wald_intervals

NOT_YET = {
    "profile": "Profile intervals (lme4's likelihood profile) are not yet supported; use "
               "method 'Wald' for the fixed effects.",
    "boot": "Parametric bootstrap intervals (bootMer) are not yet supported; use method "
            "'Wald' for the fixed effects.",
}


def _fitted(session: Session, model_id: str, what: str) -> ModelRow:
    row = models.get_model(session, model_id)
    if row.status == "failed":
        raise Conflict(f"Model {row.id} has no {what}: its fit failed (see its 'error').",
                       model_status=row.status)
    if row.status != "succeeded" or row.result is None:
        raise Conflict(f"Model {row.id} is {row.status}; {what} need a finished fit. Wait "
                       f"with GET /v1/models/{row.id}?wait=30.", model_status=row.status)
    return row


def create_interval(session: Session, model_id: str, spec: IntervalCreate) -> IntervalRow:
    """Compute and store the intervals of a succeeded model (Wald: finished at once)."""
    if spec.method in NOT_YET:
        raise InvalidInput(NOT_YET[spec.method], errors=[{
            "location": "body", "field": "method", "type": "not_supported",
            "detail": NOT_YET[spec.method]}])
    row = _fitted(session, model_id, "intervals")
    table = wald_intervals(stored_fit(row), spec.level)
    now = utcnow()
    interval = IntervalRow(
        id=str(uuid.uuid4()), model_id=row.id, method=spec.method, level=spec.level,
        nsim=spec.nsim, seed=spec.seed, status="succeeded", created_at=now, finished_at=now,
        result=asdict(table), tenant=row.tenant)
    return repository.add_interval(session, interval)


def get_interval(session: Session, model_id: str, interval_id: str) -> IntervalRow:
    models.get_model(session, model_id)  # 404 for an unknown model first
    row = repository.get_interval(session, model_id, interval_id)
    if row is None:
        raise NotFound(f"Model {model_id} has no interval with id {interval_id!r}.")
    return row


def anova(session: Session, model_id: str, type: int | None, ddf: Ddf) -> AnovaTableOut:
    """The anova table of a succeeded least squares model (type 1 by default, as R's
    anova); a mixed model's tables (lmerTest) are not yet available."""
    row = _fitted(session, model_id, "anova table")
    if row.kind == "lmm":
        raise InvalidInput(
            "Satterthwaite/Kenward-Roger anova tables of mixed models are not yet "
            "available; the coefficient table has Satterthwaite t tests, and "
            "POST /v1/comparisons compares nested models by likelihood ratio.",
            model_kind=row.kind)
    if row.kind != "lm" or row.prediction_state is None:
        raise InvalidInput("anova tables are for least squares models (lm); per-group fits "
                           "have none.", model_kind=row.kind)
    encoder = DesignEncoder.from_json(row.prediction_state["encoder"])
    table = lm_anova(stored_fit(row), encoder, type or 1)
    return AnovaTableOut.model_validate({"model_id": row.id, "type": table.type, "ddf": None,
                                         "rows": [asdict(r) for r in table.rows]})
