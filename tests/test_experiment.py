"""Reading an experiment run over several seeds: the spread between seeds, the paired test, the claims."""

from __future__ import annotations

import json

import polars as pl
import pytest

import workbench as wb
from workbench.grading import experiment, tasks
from workbench.grading.stats import mcnemar, sign_flip


def rows_of(outcomes: dict[tuple[str, int], list[bool]]) -> pl.DataFrame:
    """Kept rows of an arithmetic run: (strategy, seed) -> verified per item (item ids i0, i1, ...)."""
    records = []
    for (strategy, seed), verified in outcomes.items():
        for index, ok in enumerate(verified):
            records.append(
                {
                    "task": "arithmetic",
                    "strategy": strategy,
                    "seed": seed,
                    "item_id": f"i{index}",
                    "selected": True,
                    "verified": ok,
                    "verify_error": None,
                    "judge_score": 3.0,
                    "calls": 1,
                    "tokens": 10,
                    "cost_usd": 0.0,
                }
            )
    return pl.DataFrame(records)


def test_the_paired_test_counts_items_over_seeds_and_equals_mcnemar_with_one_seed():
    single = {0: [False] * 10, 1: [False] * 10}
    better = {0: [True] * 6 + [False] * 4, 1: [True] * 5 + [False] * 5}
    rows = rows_of({**{("single", s): v for s, v in single.items()}, **{("vote", s): v for s, v in better.items()}})

    both = experiment.against_single(rows).row(0, named=True)
    assert (both["better"], both["worse"], both["seeds"]) == (11, 0, 2)
    assert both["yield_change"] == pytest.approx(11 / 20)
    assert both["p_value"] == pytest.approx(sign_flip([2] * 5 + [1] + [0] * 4))  # per item, summed over seeds
    assert both["effect"] == "raises"

    one = experiment.against_single(rows.filter(pl.col("seed") == 0)).row(0, named=True)
    assert one["p_value"] == pytest.approx(mcnemar(6, 0)) and one["p_by_seed"] == f"{mcnemar(6, 0):.3f}"


def test_the_seed_table_shows_the_mean_and_the_spread_between_seeds():
    outcomes = {("single", 0): [True] * 5 + [False] * 5, ("single", 1): [True] * 3 + [False] * 7}
    table = experiment.seed_table(rows_of(outcomes)).row(0, named=True)
    assert table["seeds"] == 2 and table["items"] == 10
    assert table["yield"] == pytest.approx(0.4) and table["by_seed"] == "50% 30%"
    assert table["seed_low"] == 0.3 and table["seed_high"] == 0.5
    assert table["seed_sd"] == pytest.approx(2**0.5 * 0.1)
    assert table["run_ci_low"] < 0.4 < table["run_ci_high"]


def test_a_claim_that_nothing_changed_is_not_called_agreement():
    nothing = pl.DataFrame(
        [{"task": "arithmetic", "strategy": "self_refine", "seeds": 3, "yield_change": 0.0, "better": 2, "worse": 2,
          "p_value": 1.0, "effect": "no clear change", "judge_change": 0.0}]
    )  # fmt: skip
    sentence = experiment.claims(nothing)[0]
    assert "is consistent with it: no clear change either way" in sentence and "over 3 run seeds" in sentence
    worse = nothing.with_columns(effect=pl.lit("lowers"), yield_change=pl.lit(-0.2))
    assert "agrees: here it made the data worse" in experiment.claims(worse)[0]


def right_when_the_seed_is_even(body: dict) -> str:
    """A model whose sample is right when its own seed is even: a fair coin per request, fixed by the seed."""
    question = body["messages"][-1]["content"]
    numbers = [int(n) for n in question.split("?")[0].replace("What is", "").split("+")]
    total = sum(numbers) + (0 if body["seed"] % 2 == 0 else 1)
    return f"It is {total}."


def test_calibrate_draws_new_samples_of_the_same_items_for_every_seed(fake_server, connect_to):
    task = tasks.get("arithmetic")
    only_sums = tasks.Task(
        name="sums_only",
        phrasings={"train": ["What is {expression}? Answer with the number only."], "heldout": ["{expression}?"]},
        sample=task.sample,
        check=task.check,
        answer=task.answer,
        extract=task.extract,
    )
    tasks.register(only_sums, replace=True)
    server = fake_server(responder=right_when_the_seed_is_even)
    table = experiment.calibrate(connect_to(server), ["sums_only"], n=30, seeds=(0, 1, 2))
    row = table.row(0, named=True)
    assert row["items"] == 30 and server.stats.received == 90  # 30 items x 3 seeds, no sample shared
    assert len(row["by_seed"].split()) == 3
    assert 0.2 < row["verified_rate"] < 0.8  # a fair coin per request, not one draw for all items
    assert row["seed_high"] - row["seed_low"] < 0.45


def test_run_experiment_keeps_each_seeds_rows_apart(fake_server, connect_to):
    server = fake_server(responder=lambda body: "It is 3." if not body.get("response_format") else json.dumps(
        {"reason": "ok", "score": 3}))  # fmt: skip
    items = tasks.get("arithmetic").items(4, seed=0)
    rows, table, _ = experiment.run_experiment(
        connect_to(server), ["arithmetic"], n=4, budget=4, seeds=(0, 1), progress=False
    )
    assert sorted(rows["seed"].unique().to_list()) == [0, 1]
    assert set(rows["item_id"]) == set(items["item_id"])  # the same items under both seeds
    assert table["seeds"].unique().to_list() == [2]
    with pytest.raises(wb.InputError, match="seeds are distinct whole numbers"):
        experiment.run_experiment(connect_to(server), ["arithmetic"], n=4, budget=4, seeds=(1, 1))
