"""Numeric evaluation of allow-listed expressions, with R's stateful ``scale`` and ``poly``.

``scale`` and ``poly`` depend on the data they were first applied to. When fitting, the
evaluator learns their parameters (centre and scale; ``poly``'s ``alpha`` and ``norm2``,
as R's ``poly`` stores them in its ``coefs`` attribute) and records them under the call's
deparsed text; on new data it applies the recorded parameters, as R's ``predict.poly``
and ``makepredictcall`` do.

Learning happens as in R's ``model.frame``: on every row of the data, before rows with
missing values are dropped. So missing values (NaN) are expected then: ``scale`` uses the
rows where its argument is present (R's ``na.rm = TRUE``), ``poly`` refuses them as R
does, and nothing else is checked (the rows that are kept are checked when the design is
evaluated on them with the learned parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from service.stats.design.expr import ELEMENTWISE_FUNCTIONS, deparse, expr_columns
from service.stats.design.types import FloatArray
from service.stats.errors import StatsError
from service.stats.formula.tree import BinOp, Call, Column, Expr, Negate, Number

# R's functions of the same names; numpy's rint rounds half to even, as R's round(x)
# (digits = 0: IEC 60559 nearbyint), and numpy's sign gives 0 at 0, as R's sign.
_ELEMENTWISE: dict[str, Callable[[FloatArray], FloatArray]] = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "exp": np.exp, "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "floor": np.floor, "ceiling": np.ceil, "round": np.rint, "trunc": np.trunc,
    "sign": np.sign,
}
_DOMAIN_HINT = {
    "log": "it needs positive values", "log2": "it needs positive values",
    "log10": "it needs positive values", "log1p": "it needs values greater than -1",
    "sqrt": "it needs non-negative values", "exp": "the values are too large",
    "expm1": "the values are too large", "sinh": "the values are too large",
    "cosh": "the values are too large", "asin": "it needs values from -1 to 1",
    "acos": "it needs values from -1 to 1",
}
assert set(_ELEMENTWISE) == ELEMENTWISE_FUNCTIONS


class Evaluator:
    """Evaluates numeric expressions over prepared float columns.

    Parameters
    ----------
    columns
        Float64 values of every numeric column the expressions read.
    params
        Parameters of ``scale``/``poly`` calls keyed by the call's deparsed text; filled in
        when ``learn`` is true, read otherwise.
    learn
        Whether these are all rows of the fitting data, missing values included (learn the
        parameters, as R's ``model.frame``), or rows to encode (apply them, and check
        that every value is finite).
    error
        The exception class to raise (``DesignError`` when fitting, ``PredictionError``
        when predicting).
    """

    def __init__(self, columns: Mapping[str, FloatArray], params: dict[str, dict[str, Any]],
                 *, learn: bool, error: type[StatsError]) -> None:
        self.columns = columns
        self.params = params
        self.learn = learn
        self.error = error

    def variable(self, expr: Expr) -> tuple[FloatArray, tuple[str, ...]]:
        """A term factor's columns (n × k) and their name suffixes (``poly``: ``1``..``k``)."""
        if isinstance(expr, Call) and expr.function == "poly":
            matrix = self._poly(expr)
            return matrix, tuple(str(i + 1) for i in range(matrix.shape[1]))
        values = self.vector(expr)
        if not self.learn:
            self._check_finite(values, expr)
        return values[:, None], ("",)

    def vector(self, expr: Expr) -> FloatArray:
        """The values of a scalar-valued expression, one per row."""
        if isinstance(expr, Column):
            if expr.name not in self.columns:
                raise self.error(f"column '{expr.name}' is categorical; a number is needed here")
            return self.columns[expr.name]
        if isinstance(expr, Number):
            return np.full(self._n_rows(), expr.value)
        if isinstance(expr, Negate):
            return -self.vector(expr.operand)
        if isinstance(expr, BinOp):
            return self._binop(expr)
        return self._call(expr)

    def _n_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def _binop(self, expr: BinOp) -> FloatArray:
        left, right = self.vector(expr.left), self.vector(expr.right)
        with np.errstate(all="ignore"):
            if expr.op == "+":
                return left + right
            if expr.op == "-":
                return left - right
            if expr.op == "*":
                return left * right
            if expr.op == "/":
                return left / right
            return np.power(left, right)

    def _call(self, expr: Call) -> FloatArray:
        name = expr.function
        if name == "I":
            self._arity(expr, 1)
            return self.vector(expr.args[0])
        if name in _ELEMENTWISE:
            self._arity(expr, 1)
            argument = self.vector(expr.args[0])
            with np.errstate(all="ignore"):
                result = _ELEMENTWISE[name](argument)
            bad = ~np.isfinite(result) & np.isfinite(argument)
            if bad.any() and not self.learn:
                raise self.error(
                    f"{deparse(expr)} gives NaN or infinite values in {int(bad.sum())} row(s) "
                    f"(column {self._column_text(expr)}): {_DOMAIN_HINT.get(name, '')}".rstrip())
            return result
        if name == "scale":
            self._arity(expr, 1)
            return self._scale(expr)
        if name == "poly":
            raise self.error(f"{deparse(expr)} must be a term of its own, not inside an expression")
        raise self.error(f"{deparse(expr)}: {name}() cannot be used where a number is needed")

    def _arity(self, expr: Call, count: int) -> None:
        if len(expr.args) != count:
            raise self.error(f"{deparse(expr)}: {expr.function}() takes {count} argument(s)")

    def _column_text(self, expr: Expr) -> str:
        names = list(dict.fromkeys(expr_columns(expr)))
        return ", ".join(f"'{n}'" for n in names) or "none"

    def _check_finite(self, values: FloatArray, expr: Expr) -> None:
        bad = ~np.isfinite(values)
        if bad.any():
            raise self.error(f"{deparse(expr)} gives NaN or infinite values in {int(bad.sum())} "
                             f"row(s) (column {self._column_text(expr)})")

    def _scale(self, expr: Call) -> FloatArray:
        key = deparse(expr)
        values = self.vector(expr.args[0])
        if self.learn:
            present = values[~np.isnan(values)]  # R's scale: colMeans(x, na.rm = TRUE)
            if len(present) < 2:
                raise self.error(f"{key} needs at least 2 rows")
            center = float(np.mean(present))
            scale = float(np.std(present, ddof=1))  # R's sd: n - 1 denominator
            if not np.isfinite(scale) or scale == 0.0:
                raise self.error(f"{key}: column {self._column_text(expr)} does not vary, "
                                 "so it cannot be scaled")
            self.params[key] = {"center": center, "scale": scale}
        stored = self.params[key]
        return (values - stored["center"]) / stored["scale"]

    def _poly(self, expr: Call) -> FloatArray:
        key = deparse(expr)
        if len(expr.args) != 2 or not isinstance(expr.args[1], Number):
            raise self.error(f"{key}: write poly(x, degree) with a whole-number degree")
        degree_value = expr.args[1].value
        if degree_value != int(degree_value) or degree_value < 1:
            raise self.error(f"{key}: the degree must be a whole number of at least 1")
        x = self.vector(expr.args[0])
        if self.learn:
            missing = int(np.isnan(x).sum())
            if missing:
                raise self.error(
                    f"missing values are not allowed in 'poly': {key} has {missing} missing "
                    f"value(s) (column {self._column_text(expr.args[0])}); as in R, poly() is "
                    "computed on every row before rows with missing values are dropped, so "
                    "remove those rows from the data first")
            self.params[key] = poly_coefficients(x, int(degree_value), key, self.error)
        else:
            self._check_finite(x, expr.args[0])
        stored = self.params[key]
        return poly_apply(x, stored["alpha"], stored["norm2"])


