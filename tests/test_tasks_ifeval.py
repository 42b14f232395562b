"""The ifeval family: IFEval's own checkers (lm-eval) on hand-written passing and failing answers."""

from __future__ import annotations

import pytest

from workbench.grading import tasks
from workbench.grading.tasks.ifeval import INSTRUCTIONS, checkers

TASK = tasks.get("ifeval")


def item(instruction: str, arguments: dict, json_keys: list | None = None) -> dict:
    return {
        "topic": "the moon",
        "instruction_ids": [instruction],
        "arguments": [arguments],
        "json_keys": json_keys or [],
    }


CASES = [
    ("keywords:existence", {"keywords": ["blue"]}, "The moon looks blue tonight.", "The moon is grey.", "missing"),
    (
        "length_constraints:number_words",
        {"num_words": 8, "relation": "less than"},
        "The moon is bright.",
        "The moon is a bright and cold rock circling our planet.",
        "it must have less than 8",
    ),
    ("change_case:english_lowercase", {}, "the moon is bright.", "The moon is bright.", "lowercase"),
    (
        "startend:end_checker",
        {"end_phrase": "That is all."},
        "The moon shines. That is all.",
        "That is all. The moon shines.",
        "does not end with",
    ),
    ("punctuation:no_comma", {}, "The moon is bright and cold.", "The moon, bright and cold.", "comma"),
    ("detectable_format:title", {}, "<<Moon>>\nThe moon is bright.", "Moon\nThe moon is bright.", "title"),
]


@pytest.mark.parametrize(("instruction", "arguments", "good", "bad", "message"), CASES)
def test_each_checker_passes_and_fails_hand_written_answers(instruction, arguments, good, bad, message):
    assert TASK.verify(good, item(instruction, arguments)).passed
    verdict = TASK.verify(bad, item(instruction, arguments))
    assert not verdict.passed and message in verdict.message


def test_json_with_the_asked_keys():
    variables = item("detectable_format:json_format", {}, ["name", "age"])
    assert TASK.verify('{"name": "Luna", "age": 4}', variables).passed
    assert TASK.verify('```json\n{"name": "Luna", "age": 4}\n```', variables).passed
    assert "lacks the key(s) ['age']" in TASK.verify('{"name": "Luna"}', variables).message
    assert "not a single valid JSON" in TASK.verify("name: Luna", variables).message


def test_two_instructions_must_both_hold():
    variables = {
        "instruction_ids": ["change_case:english_lowercase", "punctuation:no_comma"],
        "arguments": [{}, {}],
        "json_keys": [],
    }
    assert TASK.verify("the moon is bright", variables).passed
    verdict = TASK.verify("The moon, bright", variables)
    assert "lowercase" in verdict.message and "comma" in verdict.message


def test_prompts_use_ifevals_own_wording():
    prompts = TASK.items(40, seed=2)["prompt"].to_list()
    assert any("Answer with less than" in p for p in prompts)
    assert all(p.startswith("Write a short text about") for p in prompts)
    assert set(checkers()) == set(INSTRUCTIONS)


def test_the_difficulty_knob_stacks_instructions():
    import json

    two = [json.loads(v)["instruction_ids"] for v in TASK.items(10, difficulty=2)["variables"]]
    assert all(len(ids) == 2 and len(set(ids)) == 2 for ids in two)
