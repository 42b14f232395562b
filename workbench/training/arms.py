"""The arms of ``wb.self_train``: what each trains on, made from one generation's samples, at the same budget.

    rows = training_rows("verifier", "dpo", samples, items, judge=llm)   # preference pairs by the verifier
    rows = budgeted(rows, budget, seed)                                  # as many rows as the verifier arm had

Supervised arms (``method="sft"``) train on answers; preference arms (``method="dpo"``) on pairs of a chosen and a
rejected answer to the same item (``wb.preference_pairs``). Every arm of a generation trains on as many rows
(answers, or pairs) as the verifier arm made: what differs is which rows, never how many.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..curation.preferences import preference_pairs
from ..errors import InputError
from ..grading.grade import grade
from ..grading.pairwise import compare
from ..grading.rubrics import Rubric
from ..models.client import LLM

__all__ = ["ARMS", "DPO_ARMS", "JUDGE_PASS", "JUDGE_RUBRIC", "SFT_ARMS", "budgeted", "training_rows"]

SFT_ARMS = {
    "verifier": "the samples the task's verifier accepted (STaR, Zelikman et al. 2022)",
    "unfiltered": "the samples, unchecked",
    "judge": "the samples an LLM judge scored >= 4 of 5",
    "gold": "the task's right answers alone (bare answers: STaR's 'direct' baseline, not a ceiling)",
}
DPO_ARMS = {
    "verifier": "pairs of a passing and a failing sample of one item (rejection-sampling DPO)",
    "judge": "pairs whose judge scores differ by the margin or more (Self-Rewarding, Yuan et al. 2024)",
    "compare": "pairs whose pairwise judge chose the same sample in both orders",
    "random": "two different samples of one item in random order (the control: no preference)",
    "sft": "supervised, on the chosen answers of the verifier's pairs (SFT at equal data)",
}
ARMS = tuple(SFT_ARMS)  # the supervised arms, in order (``self_train``'s default)
JUDGE_RUBRIC = Rubric(
    "Is the response a correct and direct answer to the task?",
    scale=(1, 5),
    levels={1: "wrong or no answer", 3: "partly right or unclear", 5: "exactly the right answer"},
    name="correct_answer",
)
JUDGE_PASS = 4


def training_rows(
    arm: str,
    method: str,
    samples: pl.DataFrame,
    items: pl.DataFrame,
    *,
    judge: LLM,
    margin: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> pl.DataFrame:
    """What ``arm`` trains on, from one generation's ``samples`` (answers for sft arms, pairs for dpo arms)."""
    if method == "dpo":
        return _pairs(arm, samples, judge, margin, seed, progress)
    if arm == "verifier":
        return samples.filter(pl.col("verified"))
    if arm == "unfiltered":
        return samples.filter(pl.col("response").is_not_null() & (pl.col("response").str.strip_chars() != ""))
    if arm == "judge":
        graded = grade(judge, samples, JUDGE_RUBRIC, task_column="prompt", progress=progress)
        return graded.filter(pl.col("score") >= JUDGE_PASS).select(samples.columns)
    gold = items.filter(pl.col("gold").is_not_null())
    if gold.height == 0:
        raise InputError("the task has no gold answers, so the 'gold' arm cannot run: leave it out of arms=.")
    return gold.with_columns(pl.col("gold").alias("response"), ("gold-" + pl.col("item_id")).alias("sample_id"))


def _pairs(arm: str, samples: pl.DataFrame, judge: LLM, margin: float, seed: int, progress: bool) -> pl.DataFrame:
    options = {"seed": seed}
    if arm in ("verifier", "sft"):
        pairs = preference_pairs(samples, "verifier", **options)
        return pairs if arm == "verifier" else _chosen_answers(pairs)
    if arm == "random":
        return preference_pairs(samples, "random", **options)
    if arm == "judge":
        graded = grade(judge, samples, JUDGE_RUBRIC, task_column="prompt", progress=progress)
        return preference_pairs(graded.filter(pl.col("score").is_not_null()), "judge", margin=margin, **options)
    first, second = _two_different(samples)
    verdicts = compare(judge, first, second, JUDGE_RUBRIC, task_column="prompt", progress=progress)
    return preference_pairs(verdicts, "compare", a=first, b=second, seed=seed)


def _chosen_answers(pairs: pl.DataFrame) -> pl.DataFrame:
    """The verifier pairs' chosen answers as supervised rows: the same prompts, the good half of the same data."""
    return pairs.select(
        pl.col("chosen_sample_id").alias("sample_id"),
        pl.col("prompt"),
        pl.col("chosen").alias("response"),
        *[pl.col(name) for name in ("item_id", "variables") if name in pairs.columns],
    )


def _two_different(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per item, its first two samples of different text, as two frames aligned row by row (for ``wb.compare``)."""
    answered = samples.filter(pl.col("response").is_not_null()).with_columns(
        pl.col("response").str.strip_chars().alias("_text")
    )
    distinct = answered.unique(["item_id", "_text"], keep="first", maintain_order=True)
    ranked = distinct.with_columns(pl.int_range(pl.len()).over("item_id").alias("_rank"))
    first = ranked.filter(pl.col("_rank") == 0)
    second = ranked.filter(pl.col("_rank") == 1)
    first = first.filter(pl.col("item_id").is_in(second["item_id"].implode()))
    if first.height == 0:
        raise InputError("no item has two different samples to compare: sample more per item (a larger k).")
    return first.drop("_text", "_rank"), second.drop("_text", "_rank")


def budgeted(rows: pl.DataFrame, budget: int, seed: int) -> pl.DataFrame:
    """``budget`` rows: a random subset when there are more, gold rows repeated in turn when fewer."""
    if rows.height >= budget:
        return rows.sample(budget, seed=seed)
    if "sample_id" in rows.columns and rows["sample_id"].str.starts_with("gold-").all():
        order = [i % rows.height for i in range(budget)]
        return rows[order].with_columns(pl.col("sample_id") + "-" + pl.Series(range(budget)).cast(pl.String))
    return rows


def check_arms(arms: tuple[str, ...], method: str) -> None:
    """InputError unless every arm is one of the method's and the verifier arm (which sets the budget) is there."""
    known = DPO_ARMS if method == "dpo" else SFT_ARMS
    unknown = [arm for arm in arms if arm not in known]
    if unknown or "verifier" not in arms:
        raise InputError(
            f"arms are chosen from {', '.join(known)} (method={method!r}) and must include 'verifier'; "
            f"got {list(arms)}."
        )


def describe(arms: tuple[str, ...], method: str) -> dict[str, Any]:
    """Each arm with what it trains on."""
    known = DPO_ARMS if method == "dpo" else SFT_ARMS
    return {arm: known[arm] for arm in arms}
