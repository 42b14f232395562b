"""``wb.generate``: a prompt, a table of variables, ``n`` samples each — one run table back.

    samples = wb.generate(llm, prompt, wb.grid(topic=["apples", "trains"]), n=3, temperature=0.8)

One row per sample, with the columns documented in ``workbench.columns.GENERATION_COLUMNS`` plus one
column per template variable (and per schema field, with ``schema=``). Re-running is served from
the cache. With a schema, a reply that does not validate is sent back once with the validation
error; if the second reply fails too, the row records the error (its raw reply stays in
``response``).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from ..columns import GENERATION_COLUMNS
from ..errors import InputError, SchemaError, check_counts, check_type
from ..models.client import LLM
from ..models.requests import MAX_BATCH_REQUESTS
from ..models.routes import Answer, is_pending
from ..models.sync import run_sync
from .grids import as_variables
from .prompts import Prompt
from .structured import OutputSchema, ReplyInvalid

__all__ = ["agenerate", "generate"]

REPAIR = (
    "Your reply does not match the required JSON schema: {problem}. "
    "Reply again with only the corrected JSON object, nothing else."
)
CUT_OFF = "it was cut off at the token limit, so keep it shorter"
_TOO_MANY = (
    f"{{rows:,}} rows times n would be more than {MAX_BATCH_REQUESTS:,} requests in one call, which is held in memory; "
    "run it in parts"
)


async def agenerate(
    llm: LLM,
    prompt: Prompt | str,
    variables: Any = None,
    n: int = 1,
    schema: Any = None,
    *,
    cache: bool = True,
    progress: bool = True,
    via: str | None = None,
    **params: Any,
) -> Answer:
    """The async form of :func:`generate`."""
    check_type(llm, LLM, "generate's first argument", "a connection: llm = wb.connect(), then wb.generate(llm, ...)")
    prompt = prompt if isinstance(prompt, Prompt) else Prompt(prompt)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"n is the number of samples per row and must be 1 or more, got {n!r}.")
    frame = as_variables(variables)
    check_counts(at_most=max(1, MAX_BATCH_REQUESTS // frame.height), why=_TOO_MANY.format(rows=frame.height), n=n)
    output = OutputSchema(schema) if schema is not None else None
    _check_names(frame, output)
    if output is not None:
        params = {**params, "response_format": llm.json_format(output.json_schema, output.name)}
    requests = _requests(prompt, frame, n)
    replies = await llm.achat_many(requests, cache=cache, progress=progress, via=via, **params)
    if is_pending(replies):  # via="batch": a handle while the job runs elsewhere
        return replies
    parsed = None
    if output is not None:
        replies, parsed = await _validate(llm, output, requests, replies, cache=cache, progress=progress, **params)
    return _run_table(prompt, frame, n, requests, replies, params, output, parsed)


def generate(
    llm: LLM, prompt: Prompt | str, variables: Any = None, n: int = 1, schema: Any = None, **options: Any
) -> Answer:
    """Generate ``n`` samples for every row of ``variables`` and return the run table.

    ``variables`` is a polars frame (e.g. ``wb.grid(...)``), a dict or a list of dicts; ``schema``
    a pydantic model or JSON schema for structured output; other keywords are generation
    parameters (``temperature``, ``max_tokens``, ``seed``, ...) or ``cache=`` / ``progress=``.
    ``seed`` makes a run reproducible without making its samples alike: each request is sent its
    own seed, derived from the one given and from what makes it distinct (its messages and sample
    index), so the ``n`` samples of a row differ and the same call gives the same rows (OpenAI's
    seed is best effort; see ``workbench.models.requests``). ``via="batch"``
    (a provider batch job: a handle now, the run table once it has finished) or ``via="ray"`` answers
    the requests outside this kernel (see ``workbench.scale``); schema repairs are sent from here.
    """
    return run_sync(agenerate(llm, prompt, variables, n, schema, **options))


def _check_names(frame: pl.DataFrame, output: OutputSchema | None) -> None:
    taken = set(GENERATION_COLUMNS)
    clash = sorted(taken & set(frame.columns))
    if clash:
        raise InputError(f"variable column(s) {clash} clash with run-table columns; rename them in the grid.")
    if output is not None:
        clash = sorted((taken | set(frame.columns)) & set(output.fields))
        if clash:
            raise SchemaError(f"schema field(s) {clash} clash with run-table or variable columns; rename them.")


def _requests(prompt: Prompt, frame: pl.DataFrame, n: int) -> list[dict[str, Any]]:
    requests = []
    for row_number, row in enumerate(frame.iter_rows(named=True)):
        present = {name: value for name, value in row.items() if not _missing(value)}  # a null or NaN is missing
        messages = prompt.render(present, row=row_number)
        requests += [{"messages": messages, "sample_index": sample} for sample in range(n)]
    return requests


def _missing(value: Any) -> bool:
    """A null, or a float NaN (polars keeps both apart; to a template both mean "no value")."""
    return value is None or (isinstance(value, float) and value != value)


async def _validate(llm, output, requests, replies, **options):
    """Parse every reply; send the invalid ones back once with the problem; return (replies, parsed)."""
    parsed: list[dict[str, Any] | None] = [None] * replies.height
    invalid: dict[int, str] = {}
    replied = zip(replies["response"], replies["error"], replies["finish_reason"], strict=True)
    for index, (text, error, finish) in enumerate(replied):
        if error is None:
            try:
                parsed[index] = output.parse(text)
            except ReplyInvalid as exc:
                invalid[index] = f"{exc}; {CUT_OFF}" if finish == "length" else str(exc)
    if not invalid:
        return replies.with_columns(repaired=pl.lit(False)), parsed
    repairs = [_repair_request(requests[i], replies["response"][i], problem) for i, problem in invalid.items()]
    second = await llm.achat_many(repairs, **options)
    rows = replies.with_columns(repaired=pl.lit(False)).to_dicts()
    for (index, _), repair in zip(invalid.items(), second.iter_rows(named=True), strict=True):
        rows[index] = _merge_repair(rows[index], repair)
        if repair["error"] is None:
            try:
                parsed[index] = output.parse(repair["response"])
            except ReplyInvalid as exc:
                rows[index]["error"] = f"ReplyInvalid: {exc} (after one repair{_cut_hint(repair, options)})"
        else:
            rows[index]["error"] = repair["error"]
    return pl.DataFrame(rows, schema=replies.schema | {"repaired": pl.Boolean}), parsed


def _cut_hint(reply: dict[str, Any], options: dict[str, Any]) -> str:
    """What to do when the repaired reply was also cut at the token limit."""
    if reply["finish_reason"] != "length":
        return ""
    for name in ("max_tokens", "max_completion_tokens"):
        if options.get(name):
            return f"; the reply stopped at {name}={options[name]}: raise {name}"
    return "; the reply hit the server's token limit: pass a higher max_tokens"


def _repair_request(request: dict[str, Any], reply: str, problem: str) -> dict[str, Any]:
    follow_up = [
        {"role": "assistant", "content": reply or ""},
        {"role": "user", "content": REPAIR.format(problem=problem)},
    ]
    return {**request, "messages": request["messages"] + follow_up}


def _merge_repair(first: dict[str, Any], repair: dict[str, Any]) -> dict[str, Any]:
    merged = dict(first)
    for key in ("response", "finish_reason", "error"):
        merged[key] = repair[key]
    for key in ("tokens_in", "tokens_out", "cost_usd", "latency_s", "attempts"):
        if first[key] is not None and repair[key] is not None:
            merged[key] = first[key] + repair[key]
    merged["cached"] = first["cached"] and repair["cached"]
    merged["repaired"] = True
    return merged


def _run_table(prompt, frame, n, requests, replies, params, output, parsed) -> pl.DataFrame:
    shown_params = json.dumps({k: v for k, v in params.items() if k != "response_format"}, sort_keys=True)
    lineage = pl.DataFrame(
        {
            "sample_id": replies["request_id"].str.slice(0, 16),
            "round": pl.repeat(0, replies.height, eager=True, dtype=pl.Int64),
            "parent_id": pl.repeat(None, replies.height, eager=True, dtype=pl.String),
            "prompt_hash": pl.repeat(prompt.hash, replies.height, eager=True),
        }
    )
    sent = pl.DataFrame(
        {
            "messages": [json.dumps(request["messages"], ensure_ascii=False) for request in requests],
            "params": pl.repeat(shown_params, replies.height, eager=True),
        }
    )
    variables = frame.select(pl.all().repeat_by(n).explode()) if n > 1 else frame
    fields = _fields_frame(output, parsed) if output is not None else pl.DataFrame()
    table = pl.concat([lineage, variables, sent, fields, replies], how="horizontal")
    order = list(GENERATION_COLUMNS)
    at = order.index("response") + 1
    order[at:at] = fields.columns
    order[4:4] = variables.columns
    return table.select(order + (["repaired"] if output is not None else []))


def _fields_frame(output: OutputSchema, parsed: list[dict[str, Any] | None]) -> pl.DataFrame:
    rows = [{name: (values or {}).get(name) for name in output.fields} for values in parsed]
    return pl.DataFrame(rows, infer_schema_length=None)
