"""``python -m workbench.training``: the self-training table on the embedded model, printed.

    python -m workbench.training --iterations 2 --k 4
    python -m workbench.training --arms verifier,gold --mode full

A module of its own, so that running it does not import ``self_train`` twice (once through ``workbench``).
"""

from __future__ import annotations

import argparse

import polars as pl

from ..errors import WorkbenchError
from .self_train import ARMS, SelfTraining, self_train


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.training",
        description="STaR self-training rounds with controls, on the embedded model.",
    )
    parser.add_argument("--task", default="arithmetic")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--k", type=int, default=4, help="answers sampled per training item")
    parser.add_argument("--train-items", type=int, default=60)
    parser.add_argument("--heldout-items", type=int, default=40)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    try:
        result = _run(args)
    except WorkbenchError as exc:  # bad input: the message says what to change, without a traceback
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
    with pl.Config(tbl_width_chars=200, tbl_cols=20, float_precision=3, tbl_rows=50):
        print(result.table)
    print(f"wall time: {result.seconds:.0f} s")


def _run(args: argparse.Namespace) -> SelfTraining:
    return self_train(
        args.task,
        iterations=args.iterations,
        k=args.k,
        train_items=args.train_items,
        heldout_items=args.heldout_items,
        arms=tuple(args.arms.split(",")),
        mode=args.mode,
        epochs=args.epochs,
        data_dir=args.data_dir,
    )


if __name__ == "__main__":
    main()
