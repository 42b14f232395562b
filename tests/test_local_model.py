"""The embedded model, for real: llama.cpp's llama-server with SmolLM2-135M on loopback."""

from __future__ import annotations

import json

import pytest

import workbench as wb

pytestmark = pytest.mark.local_model


def test_the_embedded_model_answers_a_real_completion(local_llm):
    row = local_llm.chat_many(
        ["What is the capital of France? Answer in one word."], max_tokens=16, temperature=0, progress=False
    ).row(0, named=True)
    assert row["error"] is None
    assert "paris" in row["response"].lower()
    assert row["tokens_in"] > 5 and 0 < row["tokens_out"] <= 16
    assert row["cost_usd"] == 0.0 and row["model"] == "SmolLM2-135M-Instruct.Q4_1"


def test_the_server_is_started_once_and_reused(local_llm, tmp_path):
    again = wb.connect(data_dir=tmp_path)
    assert again.base_url == local_llm.base_url


def test_json_schema_constrained_output_parses(local_llm):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
        "required": ["city", "score"],
    }
    table = local_llm.chat_many(
        ["Name a city and rate it from 1 to 5."] * 2,
        response_format=local_llm.json_format(schema),
        max_tokens=160,  # the grammar allows runs of blanks; room enough that every reply ends (see test_llama_server)
        temperature=0.7,
        progress=False,
    )
    assert table["finish_reason"].to_list() == ["stop", "stop"]
    for text in table["response"]:
        value = json.loads(text)
        assert isinstance(value["city"], str) and value["score"] in {1, 2, 3, 4, 5}


def test_the_cache_key_does_not_depend_on_the_servers_random_port(local_llm):
    first = local_llm.chat_many(["Say yes."], max_tokens=4, progress=False)
    moved = wb.LLM(
        backend="local",
        base_url="http://127.0.0.1:1/v1",
        model=local_llm.model,
        endpoint=local_llm.endpoint,
        settings=local_llm.settings,
        price=(0.0, 0.0),
    )
    again = moved.chat_many(["Say yes."], max_tokens=4, progress=False)
    assert again["cached"][0] and again["response"][0] == first["response"][0]
