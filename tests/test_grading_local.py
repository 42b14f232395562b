"""Grading and refining on the real embedded model: whatever it answers, the tables hold together."""

from __future__ import annotations

import polars as pl
import pytest

import workbench as wb
from workbench.grading import word_problems

pytestmark = pytest.mark.local_model


def test_the_embedded_judge_scores_in_range_or_says_why_not(local_llm):
    samples = wb.generate(
        local_llm,
        "Write a one-line fact about {{topic}}.",
        wb.grid(topic=["the moon", "bees"]),
        max_tokens=40,
        progress=False,
    )
    graded = wb.grade(local_llm, samples, wb.Rubric.load("factual_accuracy"), votes=2, progress=False)
    for row in graded.iter_rows(named=True):
        if row["scored"]:
            assert 1 <= row["score"] <= 3 and row["reason"] is not None and len(row["votes"]) >= 1
        else:
            assert row["unscored_reason"]


def test_the_word_problem_task_runs_its_rounds_with_lineage_intact(local_llm):
    history, table = word_problems.run_rounds(local_llm, topics=["apples", "trains"], n=2, rounds=2, progress=False)

    assert table["round"][0] == 0 and table["rows"].to_list() == [4] * table.height
    assert set(table.columns) >= {"mean_score", "pass_rate", "verified_rate", "judge_vs_verifier_accuracy"}
    for round_number in range(1, history["round"].max() + 1):
        parents = set(history.filter(pl.col("round") == round_number - 1)["sample_id"])
        assert set(history.filter(pl.col("round") == round_number)["parent_id"]) <= parents
    assert history["verified"].null_count() == history["verified_error"].is_not_null().sum()
    assert history.filter(pl.col("stop_reason").is_not_null())["lineage_id"].n_unique() == 4


def _degenerate_samples() -> pl.DataFrame:
    responses = [
        '{"question": "1,001,983,820,' + "033," * 12 + "131," * 40 + '", "answer": 15}',
        '{"question": "A school trip to the ' + "+ " * 120 + '"}',
        '{"question": "1.0; no. 2; 0.7; 0.2; ' + "2; 1; 1.2; 3; 4; 2.5; " * 12 + '"}',
    ]
    samples = pl.DataFrame({"sample_id": ["a", "b", "c"], "task": ["Write a math word problem."] * 3})
    return samples.with_columns(response=pl.Series(responses))


def test_the_embedded_judge_scores_a_degenerate_response_instead_of_echoing_it_past_its_tokens(local_llm):
    # Replies the embedded model wrote in notebook 05 (then 04): graded, the judge began repeating them in its reason
    # and ran out of tokens before the score, so no row had both a judge verdict and a verifier verdict.
    samples = _degenerate_samples()

    graded = wb.grade(local_llm, samples, word_problems.RUBRIC, progress=False)

    assert graded["scored"].all(), graded["unscored_reason"].to_list()
    assert graded["reason"].str.len_chars().max() <= 200


def test_the_embedded_pairwise_judge_gives_every_verdict_on_degenerate_responses(local_llm):
    # Before its reason was bounded too, 5 of these 6 verdicts were lost the same way as the grades above.
    degenerate = _degenerate_samples()
    plain = degenerate.with_columns(
        response=pl.lit('{"question": "Ann has 3 apples and buys 4. How many?", "answer": 7}')
    )

    verdicts = wb.compare(local_llm, degenerate, plain, word_problems.RUBRIC, task_column="task", progress=False)

    assert verdicts["verdict_ab"].null_count() == 0 and verdicts["verdict_ba"].null_count() == 0, verdicts["error"]
    assert verdicts["reason_ab"].str.len_chars().max() <= 200
