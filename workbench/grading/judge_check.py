"""How far can a judge be trusted? Its pass against a program verifier's, as Cohen's kappa with an interval.

    check = wb.judge_check(judge, llm)      # 40 sums answered by llm, graded by judge: 80 cached calls
    print(check.sentence())                 # "Judge trust: ... kappa 0.03 (95% bootstrap interval ...) ..."
    judge_vs_verifier(rows)                 # the same figure per task, on a strategy run's single answers

Any notebook that charts a judge's scores says what they are worth with ``judge_check``; notebook 05 goes deeper
(the judge against itself, against order, against people) and notebook 06 runs the strategies it judges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import polars as pl

from ..models.client import LLM
from . import tasks as task_registry
from .rubrics import Rubric
from .strategies import RUBRIC, compare_strategies, judge_kept
from .trust import agreement, cohen_kappa

__all__ = ["PASS_ABOVE", "JudgeCheck", "judge_check", "judge_vs_verifier"]

PASS_ABOVE = 3.5  # the judge passes an answer whose (sampled or weighted) score lies above this on 1..5


def judge_vs_verifier(rows: pl.DataFrame, *, pass_above: float = PASS_ABOVE) -> pl.DataFrame:
    """Per task: does the judge agree with the verifier on the single-sample answers? Kappa for both scorings.

    ``kappa_sampled`` compares (sampled score > ``pass_above``) with ``verified``; ``kappa_weighted``
    does the same with the probability-weighted score; ``logprobs`` is the share of rows that had
    a weighted score (0 on a backend without logprobs, where the weighted kappa is null).
    """
    single = rows.filter(pl.col("strategy") == "single", pl.col("selected"), pl.col("verified").is_not_null())
    out = []
    for (task,), part in single.group_by("task", maintain_order=True):
        part = part.with_columns(
            judge_pass=pl.col("judge_score") > pass_above,
            weighted_pass=pl.col("judge_weighted") > pass_above,
        )
        out.append(
            {
                "task": task,
                "answers": part.height,
                "verified_rate": part["verified"].mean(),
                "judge_pass_rate": part["judge_pass"].mean(),
                "kappa_sampled": _kappa(part, "judge_pass"),
                "kappa_weighted": _kappa(part, "weighted_pass"),
                "logprobs": part["judge_weighted"].is_not_null().mean(),
            }
        )
    return pl.DataFrame(out)


@dataclass(frozen=True)
class JudgeCheck:
    """How far a judge's pass agrees with a program verifier on one verifiable task (see :func:`judge_check`)."""

    judge: str
    generator: str
    task: str
    answers: int
    verified_rate: float
    judge_pass_rate: float
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None

    @property
    def verdict(self) -> str:
        """The kappa in words (Landis and Koch 1977's bands; below 0.2 the judge is about at chance)."""
        if self.kappa is None:
            return "cannot be told: the verifier or the judge gave one verdict to every answer"
        bands = [(0.2, "about at chance"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")]
        return next((word for edge, word in bands if self.kappa < edge), "almost perfect")

    def sentence(self) -> str:
        """One sentence for a notebook or report: the kappa, its interval, and what it means."""
        if self.kappa is None:
            return f"Judge trust: {self.verdict} ({self.answers} {self.task} answers)."
        interval = (
            f" (95% bootstrap interval {self.kappa_low:.2f} to {self.kappa_high:.2f})"
            if self.kappa_low is not None
            else ""
        )
        return (
            f"Judge trust: {self.judge} agrees with the program verifier at Cohen's kappa {self.kappa:.2f}{interval} "
            f"on {self.answers} {self.task} answers by {self.generator} — {self.verdict} (0 = chance, 1 = perfect); "
            "its scores "
            + ("say little about correctness here." if self.kappa < 0.2 else "track correctness to that degree.")
        )


def judge_check(
    judge: LLM, generator: LLM | None = None, *, task: str = "arithmetic", n: int = 40, seed: int = 0,
    rubric: Rubric = RUBRIC, progress: bool = False,
) -> JudgeCheck:  # fmt: skip
    """Measure a judge against a program verifier: ``n`` single answers of ``task`` (by ``generator``, default the
    judge's own model), graded by ``judge`` with ``rubric`` (default: the strategies' rubric, on 1..5), pass =
    score above 3.5. Try another rubric to see whether a better judge prompt raises the agreement.

    Cheap and cached (``2 n`` calls the first time), so any notebook that charts a judge's scores can say how
    far they deserve trust; notebook 06 measures it at length.
    """
    items = task_registry.get(task).items(n, seed=seed)
    rows = compare_strategies(generator or judge, task, items, strategies=["single"], budget=1, seed=seed,
                              progress=progress)  # fmt: skip
    rows = judge_kept(judge, rows, items, rubric, progress=progress)
    row = judge_vs_verifier(rows).row(0, named=True)
    single = rows.filter(pl.col("verified").is_not_null()).with_columns(judge_pass=pl.col("judge_score") > PASS_ABOVE)
    low, high = _kappa_interval(single)
    return JudgeCheck(
        judge=judge.model,
        generator=(generator or judge).model,
        task=task,
        answers=row["answers"],
        verified_rate=row["verified_rate"],
        judge_pass_rate=row["judge_pass_rate"],
        kappa=row["kappa_sampled"],
        kappa_low=low,
        kappa_high=high,
    )


def _kappa_interval(part: pl.DataFrame, resamples: int = 1000) -> tuple[float | None, float | None]:
    """A percentile bootstrap 95% interval of the judge's kappa over the answers (fixed seed: reproducible).

    Resamples where the judge and the verifier each gave a single verdict to every answer have no kappa and
    are left out; when most do, there is no interval."""
    pairs = list(zip(part["judge_pass"].fill_null(False).to_list(), part["verified"].to_list(), strict=True))
    rng = random.Random(0)
    values = []
    for _ in range(resamples):
        drawn = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        left, right = [a for a, _ in drawn], [b for _, b in drawn]
        if len(set(left)) > 1 or len(set(right)) > 1:  # both constant: no kappa
            values.append(cohen_kappa(left, right))
    if len(values) < resamples // 2:
        return None, None
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]


def _kappa(part: pl.DataFrame, column: str) -> float | None:
    try:
        return agreement(part, column, "verified").kappa
    except ValueError:
        return None
