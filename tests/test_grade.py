"""Grading by an LLM judge and by verifiers, against a scripted judge on the loopback fake server."""

from __future__ import annotations

import json
from collections import Counter

import polars as pl
import pytest

import workbench as wb

RUBRIC = wb.Rubric("Is it good?", scale=(1, 5))


def samples(*responses: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(responses))],
            "task": ["Write something."] * len(responses),
            "response": list(responses),
        },
        schema={"sample_id": pl.String, "task": pl.String, "response": pl.String},
    )


def judge_by_content(body: dict) -> str:
    """A judge whose grade is written in the response it reads: 'score=4' -> 4; 'garble' -> not JSON."""
    graded = body["messages"][-1]["content"].split("Response to grade:\n")[1]
    if "garble" in graded:
        return "I think it is rather good"
    if "noscore" in graded:
        return json.dumps({"reason": "forgot the score"})
    value = graded.split("score=")[1].split()[0]
    return json.dumps({"reason": f"looks like a {value}", "score": json.loads(value)})


def test_scores_land_in_range_and_bad_grades_are_unscored_with_a_reason(fake_server, connect_to):
    llm = connect_to(fake_server(responder=judge_by_content))
    frame = samples("score=4", "score=1", "garble", "score=9", "score=2.5", "noscore", None)

    graded = wb.grade(llm, frame, RUBRIC, progress=False)

    assert graded["score"].to_list() == [4.0, 1.0, None, None, None, None, None]
    assert graded["scored"].to_list() == [True, True, False, False, False, False, False]
    assert graded["reason"][0] == "looks like a 4"
    reasons = graded["unscored_reason"].to_list()
    assert reasons[:2] == [None, None]
    assert reasons[2].startswith("unparseable grade (not JSON)")
    assert reasons[3] == "score 9 outside the scale 1..5"
    assert reasons[4] == "score is not an integer: 2.5"
    assert reasons[5].startswith("unparseable grade (no score)")
    assert reasons[6] == "no response to grade (the generation failed)"
    assert graded["judge"].unique().to_list() == ["fake-model"]
    assert graded["judge_tokens_in"][0] > 0 and graded["judge_tokens_in"][6] == 0
    assert graded.columns[:3] == ["sample_id", "task", "response"]


def test_the_judge_is_asked_with_a_json_schema_of_the_rubrics_scale(fake_server, connect_to):
    seen = []
    server = fake_server(responder=lambda body: seen.append(body) or '{"reason": "ok", "score": 3}')
    wb.grade(connect_to(server), samples("hello"), wb.Rubric("Is it kind?", scale=(0, 3)), progress=False)

    body = seen[0]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["score"]["enum"] == [0, 1, 2, 3]
    assert body["messages"][0]["content"].startswith("You are a strict, fair grader.")
    assert "Criteria: Is it kind?" in body["messages"][0]["content"]
    assert body["messages"][1]["content"] == "Task:\nWrite something.\n\nResponse to grade:\nhello"
    assert body["temperature"] == 0.0


def test_votes_take_the_median_and_record_the_spread(fake_server, connect_to):
    calls = Counter()

    def three_minds(body: dict) -> str:
        key = body["messages"][-1]["content"]
        calls[key] += 1
        return json.dumps({"reason": "r", "score": [3, 5, 4][(calls[key] - 1) % 3]})

    graded = wb.grade(
        connect_to(fake_server(responder=three_minds)), samples("a", "b"), RUBRIC, votes=3, progress=False
    )

    assert graded["score"].to_list() == [4.0, 4.0]
    assert [sorted(v) for v in graded["votes"].to_list()] == [[3, 4, 5], [3, 4, 5]]
    assert graded["vote_spread"].to_list() == [2.0, 2.0]
    assert wb.self_agreement(graded) == {"rows": 2, "pairwise_agreement": 0.0, "unanimous": 0.0, "mean_spread": 2.0}


def test_grading_needs_the_column_it_grades(fake_server, connect_to):
    llm = connect_to(fake_server())
    with pytest.raises(wb.InputError, match=r"no column 'answer' to grade"):
        wb.grade(llm, samples("x"), RUBRIC, column="answer")
    with pytest.raises(wb.InputError, match="needs a rubric"):
        wb.grade(llm, samples("x"))
    with pytest.raises(wb.InputError, match="votes must be a positive whole number"):
        wb.grade(llm, samples("x"), RUBRIC, votes=0)


