"""Errors raised by the statistics core. They carry no HTTP status: the web layer maps
every ``StatsError`` to a 422 problem document whose detail is ``str(error)``."""

from __future__ import annotations


class StatsError(ValueError):
    """Base class: the input (formula, data, request) cannot be used as given."""


class FormulaError(StatsError):
    """A formula that cannot be parsed or is not allowed.

    ``position`` is the 0-based character offset of the offending token, ``token`` its text.
    ``str(error)`` includes the formula with a caret under the position.
    """

    def __init__(self, message: str, formula: str = "", position: int | None = None,
                 token: str | None = None) -> None:
        self.message = message
        self.formula = formula
        self.position = position
        self.token = token
        text = message
        if formula and position is not None:
            text = f"{message}\n  {formula}\n  {' ' * position}^"
        super().__init__(text)


class DesignError(StatsError):
    """The formula and the data do not fit together (unknown columns, wrong types, ...)."""


class ArgumentError(DesignError):
    """A model argument beside the formula that the data refuse (``contrasts``,
    ``weights``): ``problems`` maps each offending field (``contrasts.recipe``) to why."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{field}: {why}" for field, why in problems.items()))


class PredictionError(StatsError):
    """New data that cannot be predicted (missing columns, unseen levels, ...)."""


class FitError(StatsError):
    """A fit that cannot be carried out on this data (too few rows, no variation, ...)."""
