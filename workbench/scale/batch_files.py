"""Batch files: the pending requests as an OpenAI batch input file, and a results file read back into the cache.

The format is OpenAI's Batch API's, which vLLM's offline runner reads and writes too, so the same
files run on a provider or on your own GPUs::

    paths = wb.scale.write_batch_file(llm, requests, "data/batches/run1.jsonl", temperature=0.7)
    # on the GPU machine:
    #   python -m vllm.entrypoints.openai.run_batch -i run1.jsonl -o run1.out.jsonl --model <model>
    wb.scale.read_batch_results(llm, "data/batches/run1.out.jsonl")
    table = llm.chat_many(requests, temperature=0.7)     # served from the cache: nothing is sent

One request a line, ``{"custom_id": <response cache key>, "method": "POST", "url":
"/v1/chat/completions", "body": {"model": ..., "messages": [...], ...params}}``. Only requests not
already in the cache are written; files are split at the API's limits (:data:`MAX_REQUESTS` lines,
:data:`MAX_BYTES` bytes) and hold one model each. A results line is ``{"custom_id", "response":
{"status_code", "body"}, "error"}``; answers go into the response cache under their ``custom_id``,
failures into the job table, and :func:`read_batch_results` says how many of each it found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from ..errors import BatchFileError
from ..models.batch import token_logprobs
from ..models.cache import CachedResponse
from ..models.client import LLM
from ..models.pricing import cached_tokens
from ..models.requests import ChatRequest, normalise_requests
from .job_table import JobTable

__all__ = [
    "CHAT_URL",
    "MAX_BYTES",
    "MAX_REQUESTS",
    "check_batch_file",
    "read_batch_results",
    "request_line",
    "split_requests",
    "write_batch_file",
]

# OpenAI's Batch API limits per input file (https://platform.openai.com/docs/guides/batch).
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
CHAT_URL = "/v1/chat/completions"


def request_line(request: ChatRequest) -> bytes:
    """One input line (with its newline) for ``request``; its ``custom_id`` is the cache key, its seed the
    request's own (``models.requests.request_seed``), as online."""
    body = {"model": request.model, "messages": request.messages, **request.sent_params}
    line = {"custom_id": request.key, "method": "POST", "url": CHAT_URL, "body": body}
    return (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode()


def request_record(request: ChatRequest) -> dict[str, Any]:
    """What the cache and the job table store of a request (as the online runner stores it)."""
    return {"messages": request.messages, "params": request.params, "sample_index": request.sample_index}


def split_requests(
    requests: Iterable[ChatRequest], *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES
) -> list[list[tuple[ChatRequest, bytes]]]:
    """Group ``requests`` into files: one model each, at most ``max_requests`` lines and ``max_bytes`` bytes."""
    by_model: dict[str, list[tuple[ChatRequest, bytes]]] = {}
    for request in {request.key: request for request in requests}.values():
        by_model.setdefault(request.model, []).append((request, request_line(request)))
    files: list[list[tuple[ChatRequest, bytes]]] = []
    for lines in by_model.values():
        current: list[tuple[ChatRequest, bytes]] = []
        size = 0
        for request, line in lines:
            if len(line) > max_bytes:
                raise BatchFileError(f"the request {request.key[:16]} alone is {len(line)} bytes, over {max_bytes}.")
            if current and (len(current) >= max_requests or size + len(line) > max_bytes):
                files.append(current)
                current, size = [], 0
            current.append((request, line))
            size += len(line)
        files.append(current)
    return files


def check_batch_file(path: str | Path, *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES) -> int:
    """Check a batch input file against the Batch API's rules; return its number of lines.

    One JSON request a line, each a POST to one url with a unique string ``custom_id`` and a body
    with ``model`` and ``messages``; one model per file; at most ``max_requests`` lines and
    ``max_bytes`` bytes. A broken rule raises ``BatchFileError`` naming the line.
    """
    data = Path(path).read_bytes()
    if len(data) > max_bytes:
        raise BatchFileError(f"{path} has {len(data)} bytes; a batch file may have at most {max_bytes}.")
    lines = data.decode().splitlines()
    if len(lines) > max_requests:
        raise BatchFileError(f"{path} has {len(lines)} requests; a batch file may have at most {max_requests}.")
    seen: set[str] = set()
    models: set[str] = set()
    urls: set[str] = set()
    for number, text in enumerate(lines, start=1):
        line = _json_line(text, path, number)
        problem = _line_problem(line, seen)
        if problem:
            raise BatchFileError(f"{path} line {number}: {problem}")
        seen.add(line["custom_id"])
        models.add(line["body"]["model"])
        urls.add(line["url"])
        if len(models) > 1 or len(urls) > 1:
            raise BatchFileError(f"{path} line {number}: a batch file holds one model and one url; split it.")
    return len(lines)


def _json_line(text: str, path: str | Path, number: int) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BatchFileError(f"{path} line {number} is not JSON ({exc}).") from exc


def _line_problem(line: Any, seen: set[str]) -> str | None:
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        return "each line needs a string custom_id."
    if line["custom_id"] in seen:
        return f"custom_id {line['custom_id']!r} is used twice; each must be unique."
    if line.get("method") != "POST" or not isinstance(line.get("url"), str):
        return "each line needs method POST and a url."
    body = line.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
        return "each body needs model and messages."
    return None


# --- writing and reading -------------------------------------------------------------------------------
def write_batch_file(
    llm: LLM,
    requests: Any,
    path: str | Path,
    *,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    **params: Any,
) -> list[Path]:
    """Write the requests not yet in the cache as batch input file(s); returns the paths written.

    ``requests`` and ``params`` are as for ``llm.chat_many``. One file when everything fits (at
    ``path``), else ``<stem>-001.jsonl``, ``<stem>-002.jsonl``, ... Each file is a job in the job
    table (``wb.batches(llm)``) until its results are read back with :func:`read_batch_results`.
    """
    normalised = normalise_requests(requests, endpoint=llm.endpoint, model=llm.model, params=params)
    cached = llm.cache.get_many(request.key for request in normalised)
    pending = [request for request in normalised if request.key not in cached]
    if not pending:
        return []
    groups = split_requests(pending, max_requests=max_requests, max_bytes=max_bytes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = JobTable.beside(llm.settings.cache_path)
    written = []
    for number, group in enumerate(groups, start=1):
        target = path if len(groups) == 1 else path.with_name(f"{path.stem}-{number:03d}{path.suffix or '.jsonl'}")
        target.write_bytes(b"".join(line for _, line in group))
        job = table.add_job(
            kind="file",
            base_url=llm.base_url,
            endpoint=llm.endpoint,
            model=group[0][0].model,
            requests=[(request.key, request_record(request)) for request, _ in group],
            est_cost_usd=None,
            path=str(target),
        )
        table.update(job, state="written")
        written.append(target)
    return written


def read_batch_results(llm: LLM, path: str | Path) -> dict[str, int]:
    """Read a batch results file (OpenAI's or vLLM ``run_batch``'s) into the response cache.

    Each answered line is stored under its ``custom_id`` (the cache key), so the same
    ``chat_many``/``generate`` call then returns it without sending anything. Returns counts:
    ``{"answered": ..., "errors": ..., "unknown": ...}`` (``unknown``: ids no job of this data
    folder wrote, stored all the same).
    """
    table = JobTable.beside(llm.settings.cache_path)
    lines = Path(path).read_text().splitlines()
    results = [parse_result_line(_json_line(text, path, number), path, number) for number, text in enumerate(lines, 1)]
    records = _records(table, [key for key, _, _ in results])
    counts = {"answered": 0, "errors": 0, "unknown": 0}
    outcomes: dict[str, dict[str, tuple[str, str | None]]] = {}
    for key, response, error in results:
        job, record, model = records.get(key, (None, {}, llm.model))
        counts["unknown"] += job is None
        if response is not None:
            llm.cache.put(key, endpoint=llm.endpoint, model=model, request=record, response=response)
            counts["answered"] += 1
        else:
            counts["errors"] += 1
        if job is not None:
            outcomes.setdefault(job, {})[key] = ("answered", None) if response is not None else ("error", error)
    for job, by_key in outcomes.items():
        table.set_outcomes(job, by_key)
        _close_file_job(table, job)
    return counts


def _records(table: JobTable, keys: list[str]) -> dict[str, tuple[str, dict[str, Any], str]]:
    """key -> (job id, request record, model), from the newest job that holds each key."""
    latest = table.latest(keys)
    records = {}
    for job in {holder.job_id for holder in latest.values()}:
        for request in table.requests_of(job):
            if request.key in latest and latest[request.key].job_id == job:
                records[request.key] = (job, request.record, request.model)
    return records


def _close_file_job(table: JobTable, job_id: str) -> None:
    requests = table.requests_of(job_id)
    done = sum(request.outcome == "answered" for request in requests)
    failed = sum(request.outcome == "error" for request in requests)
    state = "completed" if done + failed == len(requests) else "written"
    table.update(job_id, state=state, collected=int(state == "completed"), completed=done, failed=failed)


def parse_result_line(
    line: Any, path: str | Path = "results", number: int = 0
) -> tuple[str, CachedResponse | None, str | None]:
    """(custom_id, response or None, error or None) of one results line."""
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        raise BatchFileError(f"{path} line {number} has no custom_id; is it a batch results file?")
    response = line.get("response") or {}
    status = response.get("status_code")
    if line.get("error") or status != 200:
        return line["custom_id"], None, _describe_error(line.get("error"), status, response.get("body"))
    try:
        completion = ChatCompletion.model_validate(response["body"])
        choice = completion.choices[0]
    except (KeyError, IndexError, TypeError, ValueError, openai.OpenAIError) as exc:
        return line["custom_id"], None, f"MalformedResponse: {type(exc).__name__}: {str(exc)[:200]}"
    usage = completion.usage
    cached = CachedResponse(
        response=choice.message.content,
        finish_reason=choice.finish_reason,
        tokens_in=usage.prompt_tokens if usage else None,
        tokens_out=usage.completion_tokens if usage else None,
        latency_s=None,
        logprobs=token_logprobs(choice),
        tokens_cached=cached_tokens(usage),
    )
    return line["custom_id"], cached, None


def _describe_error(error: Any, status: int | None, body: Any) -> str:
    if isinstance(error, dict):
        return f"BatchRequestError: {error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    detail = body.get("error") if isinstance(body, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else str(body)[:200]
    return f"BatchRequestError: HTTP {status}: {message}"