def poly_coefficients(x: FloatArray, degree: int, key: str,
                      error: type[StatsError]) -> dict[str, Any]:
    """R's ``poly(x, degree)`` coefficients: ``alpha`` (degree values) and ``norm2`` (degree + 2).

    The Stieltjes three-term recurrence on centred ``x`` gives the same monic orthogonal
    polynomials as R's QR construction, and ``alpha``/``norm2`` are exactly R's ``coefs``.
    """
    if degree >= len(np.unique(x)):
        raise error(f"{key}: the degree must be less than the number of unique values "
                    f"({len(np.unique(x))})")
    xbar = float(np.mean(x))
    centred = x - xbar
    previous = np.ones_like(x)
    current = centred.copy()
    alpha = [xbar]
    norm2 = [1.0, float(len(x))]
    for i in range(1, degree + 1):
        norm = float(current @ current)
        norm2.append(norm)
        if i < degree:
            a = float(centred @ (current * current)) / norm
            alpha.append(a + xbar)
            previous, current = current, (centred - a) * current - (norm / norm2[-2]) * previous
    return {"degree": degree, "alpha": alpha, "norm2": norm2}


def poly_apply(x: FloatArray, alpha: list[float], norm2: list[float]) -> FloatArray:
    """R's ``predict.poly``: evaluate the stored orthogonal polynomials at ``x`` (n × degree)."""
    degree = len(alpha)
    z = np.ones((len(x), degree + 1))
    z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        z[:, i + 1] = (x - alpha[i]) * z[:, i] - (norm2[i + 1] / norm2[i]) * z[:, i - 1]
    return z[:, 1:] / np.sqrt(np.asarray(norm2[2:]))
