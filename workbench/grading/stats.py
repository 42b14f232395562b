"""The statistics every experiment here reports, in one place: a rate's interval and a paired test.

    wilson(8, 10)              # (0.490, 0.943): the Wilson score 95% interval of 8 successes in 10
    wilson(0, 0)               # (None, None): no trials, no interval
    mcnemar(better=12, worse=3)  # exact two-sided p of 12 items gained against 3 lost (paired)

A rate with no trials has no interval: ``wilson`` returns ``(None, None)`` there, and every table
that shows ``ci_low``/``ci_high`` leaves them null.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from ..errors import InputError

__all__ = ["mcnemar", "wilson"]


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The Wilson score interval of the rate ``successes / trials``; ``(None, None)`` when ``trials`` is 0.

    The same interval as scipy's ``binomtest(successes, trials).proportion_ci(method="wilson")``,
    computed in closed form.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise InputError(f"wilson needs 0 <= successes <= trials, got {successes} of {trials}.")
    if trials == 0:
        return None, None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(better: int, worse: int) -> float:
    """Exact McNemar test: the two-sided p-value of ``better`` items gained against ``worse`` lost.

    Only the discordant items count (those that changed); with none, nothing changed and p = 1.
    """
    from scipy.stats import binomtest

    return float(binomtest(better, better + worse).pvalue) if better + worse else 1.0
