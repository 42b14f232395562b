"""llama.cpp's llama-server as the embedded model: parallel slots, JSON schema, logprobs, clean exits, bad input."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openai
import pytest

import workbench as wb
from workbench.models.local import DEFAULT_SLOTS, local_server

pytestmark = pytest.mark.local_model


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in {"Z", "X"}


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_the_default_concurrency_matches_the_servers_slots(local_llm):
    assert local_llm.settings.max_concurrency == DEFAULT_SLOTS == 8


def test_several_requests_are_decoded_at_once(local_llm):
    """Four requests overlap on the server: their decode times add up to more than the wall time."""

    async def run() -> tuple[float, list[float]]:
        client = openai.AsyncOpenAI(base_url=local_llm.base_url, api_key="none", max_retries=0, timeout=300)
        topics = ["rivers", "trains", "apples", "stars"]
        started = time.perf_counter()
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=local_llm.model,
                    messages=[{"role": "user", "content": f"Write a long story about {topic}."}],
                    max_tokens=48,
                    temperature=0,
                )
                for topic in topics
            )
        )
        wall = time.perf_counter() - started
        await client.close()
        return wall, [reply.model_extra["timings"]["predicted_ms"] / 1000 for reply in replies]

    wall, decoding = asyncio.run(run())
    assert sum(decoding) > 1.5 * wall, f"decode times {decoding} against {wall:.2f}s of wall time: run one at a time"


def test_a_json_schema_is_honoured_through_generate(local_llm):
    schema = {
        "type": "object",
        "properties": {"fruit": {"type": "string", "maxLength": 20}, "sweet": {"type": "boolean"}},
        "required": ["fruit", "sweet"],
        "additionalProperties": False,
    }
    assert local_llm.json_format(schema)["type"] == "json_schema"
    # llama.cpp's grammar lets the model put up to 20 blanks between tokens, and this small model sometimes
    # does: 3 of 200 replies ran past 40 tokens here (none past 39 of 120). Room enough that every reply ends.
    table = wb.generate(
        local_llm,
        "Name a fruit and say whether it is sweet. ({{ i }})",
        [{"i": i} for i in range(3)],
        schema=schema,
        max_tokens=160,
        temperature=0.9,
        progress=False,
    )
    assert table["finish_reason"].to_list() == ["stop"] * 3
    assert table["error"].is_null().all(), table["error"].to_list()
    for text, fruit, sweet in table.select("response", "fruit", "sweet").iter_rows():
        assert json.loads(text) == {"fruit": fruit, "sweet": sweet} and isinstance(sweet, bool)


def test_logprobs_come_back_with_their_alternatives(local_llm):
    client = openai.OpenAI(base_url=local_llm.base_url, api_key="none", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model=local_llm.model,
        messages=[{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    tokens = reply.choices[0].logprobs.content
    assert tokens and all(token.logprob <= 0 and len(token.top_logprobs) == 3 for token in tokens)


def test_a_long_judge_prompt_fits_in_a_slot(local_llm):
    article = " ".join(f"Sentence {i} says that the river is {i % 7} metres deep." for i in range(200))
    row = local_llm.chat_many(
        [f"{article}\n\nRate the text above from 1 to 5. Answer with one number."], max_tokens=4, progress=False
    ).row(0, named=True)
    assert row["error"] is None and 2500 < row["tokens_in"] < 4096


def test_estimate_counts_tokens_with_the_servers_tokenizer(local_llm):
    counted = wb.estimate("Hello world", model=local_llm)
    assert counted.method.startswith("exact") and counted.tokens_in == 2 + 3 + 3  # 2 tokens + message + reply


def _run_child(data_dir: Path, then: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        import workbench as wb
        from workbench.models.local import local_server
        llm = wb.connect(data_dir={str(data_dir)!r}, local_slots=2)
        print(local_server(None, {str(data_dir)!r}, slots=2).pid, flush=True)
        {then}
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_the_server_stops_when_the_process_that_started_it_exits(tmp_path):
    child = _run_child(tmp_path, "llm.chat('Say hi.', max_tokens=4)")
    pid = int(child.stdout.readline())
    assert child.wait(timeout=120) == 0
    assert _gone_within(pid, 10), f"llama-server {pid} outlived the Python process that started it"


def test_the_server_stops_when_the_process_that_started_it_is_killed(tmp_path):
    child = _run_child(tmp_path, "time.sleep(600)")
    pid = int(child.stdout.readline())
    assert _alive(pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert _gone_within(pid, 10), f"llama-server {pid} outlived the Python process killed with SIGKILL"


def test_a_file_that_is_not_gguf_is_refused_before_starting(tmp_path):
    broken = tmp_path / "model.gguf"
    broken.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    with pytest.raises(wb.LocalModelError, match=r"is not a GGUF file .*convert_hf_to_gguf"):
        wb.connect(local_model=broken, data_dir=tmp_path)


def test_a_gguf_the_server_cannot_load_raises_with_the_tail_of_its_log(tmp_path):
    broken = tmp_path / "truncated.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    expected = r"exited with code .* while starting\.\nLast lines of its log"
    with pytest.raises(wb.LocalModelError, match=expected) as info:
        wb.connect(local_model=broken, data_dir=tmp_path)
    assert "gguf" in str(info.value).split("Last lines of its log", 1)[1].lower()


def test_a_fixed_port_that_is_taken_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(wb.LocalModelError, match=rf"port {port} \(local_port\) is already taken"):
            wb.connect(local_port=port, local_slots=2, data_dir=tmp_path)


def test_a_fixed_free_port_is_used(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = wb.connect(local_port=port, local_slots=2, data_dir=tmp_path)
    assert llm.base_url == f"http://127.0.0.1:{port}/v1"
    assert llm.chat("Say yes.", max_tokens=2)
    local_server(None, tmp_path, port=port, slots=2).stop()


def test_a_server_killed_mid_batch_loses_nothing_and_comes_back(tmp_path):
    llm = wb.connect(data_dir=tmp_path, local_slots=4, max_retries=0)
    first_pid = local_server(None, tmp_path, slots=4).pid
    short = {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
    long = [{"role": "user", "content": "Count from 1 to 500, one number a line."}]
    running = {"messages": long, "max_tokens": 400, "extra_body": {"ignore_eos": True}}
    requests = [short, short] + [running] * 2  # the last two are running at the kill

    async def run_and_kill():
        batch = asyncio.ensure_future(llm.achat_many(requests, progress=False))
        while len(llm.cache) < 2 and not batch.done():
            await asyncio.sleep(0.05)
        os.kill(first_pid, signal.SIGKILL)
        return await batch

    first = asyncio.run(run_and_kill())
    finished = first["error"].null_count()
    errors = first["error"].drop_nulls().to_list()
    assert finished >= 2 and errors, f"{finished} finished; errors: {errors}"  # the killed requests record an error

    again_llm = wb.connect(data_dir=tmp_path, local_slots=4, max_retries=0)  # waits until the server is back
    assert again_llm.base_url == llm.base_url and local_server(None, tmp_path, slots=4).pid != first_pid
    again = llm.chat_many(requests, progress=False)  # the first connection works again
    assert again["error"].null_count() == again.height, again["error"].to_list()
    assert again["cached"].sum() == finished  # only the rest was sent
    local_server(None, tmp_path, slots=4).stop()
