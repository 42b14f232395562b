"""Preference pairs from what the workbench knows — the verifier, a judge's scores, pairwise verdicts, human labels
and marks — on answers scripted by a fake server; and their two export formats, validated before they land."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

import workbench as wb
from workbench.curation.dedup import normalise
from workbench.curation.preferences import validate_openai_preferences, validate_trl_preferences
from workbench.grading import tasks
from workbench.training.self_train import sample

# What the scripted student answers, in turn, to every sum it is asked: right, off by one, right in words, the
# digits run together. Two of the four pass the verifier.
ANSWERS = ["{s}", "{t}", "The answer is {s}.", "{a}{b}"]


def student():
    turns: dict[tuple[str, int], int] = {}  # (question, the request's own seed) -> its turn

    def answer(body: dict) -> str:
        """The k samples of a question get the answers in turn; a retried request (same seed) gets its own again."""
        question = body["messages"][-1]["content"]
        a, b = (int(n) for n in re.findall(r"\d+", question)[:2])
        key = (question, body["seed"])
        turn = turns.setdefault(key, sum(asked == question for asked, _ in turns))
        return ANSWERS[turn % len(ANSWERS)].format(s=a + b, t=a + b + 1, a=a, b=b)

    return answer


def right_sum(task: str, response: str) -> bool:
    a, b = (int(n) for n in re.findall(r"\d+", task)[:2])
    found = re.findall(r"-?\d+", response)
    return bool(found) and int(found[-1]) == a + b


def grader(body: dict) -> str:
    """A judge that gives 5 to a right sum and 1 to a wrong one, and 3 to an answer of more than one word."""
    task, response = body["messages"][-1]["content"].split("Task:\n")[1].split("\n\nResponse to grade:\n")
    score = 3 if len(response.split()) > 1 else (5 if right_sum(task, response) else 1)
    return json.dumps({"reason": "checked the sum", "score": score})


def referee(body: dict) -> str:
    """A pairwise judge that picks the right sum, except on 1 + 1 where it always picks the first slot."""
    text = body["messages"][-1]["content"]
    task = text.split("Task:\n")[1].split("\n\nResponse 1:\n")[0]
    first, second = text.split("\n\nResponse 1:\n")[1].split("\n\nResponse 2:\n")
    if "1 + 1" in task:
        return json.dumps({"reason": "the first one", "winner": "1"})
    winner = "1" if right_sum(task, first) and not right_sum(task, second) else "2"
    return json.dumps({"reason": "the right sum", "winner": winner})


@pytest.fixture
def answered(fake_server, connect_to):
    """Four answers to each of six sums, checked by the arithmetic task's verifier."""
    task = tasks.get("arithmetic")
    items = task.items(6, seed=3)
    llm = connect_to(fake_server(responder=student()))
    return sample(llm, items, task, k=4, iteration=0, progress=False, temperature=0.8, seed=0)


def _never_equal(pairs: pl.DataFrame) -> None:
    assert pairs.height and all(normalise(a) != normalise(b) for a, b in pairs.select("chosen", "rejected").rows())


def test_verifier_pairs_prefer_a_passing_answer_to_a_failing_one_of_the_same_item(answered):
    pairs = wb.preference_pairs(answered, by="verifier", per_item=2)
    _never_equal(pairs)
    assert pairs.height == 12 and set(pairs["item_id"]) == set(answered["item_id"])  # two per item
    verdicts = dict(zip(answered["sample_id"], answered["verified"], strict=True))
    assert all(verdicts[s] for s in pairs["chosen_sample_id"]) and not any(
        verdicts[s] for s in pairs["rejected_sample_id"]
    )
    items = dict(zip(answered["sample_id"], answered["item_id"], strict=True))
    assert [items[s] for s in pairs["chosen_sample_id"]] == [items[s] for s in pairs["rejected_sample_id"]]
    assert pairs["prompt"].to_list() == [
        answered.filter(item_id=item)["prompt"][0] for item in pairs["item_id"]
    ]  # the question asked, not the task's name
    assert pairs["why"].str.starts_with("verifier: passed / failed").all()


