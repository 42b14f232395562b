"""``llm.embed``: embeddings with the same guarantees as ``chat_many`` — retried, cached, costed, in order."""

from __future__ import annotations

import pytest
from conftest import Faults

import workbench as wb


def test_a_failing_embedding_request_is_retried_and_its_answer_kept(fake_server, connect_to):
    server = fake_server(embeddings=True, faults=Faults(scripted={"bbbb": ("500", "drop")}))
    llm = connect_to(server)

    table = llm.embed(["aaaa", "bbbb", "aaaa"], progress=False)

    assert table["text"].to_list() == ["aaaa", "bbbb", "aaaa"]
    assert table["error"].null_count() == 3
    assert table["attempts"].to_list() == [1, 3, 1]  # bbbb: a 500, a dropped connection, then its answer
    assert table["embedding"][0].to_list() == table["embedding"][2].to_list()  # the repeated text was sent once
    assert server.stats.answered == 2 and server.stats.faults["500"] == 1 and server.stats.faults["drop"] == 1


def test_embeddings_come_from_the_cache_on_the_second_call(fake_server, connect_to):
    server = fake_server(embeddings=True)
    llm = connect_to(server)
    first = llm.embed(["one text", "another"], progress=False)
    sent = server.stats.received

    again = llm.embed(["one text", "another"], progress=False)

    assert server.stats.received == sent
    assert again["cached"].all() and again["attempts"].to_list() == [0, 0]
    assert again["embedding"].to_list() == first["embedding"].to_list()
    # a chat request with the same text is another request: embeddings never share its cache key
    assert llm.chat_many(["one text"], progress=False)["request_id"][0] not in first["request_id"].to_list()


def test_an_endpoint_without_embeddings_gives_error_rows_not_a_crash(fake_server, connect_to):
    llm = connect_to(fake_server(), max_retries=0)
    table = llm.embed(["a", "b"], progress=False)
    assert table["embedding"].null_count() == 2
    assert table["error"].str.contains("404").all()


def test_embed_refuses_what_it_cannot_send(fake_server, connect_to):
    llm = connect_to(fake_server(embeddings=True))
    with pytest.raises(wb.InputError, match="embed expects a list of texts"):
        llm.embed("one string")
    with pytest.raises(wb.InputError, match=r"text 1 is None: embed takes non-empty strings"):
        llm.embed(["fine", None])


def test_diversity_reads_its_embeddings_through_the_client_cache(fake_server, connect_to):
    import polars as pl

    server = fake_server(embeddings=True)
    llm = connect_to(server)
    frame = pl.DataFrame({"response": ["aaaa", "bbbb", "aaaa"]})
    first = wb.diversity(frame, embeddings=llm)["embedding_spread"][0]
    sent = server.stats.received
    assert wb.diversity(frame, embeddings=llm)["embedding_spread"][0] == pytest.approx(first)
    assert server.stats.received == sent
