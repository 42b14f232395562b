"""Does self-improvement work? Calibrate the tasks, compare the strategies at equal budget, trust the judge.

    python -m workbench.grading.experiment calibrate --n 40            # single-sample verified rate per setting
    python -m workbench.grading.experiment compare --n 200 --budget 4  # the strategy table, every task

Both run on the embedded model unless ``--base-url``/``--model`` (or ``--backend``) name another
endpoint. Everything is cached: a second run is free. In Python::

    rows, table, trust = run_experiment(llm, ["arithmetic"], n=50, budget=4)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import polars as pl

from ..models.client import LLM
from . import tasks as task_registry
from .stats import mcnemar, wilson
from .strategies import RUBRIC, compare_strategies, judge_kept, strategy_table
from .trust import agreement

__all__ = ["CLAIMS", "PASS_ABOVE", "against_single", "calibrate", "claims", "judge_vs_verifier", "run_experiment"]

PASS_ABOVE = 3.5  # the judge passes an answer whose (sampled or weighted) score lies above this on 1..5


def calibrate(
    llm: LLM, names: list[str] | None = None, *, n: int = 40, seed: int = 0, progress: bool = False
) -> pl.DataFrame:
    """The single-sample verified rate of every task at every difficulty (temperature 0.7, train split)."""
    rows = []
    for name in names or task_registry.names():
        task = task_registry.get(name)
        for level in task.difficulties:
            items = task.items(n, seed=seed, difficulty=level)
            found = compare_strategies(llm, task, items, strategies=["single"], budget=1, progress=progress)
            passed = int(found["verified"].fill_null(False).sum())
            low, high = wilson(passed, items.height)
            rate = passed / items.height
            rows.append(
                {
                    "task": name,
                    "difficulty": level,
                    "shipped": level == task.default_difficulty,
                    "items": items.height,
                    "verified_rate": rate,
                    "ci_low": low,
                    "ci_high": high,
                    "in_window": 0.10 <= rate <= 0.80,
                }
            )
    return pl.DataFrame(rows)


def judge_vs_verifier(rows: pl.DataFrame, *, pass_above: float = PASS_ABOVE) -> pl.DataFrame:
    """Per task: does the judge agree with the verifier on the single-sample answers? Kappa for both scorings.

    ``kappa_sampled`` compares (sampled score > ``pass_above``) with ``verified``; ``kappa_weighted``
    does the same with the probability-weighted score; ``logprobs`` is the share of rows that had
    a weighted score (0 on a backend without logprobs, where the weighted kappa is null).
    """
    single = rows.filter(pl.col("strategy") == "single", pl.col("selected"), pl.col("verified").is_not_null())
    out = []
    for (task,), part in single.group_by("task", maintain_order=True):
        part = part.with_columns(
            judge_pass=pl.col("judge_score") > pass_above,
            weighted_pass=pl.col("judge_weighted") > pass_above,
        )
        out.append(
            {
                "task": task,
                "answers": part.height,
                "verified_rate": part["verified"].mean(),
                "judge_pass_rate": part["judge_pass"].mean(),
                "kappa_sampled": _kappa(part, "judge_pass"),
                "kappa_weighted": _kappa(part, "weighted_pass"),
                "logprobs": part["judge_weighted"].is_not_null().mean(),
            }
        )
    return pl.DataFrame(out)


def _kappa(part: pl.DataFrame, column: str) -> float | None:
    try:
        return agreement(part, column, "verified").kappa
    except ValueError:
        return None


def against_single(rows: pl.DataFrame, *, alpha: float = 0.05) -> pl.DataFrame:
    """Each strategy against the single sample on the same items: the change in yield and its paired test.

    ``better``/``worse``: items verified by the strategy but not by the single sample, and the
    reverse; ``p_value``: exact McNemar test (a two-sided binomial test on those discordant items,
    ``stats.mcnemar``); ``effect``: "raises", "lowers" or "no clear change" at ``alpha``. The
    judge columns show whether the judge liked the strategy's data more than the single sample's.
    """
    kept = rows.filter(pl.col("selected")).select(
        "task", "strategy", "item_id", ok=pl.col("verified").fill_null(False), judged=pl.col("judge_score")
    )
    out = []
    for (task,), part in kept.group_by("task", maintain_order=True):
        items = rows.filter(pl.col("task") == task)["item_id"].unique()
        base = _per_item(part, "single", items)
        for strategy in part["strategy"].unique(maintain_order=True):
            if strategy == "single":
                continue
            other = _per_item(part, strategy, items)
            joined = base.join(other, on="item_id", suffix="_s")
            better = int((joined["ok_s"] & ~joined["ok"]).sum())
            worse = int((joined["ok"] & ~joined["ok_s"]).sum())
            p_value = mcnemar(better, worse)
            change = (better - worse) / joined.height
            effect = "no clear change" if p_value >= alpha else ("raises" if change > 0 else "lowers")
            out.append(
                {
                    "task": task,
                    "strategy": strategy,
                    "yield_change": change,
                    "better": better,
                    "worse": worse,
                    "p_value": p_value,
                    "effect": effect,
                    "judge_change": _mean(other["judged"]) - _mean(base["judged"]),
                }
            )
    return pl.DataFrame(out)


def _per_item(part: pl.DataFrame, strategy: str, items: pl.Series) -> pl.DataFrame:
    chosen = part.filter(pl.col("strategy") == strategy).select("item_id", "ok", "judged")
    every = pl.DataFrame({"item_id": items})
    return every.join(chosen, on="item_id", how="left").with_columns(pl.col("ok").fill_null(False))


def _mean(series: pl.Series) -> float:
    value = series.mean()
    return float("nan") if value is None else float(value)


CLAIMS = {
    "self_refine": ("Huang et al. 2023: intrinsic self-correction does not reliably improve reasoning", False),
    "best_of_verifier": ("STaR (Zelikman et al. 2022): filtering samples with a verifier raises the yield", True),
    "majority_vote": ("Self-consistency (Wang et al. 2022): a majority vote over k samples raises accuracy", True),
}


def claims(compared: pl.DataFrame) -> list[str]:
    """One sentence per published claim and task: what this run found and whether it agrees."""
    sentences = []
    for row in compared.iter_rows(named=True):
        if row["strategy"] not in CLAIMS:
            continue
        claim, expects_raise = CLAIMS[row["strategy"]]
        verb = {"raises": "raised", "lowers": "lowered"}.get(row["effect"], "did not clearly change")
        if expects_raise:
            verdict = {"raises": "agrees", "lowers": "contradicts it"}.get(row["effect"], "does not confirm it")
        else:
            verdict = "does not agree" if row["effect"] == "raises" else "agrees"
        sentences.append(
            f"{claim}. On {row['task']}, {row['strategy']} {verb} the verified yield "
            f"({row['yield_change']:+.1%} vs the single sample, exact McNemar p = {row['p_value']:.3f}): "
            f"this run {verdict}."
        )
    for row in compared.iter_rows(named=True):
        if row["effect"] != "raises" and row["judge_change"] > 0.25:
            sentences.append(
                f"On {row['task']}, {row['strategy']} pleased the judge (+{row['judge_change']:.2f} mean score) "
                "without raising the verified yield."
            )
    return sentences


def run_experiment(
    llm: LLM, names: list[str] | None = None, *, n: int = 200, budget: int = 4, seed: int = 0, progress: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Every strategy on ``n`` items of each task; returns (rows, strategy table, judge-vs-verifier table).

    The kept rows are graded by the judge afterwards as a measurement (not charged to any budget),
    so the table's ``judge_mean_kept`` shows which strategies please the judge.
    """
    frames = []
    for name in names or task_registry.names():
        items = task_registry.get(name).items(n, seed=seed)
        rows = compare_strategies(llm, name, items, budget=budget, seed=seed, progress=progress)
        frames.append(judge_kept(llm, rows, items, RUBRIC, progress=progress))
    rows = pl.concat(frames)
    return rows, strategy_table(rows), judge_vs_verifier(rows)


