"""Bad input as a careful new user would try it: nothing lost, nothing leaked, nothing silently wrong.

One test per finding of issue 20; each asserts the clear error (a ``WorkbenchError`` saying what to do) or
the right result.
"""

from __future__ import annotations

import json
import logging
import math

import polars as pl
import pytest
from conftest import SECRET, Faults

import workbench as wb
from workbench.errors import StorageError, redact
from workbench.grading import tasks
from workbench.training.self_train import self_train, split_items

RUBRIC = wb.Rubric("Is it right?", scale=(1, 5))


def good_frame() -> pl.DataFrame:
    return pl.DataFrame({"sample_id": ["a", "b"], "task": ["Add 2 and 2.", "Add 3 and 4."], "response": ["4", "7"]})


def graded_frame(fake_server, connect_to) -> tuple[wb.LLM, pl.DataFrame]:
    llm = connect_to(fake_server(responder=lambda body: '{"reason": "fine", "score": 3}'))
    return llm, wb.grade(llm, good_frame(), RUBRIC, progress=False)


# --- Loses data or leaks -------------------------------------------------------------------------------
EXPORTS = {
    "parquet": (wb.export.parquet, "kept.parquet"),
    "jsonl": (wb.export.jsonl, "kept.jsonl"),
    "openai_chat": (wb.export.openai_chat, "kept.chat.jsonl"),
    "dataset_card": (wb.export.dataset_card, "kept.md"),
}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_a_failed_export_leaves_the_earlier_good_file_as_it_was(tmp_path, name):
    export, file_name = EXPORTS[name]
    target = tmp_path / file_name
    export(good_frame(), target)
    before = target.read_bytes()
    broken = (  # what each format cannot take: an empty answer (chat data), or a column of Python objects
        good_frame().with_columns(pl.Series("response", ["4", ""]))
        if name == "openai_chat"
        else good_frame().with_columns(pl.Series("history", [object(), object()], dtype=pl.Object))
    )
    if name == "dataset_card":
        broken = pl.DataFrame()  # an empty frame: nothing to describe
    with pytest.raises(wb.InputError):
        export(broken, target)
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [file_name]  # no temporary file left behind


def test_a_failed_hugging_face_export_keeps_the_earlier_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    target = tmp_path / "kept-dataset"
    wb.export.hf_dataset(good_frame(), target)
    with pytest.raises(wb.InputError):
        wb.export.hf_dataset(pl.DataFrame(), target)
    assert datasets.load_from_disk(str(target))["response"] == ["4", "7"]
    wb.export.hf_dataset(good_frame().with_columns(pl.lit("again").alias("note")), target)  # swapped in whole
    assert datasets.load_from_disk(str(target))["note"] == ["again", "again"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept-dataset"]


def test_a_key_pasted_into_api_key_env_is_refused_without_being_echoed(tmp_path):
    config = tmp_path / "workbench.toml"
    config.write_text(f'api_key_env = "{SECRET}"\n')
    with pytest.raises(wb.ConfigError, match="api_key_env holds what looks like an API key") as caught:
        wb.connect("openai", config_file=config)
    assert SECRET not in str(caught.value)


def test_no_error_row_error_or_log_record_shows_a_key(caplog, monkeypatch):
    monkeypatch.setenv("MY_GATEWAY_TOKEN", "a-token-without-a-known-shape-42")
    error = wb.InputError(f"the server said: bad key {SECRET}, and a-token-without-a-known-shape-42")
    assert SECRET not in str(error) and "a-token-without-a-known-shape-42" not in str(error)
    with caplog.at_level(logging.WARNING, logger="workbench"):
        logging.getLogger("workbench").warning("retrying with %s", SECRET)
    assert SECRET not in caplog.text and "[redacted]" in caplog.text
    from workbench.views import report

    assert report.redact is redact  # reports hide keys with the same one function


# price_per_million=(1,): tests/test_pricing.py::test_connect_refuses_a_price_that_is_not_two_or_three_numbers


# --- Silently wrong -------------------------------------------------------------------------------------
def test_a_rubric_scale_is_whole_numbers_and_small_enough_for_a_judge_schema():
    with pytest.raises(wb.InputError, match=r"two whole numbers \(min, max\).*\(1\.7, 4\.9\)"):
        wb.Rubric("c", scale=(1.7, 4.9))
    with pytest.raises(wb.InputError, match=r"at most 101 points.*1,000,001"):
        wb.Rubric("c", scale=(0, 10**6))
    percent = wb.Rubric("c", scale=(0, 100))
    assert len(json.dumps(percent.json_schema())) < 2_000 and wb.Rubric("c", scale=(1.0, 5.0)).scale == (1, 5)


def test_nan_in_a_grid_is_a_missing_value_like_a_null(fake_server, connect_to):
    llm = connect_to(fake_server())
    for missing in (None, math.nan):
        with pytest.raises(wb.PromptError, match=r"the template uses the variable 'x', which row 0 does not define"):
            wb.generate(llm, "about {{x}}.", pl.DataFrame({"x": [missing]}, schema={"x": pl.Float64}), progress=False)


def test_cohen_kappa_needs_labels_paired_one_to_one():
    with pytest.raises(wb.InputError, match="at least one pair of labels"):
        wb.cohen_kappa([], [])
    with pytest.raises(wb.InputError, match=r"as long as each other \(3 and 2\)"):
        wb.cohen_kappa([1, 2, 3], [1, 2])
    assert wb.cohen_kappa([1, 2, 3], [1, 2, 3]) == 1.0


def test_an_unknown_generation_parameter_is_refused_and_extra_body_carries_a_servers_own(fake_server, connect_to):
    bodies = []
    llm = connect_to(fake_server(responder=lambda body: bodies.append(body) or "ok"))
    with pytest.raises(wb.InputError, match=r"unknown generation parameter 'temprature'. Known: .*temperature"):
        llm.chat_many(["Hi"], temprature=0.9, progress=False)
    with pytest.raises(wb.InputError, match="extra_body="):
        wb.generate(llm, "Hi", top_k=40, progress=False)
    with pytest.raises(wb.InputError, match=r"n= is not a generation parameter.*wb.generate\(..., n=k\)"):
        llm.chat_many(["Hi"], n=3, progress=False)
    assert bodies == []  # nothing was sent
    table = llm.chat_many(["Hi"], temperature=0.5, extra_body={"top_k": 40, "min_p": 0.1}, progress=False)
    assert table["error"][0] is None
    assert (bodies[0]["temperature"], bodies[0]["top_k"], bodies[0]["min_p"]) == (0.5, 40, 0.1)
    assert "extra_body" not in bodies[0]


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True])
def test_max_concurrency_must_be_a_positive_whole_number(fake_server, connect_to, bad):
    llm = connect_to(fake_server())
    with pytest.raises(wb.InputError, match=f"max_concurrency must be a positive whole number, got {bad!r}"):
        llm.chat_many(["Hi"], max_concurrency=bad, progress=False)
    with pytest.raises(wb.ConfigError, match="max_concurrency must be a positive whole number"):
        connect_to(fake_server(), max_concurrency=bad)


