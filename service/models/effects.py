"""Per-level views of a stored fit: conditional modes (R's ``ranef(m, condVar = TRUE)``) and
per-level coefficients (R's ``coef(m)``), read from what the fit stored, never refitted."""

from __future__ import annotations

from typing import Any

from service.db.models import ModelRow
from service.models.schemas import (
    GroupCoefficients,
    LevelCoefficients,
    LevelEffects,
    RandomEffectsBlock,
)
from service.stats.formula import parse_formula


def random_effects(row: ModelRow) -> list[RandomEffectsBlock]:
    """Conditional modes, their conditional standard deviations and covariance matrices
    per random term and level."""
    blocks = []
    for stored in row.conditional_modes or []:
        n_levels = len(stored["levels"])
        cond_sd = stored.get("cond_sd") or [[None] * len(stored["terms"])] * n_levels
        # fits stored before the full matrices were have none
        cond_cov = stored.get("cond_cov") or [None] * n_levels
        blocks.append(RandomEffectsBlock(
            group=stored["group"], terms=list(stored["terms"]),
            levels=[LevelEffects(level=str(level), modes=list(modes), cond_sd=list(sds),
                                 cond_cov=cov)
                    for level, modes, sds, cov in zip(stored["levels"], stored["modes"],
                                                      cond_sd, cond_cov, strict=True)]))
    return blocks


def coefficients(row: ModelRow) -> list[GroupCoefficients]:
    """Fixed effects plus each level's modes, per grouping factor, as R's ``coef()``.

    Terms of one grouping factor are merged (``(x || g)`` gives one table for ``g``); a
    random term without a fixed counterpart gets a fixed value of 0, as in lme4. For a
    per-group fit (``y ~ x | g``) each level's own estimates are its coefficients.
    """
    result: dict[str, Any] = row.result or {}
    if row.kind == "lm_by_group":
        return _by_group(row, result)
    fixed = {fe["term"]: fe["estimate"] for fe in result.get("fixed_effects", [])
             if fe.get("estimate") is not None}
    merged: dict[str, dict[str, dict[str, float]]] = {}
    term_order: dict[str, list[str]] = {}
    for stored in row.conditional_modes or []:
        group = stored["group"]
        levels = merged.setdefault(group, {})
        names = term_order.setdefault(group, [])
        names.extend(t for t in stored["terms"] if t not in names)
        for level, modes in zip(stored["levels"], stored["modes"], strict=True):
            values = levels.setdefault(str(level), {})
            for term, mode in zip(stored["terms"], modes, strict=True):
                values[term] = values.get(term, 0.0) + (mode or 0.0)
    out = []
    for group, levels in merged.items():
        missing = [t for t in term_order[group] if t not in fixed]
        terms = missing + list(fixed)
        out.append(GroupCoefficients(group=group, terms=terms, levels=[
            LevelCoefficients(level=level, values=[
                fixed.get(term, 0.0) + modes.get(term, 0.0) for term in terms])
            for level, modes in levels.items()]))
    return out


def _by_group(row: ModelRow, result: dict[str, Any]) -> list[GroupCoefficients]:
    by_group = parse_formula(row.formula).by_group or ()
    fits = result.get("groups", [])
    terms: list[str] = []
    for fit in fits:
        terms.extend(fe["term"] for fe in fit.get("fixed_effects", [])
                     if fe["term"] not in terms)
    levels = []
    for fit in fits:
        estimates = {fe["term"]: fe.get("estimate") for fe in fit.get("fixed_effects", [])}
        levels.append(LevelCoefficients(level=str(fit["level"]),
                                        values=[estimates.get(t) for t in terms]))
    return [GroupCoefficients(group=":".join(by_group), terms=terms, levels=levels)]
