"""A property-based sweep of the public entry points' numeric and text arguments (Hypothesis).

Whatever a user types — a number, a NaN, text where a number belongs, text with a lone surrogate, a huge
count — every call either succeeds or raises a ``WorkbenchError`` (never another exception type, never a
traceback from deep inside), and never leaves a partial file. Bounded to a few examples per entry point so
that it runs in the normal suite in seconds, against the fake server (never the embedded model).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import polars as pl
import pytest
from fakeserver import FakeServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.grading import tasks
from workbench.training.self_train import split_items

SWEEP = settings(  # the same examples on every run; WORKBENCH_SWEEP_EXAMPLES=500 explores further
    max_examples=int(os.environ.get("WORKBENCH_SWEEP_EXAMPLES", "25")),
    derandomize="WORKBENCH_SWEEP_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# What a user may type where a number belongs, and text of every kind (lone surrogates included).
numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 5, -1, 0.5, 1e300, "4", "", "abc", None, True, False, (1,), [1, 2]]),
)
pieces = st.one_of(
    st.text(max_size=8), st.sampled_from(["\ud800", "\udfff", "{{", "}}", "{%", "%}", "\x00", "/", " x "])
)
texts = st.lists(pieces, max_size=5).map("".join)
clean_texts = st.text(max_size=30)  # what a polars frame can hold (no lone surrogates)


def succeeds_or_refuses(call, *args: Any, **kwargs: Any) -> Any:
    """The call's result, or None when it raised a WorkbenchError; any other exception fails the sweep."""
    try:
        return call(*args, **kwargs)
    except wb.WorkbenchError:
        return None


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> wb.LLM:
    """A connection to a fake server whose judge always answers a valid grade."""
    server = FakeServer(responder=lambda body: '{"reason": "fine", "score": 3}').start()
    yield wb.connect(
        base_url=server.base_url, model="fake-model", timeout=2.0, data_dir=tmp_path_factory.mktemp("sweep-data")
    )
    server.stop()


@pytest.fixture(scope="module")
def history(llm) -> pl.DataFrame:
    samples = pl.DataFrame({"sample_id": ["a", "b"], "task": ["Add 2 and 2.", "Name a fruit."], "response": ["4", "x"]})
    graded = wb.grade(llm, samples, wb.Rubric("Is it right?"), progress=False)
    return wb.refine(llm, graded, wb.Rubric("Is it right?"), rounds=1, progress=False)


SETTINGS = ["max_concurrency", "max_retries", "timeout", "retry_base_delay", "requests_per_minute", "price_per_million"]


@SWEEP
@given(name=st.sampled_from(SETTINGS), value=numbers)
def test_connect_takes_a_setting_or_refuses_it(llm, name, value):
    connected = succeeds_or_refuses(
        wb.connect, base_url=llm.base_url, model="fake-model", data_dir=llm.settings.data_dir, **{name: value}
    )
    if connected is not None:
        succeeds_or_refuses(connected.with_options, **{name: value})


@SWEEP
@given(
    prompts=st.lists(texts, min_size=1, max_size=3),
    temperature=numbers,
    max_tokens=numbers,
    seed=numbers,
    max_concurrency=numbers,
)
def test_chat_many_answers_every_row_or_refuses_the_batch(llm, prompts, temperature, max_tokens, seed, max_concurrency):
    table = succeeds_or_refuses(
        llm.chat_many,
        prompts,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        max_concurrency=max_concurrency,
        progress=False,
    )
    if table is not None:  # one row per request, each answered or with its error
        assert table.height == len(prompts)
        assert all(
            (response is None) != (error is None)
            for response, error in zip(table["response"], table["error"], strict=True)
        )


@SWEEP
@given(template=texts, system=st.one_of(st.none(), texts), values=st.lists(texts, min_size=1, max_size=3), n=numbers)
def test_prompt_grid_and_generate(llm, template, system, values, n):
    prompt = succeeds_or_refuses(wb.Prompt, template, system=system)
    grid = succeeds_or_refuses(wb.grid, x=values)
    if prompt is not None and grid is not None:
        succeeds_or_refuses(prompt.render, {"x": values[0]})
        succeeds_or_refuses(wb.generate, llm, prompt, grid, n=n, temperature=0.5, progress=False)
        succeeds_or_refuses(wb.estimate, prompt, grid, n=n, model=template)


@SWEEP
@given(
    n=numbers, seed=numbers, axes=st.dictionaries(clean_texts, st.lists(st.one_of(clean_texts, numbers), max_size=3))
)
def test_grids_are_made_or_refused(n, seed, axes):
    succeeds_or_refuses(wb.grid, **axes)
    succeeds_or_refuses(wb.sample_grid, n, seed=seed, **axes)


