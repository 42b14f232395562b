"""The client layer against a real loopback server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

import polars as pl
import pytest
from conftest import SECRET
from fakeserver import Faults

import workbench as wb


def prompts(count: int) -> list[str]:
    return [f"Write sample number {index}." for index in range(count)]


def test_every_row_survives_a_server_that_fails_a_quarter_of_the_time(fake_server, connect_to):
    faults = Faults(rate_429=0.08, rate_500=0.08, rate_drop=0.05, rate_malformed=0.05, rate_slow=0.02, slow_seconds=2)
    server = fake_server(faults=faults, latency=0.005)
    llm = connect_to(server, max_retries=8, timeout=0.5)

    table = llm.chat_many(prompts(300), max_concurrency=32, progress=False)

    assert table.height == 300
    assert table["error"].null_count() == 300, table.filter(pl.col("error").is_not_null())["error"].to_list()
    assert table["response"].to_list() == [f"echo: {text}" for text in prompts(300)]
    assert sum(server.stats.faults.values()) > 40  # the faults really happened
    assert table["attempts"].max() > 1


def test_each_kind_of_fault_is_retried_until_the_request_succeeds(fake_server, connect_to):
    server = fake_server(faults=Faults(first_attempts=("429", "500", "drop", "malformed", "slow"), slow_seconds=2))
    llm = connect_to(server, max_retries=5, timeout=0.5)

    row = llm.chat_many(["Hello"], progress=False).row(0, named=True)

    assert row["response"] == "echo: Hello" and row["error"] is None
    assert row["attempts"] == 6
    assert dict(server.stats.faults) == {"429": 1, "500": 1, "drop": 1, "malformed": 1, "slow": 1}


def test_when_retries_run_out_the_error_is_a_row_and_the_batch_goes_on(fake_server, connect_to):
    # Every distinct request gets three 500s; only "retry me" is asked often enough to get through.
    server = fake_server(faults=Faults(first_attempts=("500", "500", "500")))
    llm = connect_to(server, max_retries=1)

    table = llm.chat_many(["fails", "fails too"], progress=False)
    assert table["error"].to_list() == ["InternalServerError: HTTP 500: internal error"] * 2
    assert table["attempts"].to_list() == [2, 2]
    assert table["response"].null_count() == 2

    rerun = connect_to(server, max_retries=3).chat_many(["fails", "fails too"], progress=False)
    assert rerun["error"].null_count() == 2  # failures are not cached: the next run tries again


def test_retry_after_is_honoured(fake_server, connect_to):
    server = fake_server(faults=Faults(first_attempts=("429",), retry_after=0.6))
    llm = connect_to(server)

    started = time.perf_counter()
    table = llm.chat_many(["Hi"], progress=False)

    assert table["error"][0] is None
    assert time.perf_counter() - started >= 0.6


def test_an_unknown_model_is_recorded_at_once_without_retries(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server, max_retries=4)

    row = llm.chat_many([{"messages": [{"role": "user", "content": "Hi"}], "model": "no-such-model"}], progress=False)

    assert row["attempts"][0] == 1
    assert row["error"][0].startswith("NotFoundError: HTTP 404: The model 'no-such-model' does not exist")
    assert server.stats.received == 1


def test_no_request_is_sent_again_once_its_response_is_stored(fake_server, connect_to):
    server = fake_server(faults=Faults(rate_429=0.1, rate_drop=0.1, seed=3))
    llm = connect_to(server, max_retries=10)

    first = llm.chat_many(prompts(100), progress=False)
    answered = server.stats.answered
    assert answered == 100 and max(server.stats.answered_by_body.values()) == 1

    received = server.stats.received
    again = llm.chat_many(prompts(100), progress=False)
    assert server.stats.received == received  # not one call: the re-run comes wholly from the cache
    assert again["cached"].all() and again["attempts"].sum() == 0
    assert again["response"].to_list() == first["response"].to_list()


def test_identical_prompts_are_distinct_samples_with_stable_ids(fake_server, connect_to):
    llm = connect_to(fake_server())

    table = llm.chat_many(["Name a fruit."] * 3 + ["Name a colour."], progress=False)

    assert table["sample_index"].to_list() == [0, 1, 2, 0]
    assert table["request_id"].n_unique() == 4
    assert (
        llm.chat_many(["Name a fruit."] * 3, progress=False)["request_id"].to_list()
        == table["request_id"][:3].to_list()
    )


def test_every_generation_parameter_is_part_of_the_cache_key(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)

    llm.chat_many(["Hi"], temperature=0.2, progress=False)
    llm.chat_many(["Hi"], temperature=0.9, progress=False)
    llm.chat_many(["Hi"], temperature=0.9, max_tokens=5, progress=False)
    assert server.stats.received == 3
    llm.chat_many(["Hi"], temperature=0.9, max_tokens=5, progress=False)
    assert server.stats.received == 3


def test_cache_false_bypasses_the_cache(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)

    llm.chat_many(["Hi"], progress=False)
    table = llm.chat_many(["Hi"], cache=False, progress=False)

    assert server.stats.received == 2 and not table["cached"][0]


def test_a_cancelled_batch_keeps_its_finished_rows_and_the_rerun_sends_only_the_rest(fake_server, connect_to):
    server = fake_server(latency=0.05)
    llm = connect_to(server, max_concurrency=4)

    async def cancel_midway() -> None:
        task = asyncio.create_task(llm.achat_many(prompts(80), progress=False))
        while len(llm.cache) < 20:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    kept = len(llm.cache)
    assert 20 <= kept < 80

    received = server.stats.received
    table = llm.chat_many(prompts(80), progress=False)
    assert table["cached"].sum() == kept
    assert server.stats.received - received == 80 - kept
    assert table["error"].null_count() == 80


def test_a_keyboard_interrupt_of_the_sync_call_keeps_what_arrived(fake_server, connect_to):
    server = fake_server(latency=0.05)
    llm = connect_to(server, max_concurrency=2)

    def interrupt_when_some_arrived() -> None:
        while len(llm.cache) < 6:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_some_arrived, daemon=True).start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a notebook or a terminal
    try:  # (a library loaded earlier in the same test session may have replaced Python's handler)
        with pytest.raises(KeyboardInterrupt):
            llm.chat_many(prompts(60), progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)

    received = settled(server)  # requests in flight at the interrupt may reach the server a moment later
    kept = len(llm.cache)
    assert 6 <= kept < 60
    assert llm.chat_many(prompts(60), progress=False)["error"].null_count() == 60
    assert server.stats.received - received == 60 - kept


def test_threads_that_open_a_new_cache_at_once_share_one(fake_server, connect_to, tmp_path):
    """A batch and another thread (a progress poll, the interrupt above) both reach for a cache not yet opened."""
    for trial in range(10):
        opened, errors = caches_opened_at_once(connect_to(fake_server(), data_dir=tmp_path / str(trial)), threads=8)
        assert not errors and len({id(cache) for cache in opened}) == 1  # before the lock: two, or 'database is locked'


def caches_opened_at_once(llm, threads: int) -> tuple[list, list]:
    """``llm.cache`` from ``threads`` threads released together: the caches they got, and what they raised."""
    barrier, opened, errors = threading.Barrier(threads), [], []

    def open_cache() -> None:
        barrier.wait()
        try:
            opened.append(llm.cache)
        except Exception as exc:
            errors.append(exc)

    started = [threading.Thread(target=open_cache) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return opened, errors


def settled(server, quiet: float = 0.3) -> int:
    """The server's count of received requests once it has stopped changing for ``quiet`` seconds."""
    while True:
        before = server.stats.received
        time.sleep(quiet)
        if server.stats.received == before:
            return before