def test_an_empty_frame_grades_to_an_empty_frame_with_the_grade_columns(fake_server, connect_to):
    server = fake_server()
    graded = wb.grade(connect_to(server), samples(), RUBRIC, progress=False)
    assert graded.height == 0 and set(wb.GRADE_COLUMNS) <= set(graded.columns)
    assert server.stats.received == 0


@pytest.mark.parametrize("scale", [(5, 1), (3, 3), ("a", "b"), (1,)])
def test_a_rubric_scale_needs_min_below_max(scale):
    with pytest.raises(wb.InputError, match="scale"):
        wb.Rubric("Good?", scale=scale)


def test_shipped_rubrics_load_by_name():
    rubric = wb.Rubric.load("math_word_problem")
    assert rubric.scale == (1, 5) and rubric.levels[5].startswith("clear")
    assert "Score levels:" in rubric.instructions() and "Its score: 5" in rubric.instructions()
    with pytest.raises(wb.InputError, match="Shipped rubrics: .*helpfulness"):
        wb.Rubric.load("no-such-rubric")


def is_even_length(row: dict) -> bool:
    if row["response"] == "boom":
        raise ValueError("cannot judge a bomb")
    return len(row["response"]) % 2 == 0


def test_a_verifier_grades_and_its_exceptions_are_recorded_per_row():
    graded = wb.grade(is_even_length, samples("ab", "abc", "boom"))
    assert graded["score"].to_list() == [1.0, 0.0, None]
    assert graded["scored"].to_list() == [True, True, False]
    assert graded["unscored_reason"][2] == "ValueError: cannot judge a bomb"
    assert graded["judge"][0] == "verifier:is_even_length"

    checked = wb.verify(samples("ab", "abc", "boom"), is_even_length, name="even")
    assert checked["even"].to_list() == [True, False, None]
    assert checked["even_error"].to_list() == [None, None, "ValueError: cannot judge a bomb"]
    assert "score" not in checked.columns


def test_a_verifier_that_returns_something_else_is_an_unscored_row():
    checked = wb.verify(samples("x", "y"), lambda row: "yes" if row["response"] == "x" else 0.25, name="v")
    assert checked["v"].to_list() == [None, 0.25]
    assert checked["v_error"][0] == "the verifier returned 'yes'; expected a bool or a number"


def always_first(body: dict) -> str:
    return json.dumps({"reason": "the first one is better", "winner": "1"})


def longer_wins(body: dict) -> str:
    text = body["messages"][-1]["content"]
    first = text.split("Response 1:\n")[1].split("\n\nResponse 2:")[0]
    second = text.split("Response 2:\n")[1]
    return json.dumps({"reason": "longer", "winner": "1" if len(first) > len(second) else "2"})


def test_a_judge_that_always_picks_the_first_slot_shows_full_position_bias(fake_server, connect_to):
    llm = connect_to(fake_server(responder=always_first))
    verdicts = wb.compare(llm, samples("short", "a"), samples("a longer one", "bb"), RUBRIC, progress=False)

    assert verdicts["verdict_ab"].to_list() == ["A", "A"] and verdicts["verdict_ba"].to_list() == ["B", "B"]
    assert verdicts["winner"].to_list() == ["tie", "tie"]
    assert wb.position_bias(verdicts) == {"pairs": 2, "inconsistent": 1.0, "first_slot": 1.0, "second_slot": 0.0}


def test_a_consistent_judge_names_the_winner_in_both_orders(fake_server, connect_to):
    llm = connect_to(fake_server(responder=longer_wins))
    verdicts = wb.compare(
        llm, samples("short", "a much longer answer"), samples("a longer one", "b"), RUBRIC, progress=False
    )
    assert verdicts["winner"].to_list() == ["B", "A"] and verdicts["consistent"].all()
    assert wb.position_bias(verdicts)["inconsistent"] == 0.0


def test_compare_needs_frames_of_equal_length(fake_server, connect_to):
    with pytest.raises(wb.InputError, match="frame_a has 2 rows, frame_b 1"):
        wb.compare(connect_to(fake_server()), samples("a", "b"), samples("c"), RUBRIC)
