"""The design of a model: what the fitting engines consume.

Built by ``service.stats.design.build_design`` from a ``Formula`` and a DataFrame. The
random-effects design is kept per grouping factor (codes plus an n × q covariate matrix),
never as a dense n × (levels · q) matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from service.stats.design.encoder import DesignEncoder

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effects term ``(terms | group)`` of the design.

    Row ``r`` of Z for this block has ``covariates[r]`` in the columns of level
    ``codes[r]`` (level-major: for each level, its q columns) and zeros elsewhere.
    ``codes[r] == -1`` marks a level not seen in fitting (only in prediction designs).
    """

    group: str
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    codes: IntArray
    covariates: FloatArray

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return len(self.terms)


@dataclass(frozen=True, eq=False)
class Design:
    """Response, fixed-effects matrix and random-effects blocks for the rows used.

    ``rows`` holds the positions (0-based, in the input frame) of the rows kept after
    dropping rows with missing values; ``y`` is None for prediction designs. With
    ``offset(...)`` terms, ``offset`` is their sum per row and ``y`` the response minus it
    (what the engines fit: R's ``lm.fit(x, y - offset)``); fitted values add it back.
    With prior weights, ``weights`` holds them (all positive: zero-weight rows are left
    out) and ``y``, ``X`` and the random covariates are multiplied by their square roots,
    so the engines fit the weighted model as an unweighted one (lme4's √W scaling);
    ``unweighted`` takes fitted values and residuals back to the data's scale.
    """

    y: FloatArray | None
    X: FloatArray
    fixed_names: tuple[str, ...]
    random: tuple[RandomBlock, ...]
    rows: IntArray
    response_name: str
    encoder: DesignEncoder
    n_dropped_missing: int = 0
    dropped_aliased: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    offset: FloatArray | None = None
    weights: FloatArray | None = None

    @property
    def n_obs(self) -> int:
        return int(self.X.shape[0])

    @property
    def log_det_weights(self) -> float:
        """Σ log wᵢ: the log-likelihood of a weighted fit has half of it added (lme4's
        ``ldW``, R's ``logLik.lm``); 0 without weights."""
        return 0.0 if self.weights is None else float(np.sum(np.log(self.weights)))

    def unweighted(self, values: FloatArray) -> FloatArray:
        """Per-row values (or rows of a matrix) of the √w-scaled model (X β, residuals,
        covariates) in the data's scale."""
        if self.weights is None:
            return values
        root = np.sqrt(self.weights)
        return values / (root if values.ndim == 1 else root[:, None])

    def with_offset(self, values: FloatArray) -> FloatArray:
        """``values`` (fitted from X and Z) plus the offset, if the model has one."""
        return values if self.offset is None else values + self.offset
