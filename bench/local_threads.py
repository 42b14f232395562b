"""llama-server's compute threads: the old rule against the new, alone and beside one busy process, in one run.

    python bench/local_threads.py            # 4 conditions x 3 repeats: 16 requests of at most 96 tokens, concurrency 8
    python bench/local_threads.py --quick    # 1 repeat

The old rule gave llama-server every core; the new one (``compute_threads`` in workbench/models/local.py) leaves
the cores the 1-minute load average says are busy, and takes at least one. For each condition, {old, new} x {alone,
beside one busy process}, a fresh server (its own temporary data dir) starts with the thread count forced through
``WORKBENCH_LOCAL_THREADS``, serves the requests through ``llm.chat_many`` (cache off, 8 slots), and stops. The busy
process is a second Python spinning in a loop at normal priority, started before the requests and killed after.
Aggregate tokens/s = completion tokens / wall seconds: the median and range over ``--repeats`` runs, the order of
the conditions reversed every other repeat.

The new rule's counts come from the load average read once at the start, before this script runs anything (read
later, it would count this script's own previous server): alone ``compute_threads(cores, load)``, beside the busy
process ``compute_threads(cores, load + 1)``. The load average lags a freshly started competitor by about a minute,
so the rule is given the competitor's load directly instead of what it would read. ``--load 0`` asks what the rule
does on an idle machine (the runs themselves still share the machine with whatever else runs).
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
from workbench.models.local import compute_threads, stop_all

THREADS_ENV = "WORKBENCH_LOCAL_THREADS"
CONDITIONS = [("old", False), ("old", True), ("new", False), ("new", True)]  # (rule, beside a busy process)


def label(rule: str, busy: bool) -> str:
    return f"{rule}, {'beside busy' if busy else 'alone'}"


def cores() -> int:
    """The cores this process may use, counted as compute_threads counts them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def rule_threads(count: int, load: float) -> int:
    """What the new rule chooses for ``count`` cores and a 1-minute load of ``load`` (the override unset)."""
    saved = os.environ.pop(THREADS_ENV, None)
    try:
        return compute_threads(count, load)
    finally:
        if saved is not None:
            os.environ[THREADS_ENV] = saved


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


def run_condition(threads: int, busy: bool, prompts: list[str], args: argparse.Namespace) -> tuple[int, float, str]:
    """Completion tokens and wall seconds on a fresh server with ``threads`` threads, and the count it reported."""
    os.environ[THREADS_ENV] = str(threads)
    data_dir = Path(tempfile.mkdtemp(prefix="wb-threads-"))
    spinner = None
    try:
        llm = wb.connect(data_dir=data_dir, local_slots=args.concurrency)
        if busy:
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
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
    parser.add_argument("--load", type=float, help="the load the new rule is given alone (default: the one read)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    os.environ.pop(THREADS_ENV, None)

    count, load_start = cores(), os.getloadavg()[0]
    load = load_start if args.load is None else args.load
    threads = {("old", False): count, ("old", True): count}
    threads["new", False] = rule_threads(count, load)
    threads["new", True] = rule_threads(count, load + 1)
    print(f"{count} cores; 1-minute load average at the start {load_start:.2f}")
    print(f"running at the start: {busiest()}")
    if load_start >= 0.5:
        print(
            f"NOTE: the machine was not idle (load {load_start:.2f} on {count} cores): 'alone' means beside whatever "
            "else was running then, not on an idle machine; compare the conditions within this run."
        )
    print(f"old rule: {count} threads (every core), alone and beside the busy process")
    source = "read at the start" if args.load is None else "given with --load"
    print(f"new rule, alone: compute_threads({count}, load={load:.2f}) = {threads['new', False]}  (load {source})")
    print(
        f"new rule, beside the busy process: compute_threads({count}, load={load:.2f} + 1) = {threads['new', True]}"
        "  (the load average lags a freshly started competitor by about a minute, so the rule's decision was given"
        " the competitor's load directly)"
    )
    prompts = requests_for(args.requests)
    print(
        f"{args.requests} requests of at most {args.max_tokens} tokens, concurrency {args.concurrency}, "
        f"{repeats} repeat(s); a fresh server per condition\n"
    )

    rates: dict[tuple[str, bool], list[float]] = {key: [] for key in CONDITIONS}
    for repeat in range(repeats):
        for key in CONDITIONS if repeat % 2 == 0 else CONDITIONS[::-1]:
            load_now = os.getloadavg()[0]
            tokens, wall, served = run_condition(threads[key], key[1], prompts, args)
            rates[key].append(tokens / wall)
            print(
                f"repeat {repeat + 1}  {label(*key):<18} threads {threads[key]} (server says {served})  "
                f"{tokens:>5} tokens {wall:6.1f} s {tokens / wall:7.1f} t/s  (load {load_now:.2f} before)"
            )

    median = {key: statistics.median(values) for key, values in rates.items()}
    print(f"\n{'condition':<18}  {'threads':>7}  {'median t/s':>10}  range")
    for key in CONDITIONS:
        span = f"{min(rates[key]):.0f}-{max(rates[key]):.0f}"
        print(f"{label(*key):<18}  {threads[key]:>7}  {median[key]:>10.1f}  {span}")
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
