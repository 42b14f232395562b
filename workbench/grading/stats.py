"""The statistics every experiment here reports, in one place: a rate's interval and a paired test.

    wilson(8, 10)              # (0.490, 0.943): the Wilson score 95% interval of 8 successes in 10
    wilson(0, 0)               # (None, None): no trials, no interval
    mcnemar(better=12, worse=3)  # exact two-sided p of 12 items gained against 3 lost (paired)
    sign_flip([2, 1, 0, -1, 3])  # exact paired test of per-item differences summed over run seeds
    across_seeds([35, 16, 29, 34], 60)  # a rate over run seeds: mean, spread between seeds, one run's interval

A rate with no trials has no interval: ``wilson`` returns ``(None, None)`` there, and every table
that shows ``ci_low``/``ci_high`` leaves them null.

An experiment run with several run seeds (the same items, a new sampling stream per seed) is read with
:func:`across_seeds` — is the spread between seeds about what one run's interval says it should be? —
and compared with :func:`sign_flip`, a paired test whose unit is the item: each item's difference,
summed over the seeds, keeps its size and takes either sign under the null. With one seed it is the
exact McNemar test.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from ..errors import InputError

__all__ = ["across_seeds", "mcnemar", "sign_flip", "wilson"]


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


def sign_flip(differences: list[int]) -> float:
    """Exact two-sided p of the paired sign-flip (permutation) test on whole-number per-item differences.

    Under the null each item's difference is as likely to have either sign; the p-value is the share of
    the 2^n sign assignments whose sum is at least as far from 0 as the observed one, counted exactly by
    convolution (so 200 items and 3 seeds take microseconds). Items with difference 0 do not count.
    """
    sizes = [abs(int(d)) for d in differences if d]
    if any(size != abs(d) for size, d in zip(sizes, [d for d in differences if d], strict=True)):
        raise InputError("sign_flip needs whole-number differences (per-item counts summed over seeds).")
    if not sizes:
        return 1.0
    observed = abs(sum(int(d) for d in differences))
    counts = {0: 1}
    for size in sizes:
        grown: dict[int, int] = {}
        for total, ways in counts.items():
            for step in (size, -size):
                grown[total + step] = grown.get(total + step, 0) + ways
        counts = grown
    extreme = sum(ways for total, ways in counts.items() if abs(total) >= observed)
    return min(1.0, extreme / 2 ** len(sizes))


def across_seeds(successes: list[int], trials: int) -> dict[str, float | None]:
    """A rate measured once per run seed, on ``trials`` items each: how much it moved with the seed.

    ``rate`` is the mean over seeds; ``seed_sd`` the standard deviation between seeds (None with one seed),
    ``seed_low``/``seed_high`` the lowest and highest seed's rate; ``run_ci_low``/``run_ci_high`` the Wilson
    interval one run of ``trials`` items at that rate would report. Independent samples spread between seeds
    by about ``sqrt(rate (1 - rate) / trials)`` — much less than that interval is wide; a spread near or past
    the interval means the runs shared something (items, or a random stream).
    """
    if not successes or trials < 1:
        raise InputError("across_seeds needs at least one seed and one trial.")
    rates = [count / trials for count in successes]
    mean = sum(rates) / len(rates)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)) if len(rates) > 1 else None
    low, high = wilson(round(mean * trials), trials)
    return {
        "rate": mean,
        "seed_sd": sd,
        "seed_low": min(rates),
        "seed_high": max(rates),
        "run_ci_low": low,
        "run_ci_high": high,
    }
