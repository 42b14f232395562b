"""``wb.refine``: critique → revise → re-grade, round after round, with stop rules and full lineage.

    history = wb.refine(llm, graded, rubric, rounds=3, stop_at=4)
    wb.per_round(history, pass_at=4)      # the per-round table the charts read
    wb.best(history)                      # the best row of every lineage

Round 0 is the graded input. In each round, every sample still going is critiqued, revised and
re-graded. A sample stops when its score reaches ``stop_at`` ("reached stop_at"), when a round
does not raise its score ("no improvement"), when its revision fails ("revision failed"), or when
the rounds run out ("rounds exhausted"); a round-0 row without a response (its request failed) is
not critiqued ("no response"); ``stop_reason`` on its last row says which. Every row of
round *r* has ``parent_id`` = the ``sample_id`` of the round *r − 1* row it revised, and all rows of
one sample share ``lineage_id``. Only the rows still going call the model again, and the cache
makes a re-run free.

With ``via="batch"`` each step of a round (critiques, revisions, re-grades) is a provider batch
job: ``refine`` returns the jobs' handle while one runs, and the same call made again goes on from
the cache to the next step, so after a few calls (three per round) it returns the history.
``via="ray"`` answers every step on the Ray runner and returns the history at once.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from ..columns import task_texts
from ..errors import InputError, check_counts, check_numbers, check_type
from ..generation.structured import OutputSchema, ReplyInvalid
from ..models.client import LLM
from ..models.routes import Answer, is_pending
from ..models.sync import run_sync
from .grade import agrade
from .rubrics import Rubric

__all__ = ["arefine", "best", "per_round", "refine", "snapshot"]

CRITIQUE = (
    "Task:\n{task}\n\nResponse:\n{response}\n\nA grader scored this response {score} on a scale of {low} to {high} "
    "for: {criteria}\nThe grader's reason: {reason}\n\nWrite a short, specific critique: what is wrong or missing, "
    "and how to fix it. Do not rewrite the response."
)
REVISE = (
    "Task:\n{task}\n\nYour previous response:\n{response}\n\nCritique:\n{critique}\n\nWrite an improved response to "
    "the task that fixes these problems. Reply with the improved response only{json_note}."
)


async def arefine(
    llm: LLM,
    graded: pl.DataFrame,
    rubric: Rubric,
    *,
    rounds: int = 3,
    stop_at: float | None = None,
    judge: LLM | None = None,
    schema: Any = None,
    cache: bool = True,
    progress: bool = True,
    via: str | None = None,
    **params: Any,
) -> Answer:
    """The async form of :func:`refine`."""
    check_type(llm, LLM, "refine's first argument", "a connection from wb.connect()")
    check_type(rubric, Rubric, "refine's rubric", "a wb.Rubric('...'), the one the frame was graded with")
    check_type(judge, (LLM, type(None)), "judge", "a connection from wb.connect(), or None for llm itself")
    check_numbers(stop_at=stop_at)
    _check(graded, rounds)
    output = OutputSchema(schema) if schema is not None else None
    start = graded.with_columns(
        pl.Series("task", task_texts(graded), dtype=pl.String) if "task" not in graded.columns else pl.col("task"),
        pl.col("sample_id").alias("lineage_id"),
        pl.lit(None, pl.String).alias("critique"),
        pl.col("round") if "round" in graded.columns else pl.lit(0, pl.Int64).alias("round"),
        pl.col("parent_id") if "parent_id" in graded.columns else pl.lit(None, pl.String).alias("parent_id"),
    )
    start = start.with_columns(_stop_reasons(start, None, stop_at, last_round=False))
    history, current = [start], start.filter(pl.col("stop_reason").is_null())
    options = {"cache": cache, "progress": progress, "via": via}
    for round_number in range(1, rounds + 1):
        if current.height == 0:
            break
        revised = await _revise(llm, current, rubric, round_number, output, options, params)
        if is_pending(revised):
            return revised
        regraded = await agrade(judge or llm, revised, rubric, **options)
        if is_pending(regraded):
            return regraded
        regraded = regraded.with_columns(_stop_reasons(regraded, current, stop_at, last_round=round_number == rounds))
        history.append(regraded)
        current = regraded.filter(pl.col("stop_reason").is_null())
    return pl.concat(history, how="diagonal_relaxed")


def refine(llm: LLM, graded: pl.DataFrame, rubric: Rubric, **options: Any) -> Answer:
    """Critique, revise and re-grade the samples of ``graded`` for up to ``rounds`` rounds; the history.

    Options: ``rounds`` (default 3), ``stop_at`` (a score that ends a sample's refinement),
    ``judge`` (another LLM to grade with; default ``llm``), ``schema`` (structured revisions, parsed
    into columns as in ``wb.generate``), ``cache``, ``progress``, ``via`` (``"batch"``: a handle until
    each step's job is done, see the module docstring; ``"ray"``) and generation parameters.
    """
    return run_sync(arefine(llm, graded, rubric, **options))


def _check(graded: pl.DataFrame, rounds: int) -> None:
    check_counts(rounds=rounds)
    check_type(graded, pl.DataFrame, "refine's frame", "the polars frame wb.grade returned")
    missing = [name for name in ("sample_id", "response", "score", "scored") if name not in graded.columns]
    if missing:
        raise InputError(f"refine needs a graded frame (wb.grade first); it has no column {missing[0]!r}.")
    if graded.height == 0:
        raise InputError("the graded frame is empty: there is nothing to refine.")


async def _revise(llm, current, rubric, round_number, output, options, params) -> Answer:
    low, high = rubric.scale
    critiques = await llm.achat_many(
        [
            CRITIQUE.format(
                task=row["task"],
                response=row["response"],
                score=row["score"],
                low=low,
                high=high,
                criteria=rubric.criteria,
                reason=row["reason"] or "(none given)",
            )
            for row in current.iter_rows(named=True)
        ],
        **options,
        **{"temperature": 0.3, "max_tokens": 200, **params},
    )
    if is_pending(critiques):
        return critiques
    note = " as JSON in the same format" if output else ""
    requests = [
        [
            {
                "role": "user",
                "content": REVISE.format(
                    task=row["task"], response=row["response"], critique=critique or "", json_note=note
                ),
            }
        ]
        for row, critique in zip(current.iter_rows(named=True), critiques["response"], strict=True)
    ]
    revision_params = {"temperature": 0.7, "max_tokens": 400, **params}
    if output:
        revision_params["response_format"] = llm.json_format(output.json_schema, output.name)
    revisions = await llm.achat_many(requests, **options, **revision_params)
    if is_pending(revisions):
        return revisions
    return _revised_rows(current, round_number, requests, critiques, revisions, output)


def _revised_rows(current, round_number, requests, critiques, revisions, output) -> pl.DataFrame:
    rows = current.drop(revisions.columns, "critique", "stop_reason", strict=False).with_columns(
        pl.col("sample_id").alias("parent_id"),
        pl.lit(round_number, pl.Int64).alias("round"),
        pl.Series("critique", critiques["response"], dtype=pl.String),
        pl.Series("critique_cost_usd", critiques["cost_usd"], dtype=pl.Float64),
        pl.Series("critique_tokens", critiques["tokens_in"] + critiques["tokens_out"], dtype=pl.Int64),
        pl.Series("messages", [json.dumps(request, ensure_ascii=False) for request in requests], dtype=pl.String),
    )
    rows = rows.hstack(revisions).with_columns(pl.col("request_id").str.slice(0, 16).alias("sample_id"))
    if output is not None:
        rows = rows.with_columns(_parsed_fields(output, rows))
    failed_critique = pl.Series(critiques["error"]).is_not_null()
    return rows.with_columns(
        pl.when(failed_critique).then(pl.lit(None, pl.String)).otherwise(pl.col("response")).alias("response"),
        pl.when(failed_critique).then(pl.Series(critiques["error"])).otherwise(pl.col("error")).alias("error"),
    )


def _parsed_fields(output: OutputSchema, rows: pl.DataFrame) -> list[pl.Series]:
    values = []
    for text in rows["response"]:
        try:
            values.append(output.parse(text))
        except ReplyInvalid:
            values.append({})
    dtypes = {name: rows.schema.get(name) for name in output.fields}
    return [pl.Series(name, [v.get(name) for v in values], dtype=dtypes[name]) for name in output.fields]


def _stop_reasons(rows: pl.DataFrame, parents: pl.DataFrame | None, stop_at: float | None, *, last_round: bool):
    parent_score = (
        rows.select("parent_id").join(
            parents.select(pl.col("sample_id").alias("parent_id"), "score"),
            on="parent_id",
            how="left",
            maintain_order="left",
        )["score"]
        if parents is not None
        else None
    )
    reasons = []
    for index, row in enumerate(rows.iter_rows(named=True)):
        score = row["score"]
        if row["response"] is None:
            reasons.append("no response" if parents is None else "revision failed")
        elif stop_at is not None and score is not None and score >= stop_at:
            reasons.append("reached stop_at")
        elif parents is not None and (
            score is None or (parent_score[index] is not None and score <= parent_score[index])
        ):
            reasons.append("no improvement")
        elif last_round:
            reasons.append("rounds exhausted")
        else:
            reasons.append(None)
    return pl.Series("stop_reason", reasons, dtype=pl.String)


def _check_history(history: Any, needed: set[str], who: str) -> None:
    check_type(history, pl.DataFrame, f"{who}'s history", "the polars frame wb.refine returned")
    missing = sorted(needed - set(history.columns))
    if missing:
        raise InputError(
            f"{who} reads the history that wb.refine returns; this frame has no {', '.join(map(repr, missing))} "
            "(a graded frame is round 0 of a history: run wb.refine on it first)."
        )


def best(history: pl.DataFrame) -> pl.DataFrame:
    """The best-scored row of every lineage (the earliest round among equals; unscored rows last)."""
    _check_history(history, {"lineage_id", "score", "round"}, "best")
    ranked = history.sort(["lineage_id", "score", "round"], descending=[False, True, False], nulls_last=True)
    return ranked.group_by("lineage_id", maintain_order=True).first()


def snapshot(history: pl.DataFrame, round_number: int) -> pl.DataFrame:
    """The dataset as it stood after ``round_number``: each lineage's latest row up to that round."""
    _check_history(history, {"round", "lineage_id"}, "snapshot")
    check_counts(at_least=0, round_number=round_number)
    upto = history.filter(pl.col("round") <= round_number).sort("round")
    return upto.group_by("lineage_id", maintain_order=True).last()


def per_round(
    history: pl.DataFrame, pass_at: float | None = None, verified: str | None = None, view: str = "dataset"
) -> pl.DataFrame:
    """One row per round, the table the charts read.

    ``view="dataset"`` (default): the whole dataset after each round (every lineage's latest row), so
    the figures answer "how good is the data now?"; ``revised`` counts the rows changed in that
    round (0 in round 0, where nothing is revised yet). ``view="revised"``: only the rows produced
    in each round, with ``mean_change`` from their parents. Columns: ``rows``, ``scored``,
    ``mean_score``, ``pass_rate`` (score >= ``pass_at``) and, with ``verified`` (a bool column
    from ``wb.verify``), ``verified_rate``.
    """
    _check_history(history, {"round", "score", "lineage_id", "sample_id", "parent_id"}, "per_round")
    check_numbers(pass_at=pass_at)
    if view not in {"dataset", "revised"}:
        raise InputError(f"view is 'dataset' or 'revised', got {view!r}.")
    if view == "dataset":
        rounds = sorted(history["round"].unique().to_list())
        frame = pl.concat(
            [snapshot(history, r).with_columns(changed_in=pl.col("round"), round=pl.lit(r, pl.Int64)) for r in rounds]
        )
    else:
        parents = history.select(pl.col("sample_id").alias("parent_id"), pl.col("score").alias("parent_score"))
        frame = history.join(parents, on="parent_id", how="left")
    aggregations = [
        pl.len().alias("rows"),
        pl.col("score").is_not_null().sum().alias("scored"),
        pl.col("score").mean().alias("mean_score"),
    ]
    if view == "dataset":
        revised_now = (pl.col("changed_in") == pl.col("round")) & (pl.col("round") > 0)
        aggregations.append(revised_now.sum().alias("revised"))
    else:
        aggregations.append((pl.col("score") - pl.col("parent_score")).mean().alias("mean_change"))
    if pass_at is not None:
        aggregations.append((pl.col("score").fill_null(float("-inf")) >= pass_at).mean().alias("pass_rate"))
    if verified is not None:
        aggregations.append(pl.col(verified).fill_null(False).cast(pl.Float64).mean().alias("verified_rate"))
    return frame.group_by("round").agg(aggregations).sort("round")
