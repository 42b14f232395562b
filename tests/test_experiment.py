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


def sums_only() -> str:
    """Register (again) a sums task asked in one phrasing only, which the scripted models here can read."""
    task = tasks.get("arithmetic")
    only_sums = tasks.Task(
        name="sums_only",
        phrasings={"train": ["What is {expression}? Answer with the number only."], "heldout": ["{expression}?"]},
        sample=task.sample,
        check=task.check,
        answer=task.answer,
        extract=task.extract,
    )
    return tasks.register(only_sums, replace=True).name


def test_calibrate_draws_new_samples_of_the_same_items_for_every_seed(fake_server, connect_to):
    server = fake_server(responder=right_when_the_seed_is_even)
    table = experiment.calibrate(connect_to(server), [sums_only()], n=30, seeds=(0, 1, 2))
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


def test_judge_check_measures_a_judge_against_the_verifier(fake_server, connect_to):
    def judge_of_parity(body: dict) -> str:
        if body.get("response_format"):  # the judge: passes every answer whose last number is even
            last = body["messages"][-1]["content"].rstrip().rstrip(".").split()[-1]
            return json.dumps({"reason": "checked", "score": 5 if last.isdigit() and int(last) % 2 == 0 else 1})
        return right_when_the_seed_is_even(body)

    check = wb.judge_check(connect_to(fake_server(responder=judge_of_parity)), n=30, task=sums_only())
    assert check.answers == 30 and 0.2 < check.verified_rate < 0.8
    assert check.kappa is not None and check.kappa_low <= check.kappa <= check.kappa_high
    assert "Judge trust:" in check.sentence() and check.verdict in check.sentence()


def test_a_judge_that_passes_everything_is_at_chance_and_says_so(fake_server, connect_to):
    def lenient(body: dict) -> str:
        return json.dumps({"reason": "fine", "score": 5}) if body.get("response_format") else (
            right_when_the_seed_is_even(body))  # fmt: skip

    check = wb.judge_check(connect_to(fake_server(responder=lenient)), n=20, task=sums_only())
    assert check.judge_pass_rate == 1.0 and check.kappa == 0.0  # one verdict for all: no better than chance
    assert "about at chance" in check.sentence() and "say little about correctness" in check.sentence()


def test_the_command_runs_without_runpy_warning_that_it_was_imported_twice():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "workbench.grading.experiment", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--seeds" in done.stdout
