"""The inversion of a profile (lme4's interpSpline + backSpline + predict), on profiles
whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from service.stats.profile_spline import invert_profile


def test_a_linear_profile_is_inverted_exactly() -> None:
    # ζ linear in the parameter (a fixed effect of a model with known σ): the natural
    # spline is the line, and so is its inverse
    x = np.linspace(-3.0, 5.0, 9)
    zeta = (x - 1.0) / 2.0
    at = np.array([-1.959963984540054, 1.959963984540054])
    assert invert_profile(x, zeta, at) == pytest.approx(1.0 + 2.0 * at, rel=1e-12)


def test_a_smooth_profile_is_inverted_to_spline_accuracy() -> None:
    # ζ = sinh(x): the inverse is asinh; with points 0.25 apart the cubic pieces are good
    # to ~1e-4 in the interior
    x = np.arange(-2.5, 2.51, 0.25)
    at = np.array([-1.5, -0.3, 0.7, 2.0])
    assert invert_profile(x, np.sinh(x), at) == pytest.approx(np.arcsinh(at), abs=2e-4)


def test_outside_the_profile_there_is_no_answer() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    zeta = x - 0.5  # ends at ζ = -0.5 below: a bound (an sd at 0) reached first
    lower, upper = invert_profile(x, zeta, np.array([-1.96, 1.0]))
    assert np.isnan(lower)
    assert upper == pytest.approx(1.5)


def test_a_non_monotone_profile_falls_back_to_linear_interpolation() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    zeta = np.array([-0.4, -0.5, 0.0, 0.3, 0.2])  # turns back at both ends
    lower, upper = invert_profile(x, zeta, np.array([-0.45, 0.25]))
    assert lower == pytest.approx(-0.75)  # between (-0.4, -1) and (-0.5, -0.5) in ζ order
    assert upper == pytest.approx(0.75)


def test_failed_points_are_left_out() -> None:
    x = np.linspace(-2.0, 2.0, 9)
    zeta = x.copy()
    zeta[3] = np.nan
    assert invert_profile(x, zeta, np.array([1.5])) == pytest.approx([1.5], rel=1e-12)
