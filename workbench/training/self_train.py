"""``wb.self_train``: STaR rounds on the embedded model, with the controls that make the effect attributable.

    result = wb.self_train("arithmetic", iterations=1, k=4)
    result.table            # per iteration and arm: held-out verified rate with a 95% interval, kept, tokens, time

One iteration (Zelikman et al. 2022, STaR): sample ``k`` answers per training item with the current model,
keep what the task's program verifier accepts (rejection sampling), and fine-tune the *base* model on them;
the next iteration samples with the model just trained. Every arm is measured on held-out items that no
iteration trains on: another split of the task, asked in another phrasing, and a check (reusing
``wb.contamination``) refuses any training row that repeats a held-out item.

Arms, run the same way at the same budget (every arm trains on as many rows as the verifier arm kept):

    verifier     the samples the task's verifier accepted (STaR)
    unfiltered   the samples, unchecked
    judge        the samples an LLM judge (by default the base model with a rubric) scored >= 4 of 5
    gold         the task's right answers alone (bare answers, no reasoning: STaR's "direct" baseline, not a
                 ceiling — the model's own verified answers may teach it more)

    python -m workbench.training --iterations 2 --k 4      # the full table on the embedded model (__main__.py)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..curation.contamination import contamination
from ..curation.dedup import normalise
from ..errors import InputError, check_counts, check_numbers
from ..grading.grade import grade
from ..grading.rubrics import Rubric
from ..grading.stats import wilson
from ..models.client import LLM
from ..models.connect import connect
from .finetune import finetune

__all__ = ["ARMS", "JUDGE_RUBRIC", "SelfTraining", "check_heldout", "self_train", "split_items"]

ARMS = ("verifier", "unfiltered", "judge", "gold")
JUDGE_RUBRIC = Rubric(
    "Is the response a correct and direct answer to the task?",
    scale=(1, 5),
    levels={1: "wrong or no answer", 3: "partly right or unclear", 5: "exactly the right answer"},
    name="correct_answer",
)
JUDGE_PASS = 4


@dataclass
class SelfTraining:
    """What :func:`self_train` returns: the per-iteration table, every sample, and the trained models."""

    table: pl.DataFrame
    samples: pl.DataFrame
    models: dict[tuple[int, str], Any]
    seconds: float


def _task(task: Any) -> Any:
    if isinstance(task, str):
        from ..grading import tasks

        return tasks.get(task)
    return task


def split_items(task: Any, train: int = 60, heldout: int = 40, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train items, held-out items): the held-out ones in the task's held-out phrasing; training items
    whose variables repeat a held-out item's are dropped, so that no iteration can train on one.

    Asking for more training items than the task has beside the held-out ones is an error that says how
    many there are."""
    check_counts(train=train, heldout=heldout)
    task = _task(task)
    held = task.items(heldout, split="heldout", seed=seed)
    capacity = task.capacity("train")
    drawn = task.items(train * 3 if capacity is None else min(train * 3, capacity), split="train", seed=seed)
    kept = drawn.filter(~pl.col("variables").is_in(held["variables"].implode())).head(train)
    if kept.height < train:
        available = "" if capacity is None or drawn.height < capacity else f" (all {capacity:,} of them drawn)"
        raise InputError(
            f"task {task.name!r} has {kept.height:,} training items{available} that repeat none of the {heldout:,} "
            f"held-out ones; {train:,} were asked for. Ask for train={kept.height:,} or fewer, fewer held-out items, "
            "or a task with more items."
        )
    return kept, held


def check_heldout(rows: pl.DataFrame, heldout: pl.DataFrame, task: Any, column: str = "prompt") -> None:
    """Raise InputError naming the training rows that repeat a held-out item (in any phrasing of the task)."""
    task = _task(task)
    reference = _rendered(heldout, task)
    shortest = min(len(normalise(text).split()) for text in reference["text"])
    flagged = contamination(rows, reference, column=column, n=max(shortest, 1)).filter(pl.col("contaminated"))
    if "variables" in rows.columns:
        same = rows.filter(pl.col("variables").is_in(heldout["variables"].implode()))
        flagged = pl.concat([flagged.select(rows.columns), same], how="vertical_relaxed")
    if flagged.height:
        names = _row_names(flagged)
        raise InputError(
            f"{len(names)} training row(s) repeat held-out items: {', '.join(names[:10])}"
            f"{' ...' if len(names) > 10 else ''}. Held-out items must never be trained on: drop those rows "
            "or take the split from split_items()."
        )


