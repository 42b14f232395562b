"""Grading: an LLM judge with a rubric, or a Python verifier — the same columns either way.

    graded = wb.grade(llm, samples, rubric)               # pointwise LLM judge (JSON-constrained)
    graded = wb.grade(llm, samples, rubric, votes=5)      # self-consistency: the median of 5 votes
    graded = wb.grade(llm, samples, rubric, weighted=True)  # + G-Eval's probability-weighted score
    graded = wb.grade(is_correct, samples)                # a verifier: (row) -> bool | float
    checked = wb.verify(samples, is_correct, name="verified")   # verifier result in its own column

Grading adds :data:`GRADE_COLUMNS`. A grade that cannot be parsed, is out of range, or comes from a
failed request leaves the row *unscored* (``scored`` false) with the reason in ``unscored_reason``:
never a crash, never a silent null.

``weighted=True`` asks the judge for ``logprobs`` and adds ``weighted_score``: the expected score
under the judge's probabilities for the score tokens (G-Eval, Liu et al. 2023) — the sum of
``p(s) * s`` over the scale values ``s`` among the top tokens where the score is written, divided by
their total probability — averaged over the votes. ``weighted_note`` says why a row has none (the
backend returned no logprobs, or the score token was not found); those rows fall back to nothing,
and a warning names the backend, but the sampled ``score`` is always there.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import warnings
from collections.abc import Callable
from typing import Any

import polars as pl

from ..columns import require_columns, task_texts
from ..errors import InputError, check_counts
from ..models.client import LLM
from ..models.requests import MAX_BATCH_REQUESTS
from ..models.routes import Answer, is_pending
from ..models.sync import run_sync
from .rubrics import Rubric

__all__ = ["GRADE_COLUMNS", "WEIGHTED_COLUMNS", "agrade", "grade", "verify", "weighted_score"]

GRADE_COLUMNS: dict[str, pl.DataType] = {
    "score": pl.Float64(),  # the grade (median of the votes); null when unscored
    "reason": pl.String(),  # the judge's reason (of the vote nearest the median)
    "scored": pl.Boolean(),
    "unscored_reason": pl.String(),  # why a row has no score
    "judge": pl.String(),  # judge model, or verifier:<name>
    "votes": pl.List(pl.Int64()),  # every parsed vote
    "vote_spread": pl.Float64(),  # max - min of the votes
    "judge_tokens_in": pl.Int64(),
    "judge_tokens_out": pl.Int64(),
    "judge_cost_usd": pl.Float64(),
}
WEIGHTED_COLUMNS: dict[str, pl.DataType] = {
    "weighted_score": pl.Float64(),  # G-Eval: expected score under the judge's token probabilities
    "weighted_note": pl.String(),  # why a row has no weighted score
}
TOP_LOGPROBS = 10
JUDGE_TEMPLATE = "Task:\n{task}\n\nResponse to grade:\n{response}"


async def agrade(
    judge: LLM | Callable[[dict[str, Any]], Any],
    frame: pl.DataFrame,
    rubric: Rubric | None = None,
    *,
    votes: int = 1,
    column: str = "response",
    task_column: str | None = None,
    weighted: bool = False,
    cache: bool = True,
    progress: bool = True,
    via: str | None = None,
    **params: Any,
) -> Answer:
    """The async form of :func:`grade`."""
    if not isinstance(judge, LLM):
        if via not in (None, "kernel"):
            raise InputError(f"wb.grade with a verifier does not take via={via!r}: a program runs here; drop via.")
        return _verifier_grades(frame, judge, column)
    if not isinstance(rubric, Rubric):
        raise InputError("an LLM judge needs a rubric: wb.grade(llm, frame, wb.Rubric('...')).")
    require_columns(frame, column, purpose=" to grade")
    limit = max(1, MAX_BATCH_REQUESTS // max(frame.height, 1))
    check_counts(
        at_most=limit, why=f"{frame.height:,} rows times votes would be more requests than one call holds", votes=votes
    )
    tasks = task_texts(frame, task_column)
    requests, owners = _judge_requests(frame[column].to_list(), tasks, rubric, votes)
    params = {"temperature": 0.0 if votes == 1 else 0.7, "max_tokens": 256, **params}
    params["response_format"] = judge.json_format(rubric.json_schema(), "grade")
    if weighted:
        params = {"logprobs": True, "top_logprobs": TOP_LOGPROBS, **params}
    replies = await judge.achat_many(requests, cache=cache, progress=progress, via=via, **params) if requests else None
    if replies is not None and is_pending(replies):  # via="batch": a handle while it runs
        return replies
    grades = _collect(frame, column, replies, owners, rubric, judge.model)
    columns = [*GRADE_COLUMNS, *WEIGHTED_COLUMNS]
    graded = frame.drop([name for name in columns if name in frame.columns]).hstack(grades)
    if weighted:
        graded = graded.hstack(_weighted_scores(frame.height, replies, owners, rubric, judge.model))
    return graded


def grade(
    judge: LLM | Callable[[dict[str, Any]], Any], frame: pl.DataFrame, rubric: Rubric | None = None, **options: Any
) -> Answer:
    """Grade every row of ``frame``; returns it with the grade columns (see the module docstring).

    ``judge`` is an ``LLM`` (with ``rubric``) or a verifier ``(row) -> bool | float``. Options:
    ``votes`` (k judge samples, median taken), ``column`` (what is graded, default ``response``),
    ``task_column`` (the task shown to the judge; default ``task``, else the last user message of
    ``messages``), ``cache``, ``progress``, ``via`` (``"batch"`` or ``"ray"``: see ``workbench.scale``)
    and generation parameters.
    """
    return run_sync(agrade(judge, frame, rubric, **options))


def _judge_requests(responses, tasks, rubric: Rubric, votes: int):
    requests, owners = [], []
    for row, (response, task) in enumerate(zip(responses, tasks, strict=True)):
        if response is None:
            continue
        content = JUDGE_TEMPLATE.format(task=task or "(not recorded)", response=response)
        messages = [{"role": "system", "content": rubric.instructions()}, {"role": "user", "content": content}]
        requests += [{"messages": messages, "sample_index": vote} for vote in range(votes)]
        owners += [row] * votes
    return requests, owners


def parse_grade(text: str | None, rubric: Rubric) -> tuple[int | None, str | None, str | None]:
    """(score, reason, problem): a valid grade has no problem; an invalid one has no score."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return None, None, f"unparseable grade (not JSON): {(text or '')[:80]!r}"
    if not isinstance(value, dict) or "score" not in value:
        return None, None, f"unparseable grade (no score): {(text or '')[:80]!r}"
    score, reason = value["score"], value.get("reason")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or score != int(score):
        return None, reason, f"score is not an integer: {score!r}"
    if not rubric.scale[0] <= score <= rubric.scale[1]:
        return None, reason, f"score {score!r} outside the scale {rubric.scale[0]}..{rubric.scale[1]}"
    return int(score), reason, None


