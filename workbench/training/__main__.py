"""``python -m workbench.training``: self-training on the embedded model, its table printed (and saved).

    python -m workbench.training --iterations 2 --k 4                                  # STaR with its controls
    python -m workbench.training --iterations 5 --data replace,accumulate --arms verifier,judge,unfiltered
    python -m workbench.training --method dpo --arms verifier,judge,compare,random,sft  # one DPO round per source
    python -m workbench.training ... --seeds 0,1 --save runs/generations               # two run seeds, tables kept

With several ``--data`` or ``--seeds`` every combination runs (in that order; the cache and the model keys make a
rerun resume where it stopped), each table is printed, and then one table over the seeds: the mean held-out rate,
the spread between seeds, one run's 95% interval, and a paired test over items (the run seeds share their items,
drawn by ``--item-seed``; each item's gain summed over the seeds, ``sign_flip``) against the base and, for DPO,
against the supervised arm at equal data. ``--save DIR`` writes each run's table and per-item verdicts as Parquet
and everything printed to ``DIR/tables.txt``.

A module of its own, so that running it does not import ``self_train`` twice (once through ``workbench``).
"""

from __future__ import annotations

import argparse
import io
import time
from contextlib import redirect_stdout
from pathlib import Path

import polars as pl

from ..errors import WorkbenchError
from ..grading.stats import across_seeds, sign_flip
from .self_train import ARMS, DATA, SelfTraining, self_train

SHOWN = [
    "iteration", "arm", "data", "heldout_correct", "heldout_n", "heldout_rate", "ci_low", "ci_high", "p_vs_base",
    "p_vs_sft", "entropy", "distinct_2", "self_bleu", "answer_words", "distinct_answers", "samples_verified",
    "rows_trained", "carried", "chosen_logratio", "train_seconds",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.training",
        description="Self-training over generations (STaR; DPO on preference pairs), with controls, on the embedded "
        "model.",
    )
    parser.add_argument("--task", default="arithmetic")
    parser.add_argument("--iterations", type=int, default=2, help="generations")
    parser.add_argument("--k", type=int, default=4, help="answers sampled per training item")
    parser.add_argument("--train-items", type=int, default=60)
    parser.add_argument("--heldout-items", type=int, default=40)
    parser.add_argument("--method", default="sft", choices=["sft", "dpo"])
    parser.add_argument("--arms", default=None, help=f"comma-separated; sft default: {','.join(ARMS)}")
    parser.add_argument("--data", default="replace", help=f"comma-separated, of {', '.join(DATA)}")
    parser.add_argument("--seeds", default="0", help="comma-separated run seeds (sampling and training)")
    parser.add_argument("--item-seed", type=int, default=0, help="draws the items, the same for every run seed")
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--dpo-loss", default=None, choices=["sigmoid", "ipo", "dpop"])
    parser.add_argument("--nll", type=float, default=None, help="weight of the chosen answer's cross-entropy (RPO)")
    parser.add_argument("--margin", type=float, default=1.0, help="judge-score gap of a judge pair")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--base", default=None, help="the GGUF to start from (default: the embedded model)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--save", default=None, help="folder for the tables (Parquet) and tables.txt")
    args = parser.parse_args()
    try:
        _run_all(args)
    except WorkbenchError as exc:  # bad input: the message says what to change, without a traceback
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None


def _run_all(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs: dict[tuple[str, int], SelfTraining] = {}
    for seed in seeds:
        for data in args.data.split(","):
            runs[(data, seed)] = _run(args, data, seed)
            _show(f"data={data} seed={seed} ({runs[(data, seed)].seconds:.0f} s)", runs[(data, seed)].table, args)
    if len(seeds) > 1:
        for data in args.data.split(","):
            _show(f"data={data}, over seeds {args.seeds}", over_seeds([runs[(data, s)] for s in seeds]), args)
    _emit(f"wall time: {time.perf_counter() - started:.0f} s", args)
    if args.save:
        for (data, seed), result in runs.items():
            result.table.write_parquet(Path(args.save) / f"table-{data}-seed{seed}.parquet")
            result.heldout.write_parquet(Path(args.save) / f"heldout-{data}-seed{seed}.parquet")


def _run(args: argparse.Namespace, data: str, seed: int) -> SelfTraining:
    return self_train(
        args.task,
        iterations=args.iterations,
        k=args.k,
        train_items=args.train_items,
        heldout_items=args.heldout_items,
        arms=tuple(args.arms.split(",")) if args.arms else None,
        method=args.method,
        data=data,
        temperature=args.temperature,
        mode=args.mode,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        beta=args.beta,
        dpo_loss=args.dpo_loss,
        nll=args.nll,
        margin=args.margin,
        seed=seed,
        item_seed=args.item_seed,
        base=args.base,
        data_dir=args.data_dir,
    )


def over_seeds(results: list[SelfTraining]) -> pl.DataFrame:
    """Per generation and arm, over the run seeds: mean rate, spread, one run's interval, paired tests over items."""
    verdicts = pl.concat([r.heldout.with_columns(pl.lit(i).alias("seed")) for i, r in enumerate(results)])
    n = results[0].table["heldout_n"][0]
    rows = []
    for (iteration, arm), _ in results[0].table.group_by(["iteration", "arm"], maintain_order=True):
        counts = [int(r.table.filter(iteration=iteration, arm=arm)["heldout_correct"][0]) for r in results]
        row = {"iteration": iteration, "arm": arm, "seeds": len(results), **across_seeds(counts, n)}
        row["p_vs_base"] = _paired(verdicts, (iteration, arm), (0, "base")) if arm != "base" else None
        has_sft = verdicts.filter(iteration=iteration, arm="sft").height > 0
        row["p_vs_sft"] = _paired(verdicts, (iteration, arm), (iteration, "sft")) if has_sft and arm != "sft" else None
        rows.append(row)
    return pl.DataFrame(rows)


def _paired(verdicts: pl.DataFrame, one: tuple[int, str], other: tuple[int, str]) -> float:
    """sign_flip over items: each item's right answers under ``one`` minus under ``other``, summed over the seeds."""

    def right(key: tuple[int, str]) -> pl.DataFrame:
        chosen = verdicts.filter(iteration=key[0], arm=key[1])
        return chosen.group_by("item_id").agg(pl.col("correct").cast(pl.Int64).sum().alias(f"right_{key[1]}"))

    a, b = right(one), right(other)
    joined = a.join(b, on="item_id", suffix="_other")
    columns = joined.columns[1:]
    return sign_flip((joined[columns[0]] - joined[columns[1]]).to_list())


def _show(title: str, table: pl.DataFrame, args: argparse.Namespace) -> None:
    shown = table.select([name for name in SHOWN if name in table.columns] or table.columns)
    buffer = io.StringIO()
    with redirect_stdout(buffer), pl.Config(tbl_width_chars=260, tbl_cols=30, float_precision=3, tbl_rows=80):
        print(f"## {title}")
        print(shown)
    _emit(buffer.getvalue().rstrip(), args)


def _emit(text: str, args: argparse.Namespace) -> None:
    print(text, flush=True)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        with open(Path(args.save) / "tables.txt", "a", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
