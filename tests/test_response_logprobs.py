"""Logprobs in the response table: asked for, returned, cached, and read back from an older cache file."""

from __future__ import annotations

import json
import sqlite3

import polars as pl

import workbench as wb

SCRIPTED = {
    "content": [
        {
            "token": "Yes",
            "logprob": -0.25,
            "bytes": [89, 101, 115],
            "id": 7,
            "top_logprobs": [
                {"token": "Yes", "logprob": -0.25, "bytes": [89, 101, 115], "id": 7},
                {"token": "No", "logprob": -1.5, "bytes": [78, 111], "id": 9},
            ],
        },
        {"token": "!", "logprob": -0.01, "bytes": [33], "top_logprobs": [{"token": "!", "logprob": -0.01}]},
    ]
}
EXPECTED = [
    {
        "token": "Yes",
        "logprob": -0.25,
        "top_logprobs": [{"token": "Yes", "logprob": -0.25}, {"token": "No", "logprob": -1.5}],
    },
    {"token": "!", "logprob": -0.01, "top_logprobs": [{"token": "!", "logprob": -0.01}]},
]


def scripted(body: dict) -> str | dict:
    """Logprobs only when the request asks for them, as a real server does."""
    return {"content": "Yes!", "logprobs": SCRIPTED} if body.get("logprobs") else "Yes!"


def test_logprobs_round_trip_through_chat_many_and_the_cache(fake_server, connect_to):
    server = fake_server(responder=scripted)
    llm = connect_to(server)

    table = llm.chat_many(["Is it?"], logprobs=True, top_logprobs=2, progress=False)
    assert table.schema == pl.Schema(wb.RESPONSE_COLUMNS)
    assert json.loads(table["logprobs"][0]) == EXPECTED

    again = llm.chat_many(["Is it?"], logprobs=True, top_logprobs=2, progress=False)
    assert server.stats.received == 1 and again["cached"][0]
    assert json.loads(again["logprobs"][0]) == EXPECTED


def test_logprobs_are_null_when_not_asked_for(fake_server, connect_to):
    llm = connect_to(fake_server(responder=scripted))
    table = llm.chat_many(["Is it?"], progress=False)
    assert table["response"][0] == "Yes!" and table["logprobs"][0] is None


def test_a_cache_file_from_before_logprobs_still_opens_and_keeps_its_rows(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)
    first = llm.chat_many(["Hello"], progress=False)
    path = llm.cache.path
    llm.cache.close()  # the next connection opens the file afresh
    _drop_logprobs_column(path)

    again = connect_to(server).chat_many(["Hello"], progress=False)
    assert again["cached"][0] and again["response"][0] == first["response"][0] and again["logprobs"][0] is None
    with sqlite3.connect(path) as db:
        assert {"logprobs", "price_factor"} <= {row[1] for row in db.execute("PRAGMA table_info(responses)")}


def _drop_logprobs_column(path) -> None:
    """Make the file look like one of the first release, before the logprobs and price_factor columns."""
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE responses DROP COLUMN logprobs")
        db.execute("ALTER TABLE responses DROP COLUMN price_factor")
        assert not {"logprobs", "price_factor"} & {row[1] for row in db.execute("PRAGMA table_info(responses)")}
