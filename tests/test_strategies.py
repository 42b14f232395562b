"""Strategies at equal budget: calls counted by the server, lineage kept, bad input explained."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.errors import InputError
from workbench.grading import tasks
from workbench.grading.strategies import MINIMUM_BUDGET, STRATEGIES, compare_strategies, strategy_table

ITEMS = 5
BUDGET = 4
# Calls per strategy for 5 items at budget 4 when every first answer is wrong, every revision right and the
# judge always gives 3 (below stop_at 4): worked out by hand from the strategies' rules.
EXPECTED_CALLS = {
    "single": 5,  # 1 sample each
    "majority_vote": 20,  # 4 samples each
    "best_of_verifier": 20,  # 4 samples each
    "best_of_judge": 20,  # 2 samples + 2 judge calls each
    "verifier_refine": 10,  # 1 sample + 1 revision (it then passes) each
    "self_refine": 15,  # 1 sample + 1 judge call + 1 revision each; a second round would exceed 4
}


def model(body: dict) -> str:
    """A scripted model: the judge gives 3; first answers are wrong; an answer after feedback is right."""
    if body.get("response_format"):
        return '{"reason": "The sum looks off.", "score": 3}'
    messages = body["messages"]
    question = messages[0]["content"]
    numbers = [int(n) for n in question.split("?")[0].replace("What is", "").split("+")]
    if len(messages) > 1:
        return f"It is {sum(numbers)}."
    return f"Sample {body['seed']}: it is {sum(numbers) + 1}."  # samples differ by seed, as at temperature 0.7


def arithmetic_items() -> pl.DataFrame:
    return tasks.get("arithmetic").items(40, seed=0).filter(pl.col("prompt").str.starts_with("What is")).head(ITEMS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_spends_what_the_server_counts(strategy, fake_server, connect_to):
    server = fake_server(responder=model)
    items = arithmetic_items()
    rows = compare_strategies(
        connect_to(server), "arithmetic", items, budget=BUDGET, strategies=[strategy], cache=False, progress=False
    )
    table = strategy_table(rows)
    assert server.stats.received == EXPECTED_CALLS[strategy]
    assert table["calls"][0] == server.stats.received
    assert table["calls"][0] <= BUDGET * ITEMS


def test_the_strategies_share_samples_through_the_cache(fake_server, connect_to):
    server = fake_server(responder=model)
    rows = compare_strategies(connect_to(server), "arithmetic", arithmetic_items(), budget=BUDGET, progress=False)
    table = strategy_table(rows).sort("strategy")
    assert table["calls"].sum() == sum(EXPECTED_CALLS.values())  # charged in full to each strategy
    # paid once: 4 samples + 2 judge calls + 1 verifier revision + 1 self-refine revision per item
    assert server.stats.received == ITEMS * (4 + 2 + 1 + 1)


def test_the_verified_rates_follow_from_the_scripted_model(fake_server, connect_to):
    server = fake_server(responder=model)
    rows = compare_strategies(connect_to(server), "arithmetic", arithmetic_items(), budget=BUDGET, progress=False)
    rates = dict(strategy_table(rows).select("strategy", "yield").iter_rows())
    assert rates["single"] == 0 and rates["majority_vote"] == 0 and rates["best_of_verifier"] == 0
    assert rates["verifier_refine"] == 1 and rates["self_refine"] == 1  # every revision is right in this script
    kept = rows.filter(pl.col("strategy") == "best_of_verifier", pl.col("selected"))
    assert kept.height == 0  # rejection sampling keeps nothing when nothing passes


def test_every_row_keeps_its_lineage(fake_server, connect_to):
    server = fake_server(responder=model)
    rows = compare_strategies(connect_to(server), "arithmetic", arithmetic_items(), budget=BUDGET, progress=False)
    for (strategy,), part in rows.group_by("strategy"):
        by_id = {row["sample_id"]: row for row in part.iter_rows(named=True)}
        for row in part.iter_rows(named=True):
            if row["parent_id"] is None:
                assert row["round"] == 0 and row["lineage_id"] == row["sample_id"]
                continue
            parent = by_id[row["parent_id"]]
            assert (parent["item_id"], parent["lineage_id"], parent["round"] + 1) == (
                row["item_id"],
                row["lineage_id"],
                row["round"],
            ), strategy
            conversation = json.loads(row["messages"])
            assert conversation[1] == {"role": "assistant", "content": parent["response"]}
        selected = part.filter(pl.col("selected")).group_by("item_id").len()
        assert selected.height == 0 or selected["len"].max() == 1, strategy


def test_bad_input_says_what_to_do(fake_server, connect_to):
    llm = connect_to(fake_server(responder=model))
    with pytest.raises(InputError, match="minimum is 4"):
        compare_strategies(llm, "arithmetic", n=2, budget=3, strategies=["best_of_judge"], progress=False)
    with pytest.raises(InputError, match="Known strategies: single, self_refine"):
        compare_strategies(llm, "arithmetic", n=2, strategies=["beam_search"], progress=False)
    with pytest.raises(InputError, match="one right answer"):
        compare_strategies(llm, "ifeval", n=2, strategies=["majority_vote"], progress=False)
    assert MINIMUM_BUDGET["single"] == 1


def test_a_verifier_that_raises_is_recorded_and_the_run_goes_on(fake_server, connect_to):
    def check(reply: str, variables: dict) -> tuple[bool, str]:
        if "3" in reply:
            raise RuntimeError("cannot read a three")
        return reply.strip() == "ok", "not ok"

    fragile = tasks.Task(
        name="fragile_test",
        phrasings={"train": ["Say {word}."], "heldout": ["Please say {word}."]},
        sample=lambda rng, difficulty: {"word": rng.choice(["ok", "3", "no"])},
        check=check,
    )
    server = fake_server(responder=lambda body: body["messages"][-1]["content"].split()[-1].rstrip("."))
    items = fragile.items(3, seed=1)  # its only three items ("ok", "3", "no")
    rows = compare_strategies(connect_to(server), fragile, items, strategies=["single"], budget=1, progress=False)
    raised = rows.filter(pl.col("verify_error").is_not_null())
    assert raised.height >= 1 and raised["verify_error"][0] == "RuntimeError: cannot read a three"
    assert raised["verified"].is_null().all()
    assert strategy_table(rows)["verify_errors"][0] == raised.height
    assert rows.height == 3


def test_the_strategies_chart_draws_the_table(fake_server, connect_to):
    import workbench as wb

    server = fake_server(responder=model)
    rows = compare_strategies(connect_to(server), "arithmetic", arithmetic_items(), budget=BUDGET, progress=False)
    chart = wb.charts.strategies(strategy_table(rows)).to_dict()
    left, right = chart["hconcat"]
    assert left["layer"][0]["encoding"]["x"]["field"] == "yield_ci_low"
    assert right["encoding"]["x"]["field"] == "judge_mean_kept"
    with pytest.raises(InputError, match="yield"):
        wb.charts.strategies(pl.DataFrame({"task": ["a"], "strategy": ["single"]}))
