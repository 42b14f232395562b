"""Critique → revise → re-grade rounds, against a scripted model on the loopback fake server."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

import workbench as wb

RUBRIC = wb.Rubric("Is the draft polished?", scale=(1, 5))


def scripted(body: dict) -> str:
    """Drafts are written 'draft-<start>-<ceiling>': each revision adds 1 to the score, up to the ceiling."""
    text = body["messages"][-1]["content"]
    if "Response to grade:" in text:
        graded = text.split("Response to grade:\n")[1]
        level = int(re.search(r"draft-(\d)-(\d)", graded).group(1))
        return json.dumps({"reason": f"level {level}", "score": level})
    if "Write a short, specific critique" in text:
        return "Polish it more."
    if "Your previous response:" in text:
        previous = text.split("Your previous response:\n")[1].split("\n\nCritique:")[0]
        level, ceiling = (int(x) for x in re.search(r"draft-(\d)-(\d)", previous).groups())
        return f"draft-{min(level + 1, ceiling)}-{ceiling}"
    return "unexpected"


@pytest.fixture
def graded(fake_server, connect_to):
    server = fake_server(responder=scripted)
    llm = connect_to(server)
    frame = pl.DataFrame(
        {
            "sample_id": ["climber", "stuck", "done", "slow"],
            "task": ["Polish a draft."] * 4,
            "response": ["draft-2-5", "draft-2-2", "draft-5-5", "draft-1-9"],
        }
    )
    return llm, server, wb.grade(llm, frame, RUBRIC, progress=False)


def test_each_sample_stops_by_its_own_rule_and_lineage_holds(graded):
    llm, _, frame = graded

    history = wb.refine(llm, frame, RUBRIC, rounds=3, stop_at=4, progress=False)

    lineages = {lineage: part.sort("round") for (lineage,), part in history.group_by("lineage_id")}
    assert lineages["climber"]["score"].to_list() == [2.0, 3.0, 4.0]
    assert lineages["climber"]["stop_reason"].to_list() == [None, None, "reached stop_at"]
    assert lineages["stuck"]["score"].to_list() == [2.0, 2.0]
    assert lineages["stuck"]["stop_reason"].to_list() == [None, "no improvement"]
    assert lineages["done"]["round"].to_list() == [0] and lineages["done"]["stop_reason"][0] == "reached stop_at"
    assert lineages["slow"]["score"].to_list() == [1.0, 2.0, 3.0, 4.0]
    assert lineages["slow"]["stop_reason"][-1] == "reached stop_at"
    for round_number in range(1, 4):
        parents = set(history.filter(pl.col("round") == round_number - 1)["sample_id"])
        assert set(history.filter(pl.col("round") == round_number)["parent_id"]) <= parents
    assert history.filter(pl.col("round") > 0)["critique"].unique().to_list() == ["Polish it more."]
    assert history["sample_id"].n_unique() == history.height


def test_rounds_run_out_when_no_stop_score_is_set(graded):
    llm, _, frame = graded
    history = wb.refine(llm, frame, RUBRIC, rounds=2, progress=False)
    slow = history.filter(lineage_id="slow").sort("round")
    assert slow["score"].to_list() == [1.0, 2.0, 3.0]
    assert slow["stop_reason"].to_list() == [None, None, "rounds exhausted"]
    assert history["round"].max() == 2


def test_best_picks_the_top_row_of_each_lineage_and_per_round_summarises(graded):
    llm, _, frame = graded
    history = wb.refine(llm, frame, RUBRIC, rounds=3, stop_at=4, progress=False)

    top = wb.best(history).sort("lineage_id")
    assert dict(zip(top["lineage_id"], top["score"], strict=True)) == {
        "climber": 4.0,
        "done": 5.0,
        "slow": 4.0,
        "stuck": 2.0,
    }
    assert top.filter(lineage_id="stuck")["round"][0] == 0  # among equal scores, the earliest round

    table = wb.per_round(history, pass_at=4)
    assert table["round"].to_list() == [0, 1, 2, 3]
    assert table["rows"].to_list() == [4, 4, 4, 4]
    assert table["mean_score"].to_list() == [2.5, 3.0, 3.5, 3.75]  # (2+2+5+1)/4, (3+2+5+2)/4, (4+2+5+3)/4, ...
    assert table["pass_rate"].to_list() == [0.25, 0.25, 0.5, 0.75]
    assert table["revised"].to_list() == [0, 3, 2, 1]
    revised = wb.per_round(history, view="revised")
    assert revised["mean_change"].to_list()[1:] == [2 / 3, 1.0, 1.0]


def test_only_changed_rows_call_the_model_and_a_rerun_is_free(graded):
    llm, server, frame = graded
    before = server.stats.received
    wb.refine(llm, frame, RUBRIC, rounds=3, stop_at=4, progress=False)
    # round 1: 3 samples x (critique, revision, grade); round 2: 2 x 3; round 3: 1 x 3 = 18, less one:
    # "stuck" revises to the very text it had, whose grade the cache already holds
    assert server.stats.received - before == 17
    again = server.stats.received
    wb.refine(llm, frame, RUBRIC, rounds=3, stop_at=4, progress=False)
    assert server.stats.received == again


def test_bad_input_is_refused_with_a_clear_error(graded):
    llm, _, frame = graded
    with pytest.raises(wb.InputError, match="rounds must be a positive whole number"):
        wb.refine(llm, frame, RUBRIC, rounds=0)
    with pytest.raises(wb.InputError, match=r"needs a graded frame \(wb.grade first\); it has no column 'score'"):
        wb.refine(llm, frame.drop("score"), RUBRIC)
    with pytest.raises(wb.InputError, match="empty"):
        wb.refine(llm, frame.clear(), RUBRIC)


def test_a_row_whose_request_failed_is_not_critiqued(fake_server, connect_to):
    seen = []
    llm = connect_to(fake_server(responder=lambda body: seen.append(body["messages"][-1]["content"]) or scripted(body)))
    frame = pl.DataFrame(
        {"sample_id": ["failed", "slow"], "task": ["Polish a draft."] * 2, "response": [None, "draft-1-9"]}
    )
    graded = wb.grade(llm, frame, RUBRIC, progress=False)

    history = wb.refine(llm, graded, RUBRIC, rounds=1, progress=False)

    assert history.filter(pl.col("lineage_id") == "failed")["stop_reason"].to_list() == ["no response"]
    assert history.filter(pl.col("round") == 1)["parent_id"].to_list() == ["slow"]
    assert not any("Response:\nNone" in text for text in seen)
