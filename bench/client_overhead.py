"""How much the workbench's batch layer costs over the bare openai client, measured side by side.

On the loopback fake server (its own process; 50 ms latency), 2,000 requests at concurrency 64:
  1. wall time of ``llm.achat_many`` (cache on, empty) against a bare ``openai.AsyncOpenAI`` with a
     semaphore and ``asyncio.gather``, in alternating runs; prints the ratio of median wall times
     (target: at most 1.15x);
  2. a fully cached re-run against the uncached run (target: at least 20x faster);
  3. the fault tail: with 5% 429 (Retry-After 0.05 s), 3% 500, 2% dropped and 2% malformed
     responses, the workbench's wall time against its clean wall time, alternating (target: median
     ratio at most 1.5x), rows lost (target 0) and successful requests answered twice, counted in
     the fake server's own log (target 0); and rows the bare client loses (openai's 2 retries);
  4. against a fake server enforcing 600 requests/min with 429s and OpenAI's x-ratelimit-*
     headers (a bucket of one second's worth), nothing configured on our side: the achieved rate
     after the initial burst as a share of the limit (target at least 90%) and the 429s received.

    python bench/client_overhead.py [--requests 2000] [--concurrency 64] [--rounds 3]
                                    [--rpm-limit 600] [--rpm-requests 900] [--rpm-burst N]
                                    [--rpm-headers openai|ietf|none] [--parts overhead,faults,rpm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402

KEY = "sk-bench-not-a-real-key"
sys.path.insert(0, str(ROOT / "tests"))  # the fake server (standard library only: no workbench comes with it)

from fakeserver import start_process as start_server  # noqa: E402


def messages(count: int, tag: str) -> list[list[dict]]:
    return [[{"role": "user", "content": f"{tag} request {index}: write one sentence."}] for index in range(count)]


async def bare_run(base_url: str, requests: list, concurrency: int, retries: int = 2) -> tuple[float, int]:
    """The bare client: semaphore + gather. Returns (seconds, rows lost)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=retries)
    gate = asyncio.Semaphore(concurrency)

    async def one(request: list) -> str | None:
        async with gate:
            try:
                reply = await client.chat.completions.create(model="fake-model", messages=request)
                return reply.choices[0].message.content
            except Exception:
                return None

    started = time.perf_counter()
    answers = await asyncio.gather(*(one(request) for request in requests))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed, sum(answer is None for answer in answers)


async def workbench_run(llm: wb.LLM, requests: list, concurrency: int, progress: bool) -> tuple[float, int]:
    started = time.perf_counter()
    table = await llm.achat_many(requests, max_concurrency=concurrency, progress=progress)
    elapsed = time.perf_counter() - started
    return elapsed, table["error"].is_not_null().sum()


def connect(base_url: str, data_dir: str) -> wb.LLM:
    return wb.connect(base_url=base_url, model="fake-model", api_key=KEY, data_dir=data_dir, timeout=30)


async def overhead(base_url: str, args: argparse.Namespace) -> None:
    bare_times, wb_times, cached_times = [], [], []
    for round_number in range(args.rounds):
        bare_seconds, _ = await bare_run(base_url, messages(args.requests, f"bare{round_number}"), args.concurrency)
        with tempfile.TemporaryDirectory() as data_dir:
            llm = connect(base_url, data_dir)
            requests = messages(args.requests, f"wb{round_number}")
            wb_seconds, _ = await workbench_run(llm, requests, args.concurrency, args.progress)
            cached_seconds, _ = await workbench_run(llm, requests, args.concurrency, args.progress)
            llm.cache.close()
        bare_times.append(bare_seconds)
        wb_times.append(wb_seconds)
        cached_times.append(cached_seconds)
        print(
            f"  round {round_number + 1}: bare {bare_seconds:.2f}s   workbench {wb_seconds:.2f}s   "
            f"workbench cached re-run {cached_seconds:.3f}s"
        )
    bare, ours, cached = (statistics.median(times) for times in (bare_times, wb_times, cached_times))
    print(f"median wall time: bare {bare:.2f}s, workbench {ours:.2f}s -> ratio {ours / bare:.3f}x (target <= 1.15x)")
    print(f"cached re-run: {cached:.3f}s, {ours / cached:.0f}x faster than the uncached run (target >= 20x)")


FAULT_FLAGS = ("--rate-429", "0.05", "--rate-500", "0.03", "--rate-drop", "0.02", "--rate-malformed", "0.02")


