"""The Ray runner on a local Ray cluster (2 CPUs): the same rows and lineage as the kernel, shards never sent twice."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import psutil
import pytest

pytest.importorskip("ray", reason="the Ray runner needs the 'scale' extra: pip install -e '.[scale]'")

import workbench as wb  # noqa: E402
import workbench.scale as scale  # noqa: E402
from workbench.models.requests import normalise_requests  # noqa: E402

PROMPT = wb.Prompt("Write a {{level}} problem about {{topic}}.")
RUBRIC = wb.Rubric("Is the problem clear?", scale=(1, 5))


def judge_or_story(body: dict) -> str:
    """A grade counted from the text when asked with a rubric; else 12 words drawn from a hash of the prompt."""
    content = body["messages"][-1]["content"]
    if body["messages"][0]["role"] == "system":
        return json.dumps({"score": 1 + len(content) % 5, "reason": "counted"})
    digest = hashlib.sha256(content.encode()).digest()
    return " ".join(f"w{byte}" for byte in digest[:12])


@pytest.fixture(scope="module")
def ray_cluster():
    """One small local Ray cluster for the module, shut down after it."""
    resources = scale.start_ray(num_cpus=2, object_store_memory=500 * 1024 * 1024, shard_size=1000)
    yield resources
    scale.stop_ray()


def test_a_20000_row_generate_grade_dedup_job_gives_the_kernels_rows_and_lineage(ray_cluster, fake_server, connect_to):
    server = fake_server(responder=judge_or_story)
    # A timeout long enough that no request is retried: 64 requests in flight on 2 busy cores can take over the
    # usual 1 s, and a retry (right behaviour) would be counted as a second send (CI once saw 36,064 of 36,000).
    llm = connect_to(server, max_concurrency=32, timeout=60)
    rows = pl.DataFrame({"topic": [f"topic {i % 9_000}" for i in range(10_000)]}).join(
        pl.DataFrame({"level": ["easy", "hard"]}), how="cross"
    )  # 20,000 rows; 2,000 of them repeat another row's prompt

    samples = wb.generate(llm, PROMPT, rows, progress=False, via="ray")
    graded = wb.grade(llm, samples, RUBRIC, progress=False, via="ray")
    deduped = scale.ray_dedup(graded)
    sent = server.stats.received

    # The single-kernel path on the same inputs: every request is found under the same key (nothing sent).
    kernel = wb.dedup(wb.grade(llm, wb.generate(llm, PROMPT, rows, progress=False), RUBRIC, progress=False))
    assert server.stats.received == sent == 18_000 + 18_000  # each distinct request sent once, by the workers
    assert deduped.height == 20_000 and deduped.columns == kernel.columns
    assert deduped.drop("cached", "latency_s", "attempts").equals(kernel.drop("cached", "latency_s", "attempts"))
    assert deduped.filter(pl.col("dup_kind") == "exact").height == 2_000
    assert deduped["sample_id"].to_list()[:2] == kernel["sample_id"].to_list()[:2]


def test_killing_a_worker_mid_job_loses_no_finished_shard_and_resends_no_finished_request(
    ray_cluster, fake_server, connect_to, data_dir
):
    server = fake_server(latency=0.01)
    llm = connect_to(server, max_concurrency=8)
    requests = [f"question {i}" for i in range(4_000)]
    scale.start_ray(shard_size=250)  # already running: only the shard size changes
    folder_before: dict[str, float] = {}
    killed = threading.Event()

    def kill_a_worker_after_two_shards() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed.is_set():
            shards = sorted((data_dir / "runs" / "ray").glob("*/shard-*.parquet"))
            workers = [p for p in psutil.process_iter(["cmdline"]) if "_ShardTask" in " ".join(p.info["cmdline"] or [])]
            if len(shards) >= 2 and workers:
                folder_before.update({str(p): p.stat().st_mtime for p in shards})
                workers[0].kill()
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker_after_two_shards)
    killer.start()
    try:
        table = llm.chat_many(requests, progress=False, via="ray")
    finally:
        scale.start_ray(shard_size=1000)
        killer.join()

    assert killed.is_set(), "no worker was killed: the job finished too fast to test"
    assert table["response"].to_list() == [f"echo: {text}" for text in requests]
    for path, mtime in folder_before.items():  # finished shards were neither lost nor written again
        assert Path(path).stat().st_mtime == mtime
    answered = server.stats.answered_by_body
    content = {
        r.key: r.messages[0]["content"]
        for r in normalise_requests(requests, endpoint=llm.endpoint, model=llm.model, params={})
    }
    for key in pl.concat([pl.read_parquet(path) for path in folder_before])["request_id"]:
        assert answered[_digest(content[key])] == 1
    assert sum(count - 1 for count in answered.values()) <= 8  # only requests in flight in the killed worker


def _digest(content: str) -> str:
    body = {"messages": [{"role": "user", "content": content}], "model": "fake-model"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def test_the_same_call_again_sends_nothing_and_runs_no_shard(ray_cluster, fake_server, connect_to, data_dir):
    server = fake_server()
    llm = connect_to(server, timeout=60)  # no retry counted as a send
    first = llm.chat_many([f"q{i}" for i in range(300)], progress=False, via="ray")
    shards = {p: p.stat().st_mtime for p in (data_dir / "runs" / "ray").glob("*/shard-*.parquet")}

    again = llm.chat_many([f"q{i}" for i in range(300)], progress=False, via="ray")

    assert server.stats.received == 300 and again.equals(first)
    assert {p: p.stat().st_mtime for p in shards} == shards


def test_another_shard_size_on_the_same_requests_gives_the_same_rows_not_a_mix_of_shards(
    ray_cluster, fake_server, connect_to, monkeypatch
):
    from workbench.scale.ray_runner import OPTIONS

    llm = connect_to(fake_server())
    requests = [f"size {i}" for i in range(30)]
    monkeypatch.setattr(OPTIONS, "shard_size", 10)
    by_ten = llm.chat_many(requests, progress=False, via="ray")
    monkeypatch.setattr(OPTIONS, "shard_size", 4)
    by_four = llm.chat_many(requests, progress=False, via="ray")

    assert by_four.height == 30 and by_four["request_id"].to_list() == by_ten["request_id"].to_list()
    assert by_four["response"].to_list() == by_ten["response"].to_list()


def test_a_priced_connection_costs_the_same_on_ray_as_in_the_kernel(ray_cluster, fake_server, connect_to, tmp_path):
    server = fake_server()
    priced = {"price_per_million": (2.0, 8.0)}
    on_ray = connect_to(server, **priced).chat_many(["a b c", "d e"], progress=False, via="ray")
    in_kernel = connect_to(server, data_dir=tmp_path / "kernel", **priced).chat_many(["a b c", "d e"], progress=False)
    assert on_ray["cost_usd"].null_count() == 0
    assert on_ray["cost_usd"].to_list() == in_kernel["cost_usd"].to_list()


def near_copies(rows: int, seed: int = 5) -> pl.DataFrame:
    """50-word texts, a third of them copies of an earlier one with 0 to 5 words replaced, scored at random."""
    rng = random.Random(seed)
    vocabulary = [f"v{i}" for i in range(500)]
    texts: list[str] = []
    for index in range(rows):
        if index and rng.random() < 0.33:
            words = texts[rng.randrange(index)].split()
            for _ in range(rng.randint(0, 5)):
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choices(vocabulary, k=50)))
    scores = [rng.choice([None, 1.0, 2.0, 3.0]) for _ in range(rows)]
    return pl.DataFrame({"sample_id": [f"r{i}" for i in range(rows)], "response": texts, "score": scores})


def test_ray_dedup_is_wb_dedup_with_the_band_keys_signed_on_the_workers(ray_cluster):
    frame = near_copies(4_000)

    on_ray = scale.ray_dedup(frame, shard_rows=1_000)  # four shards

    assert on_ray.equals(wb.dedup(frame))
    kinds = dict(on_ray["dup_kind"].value_counts().rows())
    assert kinds["near"] > 250 and kinds["exact"] > 60
    assert scale.ray_dedup(frame, threshold=0.6, drop=True).equals(wb.dedup(frame, threshold=0.6, drop=True))
    with pytest.raises(wb.ConfigError, match="shard_rows .* must be 1 or more, got 0"):
        scale.ray_dedup(frame, shard_rows=0)
    with pytest.raises(wb.InputError, match="ngram must be a positive whole number"):
        scale.ray_dedup(frame, ngram=0)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_without_ray_installed_the_error_gives_the_install_hint():
    done = _run(
        "import sys; sys.modules['ray'] = None\n"
        "import workbench.scale as s\n"
        "try:\n    s.start_ray()\nexcept s.RayUnavailableError as e:\n    print(e)"
    )
    assert "needs Ray, which is not installed: pip install -e '.[scale]'" in done.stdout, done.stderr


def test_a_ray_address_that_cannot_be_reached_is_a_clear_error():
    started = time.monotonic()
    done = _run(
        "import workbench.scale as s\n"
        "try:\n    s.start_ray('127.0.0.1:9')\nexcept s.RayUnavailableError as e:\n    print(e)"
    )
    assert "could not reach a Ray cluster at '127.0.0.1:9'" in done.stdout, done.stderr
    assert "start_ray() with no address for a local cluster" in done.stdout
    assert time.monotonic() - started < 60
