"""Exports read back and validated."""

from __future__ import annotations

import json

import polars as pl
import pytest

import workbench as wb


def dataset() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ["a", "b"],
            "round": [0, 1],
            "prompt_hash": ["abc123", "abc123"],
            "messages": [json.dumps([{"role": "user", "content": "Write a problem about apples."}])] * 2,
            "params": ['{"temperature": 0.8}'] * 2,
            "response": ["Tom has 3 apples...", "A train leaves..."],
            "score": [4.0, 5.0],
            "model": ["smol", "smol"],
            "judge": ["smol", "smol"],
        }
    )


def test_parquet_and_jsonl_read_back_equal(tmp_path):
    frame = dataset()
    assert pl.read_parquet(wb.export.parquet(frame, tmp_path / "out" / "d.parquet")).equals(frame)
    assert pl.read_ndjson(wb.export.jsonl(frame, tmp_path / "d.jsonl")).equals(frame)
    lines = (tmp_path / "s.jsonl").read_text() if wb.export.jsonl(frame, tmp_path / "s.jsonl", ["response"]) else ""
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"response": "Tom has 3 apples..."},
        {"response": "A train leaves..."},
    ]


def test_openai_chat_jsonl_has_one_valid_example_a_line(tmp_path):
    path = wb.export.openai_chat(dataset(), tmp_path / "chat.jsonl", system="You write math problems.")
    examples = [json.loads(line) for line in path.read_text().splitlines()]
    assert examples[0] == {
        "messages": [
            {"role": "system", "content": "You write math problems."},
            {"role": "user", "content": "Write a problem about apples."},
            {"role": "assistant", "content": "Tom has 3 apples..."},
        ]
    }
    assert len(examples) == 2 and wb.export.validate_chat_jsonl(path) == []


def test_an_empty_assistant_turn_is_refused_and_named(tmp_path):
    frame = dataset().with_columns(response=pl.Series(["fine", "  "]))
    with pytest.raises(wb.InputError, match="line 2: an empty assistant message"):
        wb.export.openai_chat(frame, tmp_path / "chat.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"messages": [{"role": "robot", "content": "hi"}]}\nnot json\n')
    assert wb.export.validate_chat_jsonl(tmp_path / "bad.jsonl") == [
        "line 1: a message has role 'robot' (allowed: system, user, assistant)",
        "line 1: it does not end with an assistant message",
        "line 2 is not JSON",
    ]


def test_a_hugging_face_dataset_round_trips(tmp_path):
    dataset_ = wb.export.hf_dataset(dataset(), tmp_path / "hf")
    assert dataset_.num_rows == 2 and dataset_["response"] == dataset()["response"].to_list()
    import datasets

    assert datasets.load_from_disk(str(tmp_path / "hf"))["score"] == [4.0, 5.0]


def test_the_dataset_card_says_where_the_data_came_from(tmp_path):
    kept, report = wb.keep(dataset(), min_score=4.5)
    card = wb.export.dataset_card(kept, tmp_path / "card.md", title="Apples", history=dataset(), filters=report)
    assert card.startswith("# Apples\n") and (tmp_path / "card.md").read_text() == card
    for expected in (
        "- rows in this dataset: 1",
        "- rows generated and revised in all: 2",
        "- refinement rounds: 1",
        "prompt templates (hash): abc123",
        "Write a problem about apples.",
        "- generator: smol",
        "- judge: smol",
        "| score below 4.5 | 1 | 1 |  |",
        "`response`",
    ):
        assert expected in card


def test_an_empty_frame_is_not_exported(tmp_path):
    with pytest.raises(wb.InputError, match="nothing to export"):
        wb.export.parquet(dataset().clear(), tmp_path / "x.parquet")
