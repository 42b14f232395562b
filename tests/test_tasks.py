"""Verifiable tasks: the registry, items that repeat with their seed, and every verifier on hand-written answers."""

from __future__ import annotations

import json

import pytest

from workbench.errors import InputError
from workbench.grading import tasks


def test_the_shipped_families_are_registered():
    assert {"arithmetic", "comparison", "ifeval"} <= set(tasks.names())


def test_items_repeat_with_their_seed_and_differ_by_split():
    task = tasks.get("arithmetic")
    first, again = task.items(20, seed=3), task.items(20, seed=3)
    assert first.equals(again)
    assert first["item_id"].n_unique() == 20
    heldout = task.items(20, split="heldout", seed=3)
    assert set(first["prompt"]).isdisjoint(heldout["prompt"])  # other phrasings
    assert not any("Answer with the number only" in prompt for prompt in heldout["prompt"])
    assert list(first.columns) == list(tasks.ITEM_COLUMNS)


def test_the_difficulty_knob_changes_the_items():
    task = tasks.get("arithmetic")
    easy = [json.loads(v)["numbers"] for v in task.items(30, difficulty=1)["variables"]]
    hard = [json.loads(v)["numbers"] for v in task.items(30, difficulty=3)["variables"]]
    assert all(len(n) == 2 and max(n) <= 9 for n in easy)
    assert all(len(n) == 2 and min(n) >= 10 for n in hard)


@pytest.mark.parametrize(
    ("reply", "passed", "message"),
    [
        ("12", True, ""),
        ("The answer is 12.", True, ""),
        ("7 + 5 = 12", True, ""),
        ("13", False, "7 + 5 is not 13"),
        ("12 is wrong, it is 11", False, "7 + 5 is not 11"),
        ("twelve", False, "the reply contains no number"),
    ],
)
def test_the_arithmetic_verifier(reply, passed, message):
    verdict = tasks.get("arithmetic").verify(reply, {"numbers": [7, 5], "expression": "7 + 5"})
    assert verdict == (passed, message)


@pytest.mark.parametrize(
    ("reply", "passed"),
    [("77", True), ("The larger number is 77.", True), ("52", False), ("52 < 77, so 77", True), ("none", False)],
)
def test_the_comparison_verifier(reply, passed):
    verdict = tasks.get("comparison").verify(reply, {"a": 52, "b": 77})
    assert verdict.passed is passed
    assert bool(verdict.message) is not passed


def test_tasks_with_one_answer_give_gold_and_extract_it():
    for name in ("arithmetic", "comparison"):
        task = tasks.get(name)
        item = task.items(1, seed=1).row(0, named=True)
        assert task.has_answer and item["gold"] is not None
        assert task.verify(f"It is {item['gold']}", item["variables"]).passed
        assert task.extract(f"so {item['gold']}") == item["gold"]
    assert not tasks.get("ifeval").has_answer


def test_a_user_registers_a_task_in_a_few_lines():
    task = tasks.register(
        tasks.Task(
            name="echo_word_test",
            phrasings={"train": ["Reply with the word {word} only."], "heldout": ["Say just: {word}"]},
            sample=lambda rng, difficulty: {"word": rng.choice(["apple", "river"])},
            check=lambda reply, v: (reply.strip().lower() == v["word"], f"the reply is not just {v['word']!r}"),
        ),
        replace=True,
    )
    assert tasks.get("echo_word_test") is task
    item = task.items(1).row(0, named=True)
    word = json.loads(item["variables"])["word"]
    assert task.verify(word.upper(), item["variables"]).passed
    assert task.verify("banana", item["variables"]).message == f"the reply is not just {word!r}"


def test_bad_input_says_what_to_do():
    with pytest.raises(InputError, match="Known tasks: .*arithmetic"):
        tasks.get("no-such-task")
    with pytest.raises(InputError, match="difficulties"):
        tasks.get("arithmetic").items(3, difficulty=9)
    with pytest.raises(InputError, match="split"):
        tasks.get("arithmetic").items(3, split="test")
    with pytest.raises(InputError, match="phrasing"):
        tasks.Task(name="x", phrasings={"train": ["a"]}, sample=lambda r, d: {}, check=lambda r, v: (True, ""))
    with pytest.raises(InputError, match="already registered"):
        tasks.register(
            tasks.Task(
                name="arithmetic",
                phrasings={"train": ["a"], "heldout": ["b"]},
                sample=lambda r, d: {},
                check=lambda r, v: (True, ""),
            )
        )
