"""A loopback fake of OpenAI's Batch API, on top of the fake chat server (``tests/fakeserver.py``).

Besides everything ``FakeServer`` answers (``/v1/chat/completions`` online, ``/_stats``), it serves:

    POST /v1/files                    upload (multipart, purpose "batch")
    GET  /v1/files/{id}               the file object
    GET  /v1/files/{id}/content       the file's bytes (input, output or error file)
    POST /v1/batches                  create a batch from an uploaded input file
    GET  /v1/batches                  list batches (newest first)
    GET  /v1/batches/{id}             retrieve; every retrieve moves the batch one state on
    POST /v1/batches/{id}/cancel      cancel

A batch moves ``validating -> in_progress -> finalizing -> completed`` one step per retrieve. The
input file is checked by the Batch API's rules when it leaves ``validating``: one JSON request a
line, a unique ``custom_id``, ``method`` POST, the batch's ``url``, one model per file, at most
``max_requests`` lines and ``max_bytes`` bytes, ``max_tokens`` at most ``max_tokens_limit``; a
file that breaks one becomes ``failed`` with ``errors.data`` naming the line. Scripted outcomes,
taken one per created batch from ``outcomes`` (default ``completed``):

    completed   every line answered; a line whose request ``request_error(body)`` refuses is an
                error-file line with status 400 ("completed with some request errors")
    expired     the first half of the lines answered, the rest ``batch_expired`` errors
    stall       stays ``in_progress`` until cancelled (for cancel tests)

``cancel`` moves a batch to ``cancelling``, then ``cancelled``: lines not yet answered are
``batch_cancelled`` errors. ``forget(batch_id)`` drops a batch, as a provider does after its
retention period: retrieving it then answers 404. ``batch_stats`` counts uploads, creations,
retrieves and answered lines.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from fakeserver import FakeServer, _completion, _send, _send_raw

__all__ = ["FakeBatchAPI"]

_ids = itertools.count(1)


def refuse_marked(body: dict[str, Any]) -> str | None:
    """The default per-request check: a request whose last message contains REFUSE is refused."""
    return "content refused by the fake" if "REFUSE" in str(body["messages"][-1].get("content", "")) else None


class FakeBatchAPI(FakeServer):
    """An OpenAI-compatible server with the Files and Batches endpoints, on a free loopback port."""

    def __init__(
        self,
        *,
        outcomes: tuple[str, ...] = (),
        max_requests: int = 50_000,
        max_bytes: int = 200 * 1024 * 1024,
        max_tokens_limit: int = 4096,
        request_error: Callable[[dict[str, Any]], str | None] = refuse_marked,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.outcomes = list(outcomes)
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.max_tokens_limit = max_tokens_limit
        self.request_error = request_error
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_stats: Counter = Counter()

    def forget(self, batch_id: str) -> None:
        """Drop a batch, as the provider does once it is past retention."""
        self.batches.pop(batch_id)

    # --- routing ---------------------------------------------------------------------------------
    async def _respond(self, writer: asyncio.StreamWriter, method: str, path: str, headers: dict, body: bytes) -> bool:
        parts = path.split("?")[0].rstrip("/").split("/")  # ['', 'v1', 'files', ...]
        if len(parts) >= 3 and parts[2] in ("files", "batches"):
            status, payload = self._batch_api(method, parts[2:], headers, body)
            if isinstance(payload, bytes):
                await _send_raw(writer, status, payload, "application/octet-stream")
            else:
                await _send(writer, status, payload)
            return True
        return await super()._respond(writer, method, path, headers, body)

    def _batch_api(self, method: str, parts: list[str], headers: dict, body: bytes) -> tuple[int, Any]:
        kind, rest = parts[0], parts[1:]
        if kind == "files" and method == "POST" and not rest:
            return self._upload(headers, body)
        if kind == "files" and method == "GET" and rest and rest[0] in self.files:
            stored = self.files[rest[0]]
            return (200, stored["bytes"]) if rest[1:] == ["content"] else (200, _file_object(stored))
        if kind == "batches" and method == "POST" and not rest:
            return self._create(json.loads(body))
        if kind == "batches" and method == "GET" and not rest:
            listed = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
            return 200, {"object": "list", "data": [_public(b) for b in listed], "has_more": False}
        if kind == "batches" and rest and rest[0] in self.batches:
            batch = self.batches[rest[0]]
            if method == "GET" and len(rest) == 1:
                self.batch_stats["retrieves"] += 1
                self._advance(batch)
                return 200, _public(batch)
            if method == "POST" and rest[1:] == ["cancel"]:
                self.batch_stats["cancels"] += 1
                if batch["status"] in ("validating", "in_progress", "finalizing"):
                    batch["status"] = "cancelling"
                    batch["cancelling_at"] = int(time.time())
                return 200, _public(batch)
        return 404, {"error": {"message": f"No such object: {'/'.join(parts)}", "type": "invalid_request_error"}}

    # --- files -----------------------------------------------------------------------------------
    def _upload(self, headers: dict, body: bytes) -> tuple[int, Any]:
        fields = _multipart(headers.get("content-type", ""), body)
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"batch":
            return 400, {"error": {"message": "expected a file with purpose 'batch'", "type": "invalid_request_error"}}
        filename, content = fields["file"]
        self.batch_stats["files_uploaded"] += 1
        return 200, _file_object(self._store_file(filename or "upload.jsonl", content, "batch"))

    def _store_file(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{next(_ids):06d}"
        self.files[file_id] = {"id": file_id, "filename": filename, "bytes": content, "purpose": purpose}
        return self.files[file_id]

    # --- batches ---------------------------------------------------------------------------------
    def _create(self, request: dict[str, Any]) -> tuple[int, Any]:
        if request.get("input_file_id") not in self.files:
            return 404, {"error": {"message": f"No such File object: {request.get('input_file_id')}"}}
        self.batch_stats["batches_created"] += 1
        batch_id = f"batch_{next(_ids):06d}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "input_file_id": request["input_file_id"],
            "completion_window": request.get("completion_window", "24h"),
            "status": "validating",
            "created_at": int(time.time() * 1000) + next(_ids),
            "metadata": request.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "_outcome": self.outcomes.pop(0) if self.outcomes else "completed",
        }
        return 200, _public(self.batches[batch_id])

    def _advance(self, batch: dict[str, Any]) -> None:
        status = batch["status"]
        if status == "validating":
            self._validate(batch)
        elif status == "in_progress" and batch["_outcome"] != "stall":
            batch["status"] = "finalizing"
            batch["finalizing_at"] = int(time.time())
        elif status == "finalizing":
            self._finish(batch, "expired" if batch["_outcome"] == "expired" else "completed")
        elif status == "cancelling":
            self._finish(batch, "cancelled")

    def _validate(self, batch: dict[str, Any]) -> None:
        lines = self.files[batch["input_file_id"]]["bytes"].decode().splitlines()
        problems = self._problems(lines, batch["endpoint"], len(self.files[batch["input_file_id"]]["bytes"]))
        if problems:
            batch["status"] = "failed"
            batch["failed_at"] = int(time.time())
            batch["errors"] = {"object": "list", "data": problems}
            return
        batch["status"] = "in_progress"
        batch["in_progress_at"] = int(time.time())
        batch["request_counts"]["total"] = len(lines)

    def _problems(self, lines: list[str], endpoint: str, size: int) -> list[dict[str, Any]]:
        if len(lines) > self.max_requests:
            return [
                _problem("too_many_requests", None, f"the file has {len(lines)} requests; at most {self.max_requests}")
            ]
        if size > self.max_bytes:
            return [_problem("file_too_large", None, f"the file has {size} bytes; at most {self.max_bytes}")]
        seen, models = set(), set()
        for number, text in enumerate(lines, start=1):
            try:
                line = json.loads(text)
            except ValueError:
                return [_problem("invalid_json_line", number, "this line is not valid JSON")]
            problem = self._line_problem(line, endpoint, seen)
            if problem:
                return [_problem(problem[0], number, problem[1])]
            seen.add(line["custom_id"])
            models.add(line["body"].get("model"))
            if len(models) > 1:
                return [_problem("mismatched_model", number, "every request of a file must use the same model")]
        return []

    def _line_problem(self, line: Any, endpoint: str, seen: set[str]) -> tuple[str, str] | None:
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            return "missing_required_parameter", "each line needs a string custom_id"
        if line["custom_id"] in seen:
            return "duplicate_custom_id", f"the custom_id {line['custom_id']!r} is used twice"
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return "invalid_url", f"each line must be a POST to {endpoint}"
        body = line.get("body")
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            return "missing_required_parameter", "the body needs model and messages"
        if (body.get("max_tokens") or 0) > self.max_tokens_limit:
            return "invalid_value", f"max_tokens is {body['max_tokens']}; at most {self.max_tokens_limit}"
        return None

    def _finish(self, batch: dict[str, Any], status: str) -> None:
        lines = [json.loads(text) for text in self.files[batch["input_file_id"]]["bytes"].decode().splitlines()]
        answered = len(lines) if status == "completed" else (len(lines) // 2 if status == "expired" else 0)
        outputs, errors = [], []
        for position, line in enumerate(lines):
            if position >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append(_error_line(line["custom_id"], None, {"code": code, "message": f"request {code[6:]}"}))
                continue
            refusal = self.request_error(line["body"]) or self._unknown_model(line["body"])
            if refusal:
                body = {"error": {"message": refusal, "type": "invalid_request_error", "code": "refused"}}
                errors.append(_error_line(line["custom_id"], {"status_code": 400, "body": body}, None))
                continue
            self.batch_stats["lines_answered"] += 1
            completion = _completion(line["body"], self.responder(line["body"]))
            outputs.append(_error_line(line["custom_id"], {"status_code": 200, "body": completion}, None))
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        batch["output_file_id"] = self._jsonl_file(outputs, "batch_output")
        batch["error_file_id"] = self._jsonl_file(errors, "batch_errors")

    def _unknown_model(self, body: dict[str, Any]) -> str | None:
        return None if body.get("model") in self.models else f"The model '{body.get('model')}' does not exist"

    def _jsonl_file(self, lines: list[dict[str, Any]], purpose: str) -> str | None:
        if not lines:
            return None
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self._store_file(f"{purpose}.jsonl", content, purpose)["id"]


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if not key.startswith("_")}


def _problem(code: str, line: int | None, message: str) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": None}


def _error_line(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    if response is not None:
        response = {"request_id": f"req_{next(_ids):06d}", **response}
    return {"id": f"batch_req_{next(_ids):06d}", "custom_id": custom_id, "response": response, "error": error}


def _file_object(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": stored["id"],
        "object": "file",
        "bytes": len(stored["bytes"]),
        "created_at": int(time.time()),
        "filename": stored["filename"],
        "purpose": stored["purpose"],
        "status": "processed",
    }


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, content)."""
    boundary = content_type.split("boundary=")[-1].strip('"').encode()
    fields = {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, content = part.split(b"\r\n\r\n", 1)
        disposition = head.decode("latin-1")
        name = disposition.split('name="', 1)[1].split('"', 1)[0] if 'name="' in disposition else None
        filename = disposition.split('filename="', 1)[1].split('"', 1)[0] if 'filename="' in disposition else None
        if name:
            fields[name] = (filename, content[:-2] if content.endswith(b"\r\n") else content)
    return fields
