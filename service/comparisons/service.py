"""Comparison use cases: check what is knowable at once, queue the ML refits that lme4's
``anova`` would make, and build the table from the stored fits when they are all done:
R's ``anova``, an F test for least squares fits only, a likelihood-ratio test otherwise.

The table is computed from stored results (no fit runs in a request) by the first read
that finds every member fit finished, and stored with the comparison from then on.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from service.comparisons import repository
from service.comparisons.schemas import ComparisonCreate
from service.datasets import repository as datasets
from service.db.models import ComparisonRow, ModelRow, utcnow
from service.errors import PROBLEM_TYPE_PREFIX, InvalidInput, NotFound
from service.inspection.stored import DatasetGone, stored_fit
from service.models import repository as model_rows
from service.models import service as models
from service.models.repository import to_json
from service.models.schemas import ModelCreate
from service.polling import poll_until
from service.stats.compare import ComparisonError, anova, comparison_entry
from service.stats.design.expr import deparse
from service.stats.formula import parse_formula
from service.stats.formula.tree import Formula

FINISHED = ("succeeded", "failed")


def create_comparison(session: Session, spec: ComparisonCreate,
                      max_attempts: int) -> ComparisonRow:
    """Check the models can be compared, queue ML refits of REML mixed models, store.
    A model may be named by id, ``name@version`` or ``name@alias`` (stored by its id)."""
    model_ids = [models.resolve_model_ref(session, ref).model_id for ref in spec.model_ids]
    repeated = sorted({i for i in model_ids if model_ids.count(i) > 1})
    if repeated:
        raise InvalidInput(f"Each model can appear once; repeated: {', '.join(repeated)}.")
    rows = [models.get_model(session, model_id) for model_id in model_ids]
    check_comparable(rows)
    refits: dict[str, str] = {}
    for row in rows:
        if row.kind == "lmm" and row.method == "REML":
            refits[row.id] = _queue_refit(session, row, max_attempts).id
    comparison = ComparisonRow(id=str(uuid.uuid4()), model_ids=model_ids,
                               refits=refits, status="queued", created_at=utcnow())
    return repository.add_comparison(session, comparison)


def check_comparable(rows: list[ModelRow]) -> None:
    """Refuse (422) what the formulas and statuses already show cannot be compared."""
    for row in rows:
        if row.kind == "lm_by_group":
            raise InvalidInput(
                f"Model {row.id} ({row.formula}) is a set of per-group regressions, which has "
                "no single likelihood to test; compare lm and lmm models.", model_id=row.id)
        if row.status in ("failed", "cancelled"):
            how = "failed to fit" if row.status == "failed" else "had its fit cancelled"
            raise InvalidInput(f"Model {row.id} ({row.formula}) {how}, so it has no "
                               "likelihood to compare.", model_id=row.id)
    if len({row.dataset_id for row in rows}) > 1:
        raise InvalidInput(
            "The models were fitted to different datasets ("
            + "; ".join(f"{row.id}: {row.dataset_id}" for row in rows)
            + "); likelihoods are comparable only on the same rows.")
    parsed = [(row, parse_formula(row.formula)) for row in rows]
    responses = {deparse(formula.response) for _, formula in parsed}
    if len(responses) > 1:
        raise InvalidInput(f"The models have different responses ({', '.join(sorted(responses))})"
                           "; likelihoods of different responses are not comparable.")
    _check_nested([(row, fixed_terms(formula)) for row, formula in parsed])


def fixed_terms(formula: Formula) -> frozenset[str]:
    """The fixed-effect term labels, as ``comparison_entry`` takes them."""
    intercept = ("(Intercept)",) if formula.intercept else ()
    return frozenset(intercept + tuple(term.label for term in formula.fixed))


def _check_nested(models_terms: list[tuple[ModelRow, frozenset[str]]]) -> None:
    # Nested models' term sets form a chain under inclusion, whatever order the
    # parameter counts (known only after fitting) will put them in.
    chain = sorted(models_terms, key=lambda pair: len(pair[1]))
    for (smaller, small_terms), (larger, large_terms) in zip(chain, chain[1:], strict=False):
        extra = sorted(small_terms - large_terms)
        if extra:
            raise InvalidInput(
                f"The models are not nested: {smaller.id} ({smaller.formula}) has the "
                f"fixed-effect terms {', '.join(extra)} that {larger.id} ({larger.formula}) "
                "lacks, so a likelihood-ratio test between them is not valid. Compare them by "
                "their AIC and BIC (GET /v1/models/{id}) instead.", models=[smaller.id,
                                                                             larger.id])


def _queue_refit(session: Session, row: ModelRow, max_attempts: int) -> ModelRow:
    # The same formula fitted by ML to the same dataset (an earlier refit, or the user's own
    # ML fit) is the refit: fitting it again would give the same numbers.
    same = model_rows.find_same_fit(session, row.dataset_id, row.formula, "ML", row.weights)
    if same is not None:
        return same
    if datasets.get_dataset(session, row.dataset_id) is None:
        raise DatasetGone(
            f"Model {row.id} was fitted by REML and must be refitted by ML to be compared "
            f"(as lme4's anova does), but its dataset {row.dataset_id} was deleted. Upload "
            "the data again and fit the model with method ML.", dataset_id=row.dataset_id)
    name = f"ML refit of {row.name or row.id} for a comparison"[:200]
    # a label, not a registered name: the refit is no version of the compared model's name
    spec = ModelCreate.model_validate({
        "dataset_id": row.dataset_id, "formula": row.formula, "method": "ML",
        "contrasts": row.contrasts, "weights": row.weights})
    return models.create_model(session, spec, max_attempts, label=name)


def get_comparison(session: Session, comparison_id: str) -> ComparisonRow:
    row = repository.get_comparison(session, comparison_id)
    if row is None:
        raise NotFound(f"There is no comparison with id {comparison_id!r}.")
    return row


def list_comparisons(session: Session, limit: int, offset: int
                     ) -> tuple[list[ComparisonRow], int]:
    return repository.list_comparisons(session, limit, offset)


def delete_comparison(session: Session, comparison_id: str) -> None:
    """Delete a comparison; its ML refits stay (they are models like any other)."""
    repository.delete_comparison(session, get_comparison(session, comparison_id))


def settle(session: Session, comparison_id: str) -> tuple[ComparisonRow, str, bool]:
    """The comparison and its status; finishes it (table or problem) when its fits are done.

    Returns the row, its status and whether the row was written (then the caller's unit of
    work commits it); a row still waiting is detached and the transaction ended, so the
    next poll sees the worker's newest commits.
    """
    row = get_comparison(session, comparison_id)
    if row.status in FINISHED:
        return row, row.status, False
    members = repository.get_models(session, [*row.model_ids, *row.refits.values()])
    # a cancelled member fit ends the comparison as a failed one would
    statuses = [members[i].status.replace("cancelled", "failed") if i in members
                else "failed" for i in [*row.model_ids, *row.refits.values()]]
    if all(status in FINISHED for status in statuses):
        _finish(row, members)
        return row, row.status, True
    status = "queued" if all(s == "queued" for s in statuses) else "running"
    session.expunge_all()
    session.rollback()
    return row, status, False


def _finish(row: ComparisonRow, members: dict[str, ModelRow]) -> None:
    failure = _failed_member(row, members)
    if failure is None:
        try:
            row.result = to_json(table(row, members))
            row.status = "succeeded"
        except ComparisonError as error:
            failure = _problem(str(error))
    if failure is not None:
        row.error = failure
        row.status = "failed"
    row.finished_at = utcnow()


def _failed_member(row: ComparisonRow, members: dict[str, ModelRow]) -> dict[str, Any] | None:
    for model_id in row.model_ids:
        for member_id in (model_id, row.refits.get(model_id)):
            if member_id is None:
                continue
            member = members.get(member_id)
            what = (f"Model {model_id}" if member_id == model_id
                    else f"The ML refit {member_id} of model {model_id}")
            if member is None:
                return _problem(f"{what} no longer exists.", model_id=member_id)
            if member.status in ("failed", "cancelled"):
                reason = (member.error or {}).get("detail") or "no reason was recorded"
                return _problem(f"{what} ({member.formula}) failed to fit: {reason}",
                                model_id=member_id)
    return None


def table(row: ComparisonRow, members: dict[str, ModelRow]) -> dict[str, Any]:
    """R's ``anova`` table from the stored fits: the F test of ``anova.lm`` when every model
    is a least squares fit, else lme4's likelihood-ratio test (refits' likelihoods, the
    models' RMSE)."""
    entries = []
    for model_id in row.model_ids:
        model = members[model_id]
        refit_id = row.refits.get(model_id)
        own = stored_fit(model)
        entry = comparison_entry(model_id, model.dataset_id, parse_formula(model.formula),
                                 stored_fit(members[refit_id]) if refit_id else own)
        # the likelihood is the ML refit's; the RMSE describes the model as fitted
        entries.append(replace(entry, rmse=own.metrics.rmse))
    if all(entry.kind == "lm" for entry in entries):
        # anova.lm keeps the order the models were given in
        result = anova(entries)
    else:
        # anova orders by npar, ties in the order given; giving the smaller fixed part
        # first makes ties (an lm with a factor, a mixed model with that factor's random
        # effects) follow the nesting that create_comparison checked.
        result = anova(sorted(entries, key=lambda entry: len(entry.fixed_terms)))
    document = result.to_dict()
    document["rows"] = [{**line, "refit_model_id": row.refits.get(line["model_id"]),
                         "formula": members[line["model_id"]].formula}
                        for line in document["rows"]]
    return document


def _problem(detail: str, **extensions: Any) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE_PREFIX + "comparison-failed",
            "title": "The models could not be compared", "status": 422, "detail": detail,
            **extensions}


async def wait_for_comparison(session: Session, comparison_id: str,
                              wait_seconds: float) -> tuple[ComparisonRow, str]:
    """The comparison, re-read until it has finished or ``wait_seconds`` have passed."""
    row, status, _ = await poll_until(lambda: settle(session, comparison_id),
                                      lambda settled: settled[1] in FINISHED, wait_seconds)
    return row, status
