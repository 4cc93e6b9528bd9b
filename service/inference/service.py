"""Use cases of intervals, anova tables and ranova: checks against the stored model, then
the statistics core's functions of its stored result (service.stats.inference).

Wald intervals and lm anova tables read the result document only (no data, no refit), so
they are computed in the request: an interval is stored finished at once. Profile and
bootstrap intervals refit the model (a likelihood profile, or ``nsim`` refits to simulated
responses): they are queued as jobs of kind "interval" (service.inference.jobs) on the
same row, which a worker runs in its warm process and which report their progress there.

A mixed model's anova table needs its data (the design, the derivatives at the optimum)
and ranova refits reduced models: ``prepare_*`` read the model and its dataset on a
request thread, and the endpoints run ``mixed_anova``/``ranova_table`` in a compute child
(service.compute), under its time and memory limits.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict

from sqlalchemy.orm import Session

from service.db.inference import IntervalRow
from service.db.models import ModelRow, utcnow
from service.errors import Conflict, InvalidInput, NotFound
from service.inference import repository
from service.inference.schemas import (
    DEFAULT_NSIM,
    AnovaTableOut,
    Ddf,
    IntervalCreate,
    RanovaOut,
    RanovaRowOut,
)
from service.inference.work import KIND as INTERVAL_JOB
from service.inspection.service import Inspected, StoredModel, stored_model
from service.inspection.stored import stored_fit
from service.jobs import repository as jobs
from service.models import service as models
from service.stats.design.encoder import DesignEncoder
from service.stats.inference import AnovaTable, lm_anova, wald_intervals
from service.stats.lmm_anova import lmm_anova
from service.stats.ranova import ranova


def _fitted(session: Session, model_id: str, what: str) -> ModelRow:
    row = models.get_model(session, model_id)
    if row.status == "failed":
        raise Conflict(f"Model {row.id} has no {what}: its fit failed (see its 'error').",
                       model_status=row.status)
    if row.status != "succeeded" or row.result is None:
        raise Conflict(f"Model {row.id} is {row.status}; {what} need a finished fit. Wait "
                       f"with GET /v1/models/{row.id}?wait=30.", model_status=row.status)
    return row


def create_interval(session: Session, model_id: str, spec: IntervalCreate,
                    max_attempts: int) -> IntervalRow:
    """Store the intervals of a succeeded model: Wald finished at once, profile and boot
    queued as a job (boot with its nsim and seed, a random one if none was given)."""
    row = _fitted(session, model_id, "intervals")
    if spec.method == "Wald":
        table = wald_intervals(stored_fit(row), spec.level)
        now = utcnow()
        return repository.add_interval(session, IntervalRow(
            id=str(uuid.uuid4()), model_id=row.id, method=spec.method, level=spec.level,
            nsim=spec.nsim, seed=spec.seed, status="succeeded", created_at=now,
            finished_at=now, result=asdict(table), tenant=row.tenant))
    if row.kind != "lmm":
        detail = ("Profile and bootstrap intervals are for mixed models; a least squares "
                  "model's intervals are exact t intervals: use method 'Wald' (R's "
                  "confint.lm)." if row.kind == "lm" else
                  "Per-group fits (lmList) have no profile or bootstrap intervals: each "
                  "group's coefficient table has its own 95% intervals.")
        raise InvalidInput(detail, model_kind=row.kind, errors=[{
            "location": "body", "field": "method", "type": "not_supported",
            "detail": detail}])
    boot = spec.method == "boot"
    nsim, seed = spec.nsim, spec.seed  # a profile has neither; kept as given, as for Wald
    if boot:
        nsim = spec.nsim or DEFAULT_NSIM
        # a seed of the server's choosing, stored: the run can be repeated with it
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    interval = repository.add_interval(session, IntervalRow(
        id=str(uuid.uuid4()), model_id=row.id, method=spec.method, level=spec.level,
        nsim=nsim, seed=seed, status="queued", created_at=utcnow(),
        progress={"done": 0, "total": nsim} if boot else None, tenant=row.tenant))
    jobs.enqueue(session, INTERVAL_JOB, interval.id, max_attempts)
    return interval


def get_interval(session: Session, model_id: str, interval_id: str) -> IntervalRow:
    models.get_model(session, model_id)  # 404 for an unknown model first
    row = repository.get_interval(session, model_id, interval_id)
    if row is None:
        raise NotFound(f"Model {model_id} has no interval with id {interval_id!r}.")
    return row


def _per_group_refusal(row: ModelRow, what: str) -> InvalidInput:
    return InvalidInput(
        f"Model {row.id} is a per-group fit (y ~ x | g: one least squares fit per level, "
        f"lme4's lmList), which has no {what}: each group's coefficient table has its own "
        "t tests. Fit the groups as a mixed model (y ~ x + (x | g)) for one.",
        model_kind=row.kind)


def prepare_anova(session: Session, model_id: str, type: int | None,
                  ddf: Ddf) -> AnovaTableOut | StoredModel:
    """A least squares model's table (from its stored result: R's anova.lm and car::Anova,
    type 1 by default); for a mixed model, what ``mixed_anova`` computes it from (the
    model and its data), after the checks that need no data."""
    row = _fitted(session, model_id, "anova table")
    if row.kind == "lm_by_group":
        raise _per_group_refusal(row, "anova table")
    if row.kind == "lmm":
        if ddf == "Kenward-Roger" and row.method != "REML":
            raise InvalidInput(
                f"Model {row.id} was fitted by ML; Kenward-Roger's method is only available "
                "for REML fits, as in lmerTest. Use ddf=Satterthwaite, or fit the model "
                "with method REML.", errors=[{
                    "location": "query", "field": "ddf", "type": "not_supported",
                    "detail": "Kenward-Roger needs a REML fit"}])
        return stored_model(session, row)
    if row.prediction_state is None:
        raise InvalidInput(f"Model {row.id} has no stored design to build its anova table "
                           "from; fit it again.", model_kind=row.kind)
    encoder = DesignEncoder.from_json(row.prediction_state["encoder"])
    return _table(row.id, lm_anova(stored_fit(row), encoder, type or 1))


def _table(model_id: str, table: AnovaTable) -> AnovaTableOut:
    return AnovaTableOut.model_validate({"model_id": model_id, "type": table.type,
                                         "ddf": table.ddf,
                                         "rows": [asdict(r) for r in table.rows]})


def prepare_ranova(session: Session, model_id: str) -> StoredModel:
    """What ``ranova_table`` computes from: a succeeded mixed model and its data."""
    row = _fitted(session, model_id, "ranova table")
    if row.kind == "lm_by_group":
        raise _per_group_refusal(row, "random effects to test")
    if row.kind != "lmm":
        raise InvalidInput(
            f"Model {row.id} is a least squares model: it has no random effects for ranova "
            f"to test. GET /v1/models/{row.id}/anova tests its fixed terms.",
            model_kind=row.kind)
    return stored_model(session, row)


# What follows runs in a compute child (service.compute): pure functions of a StoredModel.

def mixed_anova(model: StoredModel, type: int | None, ddf: Ddf) -> AnovaTableOut:
    """lmerTest's anova table of a mixed model (type 3 by default, as lmerTest)."""
    inspected = Inspected.of(model)
    return _table(model.id, lmm_anova(inspected.formula, inspected.data, inspected.result,
                                      type or 3, ddf))


def ranova_table(model: StoredModel) -> RanovaOut:
    """lmerTest's ranova: each random-effects term reduced, the model refitted, LRTs."""
    inspected = Inspected.of(model)
    table = ranova(inspected.formula, inspected.data, inspected.result)
    return RanovaOut(model_id=model.id, method=model.method,  # type: ignore[arg-type]
                     rows=[RanovaRowOut(term=r.term, npar=r.npar, logLik=r.loglik, AIC=r.aic,
                                        LRT=r.lrt, Df=r.df, p_value=r.p_value)
                           for r in table.rows])
