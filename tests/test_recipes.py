"""The technique recipes: filters checked on crafted replies, then a real run on the embedded model."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.curation.similarity import lcs_length, rouge_l
from workbench.generation.recipes import EVOLUTIONS, _split_tasks

SEEDS = [
    "Give three tips for keeping a sourdough starter healthy.",
    "Translate the phrase into French.",
    "Write a haiku about a city at dawn.",
]


def test_rouge_l_matches_hand_computed_values():
    assert lcs_length(["a", "b", "c", "d", "e"], ["a", "x", "c", "y", "e"]) == 3
    # LCS 3 of 5 and 5 tokens: precision = recall = 0.6, F = 0.6
    assert rouge_l("a b c d e", "a x c y e") == pytest.approx(0.6)
    # LCS 2; precision 2/2, recall 2/4: F = 2 * 1 * 0.5 / 1.5
    assert rouge_l("the cat sat down", "cat down") == pytest.approx(2 / 3)
    assert rouge_l("", "anything") == 0.0 and rouge_l("Same words!", "same WORDS") == 1.0


def test_task_lists_are_split_into_instructions():
    reply = " Name two rivers in Spain.\nTask 5: Write a limerick about tea.\nTask 6:  Sort these numbers: 3, 1, 2."
    assert _split_tasks(reply) == [
        "Name two rivers in Spain.",
        "Write a limerick about tea.",
        "Sort these numbers: 3, 1, 2.",
    ]


def self_instruct_model(body: dict) -> str:
    return (
        " Give three tips for keeping a sourdough starter healthy today.\n"  # near-copy of a seed
        "Task 5: Draw a picture of a cat.\n"  # needs images
        "Task 6: Hi.\n"  # too short
        "Task 7: - list the colours of the rainbow\n"  # starts with punctuation
        f"Task 8: Explain how tides work to a sailor number {body['messages'][0]['content'].count('Task')}.\n"
    )


def test_self_instruct_keeps_new_instructions_and_says_why_it_drops_the_rest(fake_server, connect_to):
    llm = connect_to(fake_server(responder=self_instruct_model))

    table = wb.self_instruct(llm, SEEDS, rounds=1, prompts_per_round=2, examples=3, progress=False)

    reasons = dict(zip(table["instruction"], table["reason"], strict=False))
    assert reasons["Give three tips for keeping a sourdough starter healthy today."].startswith(
        "too similar to the pool"
    )
    assert reasons["Draw a picture of a cat."].startswith(
        "asks for something a language model cannot do (draw, picture)"
    )
    assert reasons["Hi."] == "length: 1 words (keep 3 to 150)"
    assert reasons["- list the colours of the rainbow"] == "starts with punctuation"
    kept = table.filter("kept")["instruction"].to_list()
    # both prompts show 3 tasks, so both replies propose the same tides question: the second is a duplicate
    assert kept == ["Explain how tides work to a sailor number 4."]
    assert table.filter("kept")["max_rouge_l"].max() <= 0.7


def evol_model(body: dict) -> str:
    asked = body["messages"][-1]["content"]
    if asked.startswith("I want you to act as a Prompt"):
        given = asked.split("Given prompt: ")[1]
        if "sourdough" in given:
            return "#Rewritten Prompt#: " + given.replace("three tips", "three tips with exact flour weights")
        if "French" in given:
            return given  # no information gain
        return "Rewrite the given prompt as a sonnet."  # leaks the evolving prompt's words
    return "Sorry, I cannot." if "flour" not in asked else "Feed it 50 g flour and 50 g water daily."


def test_evol_instruct_eliminates_failed_evolutions_by_the_papers_rules(fake_server, connect_to):
    llm = connect_to(fake_server(responder=evol_model))

    table = wb.evol_instruct(llm, SEEDS, rounds=2, methods=["add_constraints"], progress=False)

    first = table.filter(round=1)
    assert first["instruction"][0] == (
        "Give three tips with exact flour weights for keeping a sourdough starter healthy."
    )
    assert first["kept"].to_list() == [True, False, False]
    assert first["reason"][1].startswith("no information gain over its parent")
    assert first["reason"][2] == "the model could not answer it (a short 'sorry')"
    second = table.filter(round=2)
    # a failed evolution keeps its parent in the pool; a kept one is evolved further
    assert second["parent_instruction"].to_list() == [first["instruction"][0], SEEDS[1], SEEDS[2]]


def test_evol_instruct_refuses_unknown_methods(fake_server, connect_to):
    with pytest.raises(wb.InputError, match="methods among add_constraints"):
        wb.evol_instruct(connect_to(fake_server()), SEEDS, methods=["telepathy"])
    assert set(EVOLUTIONS) == {
        "add_constraints",
        "deepen",
        "concretize",
        "increase_reasoning",
        "complicate_input",
        "breadth",
    }


def test_persona_generation_runs_the_prompt_once_per_persona(fake_server, connect_to):
    llm = connect_to(fake_server())

    table = wb.persona_generate(llm, people=5, variables={"task": "a riddle"}, progress=False)

    assert table.height == 5 and table["persona"].n_unique() == 5
    assert table["response"][0].startswith("echo: Create a riddle with the following persona:\n")
    with pytest.raises(wb.InputError, match=r"must use \{\{ persona \}\}"):
        wb.persona_generate(llm, "Write about {{topic}}")


@pytest.mark.local_model
def test_the_recipes_produce_filtered_output_on_the_embedded_model(tmp_path):
    llm = wb.connect(data_dir=tmp_path)

    instructions = wb.self_instruct(llm, rounds=1, prompts_per_round=3, max_tokens=120, progress=False)
    assert instructions.height > 0 and instructions["reason"].null_count() == instructions["kept"].sum()
    assert (
        instructions.filter("kept")["max_rouge_l"].max() is None
        or instructions.filter("kept")["max_rouge_l"].max() <= 0.7
    )

    evolved = wb.evol_instruct(llm, SEEDS, rounds=1, max_tokens=80, progress=False)
    assert evolved.height == 3 and evolved["instruction"].str.len_chars().min() > 0

    people = wb.persona_generate(
        llm, people=2, variables={"task": "a math word problem"}, max_tokens=60, progress=False
    )
    assert people.height == 2 and people["error"].null_count() == 2