def test_judge_pairs_keep_the_margin_and_say_how_near_the_scores_came(answered, fake_server, connect_to):
    judge = connect_to(fake_server(responder=grader))
    graded = wb.grade(judge, answered, wb.Rubric("Is the sum right?"), task_column="prompt", progress=False)
    pairs = wb.preference_pairs(graded, by="judge", margin=3)
    _never_equal(pairs)
    assert pairs.height == 6 and (pairs["why"] == "judge: 5 vs 1").all()
    with pytest.raises(wb.InputError, match=r"of 6 items with two or more answers, 6 had two different scores "
                       r"\(the widest gap 4\)\. Lower margin="):  # fmt: skip
        wb.preference_pairs(graded, by="judge", margin=4.5)


def test_compare_pairs_come_only_from_verdicts_that_agree_in_both_orders(fake_server, connect_to):
    tasks_asked = ["What is 1 + 1?", "What is 2 + 3?", "What is 4 + 4?"]
    first = pl.DataFrame({"sample_id": ["a1", "b1", "c1"], "task": tasks_asked, "response": ["2", "6", "8"]})
    second = first.with_columns(pl.Series("sample_id", ["a2", "b2", "c2"]), pl.Series("response", ["3", "5", "9"]))
    verdicts = wb.compare(
        connect_to(fake_server(responder=referee)), first, second, wb.Rubric("Right?"), progress=False
    )
    pairs = wb.preference_pairs(verdicts, by="compare", a=first, b=second)
    _never_equal(pairs)  # 1 + 1 was judged by its slot alone: no pair
    assert pairs.select("prompt", "chosen", "rejected", "chosen_sample_id", "rejected_sample_id").rows() == [
        ("What is 2 + 3?", "5", "6", "b2", "b1"),
        ("What is 4 + 4?", "8", "9", "c1", "c2"),
    ]


def test_human_scores_and_the_explorers_marks_make_pairs_too():
    base = pl.DataFrame({
        "sample_id": ["s1", "s2", "s3", "s4", "s5"],
        "task": ["Name a fruit."] * 3 + ["Name a tree."] * 2,
        "response": ["Apple.", "A car.", "Pear.", "Oak.", "Oak!"],
    })  # fmt: skip
    labelled = base.with_columns(pl.Series("human_score", [5, 1, None, 4, 2]))
    pairs = wb.preference_pairs(labelled, by="human", margin=2)
    _never_equal(pairs)  # "Oak." and "Oak!" are the same answer (as wb.dedup compares): the tree makes no pair
    assert pairs.select("chosen", "rejected", "why").rows() == [("Apple.", "A car.", "human: 5 vs 1")]
    marked = base.with_columns(pl.Series("mark", ["keep", "drop", "keep", None, None]))
    pairs = wb.preference_pairs(marked, by="human", per_item=5)
    assert sorted(pairs.select("chosen", "rejected").rows()) == [("Apple.", "A car."), ("Pear.", "A car.")]


def test_random_pairs_are_a_control_without_a_preference(answered):
    pairs = wb.preference_pairs(answered, by="random", per_item=6)
    _never_equal(pairs)
    assert pairs.height == 6 * 6  # four different answers per item: six pairs each
    verdicts = dict(zip(answered["sample_id"], answered["verified"], strict=True))
    chosen_passed = sum(verdicts[s] for s in pairs["chosen_sample_id"])
    assert 0 < chosen_passed < pairs.height  # a coin decides which comes first, not the verifier


def test_bad_input_says_what_is_missing_and_what_to_do(answered):
    with pytest.raises(wb.InputError, match=r"by must be one of verifier, judge, compare, human, random; got 'votes'"):
        wb.preference_pairs(answered, by="votes")
    with pytest.raises(wb.InputError, match=r"need the columns response, score .* lacks score \(its columns: item_id"):
        wb.preference_pairs(answered, by="judge")
    with pytest.raises(wb.InputError, match=r"the frame lacks winner, consistent\. Pass the frame wb.compare returned"):
        wb.preference_pairs(pl.DataFrame({"task": ["t"], "response_a": ["x"], "response_b": ["y"]}), by="compare")
    one_each = answered.unique("item_id", keep="first")
    with pytest.raises(wb.InputError, match=r"none of the 6 items has two different answers\. Sample k >= 2"):
        wb.preference_pairs(one_each, by="verifier")