def _connect(args: argparse.Namespace) -> LLM:
    from ..models.connect import connect

    options: dict[str, Any] = {}
    if args.base_url:
        options.update(base_url=args.base_url, timeout=600.0, max_concurrency=8)
    return connect(args.backend, model=args.model, **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["calibrate", "compare"])
    parser.add_argument("--tasks", nargs="*", default=None, help="task names (default: every registered task)")
    parser.add_argument("--n", type=int, default=None, help="items per task (calibrate: 40, compare: 200)")
    parser.add_argument("--budget", type=int, default=4, help="model calls per item")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--save", default=None, help="write the rows to <SAVE>-<task>.parquet")
    args = parser.parse_args(argv)
    llm = _connect(args)
    started = time.perf_counter()
    with pl.Config(tbl_width_chars=200, tbl_cols=30, tbl_rows=60, float_precision=3):
        if args.command == "calibrate":
            print(calibrate(llm, args.tasks, n=args.n or 40, seed=args.seed, progress=True))
        else:
            print(f"{llm.model}: budget {args.budget} calls per item, {args.n or 200} items per task", flush=True)
            for name in args.tasks or task_registry.names():
                rows, table, trust = run_experiment(llm, [name], n=args.n or 200, budget=args.budget, seed=args.seed)
                if args.save:
                    rows.write_parquet(f"{args.save}-{name}.parquet")
                print(table.drop("yield_ci_low", "yield_ci_high", "cost_usd"))
                print("judge vs verifier on the single-sample answers (pass = score above 3.5)")
                print(trust)
                compared = against_single(rows)
                print(compared)
                print("\n".join(claims(compared)))
                print(f"{name} done after {time.perf_counter() - started:.0f} s", flush=True)
    print(f"wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
