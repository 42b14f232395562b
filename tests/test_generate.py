"""wb.generate against the loopback fake server: the run table, the cache, structured output."""

from __future__ import annotations

import asyncio
import json

import polars as pl
import pytest
from pydantic import BaseModel

import workbench as wb

PROMPT = wb.Prompt("Write a {{level}} problem about {{topic}}.")


class Problem(BaseModel):
    question: str
    answer: int


def test_a_two_axis_grid_with_three_samples_gives_twelve_distinct_rows(fake_server, connect_to):
    llm = connect_to(fake_server())
    table = wb.generate(llm, PROMPT, wb.grid(topic=["apples", "trains"], level=["easy", "hard"]), n=3, progress=False)

    assert table.height == 12 and table["sample_id"].n_unique() == 12
    assert table.columns[:6] == ["sample_id", "round", "parent_id", "prompt_hash", "topic", "level"]
    assert table["round"].unique().to_list() == [0] and table["parent_id"].null_count() == 12
    assert table["prompt_hash"].unique().to_list() == [PROMPT.hash]
    assert table["sample_index"].to_list() == [0, 1, 2] * 4
    assert table["response"][0] == "echo: Write a easy problem about apples."
    assert json.loads(table["messages"][0]) == [{"role": "user", "content": "Write a easy problem about apples."}]
    assert set(wb.GENERATION_COLUMNS) <= set(table.columns)


def test_running_generate_again_is_served_from_the_cache(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)
    first = wb.generate(llm, PROMPT, wb.grid(topic=["a", "b"], level=["x"]), n=2, temperature=0.5, progress=False)
    received = server.stats.received

    again = wb.generate(llm, PROMPT, wb.grid(topic=["a", "b"], level=["x"]), n=2, temperature=0.5, progress=False)

    assert server.stats.received == received and again["cached"].all()
    assert again["sample_id"].to_list() == first["sample_id"].to_list()
    assert json.loads(again["params"][0]) == {"temperature": 0.5}


def test_a_missing_variable_fails_before_anything_is_sent(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)
    with pytest.raises(wb.PromptError, match=r"'level', which row 0 does not define"):
        wb.generate(llm, PROMPT, [{"topic": "a"}], progress=False)
    rows = pl.DataFrame({"topic": ["a", "b"], "level": ["easy", None]})
    with pytest.raises(wb.PromptError, match=r"'level', which row 1 does not define"):  # a null is a missing value
        wb.generate(llm, PROMPT, rows, progress=False)
    assert server.stats.received == 0


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_n_below_one_is_refused(fake_server, connect_to, n):
    with pytest.raises(wb.InputError, match="n is the number of samples"):
        wb.generate(connect_to(fake_server()), PROMPT, wb.grid(topic=["a"], level=["b"]), n=n)


def test_an_empty_variables_table_is_refused(fake_server, connect_to):
    with pytest.raises(wb.InputError, match="variables table is empty"):
        wb.generate(connect_to(fake_server()), PROMPT, pl.DataFrame({"topic": [], "level": []}))


def structured(body: dict) -> str:
    """Answer as a model under a JSON schema would; a bad answer first when asked about 'stubborn' things."""
    asked = body["messages"][0]["content"]
    repairing = len(body["messages"]) > 1
    if "stubborn" in asked:
        return '{"question": "still no answer"}'
    if "flaky" in asked and not repairing:
        return "not json at all"
    return json.dumps({"question": f"Q about {asked.split()[-1]}", "answer": 7})


def test_a_reply_cut_at_max_tokens_is_repaired_shorter_and_its_error_says_to_raise_the_limit(fake_server, connect_to):
    sent = []

    def cut(body: dict) -> dict:
        sent.append(body["messages"])
        return {"content": '{"question": "a very long question that never', "finish_reason": "length"}

    table = wb.generate(
        connect_to(fake_server(responder=cut)),
        "Problem about {{topic}}",
        {"topic": "rivers"},
        schema=Problem,
        max_tokens=12,
        progress=False,
    )

    assert "cut off at the token limit" in sent[1][-1]["content"]
    assert table["error"][0].endswith("(after one repair; the reply stopped at max_tokens=12: raise max_tokens)")
    assert table["finish_reason"][0] == "length"


def test_structured_output_becomes_columns_and_a_bad_reply_is_repaired_once(fake_server, connect_to):
    server = fake_server(responder=structured)
    llm = connect_to(server)

    table = wb.generate(
        llm, "Problem about {{topic}}", wb.grid(topic=["apples", "flaky", "stubborn"]), schema=Problem, progress=False
    )

    assert table.columns.index("question") == table.columns.index("response") + 1
    assert table.select("question", "answer", "repaired").to_dicts() == [
        {"question": "Q about apples", "answer": 7, "repaired": False},
        {"question": "Q about flaky", "answer": 7, "repaired": True},
        {"question": None, "answer": None, "repaired": True},
    ]
    assert table["error"][2].startswith("ReplyInvalid: answer: Field required (after one repair)")
    assert table["error"][:2].to_list() == [None, None]
    assert server.stats.received == 5  # three first replies, two repairs


def test_a_pydantic_schema_is_sent_without_strict_mode(fake_server, connect_to):
    seen = []
    server = fake_server(
        responder=lambda body: seen.append(body["response_format"]) or '{"question": "q", "answer": 1}'
    )
    wb.generate(connect_to(server), "Hi", schema=Problem, progress=False)
    assert seen[0]["json_schema"]["name"] == "Problem" and seen[0]["json_schema"]["strict"] is False
    assert seen[0]["json_schema"]["schema"]["required"] == ["question", "answer"]


def test_a_json_schema_dict_is_sent_as_response_format_and_checked(fake_server, connect_to):
    seen = []
    server = fake_server(responder=lambda body: seen.append(body["response_format"]) or '{"mood": "calm"}')
    llm = connect_to(server)
    schema = {
        "type": "object",
        "properties": {"mood": {"type": "string", "enum": ["calm", "angry"]}},
        "required": ["mood"],
        "additionalProperties": False,
    }

    table = wb.generate(llm, "How do you feel?", schema=schema, progress=False)

    assert table["mood"].to_list() == ["calm"]
    assert seen[0] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


@pytest.mark.parametrize("schema", [{"type": "objekt"}, {"properties": {"a": {"type": 5}}}, "not a schema"])
def test_a_schema_that_is_not_a_valid_json_schema_is_refused(fake_server, connect_to, schema):
    server = fake_server()
    with pytest.raises(wb.SchemaError):
        wb.generate(connect_to(server), "Hi", schema=schema)
    assert server.stats.received == 0


def test_agenerate_is_the_async_twin(fake_server, connect_to):
    llm = connect_to(fake_server())
    table = asyncio.run(wb.agenerate(llm, "Say {{word}}", [{"word": "hi"}, {"word": "yo"}], progress=False))
    assert table["response"].to_list() == ["echo: Say hi", "echo: Say yo"]
