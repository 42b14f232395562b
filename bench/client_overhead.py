"""How much the workbench's batch layer costs over the bare openai client, measured side by side.

On the loopback fake server (its own process; 50 ms latency), 2,000 requests at concurrency 64:
  1. wall time of ``llm.achat_many`` (cache on, empty) against a bare ``openai.AsyncOpenAI`` with a
     semaphore and ``asyncio.gather``, in alternating runs; prints the ratio of median wall times
     (target: at most 1.15x);
  2. a fully cached re-run against the uncached run (target: at least 20x faster);
  3. with 5% 429, 3% 500, 2% dropped and 2% malformed responses: rows lost by each (target: 0 for
     the workbench; the bare client runs with openai's own default retries).

    python bench/client_overhead.py [--requests 2000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def start_server(*flags: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), *flags], stdout=subprocess.PIPE, text=True
    )
    line = process.stdout.readline().split()
    if line[:1] != ["READY"]:
        process.kill()
        raise SystemExit(f"the fake server did not start: {line}")
    return process, f"http://127.0.0.1:{line[1]}/v1"


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


async def faults(base_url: str, args: argparse.Namespace) -> None:
    bare_seconds, bare_lost = await bare_run(base_url, messages(args.requests, "fault-bare"), args.concurrency)
    with tempfile.TemporaryDirectory() as data_dir:
        llm = connect(base_url, data_dir)
        wb_seconds, wb_lost = await workbench_run(llm, messages(args.requests, "fault-wb"), args.concurrency, False)
        llm.cache.close()
    print(f"with faults (5% 429, 3% 500, 2% dropped, 2% malformed), {args.requests} requests:")
    print(f"  bare openai client (its default 2 retries): lost {bare_lost} rows in {bare_seconds:.2f}s")
    print(f"  workbench (4 retries, backoff, Retry-After): lost {wb_lost} rows in {wb_seconds:.2f}s (target 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--progress", action="store_true", help="show the workbench's progress bar while timing")
    args = parser.parse_args()
    print(
        f"openai {openai.__version__}; {args.requests} requests, concurrency {args.concurrency}, "
        f"server latency {args.latency * 1000:.0f} ms, progress bar {'on' if args.progress else 'off'}"
    )
    clean, clean_url = start_server("--latency", str(args.latency))
    faulty, faulty_url = start_server(
        "--latency",
        str(args.latency),
        "--rate-429",
        "0.05",
        "--rate-500",
        "0.03",
        "--rate-drop",
        "0.02",
        "--rate-malformed",
        "0.02",
        "--retry-after",
        "0.1",
    )
    try:
        asyncio.run(overhead(clean_url, args))
        asyncio.run(faults(faulty_url, args))
    finally:
        clean.kill()
        faulty.kill()


if __name__ == "__main__":
    main()
