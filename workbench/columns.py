"""The columns of the tables the workbench returns, documented in one place.

``llm.chat_many`` returns one row per request, in input order, with :data:`RESPONSE_COLUMNS`:

==================  =========  ============================================================
column              type       meaning
==================  =========  ============================================================
request_id          str        cache key of the request (SHA-256 of endpoint, model,
                               messages, parameters and sample index)
sample_index        int        which sample of an identical request this is (0, 1, ...)
model               str        model the request was sent to
response            str        the reply's text; null when the request failed
finish_reason       str        ``stop``, ``length``, ...; null when the request failed
logprobs            str        with ``logprobs=True`` (and ``top_logprobs=k``): the reply's
                               tokens as JSON, ``[{"token": str, "logprob": float,
                               "top_logprobs": [{"token": str, "logprob": float}, ...]},
                               ...]``; null when not asked for or not returned
tokens_in           int        prompt tokens as counted by the server
tokens_out          int        completion tokens as counted by the server
cost_usd            float      dollars the response cost when it was first paid for (0 for a
                               local model; null when the model's price is unknown)
latency_s           float      seconds the server took, when the response was first received
cached              bool       true when the row came from the cache and cost nothing now
attempts            int        requests sent for this row in this run (0 when cached)
error               str        ``ErrorType: message`` when every attempt failed; else null
==================  =========  ============================================================

``wb.generate`` returns the run table, one row per sample, with :data:`GENERATION_COLUMNS` in this
order, the template's variables after ``prompt_hash``, and a schema's fields after ``response``:

==================  =========  ============================================================
sample_id           str        stable id of the sample (first 16 hex digits of request_id)
round               int        0 for generated rows; refinement rounds count up from there
parent_id           str        the sample this row revised; null in round 0
prompt_hash         str        ``Prompt.hash`` of the template that made the row
*variables*         any        one column per template variable
messages            str        the chat messages sent, as JSON
params              str        the generation parameters, as JSON (without response_format)
response            str        the reply's text
*schema fields*     any        with ``schema=``: one column per top-level field of the reply
model ... error     ...        the response columns above, from ``model`` to ``error``
                               (without ``logprobs``: ask ``chat_many`` for those)
request_id          str        the cache key, then ``sample_index`` and ``attempts``
repaired            bool       with ``schema=``: the first reply did not validate and the
                               second (sent back with the problem) was used
==================  =========  ============================================================
"""

from __future__ import annotations

import json

import polars as pl

from .errors import InputError

__all__ = ["GENERATION_COLUMNS", "RESPONSE_COLUMNS", "empty_responses", "require_columns", "task_texts"]

RESPONSE_COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "sample_index": pl.Int64(),
    "model": pl.String(),
    "response": pl.String(),
    "finish_reason": pl.String(),
    "logprobs": pl.String(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "cost_usd": pl.Float64(),
    "latency_s": pl.Float64(),
    "cached": pl.Boolean(),
    "attempts": pl.Int64(),
    "error": pl.String(),
}


GENERATION_COLUMNS: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "round": pl.Int64(),
    "parent_id": pl.String(),
    "prompt_hash": pl.String(),
    "messages": pl.String(),
    "params": pl.String(),
    "response": pl.String(),
    **{
        name: dtype
        for name, dtype in RESPONSE_COLUMNS.items()
        if name not in {"request_id", "sample_index", "response", "attempts", "logprobs"}
    },
    "request_id": pl.String(),
    "sample_index": pl.Int64(),
    "attempts": pl.Int64(),
}


def empty_responses() -> pl.DataFrame:
    """A response table with no rows and every column."""
    return pl.DataFrame(schema=RESPONSE_COLUMNS)


def require_columns(frame: object, *columns: str, purpose: str = "", nonempty: bool = False) -> None:
    """Raise InputError for a non-frame, InputError naming the first missing column (or an empty frame)."""
    if not isinstance(frame, pl.DataFrame):
        raise InputError(f"expected a polars DataFrame, got {type(frame).__name__}.")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InputError(f"the frame has no column {missing[0]!r}{purpose} (its columns: {', '.join(frame.columns)}).")
    if nonempty and frame.height == 0:
        raise InputError(f"the frame is empty: there is nothing{purpose}.")


def task_texts(frame: pl.DataFrame, task_column: str | None = None) -> list[str | None]:
    """The task each row answered: ``task_column``, else ``task``, else the last user message."""
    if task_column is not None:
        require_columns(frame, task_column, purpose=" to show the judge as the task")
        return frame[task_column].cast(pl.String).to_list()
    if "task" in frame.columns:
        return frame["task"].cast(pl.String).to_list()
    if "messages" in frame.columns:
        return [_last_user_message(text) for text in frame["messages"]]
    return [None] * frame.height


def _last_user_message(messages_json: str | None) -> str | None:
    try:
        messages = json.loads(messages_json or "[]")
    except ValueError:
        return None
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else None
