"""A seed means "reproducible", never "identical" and never "correlated": each request gets its own stream."""

from __future__ import annotations

import json

import polars as pl
import pytest
from test_scale_batch import MODEL, batch_api, connect, until_done  # noqa: F401  (batch_api is a fixture)

import workbench as wb
from workbench.grading import tasks
from workbench.grading.strategies import compare_strategies
from workbench.models.requests import request_seed

POEM = "Write a one-line poem about {{t}}."
TOPICS = [{"t": "rain"}, {"t": "snow"}]


class SeedLog:
    """A responder that answers with the seed each request arrived with, and keeps every body it saw."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def __call__(self, body: dict) -> str:
        self.bodies.append(body)
        return f"seed {body.get('seed')}"

    def seeds(self) -> list[int | None]:
        return [body.get("seed") for body in self.bodies]


def test_every_sample_of_every_item_gets_its_own_seed_and_a_rerun_sends_the_same_ones(fake_server, connect_to):
    log = SeedLog()
    llm = connect_to(fake_server(responder=log))

    first = wb.generate(llm, POEM, TOPICS, n=4, temperature=0.9, seed=7, progress=False)
    sent = dict(zip(first["request_id"], log.seeds(), strict=False))  # in flight order, so match by reply
    seeds = [int(reply.split()[1]) for reply in first["response"]]

    assert len(set(seeds)) == 8  # 2 items x 4 samples: 8 streams, none shared
    assert seeds == [request_seed(key) for key in first["request_id"]]
    assert all(0 <= seed < 2**31 for seed in seeds) and len(sent) == 8
    again = wb.generate(llm, POEM, TOPICS, n=4, temperature=0.9, seed=7, progress=False, cache=False)
    assert sorted(log.seeds()[8:]) == sorted(seeds)  # sent again: the same seeds
    assert again.select("sample_id", "response").equals(first.select("sample_id", "response"))


def test_the_same_call_twice_gives_the_same_rows_from_the_cache(fake_server, connect_to):
    server = fake_server(responder=SeedLog())
    llm = connect_to(server)
    first = wb.generate(llm, POEM, TOPICS, n=3, temperature=0.9, seed=7, progress=False)
    received = server.stats.received
    again = wb.generate(llm, POEM, TOPICS, n=3, temperature=0.9, seed=7, progress=False)
    assert server.stats.received == received and again["cached"].all()
    assert again.drop("cached", "attempts", "latency_s").equals(first.drop("cached", "attempts", "latency_s"))


def test_another_run_seed_gives_other_streams_and_no_seed_sends_none(fake_server, connect_to):
    log = SeedLog()
    llm = connect_to(fake_server(responder=log))
    seven = wb.generate(llm, POEM, TOPICS, n=2, temperature=0.9, seed=7, progress=False)
    eight = wb.generate(llm, POEM, TOPICS, n=2, temperature=0.9, seed=8, progress=False)
    assert not set(seven["response"]) & set(eight["response"])
    unseeded = wb.generate(llm, POEM, TOPICS, n=2, temperature=0.9, progress=False)
    assert unseeded["response"].to_list() == ["seed None"] * 4
    assert seven["params"][0] == '{"seed": 7, "temperature": 0.9}'  # the run table shows the seed as given


def test_the_strategies_never_give_two_samples_one_stream(fake_server, connect_to):
    log = SeedLog()
    llm = connect_to(fake_server(responder=log))
    items = tasks.get("arithmetic").items(5, seed=0)
    rows = compare_strategies(llm, "arithmetic", items, strategies=["best_of_verifier"], budget=4, progress=False)
    seeds = [int(reply.split()[1]) for reply in rows["response"]]
    assert len(seeds) == 20 and len(set(seeds)) == 20  # 5 items x 4 samples
    assert rows["seed"].unique().to_list() == [0]


def test_a_batch_job_line_carries_the_seed_the_online_request_would(batch_api, data_dir, tmp_path):  # noqa: F811
    server = batch_api()
    table = until_done(
        lambda: connect(server, data_dir).chat_many(
            ["a", "a", "b"], seed=3, temperature=0.9, progress=False, via="batch"
        )
    )
    lines = [json.loads(text) for f in server.files.values() for text in f["bytes"].decode().splitlines()]
    lines = [line for line in lines if "body" in line]  # the input file's lines (not the results)
    assert sorted(line["body"]["seed"] for line in lines) == sorted(request_seed(k) for k in table["request_id"])
    assert len({line["body"]["seed"] for line in lines}) == 3

    log = SeedLog()
    server.responder = log
    connect(server, tmp_path / "online").chat_many(["a", "a", "b"], seed=3, temperature=0.9, progress=False)
    assert sorted(log.seeds()) == sorted(line["body"]["seed"] for line in lines)


@pytest.mark.local_model
def test_n_samples_of_one_prompt_with_a_seed_differ_on_the_embedded_model(local_llm):
    out = wb.generate(local_llm, POEM, TOPICS, n=4, temperature=0.9, seed=7, max_tokens=30, progress=False)
    for topic in ("rain", "snow"):
        poems = out.filter(pl.col("t") == topic)["response"].to_list()
        assert len(set(poems)) > 1, f"the 4 samples for {topic} came out identical: {poems[0]!r}"
