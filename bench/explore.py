"""How fast the explorer answers on a large run table: each action a user takes, timed on 100,000 rows.

A refine-like history (four rounds with lineage, about 120 words per response, scores, some
errors) is built in memory; ``wb.explore`` is driven through its widget state as a click would
drive it. Prints the median and worst of several runs of each action (target: a filter and a page
change each under 200 ms on 2 cores), and, side by side in the same run, what drawing every
matching row (no paging) costs, which is what paging saves.

    python bench/explore.py [--rows 100000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402

TARGET_MS = 200.0


def history(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(5_000)] + ["apples", "trains", "answer"]
    return pl.DataFrame(
        {
            "sample_id": [f"s{i:07d}" for i in range(rows)],
            "lineage_id": [f"s{(i // 4) * 4:07d}" for i in range(rows)],
            "parent_id": [None if i % 4 == 0 else f"s{i - 1:07d}" for i in range(rows)],
            "round": [i % 4 for i in range(rows)],
            "response": [" ".join(rng.choices(vocabulary, k=120)) for _ in range(rows)],
            "critique": [None if i % 4 == 0 else "Add more detail." for i in range(rows)],
            "score": [None if rng.random() < 0.05 else float(rng.randint(1, 5)) for _ in range(rows)],
            "reason": ["a reason"] * rows,
            "tokens_in": [rng.randint(20, 200) for _ in range(rows)],
            "tokens_out": [rng.randint(20, 400) for _ in range(rows)],
            "cost_usd": [rng.random() / 1000 for _ in range(rows)],
            "latency_s": [rng.random() * 3 for _ in range(rows)],
            "error": [None if rng.random() > 0.02 else "APIError: boom" for _ in range(rows)],
        }
    )


def timed(action, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    frame = history(args.rows)
    with tempfile.TemporaryDirectory() as marks:
        started = time.perf_counter()
        ex = wb.explore(frame, marks_dir=marks)
        print(f"{args.rows:,} rows; wb.explore(frame) built in {(time.perf_counter() - started) * 1000:.0f} ms\n")
        rounds = iter([1, 2, 3, None] * args.repeats)
        shows = iter(["errors", "unscored", "judge pass", "all"] * args.repeats)
        words = iter(["apples", "trains", "w42 w7", ""] * args.repeats)
        ranges = iter([(3.0, 5.0), (1.0, 2.0)] * args.repeats)
        orders = iter(["score", "tokens", "cost", "latency"] * args.repeats)
        actions = {
            "filter: round (dropdown)": lambda: setattr(ex.round_filter, "value", next(rounds)),
            "filter: score range (slider)": lambda: setattr(ex.score_filter, "value", next(ranges)),
            "filter: show (dropdown)": lambda: setattr(ex.show_filter, "value", next(shows)),
            "filter: text search": lambda: setattr(ex.search_box, "value", next(words)),
            "sort": lambda: ex.sort(next(orders)),
            "page change (next)": lambda: ex.page(ex.page_number + 1),
            "page jump (last page)": lambda: ex.page(ex.pages - 1 if ex.page_number == 0 else 0),
            "open a lineage (4 versions)": lambda: ex.lineage("s0050002"),
            "mark keep (saved to Parquet)": lambda: ex.mark("s0000004", "keep"),
        }
        print(f"{'action':<32}{'median ms':>10}{'worst ms':>10}  under {TARGET_MS:.0f} ms?")
        for name, action in actions.items():
            if name.startswith("page"):
                ex.filter()
                ex.sort(None)
            times = timed(action, args.repeats)
            median = statistics.median(times)
            print(f"{name:<32}{median:>10.1f}{max(times):>10.1f}  {'yes' if max(times) < TARGET_MS else 'NO'}")
        ex.filter(round=2)
        page_ms = statistics.median(timed(lambda: ex.page(ex.page_number + 1), args.repeats))
        every = ex.selected()
        started = time.perf_counter()
        drawn = "".join(ex.card(row) for row in every.with_columns(_id=pl.col("sample_id")).iter_rows(named=True))
        all_ms = (time.perf_counter() - started) * 1000
        print(
            f"\nside by side, round 2 ({every.height:,} rows): one page of {ex.page_size} cards {page_ms:.1f} ms; "
            f"every card at once {all_ms:,.0f} ms ({len(drawn) / 1e6:.0f} MB of HTML) -> paging is "
            f"{all_ms / page_ms:,.0f}x faster"
        )


if __name__ == "__main__":
    main()