@pytest.mark.parametrize("bad", [2.5, -1, "4"])
def test_max_retries_must_be_a_whole_number_of_zero_or_more(fake_server, connect_to, bad):
    with pytest.raises(wb.ConfigError, match=f"max_retries must be a whole number of 0 or more, got {bad!r}"):
        connect_to(fake_server(), max_retries=bad)


# costs from genai-prices, cached tokens: tests/test_pricing.py


def test_a_task_says_how_many_distinct_items_it_has():
    arithmetic = tasks.get("arithmetic")
    assert arithmetic.capacity("train", 1) == 81 * 3  # 9 x 9 sums, each in 3 phrasings
    with pytest.raises(wb.InputError, match=r"has 243 distinct train items at difficulty 1.*1,000 were asked"):
        arithmetic.items(1000)
    with pytest.raises(wb.InputError, match=r"has 147 training items .* 1,000 were asked for. Ask for train=147"):
        split_items("arithmetic", 1000, 40)
    train, _ = split_items("arithmetic", 147, 40)
    assert train["prompt"].n_unique() == 147


def test_self_train_asked_for_more_items_than_a_task_has_stops_before_any_model_starts():
    def no_server(path):
        raise AssertionError("no model should be started for an impossible request")

    with pytest.raises(wb.InputError, match=r"1,000,000,000 were asked for"):
        self_train("arithmetic", train_items=10**9, serve=no_server)


# --- Unclear errors -------------------------------------------------------------------------------------
def test_none_where_a_connection_rubric_or_frame_belongs_says_what_belongs_there(fake_server, connect_to):
    llm, graded = graded_frame(fake_server, connect_to)
    with pytest.raises(wb.InputError, match=r"generate's first argument must be a connection: llm = wb.connect\(\)"):
        wb.generate(None, "Name a fruit.")
    with pytest.raises(wb.InputError, match=r"refine's rubric must be a wb.Rubric"):
        wb.refine(llm, graded, None)
    with pytest.raises(wb.InputError, match=r"compare's rubric must be a wb.Rubric"):
        wb.compare(llm, graded, graded, None)
    with pytest.raises(wb.InputError, match=r"the Labeler's frame must be a polars frame"):
        wb.Labeler(None)
    with pytest.raises(wb.InputError, match=r"the PromptLab's first argument must be a connection"):
        wb.PromptLab(None)


