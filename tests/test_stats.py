"""The one interval and the one paired test that every table of the workbench reports."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

import workbench as wb
from workbench.grading.stats import mcnemar, wilson


def test_the_wilson_interval_matches_the_textbook_value_and_scipy():
    low, high = wilson(8, 10)  # Wilson 95%: 0.4902 .. 0.9433
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    for successes, trials in [(0, 10), (10, 10), (59, 100), (1, 3), (200, 200)]:
        expected = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(successes, trials) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_a_rate_with_no_trials_has_no_interval():
    assert wilson(0, 0) == (None, None)


def test_one_trial_gives_a_wide_interval_inside_zero_and_one():
    low, high = wilson(1, 1)
    assert high == 1.0 and 0.2 < low < 0.21  # 1 of 1: 0.2065 .. 1
    low, high = wilson(0, 1)
    assert low == 0.0 and 0.79 < high < 0.8


def test_impossible_counts_are_refused():
    with pytest.raises(wb.InputError, match="0 <= successes <= trials"):
        wilson(3, 2)


def test_mcnemar_counts_only_the_items_that_changed():
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(12, 3) == pytest.approx(binomtest(12, 15).pvalue)
    assert mcnemar(5, 5) == 1.0
