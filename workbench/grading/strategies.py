"""Strategies compared at equal budget: does grading and refining make the data better?

    rows = compare_strategies(llm, "arithmetic", n=200, budget=4)    # every row, full lineage
    strategy_table(rows)                                             # one row per strategy

Every strategy answers the same task items and may spend at most ``budget`` model calls per item
(judge calls count; the program verifier is free). ``single`` is the baseline at 1 call.

==================  ========================================================================
strategy            what it does with ``budget`` = B calls per item
==================  ========================================================================
single              one sample (1 call)
self_refine         intrinsic self-correction (Madaan et al. 2023; Huang et al. 2023): sample,
                    then while two more calls fit: the LLM judge grades the answer, stops at
                    ``stop_at``, else its reason is the feedback for one revision
verifier_refine     the verifier's message is the feedback (Reflexion, Shinn et al. 2023):
                    sample, then revise while it fails, up to B calls in all
best_of_judge       B // 2 samples, each graded once by the LLM judge; the best score wins
best_of_verifier    B samples; the first that passes the verifier is kept, none if none passes
                    (rejection sampling, as in STaR, Zelikman et al. 2022)
majority_vote       B samples; the most common extracted answer wins (self-consistency, Wang
                    et al. 2022); only for tasks with one right answer
==================  ========================================================================

The k-sample strategies draw the same samples (same request, same ``sample_index``), so with the
response cache a sample paid for once serves them all. Every request carries the run's ``seed``, which
the client turns into that request's own sampling seed (``workbench.models.requests``): the k samples
of an item, and the samples of different items, never share a random stream; the table still charges each strategy for
every call it made, cached or not. The refine strategies stop early when done, so they may use
fewer than B calls; the table reports the calls actually made.

Rows (:data:`ROW_COLUMNS`) keep lineage: ``lineage_id`` is the item's first sample, ``parent_id``
the row a revision revised, ``round`` counts revisions; ``selected`` marks the row each strategy
puts in its dataset. A verifier that raises leaves ``verified`` null and its error in
``verify_error``; the run goes on.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import polars as pl

from ..errors import InputError
from ..models.client import LLM
from ..models.sync import run_sync
from .grade import agrade
from .rubrics import Rubric
from .stats import wilson
from .tasks import Task, get

__all__ = [
    "MINIMUM_BUDGET",
    "ROW_COLUMNS",
    "RUBRIC",
    "STRATEGIES",
    "acompare_strategies",
    "compare_strategies",
    "judge_kept",
    "strategy_table",
]

STRATEGIES = ("single", "self_refine", "verifier_refine", "best_of_judge", "best_of_verifier", "majority_vote")
MINIMUM_BUDGET = {
    "single": 1,
    "self_refine": 3,
    "verifier_refine": 2,
    "best_of_judge": 4,
    "best_of_verifier": 2,
    "majority_vote": 3,
}
RUBRIC = Rubric(
    "Does the response do exactly what the task asks, following every instruction, and is it correct?",
    scale=(1, 5),
    levels={1: "wrong, or ignores the instructions", 3: "partly right, or breaks one instruction", 5: "fully right"},
    name="task_answer",
)
FEEDBACK = (
    "A reviewer checked your answer and said: {feedback}\n"
    "Answer the original request again, fixing this and following every instruction in it."
)
ROW_COLUMNS: dict[str, pl.DataType] = {
    "strategy": pl.String(),
    "task": pl.String(),
    "seed": pl.Int64(),  # the run seed the samples were drawn with
    "item_id": pl.String(),
    "sample_id": pl.String(),
    "parent_id": pl.String(),
    "lineage_id": pl.String(),
    "round": pl.Int64(),
    "sample_index": pl.Int64(),
    "messages": pl.String(),
    "response": pl.String(),
    "model": pl.String(),
    "error": pl.String(),
    "cached": pl.Boolean(),
    "verified": pl.Boolean(),
    "verify_message": pl.String(),
    "verify_error": pl.String(),
    "judge_score": pl.Float64(),
    "judge_weighted": pl.Float64(),
    "judge_reason": pl.String(),
    "calls": pl.Int64(),  # model calls spent on this row: its generation plus judge calls on it
    "tokens": pl.Int64(),  # tokens in + out of those calls
    "cost_usd": pl.Float64(),
    "selected": pl.Boolean(),  # the row this strategy keeps for the item
}


class _Run:
    """What every strategy shares: the model, the task, its items, the judge and the settings."""

    def __init__(self, llm, task, items, judge, rubric, budget, params, options):
        self.llm, self.task, self.items, self.judge, self.rubric = llm, task, items, judge, rubric
        self.budget, self.params, self.options = budget, params, options
        self.prompts = {item["item_id"]: item["prompt"] for item in items}

    async def samples(self, strategy: str, k: int) -> list[list[dict[str, Any]]]:
        """k first samples per item (identical requests across strategies: the cache shares them)."""
        requests = [
            {"messages": self.task.messages(item["prompt"]), "sample_index": index}
            for item in self.items
            for index in range(k)
        ]
        replies = await self.llm.achat_many(requests, **self._generation())
        rows = [
            self.row(strategy, item, request, reply) for item, request, reply in _zip(self.items, requests, replies, k)
        ]
        return [rows[i * k : (i + 1) * k] for i in range(len(self.items))]

    async def revise(self, strategy: str, pairs: list[tuple[dict, dict, str]]) -> list[dict[str, Any]]:
        """One revision per (item, parent row, feedback), in the conversation that made the parent."""
        requests = []
        for _, parent, feedback in pairs:
            messages = [*json.loads(parent["messages"]), {"role": "assistant", "content": parent["response"] or ""}]
            messages.append({"role": "user", "content": FEEDBACK.format(feedback=feedback)})
            requests.append({"messages": messages})
        replies = await self.llm.achat_many(requests, **self._generation()) if requests else None
        rows = []
        for (item, parent, _), request, reply in zip(pairs, requests, _iter(replies), strict=True):
            row = self.row(strategy, item, request, reply)
            row.update(parent_id=parent["sample_id"], lineage_id=parent["lineage_id"], round=parent["round"] + 1)
            rows.append(row)
        return rows

    async def grade(self, rows: list[dict[str, Any]]) -> None:
        """The LLM judge grades each row once (one call each); adds judge_* and charges the call to the row."""
        if not rows:
            return
        frame = pl.DataFrame(
            {"task": [self.prompts[row["item_id"]] for row in rows], "response": [row["response"] for row in rows]},
            schema={"task": pl.String, "response": pl.String},
        )
        graded = await agrade(self.judge, frame, self.rubric, weighted=True, **self.options)
        for row, grade in zip(rows, graded.iter_rows(named=True), strict=True):
            called = row["response"] is not None
            row.update(
                judge_score=grade["score"],
                judge_weighted=grade["weighted_score"],
                judge_reason=grade["reason"],
                calls=row["calls"] + int(called),
                tokens=row["tokens"] + (grade["judge_tokens_in"] or 0) + (grade["judge_tokens_out"] or 0),
                cost_usd=_add(row["cost_usd"], grade["judge_cost_usd"]),
            )

    def row(self, strategy: str, item: dict, request: dict, reply: dict) -> dict[str, Any]:
        verified, message, error = _verify(self.task, reply["response"], item["variables"])
        sample_id = reply["request_id"][:16]
        return {
            "strategy": strategy,
            "task": self.task.name,
            "seed": self.params["seed"],
            "item_id": item["item_id"],
            "sample_id": sample_id,
            "parent_id": None,
            "lineage_id": sample_id,
            "round": 0,
            "sample_index": request.get("sample_index", 0),
            "messages": json.dumps(request["messages"], ensure_ascii=False),
            "response": reply["response"],
            "model": reply["model"],
            "error": reply["error"],
            "cached": reply["cached"],
            "verified": verified,
            "verify_message": message,
            "verify_error": error,
            "judge_score": None,
            "judge_weighted": None,
            "judge_reason": None,
            "calls": 1,
            "tokens": (reply["tokens_in"] or 0) + (reply["tokens_out"] or 0),
            "cost_usd": reply["cost_usd"],
            "selected": False,
        }

    def _generation(self) -> dict[str, Any]:
        return {**self.options, "max_tokens": self.task.max_tokens, **self.params}


def _zip(items, requests, replies, k):
    for index, (request, reply) in enumerate(zip(requests, replies.iter_rows(named=True), strict=True)):
        yield items[index // k], request, reply


def _iter(replies: pl.DataFrame | None):
    return replies.iter_rows(named=True) if replies is not None else iter(())


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _verify(task: Task, response: str | None, variables: str) -> tuple[bool | None, str | None, str | None]:
    try:
        verdict = task.verify(response, variables)
    except Exception as exc:  # a verifier that raises is recorded on its row; the run goes on
        return None, None, f"{type(exc).__name__}: {exc}"
    return verdict.passed, verdict.message or None, None


# --- the strategies ----------------------------------------------------------------------------------
async def _single(run: _Run, strategy: str) -> list[dict]:
    groups = await run.samples(strategy, 1)
    for group in groups:
        group[0]["selected"] = True
    return [row for group in groups for row in group]


async def _best_of_verifier(run: _Run, strategy: str) -> list[dict]:
    groups = await run.samples(strategy, run.budget)
    for group in groups:
        passing = [row for row in group if row["verified"]]
        if passing:
            passing[0]["selected"] = True
    return [row for group in groups for row in group]


async def _majority_vote(run: _Run, strategy: str) -> list[dict]:
    groups = await run.samples(strategy, run.budget)
    for group in groups:
        answers = [run.task.extract(row["response"]) if row["response"] else None for row in group]
        counts = Counter(answer for answer in answers if answer is not None)
        winner = counts.most_common(1)[0][0] if counts else None
        group[answers.index(winner) if winner is not None else 0]["selected"] = True
    return [row for group in groups for row in group]


async def _best_of_judge(run: _Run, strategy: str) -> list[dict]:
    groups = await run.samples(strategy, run.budget // 2)
    await run.grade([row for group in groups for row in group])
    for group in groups:
        group[max(range(len(group)), key=lambda i: (_judged(group[i]), -i))]["selected"] = True
    return [row for group in groups for row in group]


def _judged(row: dict[str, Any]) -> float:
    value = row["judge_weighted"] if row["judge_weighted"] is not None else row["judge_score"]
    return float("-inf") if value is None else value


async def _verifier_refine(run: _Run, strategy: str) -> list[dict]:
    groups = await run.samples(strategy, 1)
    rows, current = [row for group in groups for row in group], [group[0] for group in groups]
    items = {item["item_id"]: item for item in run.items}
    for _ in range(run.budget - 1):
        going = [row for row in current if not row["verified"] and row["response"] is not None]
        pairs = [(items[row["item_id"]], row, row["verify_message"] or "the answer is wrong") for row in going]
        revised = await run.revise(strategy, pairs)
        rows += revised
        latest = {row["item_id"]: row for row in revised}
        current = [latest.get(row["item_id"], row) for row in current]
    for row in current:
        row["selected"] = True
    return rows


async def _self_refine(run: _Run, strategy: str, stop_at: float) -> list[dict]:
    groups = await run.samples(strategy, 1)
    rows, current = [row for group in groups for row in group], [group[0] for group in groups]
    items = {item["item_id"]: item for item in run.items}
    spent = 1
    while spent + 2 <= run.budget:
        going = [row for row in current if row["response"] is not None and row["judge_score"] is None]
        await run.grade(going)
        going = [row for row in going if _judged(row) < stop_at]
        pairs = [(items[row["item_id"]], row, row["judge_reason"] or "the answer is not good enough") for row in going]
        revised = await run.revise(strategy, pairs)
        rows += revised
        latest = {row["item_id"]: row for row in revised}
        current = [latest.get(row["item_id"], row) for row in current]
        spent += 2
    for row in current:
        row["selected"] = True
    return rows


# --- the comparison -----------------------------------------------------------------------------------
async def acompare_strategies(
    llm: LLM,
    task: str | Task,
    items: pl.DataFrame | None = None,
    *,
    n: int = 50,
    budget: int = 4,
    strategies: list[str] | tuple[str, ...] | None = None,
    judge: LLM | None = None,
    rubric: Rubric = RUBRIC,
    stop_at: float = 4.0,
    split: str = "train",
    seed: int = 0,
    temperature: float = 0.7,
    cache: bool = True,
    progress: bool = True,
) -> pl.DataFrame:
    """The async form of :func:`compare_strategies`."""
    task = get(task)
    chosen = _chosen(task, strategies, budget)
    if items is None:
        items = task.items(n, split=split, seed=seed)
    params = {"temperature": temperature, "seed": seed}
    run = _Run(
        llm,
        task,
        list(items.iter_rows(named=True)),
        judge or llm,
        rubric,
        budget,
        params,
        {"cache": cache, "progress": progress},
    )
    frames = []
    for name in chosen:
        rows = await (_self_refine(run, name, stop_at) if name == "self_refine" else _RUNNERS[name](run, name))
        frames.append(pl.DataFrame(rows, schema=ROW_COLUMNS))
    return pl.concat(frames)


def judge_kept(judge: LLM, rows: pl.DataFrame, items: pl.DataFrame, rubric: Rubric = RUBRIC, **options: Any):
    """Grade every kept row the judge has not graded yet, as a measurement (its calls are not charged).

    Fills ``judge_score``/``judge_weighted``/``judge_reason``; the judge requests are the ones the
    strategies send, so rows already graded there come from the cache.
    """
    prompts = dict(zip(items["item_id"], items["prompt"], strict=True))
    todo = rows.with_row_index("_row").filter(pl.col("selected") & pl.col("judge_score").is_null())
    todo = todo.filter(pl.col("response").is_not_null())
    if todo.height == 0:
        return rows
    frame = pl.DataFrame({"task": [prompts[i] for i in todo["item_id"]], "response": todo["response"]})
    graded = run_sync(agrade(judge, frame, rubric, weighted=True, **options))
    found = pl.DataFrame(
        {
            "_row": todo["_row"],
            "_score": graded["score"],
            "_weighted": graded["weighted_score"],
            "_reason": graded["reason"],
        }
    )
    joined = rows.with_row_index("_row").join(found, on="_row", how="left")
    return joined.with_columns(
        pl.coalesce("judge_score", "_score").alias("judge_score"),
        pl.coalesce("judge_weighted", "_weighted").alias("judge_weighted"),
        pl.coalesce("judge_reason", "_reason").alias("judge_reason"),
    ).select(rows.columns)


def compare_strategies(llm: LLM, task: str | Task, items: pl.DataFrame | None = None, **options: Any) -> pl.DataFrame:
    """Run each strategy on the same items of ``task`` with at most ``budget`` calls per item; every row.

    ``items`` (from ``task.items(...)``) or ``n``/``split``/``seed`` to draw them. ``seed`` is the run
    seed: every request is sent with its own seed derived from it (see the module docstring). Options:
    ``budget`` (calls per item, default 4), ``strategies`` (default: all that apply to the task),
    ``judge`` (another LLM as judge; default ``llm``), ``rubric``, ``stop_at`` (self-refine stops at
    this judge score), ``temperature``, ``cache``, ``progress``. Read the result with
    :func:`strategy_table`; the module docstring says what each strategy does.
    """
    return run_sync(acompare_strategies(llm, task, items, **options))


_RUNNERS = {
    "single": _single,
    "verifier_refine": _verifier_refine,
    "best_of_judge": _best_of_judge,
    "best_of_verifier": _best_of_verifier,
    "majority_vote": _majority_vote,
}


def _chosen(task: Task, strategies, budget: int) -> list[str]:
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise InputError(f"budget is the number of model calls per item, a positive integer; got {budget!r}.")
    if strategies is None:
        strategies = [s for s in STRATEGIES if s != "majority_vote" or task.has_answer]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise InputError(f"unknown strategy {unknown[0]!r}. Known strategies: {', '.join(STRATEGIES)}.")
    if "majority_vote" in strategies and not task.has_answer:
        raise InputError(
            f"majority_vote needs a task with one right answer (answer and extract); {task.name!r} has none."
        )
    short = [s for s in strategies if budget < MINIMUM_BUDGET[s]]
    if short:
        needed = max(MINIMUM_BUDGET[s] for s in short)
        raise InputError(
            f"a budget of {budget} call(s) per item is too small for {', '.join(short)}: the minimum is {needed}."
        )
    return list(strategies)


# --- the table ----------------------------------------------------------------------------------------
def strategy_table(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (task, strategy, run seed): verified rate of the kept data with a 95% Wilson interval,
    yield, calls, tokens, cost, tokens per verified item and the judge's mean score of the kept rows.

    ``verified_rate`` = verified kept rows / kept rows; ``yield`` = verified kept rows / items asked for
    (they differ only where a strategy keeps nothing for an item, as rejection sampling does). Rows from
    several run seeds give one row each; ``experiment.seed_table`` reads them together.
    """
    missing = [name for name in ("strategy", "item_id", "selected", "verified", "calls") if name not in rows.columns]
    if missing:
        raise InputError(f"strategy_table reads the rows from compare_strategies; no column {missing[0]!r}.")
    if "seed" not in rows.columns:
        rows = rows.with_columns(seed=pl.lit(None, pl.Int64))
    table = []
    for (task, strategy, seed), part in rows.group_by("task", "strategy", "seed", maintain_order=True):
        table.append({**_summary(task, strategy, part), "seed": seed})
    return pl.DataFrame(table)


def _summary(task: str, strategy: str, part: pl.DataFrame) -> dict[str, Any]:
    items = part["item_id"].n_unique()
    kept = part.filter(pl.col("selected"))
    verified = int(kept["verified"].fill_null(False).sum())
    low, high = wilson(verified, kept.height)
    yield_low, yield_high = wilson(verified, items)
    tokens = int(part["tokens"].sum())
    return {
        "task": task,
        "strategy": strategy,
        "items": items,
        "kept": kept.height,
        "verified": verified,
        "verified_rate": verified / kept.height if kept.height else None,
        "ci_low": low,
        "ci_high": high,
        "yield": verified / items if items else None,
        "yield_ci_low": yield_low,
        "yield_ci_high": yield_high,
        "calls": int(part["calls"].sum()),
        "calls_per_item": part["calls"].sum() / items if items else None,
        "tokens": tokens,
        "cost_usd": part["cost_usd"].sum() if part["cost_usd"].null_count() == 0 else None,
        "tokens_per_verified": tokens / verified if verified else None,
        "judge_mean_kept": kept["judge_score"].mean(),
        "verify_errors": int(part["verify_error"].is_not_null().sum()),
    }