def server_stats(base_url: str) -> dict:
    """The fake server's own counters (its log, not ours)."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_stats") as answer:
        return json.load(answer)


async def faults(clean_url: str, faulty_url: str, args: argparse.Namespace) -> None:
    clean_times, faulty_times, lost = [], [], 0
    for round_number in range(args.rounds):
        for url, times in ((clean_url, clean_times), (faulty_url, faulty_times)):
            with tempfile.TemporaryDirectory() as data_dir:
                llm = connect(url, data_dir)
                requests = messages(args.requests, f"tail{round_number}")
                seconds, round_lost = await workbench_run(llm, requests, args.concurrency, False)
                llm.cache.close()
            times.append(seconds)
            lost += round_lost if url == faulty_url else 0
        print(f"  round {round_number + 1}: clean {clean_times[-1]:.2f}s   faulty {faulty_times[-1]:.2f}s")
    stats = server_stats(faulty_url)
    clean, faulty = statistics.median(clean_times), statistics.median(faulty_times)
    print(f"with faults (5% 429 Retry-After 0.05 s, 3% 500, 2% dropped, 2% malformed), {args.requests} requests:")
    print(f"  faults injected by the server: {stats['faults']}")
    print(
        f"  median wall time: clean {clean:.2f}s, faulty {faulty:.2f}s -> ratio {faulty / clean:.2f}x (target <= 1.5x)"
    )
    print(f"  workbench rows lost: {lost} (target 0)")
    print(f"  successful requests answered twice (server log): {stats['duplicates']} (target 0)")
    bare_seconds, bare_lost = await bare_run(faulty_url, messages(args.requests, "fault-bare"), args.concurrency)
    print(f"  bare openai client (its default 2 retries): lost {bare_lost} rows in {bare_seconds:.2f}s")


async def rate_limited(base_url: str, args: argparse.Namespace, burst: float) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        llm = connect(base_url, data_dir)
        seconds, lost = await workbench_run(llm, messages(args.rpm_requests, "rpm"), args.concurrency, False)
        llm.cache.close()
    stats = server_stats(base_url)
    served = stats["answered"]
    active = stats["last_answered"] - stats["first_received"]
    share = (served - burst) / active * 60 / args.rpm_limit
    print(
        f"against a server enforcing {args.rpm_limit:g} requests/min (bucket of {burst:g}, "
        f"{args.rpm_headers} headers), nothing configured on our side, "
        f"{args.rpm_requests} requests at concurrency {args.concurrency}:"
    )
    print(
        f"  {served} answered in {seconds:.1f}s; after the initial burst of {burst:g}: "
        f"{(served - burst) / active * 60:.0f} requests/min = {share:.0%} of the limit (target >= 90%)"
    )
    print(f"  429s received: {stats['limited']}; rows lost: {lost}; answered twice: {stats['duplicates']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--progress", action="store_true", help="show the workbench's progress bar while timing")
    parser.add_argument("--rpm-limit", type=float, default=600)
    parser.add_argument("--rpm-requests", type=int, default=900)
    parser.add_argument("--rpm-burst", type=float, default=None, help="the server's bucket (default: 1 s worth)")
    parser.add_argument("--rpm-headers", choices=("openai", "ietf", "none"), default="openai")
    parser.add_argument("--parts", default="overhead,faults,rpm")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(
        f"openai {openai.__version__}; {args.requests} requests, concurrency {args.concurrency}, "
        f"server latency {args.latency * 1000:.0f} ms, progress bar {'on' if args.progress else 'off'}"
    )
    latency = ("--latency", str(args.latency))
    burst = args.rpm_burst or max(1.0, args.rpm_limit / 60)
    rpm_flags = ("--rpm-limit", str(args.rpm_limit), "--rpm-burst", str(burst), "--rpm-headers", args.rpm_headers)
    servers = []
    try:
        clean, clean_url = start_server(*latency)
        servers.append(clean)
        if "overhead" in parts:
            asyncio.run(overhead(clean_url, args))
        if "faults" in parts:
            faulty, faulty_url = start_server(*latency, *FAULT_FLAGS, "--retry-after", "0.05")
            servers.append(faulty)
            asyncio.run(faults(clean_url, faulty_url, args))
        if "rpm" in parts:
            limited, limited_url = start_server(*latency, *rpm_flags)
            servers.append(limited)
            asyncio.run(rate_limited(limited_url, args, burst))
    finally:
        for server in servers:
            server.kill()


if __name__ == "__main__":
    main()
