"""llama-server's compute threads: the old rule against the new, alone and beside one busy process, in one run.

    python bench/local_threads.py            # 4 conditions x 3 repeats: 16 requests of at most 96 tokens, concurrency 8
    python bench/local_threads.py --quick    # 1 repeat

The old rule gave llama-server every core; the new one (``compute_threads`` in workbench/models/local.py) leaves
the cores other work keeps busy when the server starts (``busy_cores``: the machine's busy time over half a
second), and takes at least one. For each condition, {old, new} x {alone, beside one busy process}, a fresh server
(its own temporary data dir) starts and serves the requests through ``llm.chat_many`` (cache off, 8 slots), and
stops. The busy process is a second Python spinning in a loop at normal priority, started before the server (so
the new rule sees it, as it would see any program already running) and killed after. The old rule's count is
forced through ``WORKBENCH_LOCAL_THREADS``; the new rule's is the server's own choice, read back from its log.
Aggregate tokens/s = completion tokens / wall seconds: the median and range over ``--repeats`` runs, the order of
the conditions reversed every other repeat.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_throughput import requests_for, workbench_run

import workbench as wb
from workbench.models.local import busy_cores, stop_all

THREADS_ENV = "WORKBENCH_LOCAL_THREADS"
CONDITIONS = [("old", False), ("old", True), ("new", False), ("new", True)]  # (rule, beside a busy process)


def label(rule: str, busy: bool) -> str:
    return f"{rule}, {'beside busy' if busy else 'alone'}"


def cores() -> int:
    """The cores this process may use, counted as compute_threads counts them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def busiest() -> str:
    """One line: the four busiest processes (``ps -eo pcpu,comm --sort=-pcpu | head -5``)."""
    lines = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return "; ".join(" ".join(line.split()) for line in lines.splitlines()[1:5])


def served_threads(data_dir: Path) -> str:
    """The thread count llama-server reports in its log (a check that the override took)."""
    for log in (data_dir / "logs").glob("llama-server-*.log"):
        found = re.search(r"n_threads = (\d+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
    return "?"


def run_condition(rule: str, busy: bool, prompts: list[str], args: argparse.Namespace) -> tuple[int, float, str]:
    """Completion tokens and wall seconds on a fresh server under ``rule``, and the thread count it reported."""
    if rule == "old":
        os.environ[THREADS_ENV] = str(cores())
    else:
        os.environ.pop(THREADS_ENV, None)  # the server decides, as it does for a user
    data_dir = Path(tempfile.mkdtemp(prefix="wb-threads-"))
    spinner = None
    try:
        if busy:
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        llm = wb.connect(data_dir=data_dir, local_slots=args.concurrency)
        workbench_run(llm, prompts[:2], 2, 8)  # warm up
        tokens, wall = workbench_run(llm, prompts, args.concurrency, args.max_tokens)
        return tokens, wall, served_threads(data_dir)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        stop_all()  # the one server this process runs
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=8, help="requests at once, and the server's slots")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the 4 conditions (order alternates)")
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    os.environ.pop(THREADS_ENV, None)

    count, busy_start, load_start = cores(), busy_cores(1.0), os.getloadavg()[0]
    print(f"{count} cores; busy at the start {busy_start:.2f} cores (1-minute load average {load_start:.2f})")
    print(f"running at the start: {busiest()}")
    if busy_start >= 0.5:
        print(
            f"NOTE: the machine was not idle ({busy_start:.2f} cores busy): 'alone' means beside whatever else was "
            "running then, not on an idle machine; compare the conditions within this run."
        )
    print(f"old rule: {count} threads (every core), alone and beside the busy process")
    print("new rule: compute_threads() when each server starts (the server's own choice, read from its log)")
    prompts = requests_for(args.requests)
    print(
        f"{args.requests} requests of at most {args.max_tokens} tokens, concurrency {args.concurrency}, "
        f"{repeats} repeat(s); a fresh server per condition\n"
    )

    rates: dict[tuple[str, bool], list[float]] = {key: [] for key in CONDITIONS}
    chosen: dict[tuple[str, bool], set[str]] = {key: set() for key in CONDITIONS}
    for repeat in range(repeats):
        for key in CONDITIONS if repeat % 2 == 0 else CONDITIONS[::-1]:
            busy_now = busy_cores()
            tokens, wall, served = run_condition(*key, prompts, args)
            rates[key].append(tokens / wall)
            chosen[key].add(served)
            print(
                f"repeat {repeat + 1}  {label(*key):<18} threads {served}  {tokens:>5} tokens {wall:6.1f} s "
                f"{tokens / wall:7.1f} t/s  ({busy_now:.2f} cores busy before)"
            )

    median = {key: statistics.median(values) for key, values in rates.items()}
    print(f"\n{'condition':<18}  {'threads':>7}  {'median t/s':>10}  range")
    for key in CONDITIONS:
        span = f"{min(rates[key]):.0f}-{max(rates[key]):.0f}"
        print(f"{label(*key):<18}  {'/'.join(sorted(chosen[key])):>7}  {median[key]:>10.1f}  {span}")
    old_ratio = median["old", True] / median["old", False]
    new_ratio = median["new", True] / median["new", False]
    print(f"\nbeside a busy process / alone: old rule {old_ratio:.2f}x, new rule {new_ratio:.2f}x")
    print(f"new / old beside a busy process: {median['new', True] / median['old', True]:.2f}x")
    print(f"new / old alone: {median['new', False] / median['old', False]:.2f}x")
    print(f"\n1-minute load average at the end {os.getloadavg()[0]:.2f}")
    print(f"running at the end: {busiest()}")
    print(time.strftime("finished %Y-%m-%d %H:%M:%S"))


if __name__ == "__main__":
    main()
