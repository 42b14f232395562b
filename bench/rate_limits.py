"""Pacing a server that enforces a rate but announces none (no rate-limit headers), before and after.

Each server is ``tests/fakeserver.py`` in its own process, started afresh for every run, enforcing
``--limit`` requests/min with a bucket of ``--burst`` and sending no x-ratelimit headers:

    retry-after        refuses with a retry-after header, after its 20 ms latency
    no retry-after     refuses without one
    slow answers       refuses on arrival; an admitted request is answered after 0.5 s
                       (a gateway in front of a slow model)
    slower answers     the same, answered after 1.5 s
    random 429s        no limit: refuses 20% of requests at random (retry-after 10 ms), 20 ms latency

Each batch is ``llm.chat_many`` of ``--requests`` prompts at ``max_concurrency=--concurrency``, nothing
configured, in a process of its own that imports ``workbench`` from a tree: NEW (this one) and, with
``--old PATH`` or ``--old-ref REF`` (a commit, extracted with ``git archive`` into a temporary
directory), OLD; the two run one after the other against the same kind of server, in alternating order.
Figures come from the server's own log:

    refused    share of the requests refused from 2 s after the first refusal on
               (target at most 5%)
    admitted   requests admitted per minute from then on until the last 5, as a share of the
               limit (target at least 90%)
    wall       the batch's wall time (for random 429s: the batch's requests/min, against a batch
               on the same server without the 429s, run just before it)

    python bench/rate_limits.py [--old PATH | --old-ref REF] [--requests 400] [--limit 1200]
                                [--burst 20] [--concurrency 32] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-not-a-real-key"
sys.path.insert(0, str(ROOT / "tests"))  # the fake server (standard library only: no workbench comes with it)

from fakeserver import start_process as start_server  # noqa: E402

SERVERS = {  # name: fake server flags besides the limit
    "retry-after": ["--latency", "0.02"],
    "no retry-after": ["--latency", "0.02", "--rpm-no-retry-after"],
    "slow answers (0.5 s)": ["--latency", "0.5", "--rpm-at-once"],
    "slower answers (1.5 s)": ["--latency", "1.5", "--rpm-at-once"],
}
RANDOM_429S = ["--latency", "0.02", "--rate-429", "0.2", "--retry-after", "0.01", "--seed", "5"]


def client(args: argparse.Namespace) -> None:
    """One batch against ``--base-url``, with the workbench on PYTHONPATH; prints its figures as JSON."""
    import workbench as wb

    with tempfile.TemporaryDirectory() as data_dir:
        llm = wb.connect(base_url=args.base_url, model="fake-model", api_key=KEY, data_dir=data_dir, timeout=30)
        prompts = [f"{args.tag} request {index}: write one sentence." for index in range(args.requests)]
        started = time.perf_counter()
        table = llm.chat_many(prompts, max_concurrency=args.concurrency, progress=False)
        wall = time.perf_counter() - started
        llm.cache.close()
    print(json.dumps({"wall": wall, "errors": int(table["error"].is_not_null().sum()), "workbench": wb.__file__}))


def server_log(base_url: str) -> list[tuple[float, str]]:
    """The fake server's own log: (seconds since its first request, outcome), in time order."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_log") as answer:
        return [(moment, outcome) for moment, outcome in json.load(answer)]