def _collect(frame, column, replies, owners, rubric, judge_model) -> pl.DataFrame:
    rows = [_empty_grade(judge_model, frame[column][i]) for i in range(frame.height)]
    for owner, reply in zip(owners, replies.iter_rows(named=True) if replies is not None else [], strict=True):
        row = rows[owner]
        for key, source in (
            ("judge_tokens_in", "tokens_in"),
            ("judge_tokens_out", "tokens_out"),
            ("judge_cost_usd", "cost_usd"),
        ):
            row[key] = None if row[key] is None or reply[source] is None else row[key] + reply[source]
        if reply["error"] is not None:
            row["_problems"].append(f"judge request failed: {reply['error']}")
            continue
        score, reason, problem = parse_grade(reply["response"], rubric)
        if problem:
            row["_problems"].append(problem)
        else:
            row["votes"].append(score)
            row["_reasons"].append(reason)
    return pl.DataFrame([_finish(row) for row in rows], schema=GRADE_COLUMNS)


def _empty_grade(judge_model: str, response: Any) -> dict[str, Any]:
    problems = [] if response is not None else ["no response to grade (the generation failed)"]
    return {
        "judge": judge_model,
        "votes": [],
        "_reasons": [],
        "_problems": problems,
        "judge_tokens_in": 0,
        "judge_tokens_out": 0,
        "judge_cost_usd": 0.0,
    }


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    votes, reasons, problems = row.pop("votes"), row.pop("_reasons"), row.pop("_problems")
    if not votes:
        return {
            **row,
            "score": None,
            "reason": None,
            "scored": False,
            "votes": [],
            "vote_spread": None,
            "unscored_reason": problems[0] if problems else "no grade",
        }
    median = float(statistics.median(votes))
    nearest = min(range(len(votes)), key=lambda i: abs(votes[i] - median))
    return {
        **row,
        "score": median,
        "reason": reasons[nearest],
        "scored": True,
        "unscored_reason": None,
        "votes": votes,
        "vote_spread": float(max(votes) - min(votes)),
    }


