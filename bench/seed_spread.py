"""Are samples independent? The same items, one sample each, under several run seeds, on the embedded model.

    python bench/seed_spread.py                      # arithmetic, 60 items, seeds 0 1 2 3
    python bench/seed_spread.py --task comparison --n 60 --seeds 0 1 2 3 4 5

Each run seed draws one sample per item. If every request has its own random stream, the number of verified
items moves between seeds by at most about one binomial standard deviation, sqrt(n p (1 - p)) — less when the
items differ in difficulty (an item always right or always wrong does not move); if the items share a stream
(one seed sent with every request), they succeed and fail together and the spread is several times that.
Prints each seed's count, the spread between seeds and the binomial figure, side by side in one run.
"""

from __future__ import annotations

import argparse
import math
import time

import workbench as wb
from workbench.grading import tasks
from workbench.grading.strategies import compare_strategies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="arithmetic")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--item-seed", type=int, default=1)
    args = parser.parse_args()
    llm = wb.connect()
    items = tasks.get(args.task).items(args.n, seed=args.item_seed)
    started = time.perf_counter()
    counts = []
    for seed in args.seeds:
        rows = compare_strategies(llm, args.task, items, strategies=["single"], budget=1, seed=seed, progress=False)
        counts.append(int(rows["verified"].fill_null(False).sum()))
        print(f"seed {seed}: {counts[-1]} of {args.n} verified", flush=True)
    mean = sum(counts) / len(counts)
    spread = math.sqrt(sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)) if len(counts) > 1 else 0.0
    binomial = math.sqrt(args.n * (mean / args.n) * (1 - mean / args.n))
    print(
        f"{args.task}, {args.n} items (item seed {args.item_seed}), seeds {args.seeds}: mean {mean:.1f} verified; "
        f"spread between seeds (sd) {spread:.1f} items against {binomial:.1f} for independent samples "
        f"({spread / binomial:.2f}x); range {min(counts)}-{max(counts)}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
