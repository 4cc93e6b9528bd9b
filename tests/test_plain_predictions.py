"""Predictions of JSON rows without a data frame (``Predictor.predict_arrays``, fed by
``service.models.plain_rows``) against the frame's way (``Predictor.predict`` on the frame
the service builds from the same rows), on models and rows of every kind either covers.

Where the arrays' way answers, its numbers must be the frame's exactly (equal floats: the
same functions do the same arithmetic on the same float64 values); where it cannot, it
must say so (None) and leave the rows to the frame's way, never answer otherwise. Each
case also states whether the arrays' way is expected to answer, so a change that quietly
sent every row the slow way fails here too.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from service.datasets.ingest import frame_from_columns, normalize
from service.errors import InvalidInput
from service.models.plain_rows import plain_columns
from service.models.predicting import (
    PredictionOptions,
    categorical_columns,
    predict_rows,
    read_body_shape,
)
from service.models.signature import check_frame
from service.stats.errors import StatsError
from service.stats.fit import fit_model
from service.stats.predict import Predictor

_RNG = np.random.default_rng(20261202)
_N = 240
_RAW = pd.DataFrame({
    "x": _RNG.normal(size=_N),
    "z": _RNG.uniform(1, 5, size=_N),
    "f": _RNG.choice(["a", "b", "c"], size=_N),
    "g": _RNG.choice([f"g{i}" for i in range(12)], size=_N),
    "h": _RNG.choice(["p", "q", "r", "s"], size=_N),
    "k": _RNG.choice([1, 2, 3, 4, 5, 6], size=_N),
    "b": _RNG.choice([True, False], size=_N),
})
_RAW["y"] = (1 + 2 * _RAW["x"] + (_RAW["f"] == "b") + np.log(_RAW["z"])
             + _RNG.normal(size=_N) + _RAW["g"].str[1:].astype(int) * 0.3)
# "k" is numeric in one dataset and a declared factor of numbers in the other
_NUMERIC = normalize(_RAW).frame
_DECLARED = normalize(_RAW, categorical=["k"]).frame

# (data, formula, whether the arrays' way covers the model: "fixed" when only its fixed
# part is covered, so predictions at the population level are)
MODELS: dict[str, tuple[pd.DataFrame, str, bool | str]] = {
    "lm": (_NUMERIC, "y ~ x", True),
    "lm_factor_interaction": (_NUMERIC, "y ~ x * f + log(z)", True),
    "lm_poly_scale": (_NUMERIC, "y ~ poly(x, 2) + scale(z) + f", True),
    "lm_declared_number_factor": (_DECLARED, "y ~ k + x", True),
    "lm_no_intercept_contrasts": (_NUMERIC, "y ~ 0 + f:h + I(x^2)", True),
    "lmm_slopes": (_NUMERIC, "y ~ x + (x | g)", True),
    "lmm_crossed": (_NUMERIC, "y ~ x + f + (1 | g) + (1 | h)", True),
    "lmm_nested": (_NUMERIC, "y ~ x + (1 | g/h)", True),
    "lmm_uncorrelated": (_NUMERIC, "y ~ z + (z || g)", True),
    "lmm_declared_group": (_DECLARED, "y ~ x + (1 | k)", True),
    "lmm_numeric_group": (_NUMERIC, "y ~ x + (1 | k)", True),
    "lmm_numeric_interaction_group": (_NUMERIC, "y ~ x + (1 | g:k)", True),
    "lm_offset": (_NUMERIC, "y ~ x + offset(z)", False),
    "lm_factor_of_number": (_NUMERIC, "y ~ factor(k) + x", False),
    "lm_boolean": (_NUMERIC, "y ~ b + x", False),
}
_PREDICTORS: dict[str, tuple[Predictor, list[str]]] = {}


def _predictor(case: str) -> tuple[Predictor, list[str]]:
    if case not in _PREDICTORS:
        data, formula, _ = MODELS[case]
        # through JSON, as a stored model's state is
        state = json.loads(json.dumps(fit_model(formula, data).prediction_state))
        _PREDICTORS[case] = Predictor(state), categorical_columns(state)
    return _PREDICTORS[case]


def _rows(n: int, **changes: Any) -> dict[str, list[Any]]:
    picked = _RAW.sample(n, random_state=n).reset_index(drop=True)
    columns: dict[str, list[Any]] = {
        name: [v.item() if isinstance(v, np.generic) else v for v in picked[name]]
        for name in picked.columns if name != "y"}
    columns.update(changes)
    return columns


def _frame_way(predictor: Predictor, categorical: list[str], columns: dict[str, list[Any]],
               **options: Any) -> np.ndarray | str:
    """The frame's way, as ``predict_rows`` takes it: the prediction, or its error."""
    groups = options.get("groups")
    include = options.get("include_random_effects", True)
    try:
        frame = frame_from_columns(columns, categorical, strict=False)
        check_frame(predictor, frame, include and groups != (), partial=groups is not None)
        return predictor.predict(frame, **options)
    except (StatsError, InvalidInput) as error:
        return f"error: {error}"