def test_both_exports_are_valid_files_of_their_documented_formats(answered, tmp_path):
    pairs = wb.preference_pairs(answered, by="verifier")
    openai = wb.export.openai_preferences(pairs, tmp_path / "pairs.openai.jsonl", system="Answer briefly.")
    first = json.loads(openai.read_text().splitlines()[0])
    assert set(first) == {"input", "preferred_output", "non_preferred_output"}
    assert [m["role"] for m in first["input"]["messages"]] == ["system", "user"]
    assert first["preferred_output"] == [{"role": "assistant", "content": pairs["chosen"][0]}]
    assert first["non_preferred_output"] == [{"role": "assistant", "content": pairs["rejected"][0]}]
    trl = wb.export.trl_preferences(pairs, tmp_path / "pairs.trl.jsonl")
    row = json.loads(trl.read_text().splitlines()[0])
    assert row["prompt"] == [{"role": "user", "content": pairs["prompt"][0]}]
    assert row["chosen"] == [{"role": "assistant", "content": pairs["chosen"][0]}]
    assert validate_openai_preferences(openai) == [] and validate_trl_preferences(trl) == []
    assert openai.read_text().count("\n") == trl.read_text().count("\n") == pairs.height == 6
    card = wb.export.preference_card(pairs, tmp_path / "pairs.md")
    assert "a passing and a failing answer of the same item" in card and "pairs: 6, from 6 items" in card


def test_the_openai_validator_names_each_line_that_breaks_the_schema(tmp_path):
    good = {"input": {"messages": [{"role": "user", "content": "2 + 2?"}]},
            "preferred_output": [{"role": "assistant", "content": "4"}],
            "non_preferred_output": [{"role": "assistant", "content": "5"}]}  # fmt: skip
    broken = [
        {**good, "non_preferred_output": []},  # no rejected answer
        {**good, "preferred_output": [{"role": "user", "content": "4"}]},  # not the assistant's
        {k: v for k, v in good.items() if k != "input"},
        {**good, "input": {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}]}},
        {**good, "non_preferred_output": [{"role": "assistant", "content": " 4 "}]},  # the same answer twice
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [good, *broken]) + "\nnot json\n")
    problems = validate_openai_preferences(path)
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in range(2, 7)] + ["line 7 is not JSON"]
    assert "non_preferred_output: [] should be non-empty" in problems[0]
    assert "'assistant' was expected" in problems[1] and "'input' is a required property" in problems[2]
    assert "does not end with a user message" in problems[3] and "the same text" in problems[4]


def test_a_failed_export_leaves_the_file_before_it_untouched(answered, tmp_path):
    target = tmp_path / "pairs.openai.jsonl"
    pairs = wb.preference_pairs(answered, by="verifier")
    wb.export.openai_preferences(pairs, target)
    before = target.read_text()
    equal = pairs.with_columns(pl.col("chosen").alias("rejected"))  # a hand-made frame that prefers a text to itself
    with pytest.raises(wb.InputError, match=r"line 1: the preferred and the non-preferred answer are the same text"):
        wb.export.openai_preferences(equal, target)
    assert target.read_text() == before and not list(tmp_path.glob("*partial*"))


def test_pairs_read_the_labelers_and_the_explorers_saved_files(tmp_path):
    frame = pl.DataFrame({
        "sample_id": ["s1", "s2", "s3", "s4"],
        "task": ["Name a fruit."] * 2 + ["Name a tree."] * 2,
        "response": ["Apple.", "A car.", "Oak.", "A cloud."],
    })  # fmt: skip
    labeler = wb.Labeler(frame, name="fruit", labels_dir=tmp_path / "labels")
    for score in (5, 1, 4, 2):  # each click saves every label at once
        labeler.label(score)
    pairs = wb.preference_pairs(frame, by="human", labels=labeler.path, margin=2)
    assert pairs.select("chosen", "rejected", "why").rows() == [
        ("Apple.", "A car.", "human: 5 vs 1"),
        ("Oak.", "A cloud.", "human: 4 vs 2"),
    ]
    explorer = wb.explore(frame, name="trees", marks_dir=tmp_path / "marks")
    explorer.mark("s3", "keep")
    explorer.mark("s4", "drop")
    pairs = wb.preference_pairs(frame, by="human", labels=explorer.state.path)
    assert pairs.select("chosen", "rejected", "why").rows() == [("Oak.", "A cloud.", "human: keep / drop")]
    with pytest.raises(wb.InputError, match=r"no labels file at .*nowhere\.parquet"):
        wb.preference_pairs(frame, by="human", labels=tmp_path / "nowhere.parquet")
