"""The embedded model's throughput: the workbench's chat_many against the bare openai client, on one llama-server.

    python bench/local_throughput.py                 # 24 requests of at most 96 tokens, concurrency 1, 4, 8, 16

For each concurrency, in one run and alternating which goes first, the same requests go (a) through
``llm.chat_many`` (cache off) and (b) straight to the same server with ``openai.AsyncOpenAI`` under a
semaphore. Aggregate tokens/s = completion tokens / wall time, the median of ``--repeats`` pairs (their range
is printed beside it). Targets: (a) within 10% of (b) at every
concurrency, and (a) at concurrency 8 at least 2.3x the 72 tokens/s that llama-cpp-python's server gave on
these machines (it answers one request at a time; measured before it was replaced, see issue 10).

The server's compute threads (the old rule, every core, against ``compute_threads``), alone and beside one busy
process: bench/local_threads.py.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import openai

import workbench as wb

TOPICS = ["rivers", "trains", "apples", "stars", "bridges", "owls", "glaciers", "markets", "violins", "deserts"]
LLAMA_CPP_PYTHON_TOKENS_PER_S = 72.0  # issue 10: llama-cpp-python's server, same model, 8 concurrent requests


def requests_for(count: int) -> list[str]:
    """``count`` distinct story prompts."""
    return [f"Write a short story about {TOPICS[i % len(TOPICS)]}, number {i}." for i in range(count)]


def workbench_run(llm: wb.LLM, prompts: list[str], concurrency: int, max_tokens: int) -> tuple[int, float]:
    """(a): completion tokens and wall seconds through ``llm.chat_many``."""
    started = time.perf_counter()
    table = llm.chat_many(
        prompts, max_tokens=max_tokens, temperature=0, cache=False, progress=False, max_concurrency=concurrency
    )
    wall = time.perf_counter() - started
    if table["error"].null_count() != table.height:
        raise SystemExit(f"errors in the workbench run: {table['error'].drop_nulls().to_list()[:3]}")
    return int(table["tokens_out"].sum()), wall


def direct_run(llm: wb.LLM, prompts: list[str], concurrency: int, max_tokens: int) -> tuple[int, float]:
    """(b): completion tokens and wall seconds through ``openai.AsyncOpenAI`` under a semaphore."""

    async def run() -> int:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="none", max_retries=0, timeout=600)
        gate = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> int:
            async with gate:
                reply = await client.chat.completions.create(
                    model=llm.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=max_tokens,
                    temperature=0,
                )
                return reply.usage.completion_tokens

        tokens = sum(await asyncio.gather(*(one(p) for p in prompts)))
        await client.close()
        return tokens

    started = time.perf_counter()
    tokens = asyncio.run(run())
    return tokens, time.perf_counter() - started


def _span(rates: list[float]) -> str:
    return f"{min(rates):.0f}-{max(rates):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs per concurrency (order alternates)")
    args = parser.parse_args()

    llm = wb.connect(data_dir=tempfile.mkdtemp(prefix="wb-bench-"))
    prompts = requests_for(args.requests)
    print(f"{llm.model} on {llm.base_url}: {args.requests} requests of at most {args.max_tokens} tokens")
    workbench_run(llm, prompts[:2], 2, 8)  # warm up
    print(f"{'concurrency':>11}  {'(a) chat_many':>14}  {'(b) AsyncOpenAI':>15}  {'(a)/(b)':>7}")
    results = {}
    for concurrency in args.concurrency:
        rates: dict[str, list[float]] = {"a": [], "b": []}
        for repeat in range(args.repeats):
            order = [("a", workbench_run), ("b", direct_run)]
            for name, run in order if (repeat + concurrency) % 2 == 0 else order[::-1]:
                tokens, wall = run(llm, prompts, concurrency, args.max_tokens)
                rates[name].append(tokens / wall)
        a, b = (statistics.median(rates[k]) for k in ("a", "b"))
        results[concurrency] = a
        spread = f"  a {_span(rates['a'])}, b {_span(rates['b'])}" if args.repeats > 1 else ""
        print(f"{concurrency:>11}  {a:>10.1f} t/s  {b:>11.1f} t/s  {a / b:>7.2f}{spread}")
    if 8 in results:
        ratio = results[8] / LLAMA_CPP_PYTHON_TOKENS_PER_S
        print(f"(a) at concurrency 8 against llama-cpp-python's server (72 t/s): {ratio:.2f}x (target >= 2.3x)")


if __name__ == "__main__":
    main()
