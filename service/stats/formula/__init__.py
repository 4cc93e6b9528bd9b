"""R/lme4 model formulas, parsed safely (nothing in a formula is ever evaluated).

``parse_formula`` turns text such as ``"Reaction ~ Days + (Days | Subject)"`` into the
frozen tree of ``tree.py``; ``formula_columns`` lists the data columns it uses.
"""

from service.stats.errors import FormulaError
from service.stats.formula.calls import ALLOWED_FUNCTIONS
from service.stats.formula.columns import formula_columns
from service.stats.formula.expand import parse_formula
from service.stats.formula.tree import (
    BinOp,
    Call,
    Column,
    Expr,
    Formula,
    Negate,
    Number,
    RandomTerm,
    Term,
)

__all__ = [
    "ALLOWED_FUNCTIONS",
    "BinOp",
    "Call",
    "Column",
    "Expr",
    "Formula",
    "FormulaError",
    "Negate",
    "Number",
    "RandomTerm",
    "Term",
    "formula_columns",
    "parse_formula",
]