def _rendered(heldout: pl.DataFrame, task: Any) -> pl.DataFrame:
    ids, texts = [], []
    for item in heldout.iter_rows(named=True):
        variables = json.loads(item["variables"])
        for phrasing in [*task.phrasings["train"], *task.phrasings["heldout"]]:
            ids.append(item["item_id"])
            texts.append(phrasing.format(**variables))
    return pl.DataFrame({"ref_id": ids, "text": texts})


def _row_names(frame: pl.DataFrame) -> list[str]:
    column = next((c for c in ("sample_id", "item_id") if c in frame.columns), None)
    names = frame[column].cast(pl.String).to_list() if column else [f"row {i}" for i in range(frame.height)]
    return list(dict.fromkeys(names))


def sample(
    llm: LLM, items: pl.DataFrame, task: Any, *, k: int, iteration: int, progress: bool, **params
) -> pl.DataFrame:
    """``k`` answers per item from ``llm``, each checked by the task's verifier (``verified``)."""
    requests = [{"messages": task.messages(prompt)} for prompt in items["prompt"] for _ in range(k)]
    answers = llm.chat_many(requests, progress=progress, max_tokens=task.max_tokens, **params)
    repeated = items.select(pl.all().repeat_by(k).explode())
    frame = pl.concat([repeated, answers.drop(["model"]).with_columns(answers["model"])], how="horizontal")
    verdicts = [
        task.verify(r, v).passed if r is not None else False
        for r, v in zip(frame["response"], frame["variables"], strict=True)
    ]
    return frame.with_columns(
        pl.col("request_id").str.slice(0, 16).alias("sample_id"),
        pl.lit(iteration).alias("round"),
        pl.Series("verified", verdicts, dtype=pl.Boolean),
    )


def evaluate(llm: LLM, heldout: pl.DataFrame, task: Any, progress: bool = False) -> dict[str, Any]:
    """Held-out verified rate at temperature 0, with its Wilson 95% interval."""
    answered = sample(llm, heldout, task, k=1, iteration=0, progress=progress, temperature=0.0)
    correct, n = int(answered["verified"].sum()), answered.height
    low, high = wilson(correct, n)
    return {"heldout_correct": correct, "heldout_n": n, "heldout_rate": correct / n, "ci_low": low, "ci_high": high}


def _arm_rows(arm: str, samples: pl.DataFrame, items: pl.DataFrame, judge: LLM | None, progress: bool) -> pl.DataFrame:
    if arm == "verifier":
        return samples.filter(pl.col("verified"))
    if arm == "unfiltered":
        return samples.filter(pl.col("response").is_not_null() & (pl.col("response").str.strip_chars() != ""))
    if arm == "judge":
        graded = grade(judge, samples, JUDGE_RUBRIC, task_column="prompt", progress=progress)
        return graded.filter(pl.col("score") >= JUDGE_PASS).select(samples.columns)
    gold = items.filter(pl.col("gold").is_not_null())
    if gold.height == 0:
        raise InputError("the task has no gold answers, so the 'gold' arm cannot run: leave it out of arms=.")
    return gold.with_columns(pl.col("gold").alias("response"), ("gold-" + pl.col("item_id")).alias("sample_id"))


def _budgeted(rows: pl.DataFrame, budget: int, seed: int) -> pl.DataFrame:
    """``budget`` rows: a random subset when there are more, gold rows repeated in turn when fewer."""
    if rows.height >= budget:
        return rows.sample(budget, seed=seed)
    if rows["sample_id"].str.starts_with("gold-").all():
        order = [i % rows.height for i in range(budget)]
        return rows[order].with_columns(pl.col("sample_id") + "-" + pl.Series(range(budget)).cast(pl.String))
    return rows