@SWEEP
@given(
    criteria=texts,
    low=numbers,
    high=numbers,
    level=numbers.filter(lambda v: not isinstance(v, list)),
    score=numbers,
    votes=numbers,
)
def test_rubrics_are_built_or_refused_and_grade(llm, criteria, low, high, level, score, votes):
    rubric = succeeds_or_refuses(
        wb.Rubric, criteria, scale=(low, high), levels={level: "a level"}, examples=[{"response": "x", "score": score}]
    )
    if rubric is not None:
        assert len(rubric.values) <= 101 and rubric.instructions()
        frame = pl.DataFrame({"sample_id": ["a"], "task": ["Add 2 and 2."], "response": ["4"]})
        succeeds_or_refuses(wb.grade, llm, frame, rubric, votes=votes, progress=False)


@SWEEP
@given(threshold=numbers, round_number=numbers, rounds=numbers)
def test_thresholds_and_rounds_of_a_history(llm, history, threshold, round_number, rounds):
    succeeds_or_refuses(wb.keep, history, min_score=threshold)
    succeeds_or_refuses(wb.per_round, history, pass_at=threshold)
    succeeds_or_refuses(wb.snapshot, history, round_number)
    graded = history.filter(pl.col("round") == 0).drop("lineage_id", "stop_reason", "critique")
    succeeds_or_refuses(wb.refine, llm, graded, wb.Rubric("Is it right?"), rounds=rounds, stop_at=threshold)


labels = st.lists(st.one_of(st.integers(-3, 3), clean_texts, st.none(), st.floats(allow_nan=True)), max_size=6)


@SWEEP
@given(left=labels, right=labels, weights=st.one_of(st.none(), st.sampled_from(["linear", "quadratic"]), texts))
def test_cohen_kappa_measures_or_refuses(left, right, weights):
    kappa = succeeds_or_refuses(wb.cohen_kappa, left, right, weights=weights)
    assert kappa is None or kappa <= 1.0


@SWEEP
@given(name=st.sampled_from(["arithmetic", "comparison", "ifeval"]), n=numbers, difficulty=numbers, train=numbers)
def test_task_items_are_drawn_or_refused_with_the_count(name, n, difficulty, train):
    items = succeeds_or_refuses(tasks.items, name, n, difficulty=difficulty)
    if items is not None:
        assert items["prompt"].n_unique() == items.height == n
    succeeds_or_refuses(split_items, name, train, 10)


@SWEEP
@given(pairs=numbers, n=numbers, words=st.lists(clean_texts, min_size=1, max_size=4))
def test_curation_measures_or_refuses(pairs, n, words):
    frame = pl.DataFrame({"response": words})
    succeeds_or_refuses(wb.diversity, frame, pairs=pairs)
    succeeds_or_refuses(wb.contamination, frame, words, n=n)


EXPORTS = [wb.export.parquet, wb.export.jsonl, wb.export.openai_chat, wb.export.dataset_card]
_exported = itertools.count()


@SWEEP
@given(export=st.sampled_from(EXPORTS), name=texts, answers=st.lists(clean_texts, min_size=1, max_size=3))
def test_exports_write_the_whole_file_or_leave_the_earlier_one(tmp_path_factory, export, name, answers):
    folder = tmp_path_factory.getbasetemp() / f"exports-{next(_exported)}"
    folder.mkdir()
    earlier = folder / "earlier.out"
    earlier.write_text("the earlier good file")
    frame = pl.DataFrame({"task": ["Say something."] * len(answers), "response": answers})
    for target in (folder / name, earlier):
        written = succeeds_or_refuses(export, frame, target)
        left = sorted(path.name for path in folder.rglob("*") if path.is_file())
        assert not [leftover for leftover in left if leftover.endswith(".tmp")], left
        if written is None:
            assert earlier.read_text() == "the earlier good file"
        else:
            assert target.is_file() and target.stat().st_size > 0


@SWEEP
@given(
    page_size=numbers,
    pass_at=numbers,
    max_chars=numbers,
    low=numbers,
    high=numbers,
    name=texts,
    weights=st.one_of(st.none(), st.sampled_from(["linear", "quadratic"]), texts),
)
def test_views_and_agreement_open_or_refuse(
    history, tmp_path_factory, page_size, pass_at, max_chars, low, high, name, weights
):
    folder = tmp_path_factory.mktemp("views")
    explorer = succeeds_or_refuses(
        wb.explore, history, page_size=page_size, pass_at=pass_at, max_chars=max_chars, name=name, marks_dir=folder
    )
    if explorer is not None:
        succeeds_or_refuses(explorer.state.mark, history["sample_id"][0], "keep")
    labeler = succeeds_or_refuses(wb.Labeler, history, scale=(low, high), name=name, labels_dir=folder)
    if labeler is not None:
        succeeds_or_refuses(labeler.label, int(labeler.score_buttons[0].description))
    succeeds_or_refuses(wb.agreement, history.with_columns(other=pl.col("score")), "score", "other", weights=weights)
    assert not [path for path in folder.rglob("*.tmp")]