BODIES: dict[str, tuple[int, dict[str, Any], dict[str, Any], frozenset[str] | None]] = {
    # name: (rows, changed columns, options, the columns whose reading leaves the rows to
    # the frame's way: None for every model; the arrays' way answers otherwise, whenever
    # the model is covered and the frame's way has no error to say)
    "one_row": (1, {}, {}, frozenset()),
    "many_rows": (37, {}, {}, frozenset()),
    # labels coded by pandas' factorize rather than a dict (over 64 rows)
    "hundreds_of_rows": (150, {}, {}, frozenset()),
    "population": (5, {}, {"include_random_effects": False}, frozenset()),
    "unseen_group": (3, {"g": ["g1", "new", "g2"], "k": [1, 99, 2]}, {}, frozenset()),
    "unseen_group_refused": (2, {"g": ["new", "g2"], "k": [99, 2]},
                             {"new_levels": "error"}, frozenset()),
    "unknown_factor_level": (2, {"f": ["a", "zz"]}, {}, frozenset()),
    "numbers_as_text": (2, {"x": ["1.5", "2"]}, {}, frozenset({"x"})),
    "missing_value": (2, {"x": [1.0, None]}, {}, None),
    "mixed_types": (2, {"z": [1.0, "two"]}, {}, None),
    "integers": (2, {"x": [1, 2], "z": [2, 3]}, {}, frozenset()),
    # a numeric grouping column's values matched to its levels by value (3.0 is 3)
    "group_numbers_as_floats": (3, {"k": [3.0, 1.0, 2.5]}, {}, frozenset()),
}


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("case", sorted(MODELS))
def test_arrays_way_equals_frame_way(case: str, body: str) -> None:
    predictor, categorical = _predictor(case)
    n, changes, options, slow_columns = BODIES[body]
    columns = _rows(n, **changes)
    plain = plain_columns(None, columns, categorical)
    found = None if plain is None else predictor.predict_arrays(*plain, **options)
    expected = _frame_way(predictor, categorical, columns, **options)
    # as a body is read: with the types the quick check found in each column
    body = read_body_shape(orjson.dumps({"columns": columns}), "application/json",
                           PredictionOptions(), 1000)
    assert body.column_types == {name: frozenset(map(type, values))
                                 for name, values in columns.items()}
    typed = plain_columns(None, body.columns, categorical, body.column_types)
    assert (typed is None) == (plain is None)
    if typed is not None and plain is not None:
        assert typed[1] == plain[1] and typed[0].keys() == plain[0].keys()
        for name, values in typed[0].items():
            np.testing.assert_array_equal(values, plain[0][name])
    if found is not None:
        assert not isinstance(expected, str), expected
        np.testing.assert_array_equal(found, expected)  # exactly: the same arithmetic
    covered = MODELS[case][2]
    if covered == "fixed":
        covered = options.get("include_random_effects") is False
    reads = set(predictor.term_columns(options.get("include_random_effects", True)))
    answers = slow_columns is not None and not reads & slow_columns
    assert (found is not None) == (covered and answers
                                   and not isinstance(expected, str)), expected


def test_groups_named() -> None:
    """Only the named grouping factors' effects (lme4's re.form), both ways alike."""
    predictor, categorical = _predictor("lmm_crossed")
    columns = _rows(6)
    plain = plain_columns(None, columns, categorical)
    assert plain is not None
    for groups in (["g"], ["h"], [], ["g", "h"]):
        found = predictor.predict_arrays(*plain, groups=groups)
        assert found is not None
        np.testing.assert_array_equal(
            found, _frame_way(predictor, categorical, columns, groups=groups))
    assert predictor.predict_arrays(*plain, groups=["nonesuch"]) is None


def test_records_like_columns() -> None:
    """Records give the columns' arrays; a record without a key is a missing value,
    which the arrays' way leaves to the frame's."""
    records = [{"x": 1.0, "g": "g1"}, {"x": 2.5, "g": "g3"}]
    arrays = plain_columns(records, None, ["g"])
    assert arrays is not None
    columns, n = arrays
    assert n == 2
    np.testing.assert_array_equal(columns["x"], [1.0, 2.5])
    assert list(columns["g"]) == ["g1", "g3"]
    assert plain_columns([{"x": 1.0, "g": "g1"}, {"x": 2.5}], None, ["g"]) is None
    assert plain_columns([], None, []) is None
    assert plain_columns(None, {"x": [10**400]}, []) is None  # beyond a double's range


@pytest.mark.parametrize("bad", [{"z": ["abc", "def"]}, {"f": ["a", "zz"]}])
def test_left_out_terms_still_checked(bad: dict[str, list[Any]]) -> None:
    """With some grouping factors named, the signature check still refuses bad values in
    a column that only a left-out term reads (the arrays never see it): a request through
    ``predict_rows`` gets that 422, not an answer."""
    data = _NUMERIC
    state = json.loads(json.dumps(
        fit_model("y ~ x + (1 | g) + (z + f | h)", data).prediction_state))
    predictor, categorical = Predictor(state), categorical_columns(state)
    good: dict[str, list[Any]] = {"x": [1.0, 2.0], "g": ["g1", "g2"], "h": ["p", "q"],
                                  "z": [1.5, 2.5], "f": ["a", "b"]}
    for columns, refused in ((good, False), ({**good, **bad}, True)):
        body = orjson.dumps({"columns": columns, "random_effects": ["g"]})
        request = read_body_shape(body, "application/json", PredictionOptions(), 1000)
        if refused:
            with pytest.raises(InvalidInput):
                predict_rows(predictor, categorical, request, 1000)
        else:
            answer = predict_rows(predictor, categorical, request, 1000)
            frame = frame_from_columns(columns, categorical, strict=False)
            np.testing.assert_array_equal(answer.predictions,
                                          predictor.predict(frame, groups=["g"]))