def self_train(
    task: Any = "arithmetic",
    *,
    iterations: int = 1,
    k: int = 4,
    train_items: int = 60,
    heldout_items: int = 40,
    arms: tuple[str, ...] = ARMS,
    temperature: float = 0.8,
    mode: str = "lora",
    epochs: int = 2,
    seed: int = 0,
    base: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    judge: LLM | None = None,
    serve: Callable[[Path | None], LLM] | None = None,
) -> SelfTraining:
    """Run ``iterations`` STaR rounds for each arm (see the module docstring); returns a :class:`SelfTraining`.

    ``serve(path)`` returns the ``LLM`` that answers with the GGUF at ``path`` (None: the base); by default
    ``wb.connect(local_model=path)``, the embedded llama.cpp server. ``judge`` grades for the judge arm
    (default: the base model grades its own samples).
    """
    started = time.perf_counter()
    check_counts(iterations=iterations, k=k, train_items=train_items, heldout_items=heldout_items, epochs=epochs)
    check_numbers(at_least=0, temperature=temperature)
    task = _task(task)
    if isinstance(arms, str) or not isinstance(arms, (tuple, list)):
        raise InputError(f"arms is a tuple of arm names chosen from {', '.join(ARMS)}; got {arms!r}.")
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown or "verifier" not in arms:
        raise InputError(f"arms are chosen from {', '.join(ARMS)} and must include 'verifier'; got {list(arms)}.")
    train, heldout = split_items(task, train_items, heldout_items, seed)
    options = {"data_dir": data_dir} if data_dir else {}
    serve = serve or (lambda path: connect(local_model=path, **options))
    base_llm = serve(base)
    rows = [{"iteration": 0, "arm": "base", **evaluate(base_llm, heldout, task)}]
    current = dict.fromkeys(arms, base_llm)
    models, everything = {}, []
    for iteration in range(1, iterations + 1):
        drawn = {
            arm: sample(
                current[arm],
                train,
                task,
                k=k,
                iteration=iteration,
                progress=progress,
                temperature=temperature,
                seed=seed,
            )
            for arm in arms
            if arm != "gold"
        }
        everything += [frame.with_columns(pl.lit(arm).alias("arm")) for arm, frame in drawn.items()]
        kept = {
            arm: _arm_rows(arm, drawn.get(arm, drawn["verifier"]), train, judge or base_llm, progress) for arm in arms
        }
        budget = kept["verifier"].height
        if budget == 0:
            raise InputError(
                f"iteration {iteration}: the verifier accepted none of the {drawn['verifier'].height} samples, so "
                "there is nothing to train on. Sample more (a larger k or more train_items) or raise the temperature."
            )
        for arm in arms:
            chosen = _budgeted(kept[arm], budget, seed + iteration)
            check_heldout(chosen, heldout, task)
            tuned = finetune(
                chosen,
                base=base,
                mode=mode,
                epochs=epochs,
                seed=seed,
                task_column="prompt",
                system=task.system,
                progress=progress,
                **options,
            )
            models[(iteration, arm)] = tuned
            current[arm] = serve(tuned.path)
            tokens = int(drawn[arm]["tokens_out"].sum()) if arm in drawn else 0
            rows.append(
                {
                    "iteration": iteration,
                    "arm": arm,
                    **evaluate(current[arm], heldout, task),
                    "items_kept": kept[arm]["item_id"].n_unique() if kept[arm].height else 0,
                    "rows_kept": kept[arm].height,
                    "rows_trained": chosen.height,
                    "tokens_sampled": tokens,
                    "train_seconds": tuned.stats.get("seconds_total"),
                    "trained_now": tuned.trained,
                }
            )
    table = pl.DataFrame(rows)
    samples = pl.concat(everything, how="diagonal_relaxed") if everything else pl.DataFrame()
    return SelfTraining(table, samples, models, time.perf_counter() - started)


if __name__ == "__main__":
    raise SystemExit("The self-training command is now: python -m workbench.training --iterations 2 --k 4")