def test_prompt_examples_and_dotted_names_get_messages_that_show_the_shape():
    with pytest.raises(wb.PromptError, match=r"example 0 is 'a'; each example is a pair \(variables, answer\)"):
        wb.Prompt("{{x}}", examples=["a"])
    with pytest.raises(wb.PromptError, match=r"reads a field its value does not have .*'str object' has no attribute"):
        wb.Prompt("{{ x.y }}").render({"x": "a string"})
    assert wb.Prompt("{{ x.y }}").render({"x": {"y": "ok"}})[-1]["content"] == "ok"


def test_rubric_levels_are_keyed_by_score():
    with pytest.raises(wb.InputError, match=r"rubric levels are keyed by score.*'high' is not a score"):
        wb.Rubric("c", levels={"high": "good"})
    assert wb.Rubric("c", levels={"5": "good"}).levels == {5: "good"}  # as read back from JSON


def test_thresholds_given_as_text_are_refused_by_name(fake_server, connect_to):
    llm, graded = graded_frame(fake_server, connect_to)
    with pytest.raises(wb.InputError, match="stop_at must be a finite number, got '4'"):
        wb.refine(llm, graded, RUBRIC, stop_at="4")
    with pytest.raises(wb.InputError, match="min_score must be a finite number, got '4'"):
        wb.keep(graded, min_score="4")
    history = wb.refine(llm, graded, RUBRIC, rounds=1, progress=False)
    with pytest.raises(wb.InputError, match="pass_at must be a finite number, got '4'"):
        wb.per_round(history, pass_at="4")


def test_snapshot_of_a_graded_frame_says_to_refine_first(fake_server, connect_to):
    _, graded = graded_frame(fake_server, connect_to)
    with pytest.raises(wb.InputError, match=r"snapshot reads the history .*'lineage_id'.*run wb.refine on it first"):
        wb.snapshot(graded, 5)


def test_a_folder_that_cannot_be_written_is_a_storage_error_naming_it(tmp_path, fake_server):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where a folder should be")  # as a read-only folder, refused by the OS on write
    with pytest.raises(StorageError, match=r"cannot write .*not-a-folder.*pass another path"):
        wb.export.jsonl(good_frame(), blocked / "kept.jsonl")
    llm = wb.connect(base_url=fake_server().base_url, model="fake-model", data_dir=blocked / "data")
    with pytest.raises(StorageError, match=r"The response cache lives in data_dir/cache/: connect with data_dir="):
        llm.chat_many(["Hi"], progress=False)
    explorer = wb.explore(good_frame(), marks_dir=blocked / "marks")
    with pytest.raises(StorageError, match="marks_dir="):
        explorer.state.mark("a", "keep")
    assert explorer.state.marks == {"a": "keep"}  # the mark is kept in memory; nothing is lost


def test_evol_instruct_with_no_instructions_names_itself(fake_server, connect_to):
    with pytest.raises(wb.InputError, match=r"Evol-Instruct needs at least one instruction .*instructions= is empty"):
        wb.evol_instruct(connect_to(fake_server()), instructions=[])


def test_a_server_slower_than_the_timeout_suggests_raising_it(fake_server, connect_to):
    llm = connect_to(fake_server(faults=Faults(rate_slow=1.0, slow_seconds=2.0)), timeout=0.3, max_retries=0)
    error = llm.chat_many(["Hi"], progress=False)["error"][0]
    assert "within timeout=0.3 s" in error and "wb.connect(..., timeout=120)" in error


def test_a_lone_surrogate_is_a_row_error_and_the_rest_of_the_batch_is_answered(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)
    table = llm.chat_many(["bad \ud800", "fine"], progress=False)
    assert table["error"][0].startswith("InvalidRequest: the request holds text that is not valid Unicode (\\ud800")
    assert table["response"][1] == "echo: fine" and server.stats.received == 1


@pytest.mark.local_model
def test_a_prompt_longer_than_the_embedded_models_context_names_local_context(tmp_path):
    llm = wb.connect(local_context=256, local_slots=1, data_dir=tmp_path)
    error = llm.chat_many(["word " * 600], max_tokens=8, progress=False)["error"][0]
    assert "exceeds the available context size" in error and "wb.connect(local_context=8192)" in error


def test_a_batch_too_large_to_hold_is_refused_before_it_is_built(fake_server, connect_to):
    llm = connect_to(fake_server())
    with pytest.raises(wb.InputError, match=r"n must be at most 500,000 here, got 1,000,000,000,000: 2 rows times n"):
        wb.generate(llm, "Say {{x}}.", wb.grid(x=["a", "b"]), n=10**12)
    with pytest.raises(wb.InputError, match=r"votes must be at most 1,000,000 here"):
        wb.grade(llm, good_frame().head(1), RUBRIC, votes=10**7)
