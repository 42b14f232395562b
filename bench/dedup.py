"""How near-duplicate detection scales: ``wb.dedup`` (MinHash LSH) against naive pairwise Jaccard.

Rows of about 50 words are drawn from a Zipf-like vocabulary; 5% of them are planted near
duplicates (two words changed) of another row. Prints wall times side by side in one run:
``wb.dedup`` on 5,000 and on 100,000 rows (target: at most 30 s for 100,000 on 2 cores), and the
naive all-pairs Jaccard over the same 3-gram shingles on 5,000 rows, with how many planted
duplicates each found.

    python bench/dedup.py [--rows 100000] [--naive-rows 5000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from workbench.curation.dedup import normalise  # noqa: E402


def corpus(rows: int, seed: int = 0) -> tuple[pl.DataFrame, set[tuple[int, int]]]:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(20_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    texts: list[str] = []
    planted: set[tuple[int, int]] = set()
    for index in range(rows):
        if index > 0 and rng.random() < 0.05:
            source = rng.randrange(index)
            tokens = texts[source].split()
            for _ in range(2):
                tokens[rng.randrange(len(tokens))] = rng.choice(vocabulary)
            texts.append(" ".join(tokens))
            planted.add((source, index))
        else:
            texts.append(" ".join(rng.choices(vocabulary, weights, k=rng.randint(45, 55))))
    return pl.DataFrame({"sample_id": [str(i) for i in range(rows)], "response": texts}), planted


def shingle_set(text: str, n: int = 3) -> set[str]:
    words = normalise(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def naive(frame: pl.DataFrame, threshold: float) -> set[tuple[int, int]]:
    sets = [shingle_set(text) for text in frame["response"]]
    found = set()
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = len(sets[i] | sets[j])
            if union and len(sets[i] & sets[j]) / union >= threshold:
                found.add((i, j))
    return found


def recall(frame: pl.DataFrame, planted: set[tuple[int, int]]) -> float:
    cluster = dict(zip(frame["sample_id"].cast(pl.Int64), frame["dup_cluster"], strict=True))
    hits = sum(1 for a, b in planted if cluster[a] is not None and cluster[a] == cluster[b])
    return hits / len(planted) if planted else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    parser.add_argument("--threshold", type=float, default=0.7)
    args = parser.parse_args()
    print(f"rows of ~50 words, 5% planted near duplicates (2 words changed); threshold {args.threshold}")

    small, small_planted = corpus(args.naive_rows)
    started = time.perf_counter()
    pairs = naive(small, args.threshold)
    naive_seconds = time.perf_counter() - started
    naive_recall = len(pairs & small_planted) / len(small_planted)

    started = time.perf_counter()
    marked_small = wb.dedup(small, threshold=args.threshold)
    small_seconds = time.perf_counter() - started

    big, big_planted = corpus(args.rows, seed=1)
    started = time.perf_counter()
    marked_big = wb.dedup(big, threshold=args.threshold)
    big_seconds = time.perf_counter() - started

    print(
        f"naive pairwise Jaccard, {args.naive_rows:>7,} rows: {naive_seconds:8.2f}s  "
        f"recall of planted pairs {naive_recall:.1%}"
    )
    print(
        f"wb.dedup (MinHash LSH),  {args.naive_rows:>7,} rows: {small_seconds:8.2f}s  "
        f"recall {recall(marked_small, small_planted):.1%}  -> {naive_seconds / small_seconds:.0f}x faster"
    )
    print(
        f"wb.dedup (MinHash LSH),  {args.rows:>7,} rows: {big_seconds:8.2f}s  "
        f"recall {recall(marked_big, big_planted):.1%}  (target <= 30 s)"
    )
    growth = args.rows / args.naive_rows
    print(
        f"naive pairwise at {args.rows:,} rows would take about {naive_seconds * growth**2 / 3600:.1f} h "
        f"({growth**2:.0f}x the pairs); dedup grew {big_seconds / small_seconds:.1f}x for {growth:.0f}x rows"
    )


if __name__ == "__main__":
    main()
