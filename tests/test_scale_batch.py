"""Provider batch jobs against a loopback fake of the Batch API: submit once, re-attach, fill the cache."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import polars as pl
import pytest
from conftest import SECRET
from fake_batch_api import FakeBatchAPI

import workbench as wb
import workbench.scale as scale
from workbench.models.requests import normalise_requests
from workbench.scale.batch_files import BatchFileError, check_batch_file, request_line, split_requests

PROMPT = wb.Prompt("Write a {{level}} problem about {{topic}}.")
GRID = wb.grid(topic=["apples", "trains", "clocks"], level=["easy", "hard"])
MODEL = "gpt-4.1-mini"  # priced at (0.40, 1.60) dollars per million tokens; the batch price is half


def judge_or_echo(body: dict) -> str:
    """A judge's JSON grade when asked with a rubric (a system message), else the echo."""
    if body["messages"][0]["role"] == "system":
        return json.dumps({"score": 4, "reason": "fine"})
    return f"echo: {body['messages'][-1]['content']}"


@pytest.fixture
def batch_api():
    """Start fake Batch API servers on free loopback ports; all are stopped after the test."""
    started: list[FakeBatchAPI] = []

    def start(**options) -> FakeBatchAPI:
        server = FakeBatchAPI(models=(MODEL,), responder=judge_or_echo, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def connect(server: FakeBatchAPI, data_dir: Path) -> wb.LLM:
    return wb.connect("openai", base_url=server.base_url, model=MODEL, api_key=SECRET, data_dir=data_dir, timeout=5.0)


def until_done(call, tries: int = 10):
    """Run the same call until it returns a table (each call re-attaches and moves the fake on one state)."""
    for _ in range(tries):
        result = call()
        if isinstance(result, pl.DataFrame):
            return result
        assert isinstance(result, scale.BatchJobs) and not result.done
    raise AssertionError("the batch never finished")


def test_a_batch_call_returns_a_handle_then_the_same_call_returns_the_online_run_table(batch_api, data_dir, tmp_path):
    server = batch_api()
    llm = connect(server, data_dir)

    def call():
        return wb.generate(llm, PROMPT, GRID, n=2, temperature=0.7, progress=False, via="batch")

    handle = call()
    assert isinstance(handle, scale.BatchJobs) and not handle.done
    assert handle.frame()["state"].to_list() == ["validating"] and handle.frame()["total"].to_list() == [12]
    table = until_done(call)

    assert server.batch_stats["batches_created"] == 1 and server.batch_stats["lines_answered"] == 12
    assert server.stats.received == 0  # nothing went through the online endpoint
    online = wb.generate(connect(server, tmp_path / "elsewhere"), PROMPT, GRID, n=2, temperature=0.7, progress=False)
    same = ["sample_id", "round", "parent_id", "prompt_hash", "topic", "level", "messages", "params", "response"]
    assert table.select(same).equals(online.select(same))
    assert table.columns == online.columns and table["error"].null_count() == 12


def test_after_the_job_the_online_call_makes_zero_server_calls(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    requests = [f"Name fruit number {i}." for i in range(5)]
    until_done(lambda: llm.chat_many(requests, progress=False, via="batch"))

    again = llm.chat_many(requests, progress=False)

    assert server.stats.received == 0 and again["cached"].all()
    assert again["response"].to_list() == [f"echo: Name fruit number {i}." for i in range(5)]


def test_cost_is_counted_at_the_batch_price(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    table = until_done(lambda: llm.chat_many(["one two three"], progress=False, via="batch"))

    row = table.row(0, named=True)
    assert (row["tokens_in"], row["tokens_out"]) == (3, 4)
    assert row["cost_usd"] == pytest.approx((3 * 0.40 + 4 * 1.60) / 1e6 / 2)
    assert wb.batches(llm).frame()["est_cost_usd"].to_list() == [pytest.approx(row["cost_usd"])]
    online = llm.chat_many(["one two three"], progress=False)  # the same answer, read by an online call
    assert server.stats.received == 0 and online["cost_usd"].to_list() == [pytest.approx(row["cost_usd"])]
    with sqlite3.connect(llm.cache.path) as db:  # as collected before the cache kept the price paid
        db.execute("UPDATE responses SET price_factor = NULL")
    again = until_done(lambda: llm.chat_many(["one two three"], progress=False, via="batch"))
    assert again["cost_usd"].to_list() == [pytest.approx(row["cost_usd"])]
    listed = wb.batches(data_dir=data_dir)  # no connection: it lists, and says what it needs to refresh
    assert listed.frame().equals(wb.batches(llm).frame())
    with pytest.raises(wb.InputError, match=r"pass the connection: wb.batches\(llm\)"):
        listed.refresh()


def test_a_kernel_restart_between_submit_and_completion_reattaches_and_submits_nothing_twice(batch_api, data_dir):
    server = batch_api()
    submit = f"""
        import sys, workbench as wb
        llm = wb.connect(
            "openai", base_url={server.base_url!r}, model={MODEL!r}, api_key="sk-x", data_dir={str(data_dir)!r}
        )
        handle = llm.chat_many(["a", "b", "c"], progress=False, via="batch")
        print(type(handle).__name__, handle.done)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(submit)], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["BatchJobs", "False"], done.stderr

    llm = connect(server, data_dir)  # a fresh kernel: nothing in memory but the data folder
    assert wb.batches(llm).frame()["state"].to_list() == ["validating"]
    table = until_done(lambda: llm.chat_many(["a", "b", "c"], progress=False, via="batch"))

    assert server.batch_stats["batches_created"] == 1 and server.batch_stats["files_uploaded"] == 1
    assert table["response"].to_list() == ["echo: a", "echo: b", "echo: c"]


def test_requests_the_provider_refused_are_rows_with_an_error_and_forgetting_the_job_sends_only_them(
    batch_api, data_dir
):
    server = batch_api()
    llm = connect(server, data_dir)
    requests = ["fine", "REFUSE this one", "also fine"]
    table = until_done(lambda: llm.chat_many(requests, progress=False, via="batch"))

    assert table["response"].to_list() == ["echo: fine", None, "echo: also fine"]
    assert "HTTP 400: content refused by the fake" in table["error"][1]
    assert llm.chat_many(requests, progress=False, via="batch").equals(table)  # re-run: same table, nothing sent
    assert server.batch_stats["batches_created"] == 1

    jobs = wb.batches(llm)
    assert jobs.frame().select("state", "completed", "failed").row(0) == ("completed", 2, 1)
    jobs.forget(jobs.frame()["job"][0])
    handle = llm.chat_many(requests, progress=False, via="batch")
    assert server.batch_stats["batches_created"] == 2 and handle.frame()["total"].to_list() == [1]


def test_an_expired_batch_keeps_what_was_answered_and_marks_the_rest(batch_api, data_dir):
    server = batch_api(outcomes=("expired",))
    llm = connect(server, data_dir)
    table = until_done(lambda: llm.chat_many([f"q{i}" for i in range(4)], progress=False, via="batch"))

    assert table["response"].to_list() == ["echo: q0", "echo: q1", None, None]
    assert table["error"][2].startswith("BatchRequestError: batch_expired")
    assert wb.batches(llm).frame()["state"].to_list() == ["expired"]


def test_a_cancelled_batch_gives_error_rows_for_what_it_did_not_answer(batch_api, data_dir):
    server = batch_api(outcomes=("stall",))
    llm = connect(server, data_dir)
    handle = llm.chat_many(["x", "y"], progress=False, via="batch")
    handle.refresh()
    assert handle.frame()["state"].to_list() == ["in_progress"]

    handle.cancel()
    assert handle.frame()["state"].to_list() == ["cancelling"]
    table = until_done(lambda: llm.chat_many(["x", "y"], progress=False, via="batch"))

    assert table["response"].null_count() == 2 and table["error"][0].startswith("BatchRequestError: batch_cancelled")
    assert server.batch_stats["cancels"] == 1


def test_an_endpoint_that_rejects_the_batch_file_names_the_line(batch_api, data_dir):
    server = batch_api(max_tokens_limit=100)
    llm = connect(server, data_dir)
    requests = ["short", {"messages": [{"role": "user", "content": "long"}], "max_tokens": 5000}]
    llm.chat_many(requests, progress=False, via="batch")

    with pytest.raises(scale.BatchRejectedError, match=r"line 2: max_tokens is 5000; at most 100 \(invalid_value\)"):
        until_done(lambda: llm.chat_many(requests, progress=False, via="batch"))
    assert server.batch_stats["batches_created"] == 1


def test_a_job_the_provider_no_longer_knows_is_a_clear_error_and_can_be_forgotten(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    handle = llm.chat_many(["p", "q"], progress=False, via="batch")
    server.forget(handle.frame()["batch_id"][0])

    with pytest.raises(scale.BatchJobNotFoundError, match="no longer exists.*forget"):
        llm.chat_many(["p", "q"], progress=False, via="batch")
    wb.batches(llm).forget(handle.frame()["job"][0])
    table = until_done(lambda: llm.chat_many(["p", "q"], progress=False, via="batch"))
    assert table["response"].to_list() == ["echo: p", "echo: q"] and server.batch_stats["batches_created"] == 2


def test_grade_goes_through_a_batch_job_too(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    samples = until_done(lambda: wb.generate(llm, PROMPT, GRID, progress=False, via="batch"))
    rubric = wb.Rubric("Is the problem clear?", scale=(1, 5))

    graded = until_done(lambda: wb.grade(llm, samples, rubric, progress=False, via="batch"))

    assert graded["score"].to_list() == [4.0] * 6 and graded["scored"].all()
    assert server.batch_stats["batches_created"] == 2 and server.stats.received == 0


def test_refine_goes_through_batch_jobs_step_by_step_and_ends_with_the_online_history(batch_api, data_dir, tmp_path):
    server = batch_api()
    llm = connect(server, data_dir)
    rubric = wb.Rubric("Is the problem clear?", scale=(1, 5))
    samples = until_done(lambda: wb.generate(llm, PROMPT, GRID, progress=False, via="batch"))
    graded = until_done(lambda: wb.grade(llm, samples, rubric, progress=False, via="batch"))

    def call():
        return wb.refine(llm, graded, rubric, rounds=1, progress=False, via="batch")

    first = call()
    assert wb.is_pending(first) and not first.done  # the critiques' job
    history = until_done(call, tries=20)

    assert server.stats.received == 0  # critiques, revisions and re-grades all went through batch jobs
    assert server.batch_stats["batches_created"] == 5  # generate, grade, then one job per step of the round
    assert history["round"].to_list() == [0] * 6 + [1] * 6
    online_llm = connect(server, tmp_path / "elsewhere")
    online = wb.refine(
        online_llm, wb.grade(online_llm, samples, rubric, progress=False), rubric, rounds=1, progress=False
    )
    same = ["sample_id", "parent_id", "lineage_id", "round", "critique", "response", "score", "stop_reason"]
    assert history.select(same).equals(online.select(same))


@pytest.mark.parametrize(
    ("call", "entry"),
    [
        (lambda llm, frame, rubric: wb.compare(llm, frame, frame, rubric, via="batch"), "wb.compare"),
        (lambda llm, frame, rubric: llm.chat("hi", via="batch"), "llm.chat"),
        (lambda llm, frame, rubric: wb.self_instruct(llm, via="batch"), "wb.self_instruct"),
        (lambda llm, frame, rubric: wb.evol_instruct(llm, via="batch"), "wb.evol_instruct"),
        (lambda llm, frame, rubric: wb.grade(lambda row: True, frame, via="batch"), "wb.grade with a verifier"),
    ],
)
def test_entry_points_that_need_every_answer_refuse_via_by_name(batch_api, data_dir, call, entry):
    server = batch_api()
    llm = connect(server, data_dir)
    frame = pl.DataFrame({"task": ["t"], "response": ["r"]})
    with pytest.raises(wb.InputError, match=rf"{entry} does not take via='batch'"):
        call(llm, frame, wb.Rubric("Is it right?"))
    assert server.batch_stats["batches_created"] == 0 and server.stats.received == 0


def test_a_backend_without_a_batch_api_says_which_backends_have_one(fake_server, connect_to):
    with pytest.raises(wb.ConfigError, match=r"backend 'compatible' has no batch API.*one: openai.*write_batch_file"):
        connect_to(fake_server()).chat_many(["hi"], via="batch")


def test_an_endpoint_without_the_files_api_refuses_the_upload_and_nothing_is_recorded(fake_server, data_dir):
    server = fake_server(models=(MODEL,))  # an OpenAI-compatible server with no Batch API
    llm = wb.connect("openai", base_url=server.base_url, model=MODEL, api_key=SECRET, data_dir=data_dir)
    with pytest.raises(scale.BatchRejectedError, match=r"refused the batch \(HTTP 404"):
        llm.chat_many(["hi"], via="batch")
    assert wb.batches(llm).frame().height == 0


def test_an_unknown_route_lists_the_known_ones(fake_server, connect_to):
    with pytest.raises(wb.ConfigError, match=r"unknown route via='slurm'. Choose one of: kernel, batch"):
        connect_to(fake_server()).chat_many(["hi"], via="slurm")


# --- batch files ------------------------------------------------------------------------------------
def test_files_are_split_by_model_and_at_the_line_and_size_limits_and_each_validates(tmp_path):
    requests = normalise_requests(
        [{"messages": [{"role": "user", "content": f"q{i}"}], "model": "a" if i % 3 else "b"} for i in range(10)],
        endpoint="e",
        model="a",
        params={"temperature": 0.5},
    )
    files = split_requests(requests, max_requests=3)
    assert [len(group) for group in files] == [3, 1, 3, 3]  # "b" (4 requests), then "a" (6)
    assert [{request.model for request, _ in group} for group in files] == [{"b"}, {"b"}, {"a"}, {"a"}]
    size = len(request_line(requests[0]))
    same_model = [request for request in requests if request.model == "a"][:5]
    assert [len(group) for group in split_requests(same_model, max_bytes=2 * size)] == [2, 2, 1]
    for number, group in enumerate(files):
        path = tmp_path / f"f{number}.jsonl"
        path.write_bytes(b"".join(line for _, line in group))
        assert check_batch_file(path, max_requests=3) == len(group)
        first = json.loads(path.read_text().splitlines()[0])
        assert first["custom_id"] == group[0][0].key and first["body"]["temperature"] == 0.5


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["{}"], r"line 1: each line needs a string custom_id"),
        (["A", "A"], r"line 2: custom_id 'A' is used twice"),
        (["A", "not json"], r"line 2 is not JSON"),
        (["A", "B:other"], r"line 2: a batch file holds one model"),
    ],
)
def test_a_file_that_breaks_the_batch_rules_is_refused_naming_the_line(tmp_path, lines, problem):
    def line(spec: str) -> str:
        if spec in ("{}", "not json"):
            return spec
        custom_id, _, model = spec.partition(":")
        body = {"model": model or "m", "messages": [{"role": "user", "content": "x"}]}
        return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})

    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(line(spec) for spec in lines) + "\n")
    with pytest.raises(BatchFileError, match=problem):
        check_batch_file(path)
    too_many = tmp_path / "many.jsonl"
    too_many.write_text("\n".join(line(f"id{i}") for i in range(4)) + "\n")
    with pytest.raises(BatchFileError, match="has 4 requests; a batch file may have at most 3"):
        check_batch_file(too_many, max_requests=3)


def test_a_batch_file_run_elsewhere_is_read_back_into_the_cache(batch_api, data_dir, tmp_path):
    server = batch_api()
    llm = connect(server, data_dir)
    llm.chat_many(["already here"], progress=False, temperature=0.2)  # cached: never written to the file
    requests = ["already here", "first", "second", "REFUSE me"]

    [path] = scale.write_batch_file(llm, requests, tmp_path / "run.jsonl", temperature=0.2)
    assert check_batch_file(path) == 3
    results = run_like_vllm(server, path, tmp_path / "run.out.jsonl")
    counts = scale.read_batch_results(llm, results)

    assert counts == {"answered": 2, "errors": 1, "unknown": 0}
    received = server.stats.received
    table = llm.chat_many(requests[:3], progress=False, temperature=0.2)
    assert server.stats.received == received and table["cached"].all()
    assert wb.batches(llm).frame().select("kind", "state", "completed", "failed").row(0) == ("file", "completed", 2, 1)


def run_like_vllm(server: FakeBatchAPI, source: Path, target: Path) -> Path:
    """Run a batch input file through the fake Batch API and save its results file (vLLM writes the same format)."""
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    upload = client.files.create(file=source.open("rb"), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    while batch.status != "completed":
        batch = client.batches.retrieve(batch.id)
    text = client.files.content(batch.output_file_id).text + client.files.content(batch.error_file_id).text
    target.write_text(text)
    return target


# --- the window between recording a job and creating its batch ------------------------------------------
def _record_unsent_job(llm: wb.LLM, texts: list[str]) -> str:
    """The job table as a kernel leaves it when it stops after recording a job, before its batch exists."""
    from workbench.scale.batch_files import request_record
    from workbench.scale.job_table import JobTable

    requests = normalise_requests(texts, endpoint=llm.endpoint, model=llm.model, params={})
    return JobTable.beside(llm.settings.cache_path).add_job(
        kind="api",
        base_url=llm.base_url,
        endpoint=llm.endpoint,
        model=llm.model,
        requests=[(request.key, request_record(request)) for request in requests],
        est_cost_usd=None,
    )


def test_a_job_recorded_but_never_created_is_sent_once_on_the_next_call(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    job = _record_unsent_job(llm, ["m", "n"])

    table = until_done(lambda: llm.chat_many(["m", "n"], progress=False, via="batch"))

    assert table["response"].to_list() == ["echo: m", "echo: n"]
    assert server.batch_stats["batches_created"] == 1 and wb.batches(llm).frame()["job"].to_list() == [job]


def test_a_batch_created_before_the_kernel_stopped_is_found_by_its_metadata_not_sent_again(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    job = _record_unsent_job(llm, ["m", "n"])
    requests = normalise_requests(["m", "n"], endpoint=llm.endpoint, model=llm.model, params={})
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    upload = client.files.create(file=b"".join(request_line(r) for r in requests), purpose="batch")
    created = client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"workbench_job": job},
    )

    table = until_done(lambda: llm.chat_many(["m", "n"], progress=False, via="batch"))

    assert table["response"].to_list() == ["echo: m", "echo: n"]
    assert server.batch_stats["batches_created"] == 1
    assert wb.batches(llm).frame()["batch_id"].to_list() == [created.id]


def test_the_progress_view_refreshes_itself_until_the_job_is_done(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    handle = llm.chat_many(["u", "v"], progress=False, via="batch")

    view = handle.watch(every=0.05)
    assert "validating" in view.value
    handle._watcher.join(timeout=30)

    assert handle.done and "completed" in view.value and "run the same call again" in view.value
    table = llm.chat_many(["u", "v"], progress=False, via="batch")
    assert table["response"].to_list() == ["echo: u", "echo: v"] and server.batch_stats["batches_created"] == 1


def test_wait_blocks_until_done_when_asked_to(batch_api, data_dir):
    server = batch_api()
    llm = connect(server, data_dir)
    handle = llm.chat_many(["s"], progress=False, via="batch").wait(every=0.01, timeout=30)
    assert handle.done and wb.batches(llm).frame()["state"].to_list() == ["completed"]


def test_requests_written_to_a_batch_file_can_still_go_through_a_batch_job(batch_api, data_dir, tmp_path):
    server = batch_api()
    llm = connect(server, data_dir)
    scale.write_batch_file(llm, ["k", "l"], tmp_path / "fleet.jsonl")

    table = until_done(lambda: llm.chat_many(["k", "l"], progress=False, via="batch"))

    assert table["response"].to_list() == ["echo: k", "echo: l"]
    assert sorted(wb.batches(llm).frame()["kind"].to_list()) == ["api", "file"]
