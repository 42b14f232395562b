"""``wb.compare``: a pairwise judge that asks in both orders, so position bias shows and cancels.

    verdicts = wb.compare(llm, samples_a, samples_b, rubric)
    wb.position_bias(verdicts)

Row *i* of ``frame_a`` is compared with row *i* of ``frame_b``. Each pair is judged twice, with A
first and with B first. ``winner`` is A or B when both orders agree, ``tie`` when they disagree
(or the judge says tie), and null when a verdict could not be parsed (``error`` says why).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from ..columns import task_texts
from ..errors import InputError, check_type
from ..models.client import LLM
from ..models.routes import refuse_via
from ..models.sync import run_sync
from .rubrics import JUDGE_REASON, Rubric

__all__ = ["acompare", "compare"]

_SCHEMA = {
    "type": "object",
    "properties": {"reason": dict(JUDGE_REASON), "winner": {"type": "string", "enum": ["1", "2", "tie"]}},
    "required": ["reason", "winner"],
    "additionalProperties": False,
}
_INSTRUCTIONS = (
    "You compare two responses to the same task. Criteria: {criteria}\n"
    "Decide which response is better, or 'tie' if neither is. The order they are shown in means nothing. "
    'Reply in JSON: {{"reason": "<one or two sentences>", "winner": "1" | "2" | "tie"}}.'
)
_PAIR = "Task:\n{task}\n\nResponse 1:\n{first}\n\nResponse 2:\n{second}"


async def acompare(
    judge: LLM,
    frame_a: pl.DataFrame,
    frame_b: pl.DataFrame,
    rubric: Rubric,
    *,
    column: str = "response",
    task_column: str | None = None,
    cache: bool = True,
    progress: bool = True,
    **params: Any,
) -> pl.DataFrame:
    """The async form of :func:`compare`."""
    refuse_via(params, "wb.compare")
    check_type(judge, LLM, "compare's judge", "a connection from wb.connect()")
    check_type(rubric, Rubric, "compare's rubric", "a wb.Rubric('...') whose criteria the judge compares by")
    for label, frame in (("frame_a", frame_a), ("frame_b", frame_b)):
        check_type(frame, pl.DataFrame, label, "a polars frame with the responses to compare")
        if column not in frame.columns:
            raise InputError(f"{label} has no column {column!r} to compare.")
    if frame_a.height != frame_b.height:
        raise InputError(
            f"compare pairs rows by position: frame_a has {frame_a.height} rows, frame_b {frame_b.height}."
        )
    tasks = task_texts(frame_a, task_column)
    a, b = frame_a[column].to_list(), frame_b[column].to_list()
    system = {"role": "system", "content": _INSTRUCTIONS.format(criteria=rubric.criteria)}
    requests = []
    for task, first, second in zip(tasks, a, b, strict=True):
        for one, two in ((first, second), (second, first)):
            content = _PAIR.format(task=task or "(not recorded)", first=one, second=two)
            requests.append([system, {"role": "user", "content": content}])
    params = {"temperature": 0.0, "max_tokens": 256, **params, "response_format": judge.json_format(_SCHEMA, "verdict")}
    replies = await judge.achat_many(requests, cache=cache, progress=progress, **params)
    return _verdicts(tasks, a, b, replies)


def compare(judge: LLM, frame_a: pl.DataFrame, frame_b: pl.DataFrame, rubric: Rubric, **options: Any) -> pl.DataFrame:
    """Judge each pair of rows in both orders; one row per pair with both verdicts and the winner."""
    return run_sync(acompare(judge, frame_a, frame_b, rubric, **options))


def _parse(reply: dict[str, Any], a_first: bool) -> tuple[str | None, str | None, str | None]:
    """(verdict in A/B/tie terms, reason, problem)."""
    if reply["error"]:
        return None, None, f"judge request failed: {reply['error']}"
    try:
        value = json.loads(reply["response"] or "")
        winner = str(value["winner"]).strip()
    except (ValueError, KeyError, TypeError):
        return None, None, f"unparseable verdict: {(reply['response'] or '')[:80]!r}"
    slots = {"1": "A", "2": "B"} if a_first else {"1": "B", "2": "A"}
    if winner not in {"1", "2", "tie"}:
        return None, value.get("reason"), f"unknown winner {winner!r}"
    return slots.get(winner, "tie"), value.get("reason"), None


def _verdicts(tasks, a, b, replies: pl.DataFrame) -> pl.DataFrame:
    rows = []
    replies_list = replies.to_dicts()
    for pair in range(len(a)):
        ab, reason_ab, problem_ab = _parse(replies_list[2 * pair], a_first=True)
        ba, reason_ba, problem_ba = _parse(replies_list[2 * pair + 1], a_first=False)
        problem = problem_ab or problem_ba
        winner = None if problem else (ab if ab == ba else "tie")
        rows.append(
            {
                "pair": pair,
                "task": tasks[pair],
                "response_a": a[pair],
                "response_b": b[pair],
                "verdict_ab": ab,
                "verdict_ba": ba,
                "winner": winner,
                "consistent": None if problem else ab == ba,
                "first_slot_both": None if problem else (ab == "A" and ba == "B"),
                "second_slot_both": None if problem else (ab == "B" and ba == "A"),
                "reason_ab": reason_ab,
                "reason_ba": reason_ba,
                "error": problem,
            }
        )
    return pl.DataFrame(rows, schema=_VERDICT_SCHEMA)


_VERDICT_SCHEMA = {
    "pair": pl.Int64,
    "task": pl.String,
    "response_a": pl.String,
    "response_b": pl.String,
    "verdict_ab": pl.String,
    "verdict_ba": pl.String,
    "winner": pl.String,
    "consistent": pl.Boolean,
    "first_slot_both": pl.Boolean,
    "second_slot_both": pl.Boolean,
    "reason_ab": pl.String,
    "reason_ba": pl.String,
    "error": pl.String,
}