# --- the probability-weighted score (G-Eval) -----------------------------------------------------
def weighted_score(logprobs_json: str | None, rubric: Rubric) -> tuple[float | None, str | None]:
    """(expected score, problem) from one JSON grade reply's token logprobs (the ``logprobs`` column).

    The score token is the one where the value after ``"score":`` starts; its ``top_logprobs``
    that are scale values give the distribution. Problem is None when a score was computed.
    """
    if logprobs_json is None:
        return None, "no logprobs from this backend"
    tokens = json.loads(logprobs_json)
    text = "".join(token["token"] for token in tokens)
    found = list(re.finditer(r'"score"\s*:\s*', text))
    if not found:
        return None, "no score in the judge's reply"
    position, offset = found[-1].end(), 0
    for token in tokens:
        end = offset + len(token["token"])
        if end > position and token["token"][max(0, position - offset) :].strip():
            return _expected(token, rubric)
        offset = end
    return None, "the score token was not found in the logprobs"


def _expected(token: dict[str, Any], rubric: Rubric) -> tuple[float | None, str | None]:
    choices = token.get("top_logprobs") or [token]
    weights: dict[int, float] = {}
    for choice in choices:
        text = choice["token"].strip()
        if text.lstrip("-").isdigit() and rubric.scale[0] <= int(text) <= rubric.scale[1]:
            weights[int(text)] = weights.get(int(text), 0.0) + math.exp(choice["logprob"])
    total = sum(weights.values())
    if total == 0:
        return None, "no scale value among the score token's top logprobs"
    return sum(value * weight for value, weight in weights.items()) / total, None


def _weighted_scores(height: int, replies, owners, rubric: Rubric, model: str) -> pl.DataFrame:
    found: list[list[float]] = [[] for _ in range(height)]
    notes: list[str | None] = ["no grade"] * height
    rows = replies.iter_rows(named=True) if replies is not None else []
    for owner, reply in zip(owners, rows, strict=True):
        if reply["error"] is not None:
            continue
        value, problem = weighted_score(reply.get("logprobs"), rubric)
        if value is None:
            notes[owner] = problem
        else:
            found[owner].append(value)
    scores = [sum(values) / len(values) if values else None for values in found]
    notes = [None if values else note for values, note in zip(found, notes, strict=True)]
    if "no logprobs from this backend" in notes:
        warnings.warn(
            f"{model} returned no logprobs for some grades: their weighted_score is empty (see weighted_note); "
            "the sampled score is still there.",
            stacklevel=3,
        )
    return pl.DataFrame({"weighted_score": scores, "weighted_note": notes}, schema=WEIGHTED_COLUMNS)


# --- verifiers -------------------------------------------------------------------------------------
def verify(frame: pl.DataFrame, fn: Callable[[dict[str, Any]], Any], *, name: str = "verified") -> pl.DataFrame:
    """Run ``fn(row)`` on every row; adds ``name`` (its bool or number) and ``name_error`` (an exception)."""
    require_columns(frame)
    values, errors = [], []
    for row in frame.iter_rows(named=True):
        value, error = _call_verifier(fn, row)
        values.append(value)
        errors.append(error)
    kinds = {type(value) for value in values if value is not None}
    dtype = pl.Boolean if kinds <= {bool} else pl.Float64
    values = [None if v is None else (v if dtype == pl.Boolean else float(v)) for v in values]
    return frame.with_columns(pl.Series(name, values, dtype=dtype), pl.Series(f"{name}_error", errors, dtype=pl.String))


def _call_verifier(fn: Callable[[dict[str, Any]], Any], row: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        value = fn(row)
    except Exception as exc:  # a verifier that raises is recorded on its row
        return None, f"{type(exc).__name__}: {exc}"
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value == value):
        return value, None
    return None, f"the verifier returned {value!r}; expected a bool or a number"


def _verifier_grades(frame: pl.DataFrame, fn: Callable[[dict[str, Any]], Any], column: str) -> pl.DataFrame:
    if not callable(fn):
        raise InputError(f"a judge is an LLM (from wb.connect) or a verifier function; got {type(fn).__name__}.")
    require_columns(frame, column, purpose=" to grade")
    checked = verify(frame, fn, name="_value")
    label = f"verifier:{getattr(fn, '__name__', type(fn).__name__)}"
    grades = checked.select(
        pl.col("_value").cast(pl.Float64).alias("score"),
        pl.lit(None, pl.String).alias("reason"),
        pl.col("_value").is_not_null().alias("scored"),
        pl.col("_value_error").alias("unscored_reason"),
        pl.lit(label).alias("judge"),
        pl.lit(None, pl.List(pl.Int64)).alias("votes"),
        pl.lit(None, pl.Float64).alias("vote_spread"),
        pl.lit(0).alias("judge_tokens_in"),
        pl.lit(0).alias("judge_tokens_out"),
        pl.lit(0.0).alias("judge_cost_usd"),
    ).cast(GRADE_COLUMNS)
    return frame.drop([name for name in GRADE_COLUMNS if name in frame.columns]).hstack(grades)