def test_the_api_key_is_sent_but_never_stored_or_logged(fake_server, connect_to, data_dir, caplog):
    for name in ("", "openai", "httpx2", "httpcore2", "workbench"):
        caplog.set_level(logging.DEBUG, logger=name)
    server = fake_server(faults=Faults(first_attempts=("429", "500")))
    llm = connect_to(server)

    table = llm.chat_many(prompts(5), progress=False)

    assert server.stats.authorization == {f"Bearer {SECRET}"}
    assert SECRET not in repr(llm) and SECRET not in str(llm.settings)
    assert SECRET not in caplog.text
    assert SECRET not in str(table.to_dicts())
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("responses.sqlite") for path in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_an_unreachable_base_url_is_a_clear_error_naming_it(connect_to, data_dir):
    class Nowhere:  # a port nothing listens on
        base_url = "http://127.0.0.1:9/v1"

    llm = connect_to(Nowhere, max_retries=1)
    with pytest.raises(wb.EndpointUnreachableError, match=r"could not reach http://127\.0\.0\.1:9/v1 after 2 tries"):
        llm.chat_many(["Hi"], progress=False)


def test_an_empty_request_list_gives_an_empty_table_with_every_column(fake_server, connect_to):
    table = connect_to(fake_server()).chat_many([], progress=False)
    assert table.height == 0 and table.schema == pl.Schema(wb.RESPONSE_COLUMNS)


@pytest.mark.parametrize("bad", ["just a string", {"messages": []}, 42, None])
def test_a_non_list_argument_is_a_type_error_that_says_what_is_expected(fake_server, connect_to, bad):
    llm = connect_to(fake_server())
    with pytest.raises(wb.InputError, match="expects a list of requests"):
        llm.chat_many(bad, progress=False)


def test_a_malformed_message_names_the_request(fake_server, connect_to):
    llm = connect_to(fake_server())
    with pytest.raises(wb.InputError, match=r"request 1 has a message without 'role' and 'content'"):
        llm.chat_many(["fine", [{"text": "no role"}]], progress=False)


def test_requests_may_carry_their_own_parameters(fake_server, connect_to):
    server = fake_server(responder=lambda body: f"t={body.get('temperature')}")
    llm = connect_to(server)

    table = llm.chat_many(
        [{"messages": [{"role": "user", "content": "a"}], "temperature": 0.1}, [{"role": "user", "content": "b"}]],
        temperature=0.7,
        progress=False,
    )
    assert table["response"].to_list() == ["t=0.1", "t=0.7"]


def test_the_sync_call_works_inside_a_running_event_loop_as_in_jupyter(fake_server, connect_to):
    llm = connect_to(fake_server())

    async def cell() -> pl.DataFrame:
        return llm.chat_many(["from inside a running loop"], progress=False)

    assert asyncio.run(cell())["response"][0] == "echo: from inside a running loop"


def test_requests_per_minute_spaces_out_requests(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server, requests_per_minute=120)  # a burst of 120, then one every 0.5 s

    started = time.perf_counter()
    table = llm.chat_many(prompts(122), max_concurrency=8, progress=False)

    assert table["error"].null_count() == 122
    assert time.perf_counter() - started >= 0.9


def test_chat_returns_text_and_raises_on_failure(fake_server, connect_to):
    server = fake_server()
    llm = connect_to(server)
    assert llm.chat("Hi") == "echo: Hi"
    with pytest.raises(wb.RequestFailedError, match="NotFoundError"):
        llm.chat("Hi", model="missing")
