"""Prompt templates and variable grids."""

from __future__ import annotations

import polars as pl
import pytest

import workbench as wb


def test_a_prompt_lists_its_variables_and_renders_chat_messages():
    prompt = wb.Prompt(
        "Write a {{level}} problem about {{topic}}.",
        system="You teach {{ audience }}.",
        examples=[({"level": "easy", "topic": "cats", "audience": "kids"}, "Tom has 3 cats...")],
    )
    assert prompt.variables == ["audience", "level", "topic"]
    assert prompt.render({"level": "hard", "topic": "trains", "audience": "adults"}) == [
        {"role": "system", "content": "You teach adults."},
        {"role": "user", "content": "Write a easy problem about cats."},
        {"role": "assistant", "content": "Tom has 3 cats..."},
        {"role": "user", "content": "Write a hard problem about trains."},
    ]


def test_an_undefined_variable_is_named_with_its_row():
    prompt = wb.Prompt("Write about {{topic}} for {{reader}}.")
    with pytest.raises(
        wb.PromptError, match=r"uses the variable 'reader', which row 4 does not define \(defined: topic\)"
    ):
        prompt.render({"topic": "tides"}, row=4)


def test_a_syntax_error_gives_line_and_column():
    with pytest.raises(wb.PromptError) as caught:
        wb.Prompt("First line.\nWrite about {{ topic }} and {% if %}.")
    message = str(caught.value)
    assert message.startswith("template syntax error at line 2, column 29:")
    assert "\n    Write about {{ topic }} and {% if %}.\n" + " " * 32 + "^" in message


def test_the_hash_is_stable_and_changes_with_the_template():
    assert wb.Prompt("A {{x}}").hash == wb.Prompt("A {{x}}").hash
    assert wb.Prompt("A {{x}}").hash != wb.Prompt("B {{x}}").hash
    assert wb.Prompt("A {{x}}").hash != wb.Prompt("A {{x}}", system="S").hash


def test_prompts_save_and_load(tmp_path):
    prompt = wb.Prompt("Q: {{q}}", system="Be brief.", examples=[({"q": "2+2"}, "4")])
    loaded = wb.Prompt.load(prompt.save(tmp_path / "prompts" / "qa.json"))
    assert loaded.hash == prompt.hash and loaded.render({"q": "3+3"}) == prompt.render({"q": "3+3"})
    plain = wb.Prompt.load(wb.Prompt("Just {{this}}").save(tmp_path / "plain.j2"))
    assert plain.template == "Just {{this}}"
    with pytest.raises(wb.PromptError, match="no prompt file at"):
        wb.Prompt.load(tmp_path / "missing.json")


def test_an_empty_template_is_refused():
    with pytest.raises(wb.PromptError, match="non-empty template"):
        wb.Prompt("   ")


def test_a_grid_is_the_cartesian_product():
    grid = wb.grid(topic=["apples", "trains"], level=["easy", "hard"])
    assert grid.to_dicts() == [
        {"topic": "apples", "level": "easy"},
        {"topic": "apples", "level": "hard"},
        {"topic": "trains", "level": "easy"},
        {"topic": "trains", "level": "hard"},
    ]
    assert wb.grid(topic="single").to_dicts() == [{"topic": "single"}]


def test_a_sampled_grid_is_distinct_and_reproducible():
    axes = {"a": list(range(10)), "b": list("xyz"), "c": [True, False]}
    first = wb.sample_grid(15, seed=7, **axes)
    assert first.height == 15 and first.unique().height == 15
    assert first.equals(wb.sample_grid(15, seed=7, **axes))
    assert not first.equals(wb.sample_grid(15, seed=8, **axes))
    with pytest.raises(wb.InputError, match=r"between 1 and 60"):
        wb.sample_grid(61, **axes)


@pytest.mark.parametrize("axes", [{}, {"topic": []}])
def test_an_empty_grid_is_refused(axes):
    with pytest.raises(wb.InputError, match="axis"):
        wb.grid(**axes)


def test_about_fifty_varied_personas_ship_with_the_workbench():
    people = wb.personas()
    assert 45 <= people.height <= 60
    assert people["persona_id"].n_unique() == people.height and people["persona"].n_unique() == people.height
    assert people["domain"].n_unique() >= 20


def test_about_forty_seed_tasks_ship_with_the_workbench():
    seeds = wb.load_seed_tasks()
    assert 35 <= seeds.height <= 50
    assert set(seeds.columns) == {"id", "instruction", "input", "output", "category"}
    assert seeds.filter(pl.col("instruction").str.len_chars() < 10).height == 0
    assert seeds["category"].n_unique() >= 10