def run_batch(tree: Path, flags: list[str], args: argparse.Namespace, tag: str) -> dict:
    """A fresh server with ``flags``, one batch from a client importing the workbench in ``tree``."""
    server, base_url = start_server(*flags)
    try:
        command = [sys.executable, __file__, "--client", "--base-url", base_url, "--tag", tag]
        command += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
        environment = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the client failed:\n{done.stderr[-3000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        if Path(figures["workbench"]).resolve().parents[1] != tree.resolve():
            raise SystemExit(f"the client imported {figures['workbench']}, not the workbench in {tree}")
        figures["log"] = server_log(base_url)
        return figures
    finally:
        server.kill()
        server.wait()


def after_the_start(log: list[tuple[float, str]], seconds: float = 2.0, tail: int = 5) -> tuple[float, float]:
    """Share refused from ``seconds`` after the first refusal on, and requests admitted per minute from then until
    the last ``tail`` admissions (a batch's last few requests are too few to run at any limit)."""
    first = next((moment for moment, outcome in log if outcome == "limited"), None)
    if first is None:
        return 0.0, float("nan")
    later = [(moment, outcome) for moment, outcome in log if moment >= first + seconds]
    admitted = [moment for moment, outcome in later if outcome == "ok"][:-tail]
    refused = sum(outcome == "limited" for _, outcome in later) / max(len(later), 1)
    per_minute = (len(admitted) - 1) / (admitted[-1] - admitted[0]) * 60 if len(admitted) > 1 else float("nan")
    return refused, per_minute


def per_minute(figures: dict) -> float:
    """Requests the batch completed per minute."""
    return (len([1 for _, outcome in figures["log"] if outcome == "ok"])) / figures["wall"] * 60


def old_tree(args: argparse.Namespace, scratch: Path) -> tuple[Path | None, str]:
    """The tree to import the OLD workbench from, and how to name it."""
    if args.old:
        return Path(args.old), args.old
    if not args.old_ref:
        return None, ""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.old_ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "workbench"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(scratch, filter="data")
    return scratch, commit if commit.startswith(args.old_ref) else f"{args.old_ref} ({commit})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="a tree holding the OLD workbench package")
    parser.add_argument("--old-ref", help="a git commit whose workbench package is OLD")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--random-requests", type=int, default=2000, help="requests of the random-429s batches")
    parser.add_argument("--limit", type=float, default=1200, help="the servers' limit, requests per minute")
    parser.add_argument("--burst", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each batch (the median is printed)")
    parser.add_argument("--only", help="comma-separated server names (default: all)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client(args)

    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at start: {load} (1, 5, 15 min) on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        old, old_name = old_tree(args, Path(scratch))
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "workbench"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"NEW: workbench of {ROOT} at {head}{' (with uncommitted changes)' if dirty else ''}")
        print(f"OLD: workbench of {old_name}" if old else "OLD: not run (give --old or --old-ref)")
        trees = [("OLD", old), ("NEW", ROOT)] if old else [("NEW", ROOT)]
        limit = ["--rpm-limit", f"{args.limit:g}", "--rpm-burst", f"{args.burst:g}", "--rpm-headers", "none"]
        print(
            f"\nservers enforcing {args.limit:g} requests/min (bucket of {args.burst:g}) without rate-limit headers; "
            f"{args.requests} requests at max_concurrency={args.concurrency}, nothing configured; median of "
            f"{args.rounds} run(s); targets: at most 5% refused, at least 90% of the limit admitted\n"
        )
        columns = "".join(f"{name:>9}" for name, _ in trees)
        width = 9 * len(trees) + 3
        print(f"{'server':<24}{'refused after 2 s':>{width}}{'admitted/limit':>{width}}{'wall (s)':>{width}}")
        print(f"{'':<24}   {columns}   {columns}   {columns}")
        only = set(args.only.split(",")) if args.only else None
        for name, flags in SERVERS.items():
            if only and name not in only:
                continue
            runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in trees}
            for round_number in range(args.rounds):
                order = trees if round_number % 2 == 0 else trees[::-1]
                for label, tree in order:
                    figures = run_batch(tree, flags + limit, args, f"{name}-{round_number}")
                    refused, admitted = after_the_start(figures["log"])
                    runs[label].append((refused, admitted / args.limit, figures["wall"]))
                    if figures["errors"]:
                        print(f"  ({label}: {figures['errors']} rows with an error)")
            medians = {label: [statistics.median(run[i] for run in runs[label]) for i in range(3)] for label in runs}
            refused = "".join(f"{medians[label][0]:>9.1%}" for label, _ in trees)
            admitted = "".join(f"{medians[label][1]:>9.0%}" for label, _ in trees)
            wall = "".join(f"{medians[label][2]:>9.1f}" for label, _ in trees)
            print(f"{name:<24}   {refused}   {admitted}   {wall}")
        if not only or "random 429s" in only:
            random_429s(trees, args)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nload average at the end: {load}")


def random_429s(trees: list[tuple[str, Path]], args: argparse.Namespace) -> None:
    """No limit, 20% of requests refused at random: requests/min of each tree's batch, against a clean batch."""
    args = argparse.Namespace(**{**vars(args), "requests": args.random_requests})
    print(
        f"\nrandom 429s: no limit, 20% of requests refused at random (retry-after 10 ms), 20 ms latency; "
        f"{args.requests} requests at max_concurrency={args.concurrency}. Requests sent per minute (429s included) "
        "against the same tree's batch on the same server without the 429s, run just before it (target: close to "
        "100%), and requests answered per minute (at best 80% of the clean batch's: each takes 1.25 tries)"
    )
    for round_number in range(args.rounds):
        order = trees if round_number % 2 == 0 else trees[::-1]
        for label, tree in order:
            clean = run_batch(tree, ["--latency", "0.02"], args, f"clean-{round_number}")
            faulty = run_batch(tree, RANDOM_429S, args, f"random-{round_number}")
            sent, answered = (len(faulty["log"]) / faulty["wall"] * 60, per_minute(faulty))
            clean_sent = len(clean["log"]) / clean["wall"] * 60
            print(
                f"  {label}: sent {sent:6.0f}/min = {sent / clean_sent:4.0%} of {clean_sent:.0f}/min without the 429s; "
                f"answered {answered:6.0f}/min = {answered / per_minute(clean):4.0%}; {faulty['wall']:.1f} s "
                f"against {clean['wall']:.1f} s"
            )


if __name__ == "__main__":
    main()
