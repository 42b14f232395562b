"""A small OpenAI-compatible HTTP server with latency and fault injection, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length) for the ``openai`` client:
``GET /v1/models``, ``POST /v1/chat/completions``, ``GET /_stats`` (its counters, as JSON) and ``GET /_log``
(``stats.log`` as JSON, in time order: ``[[seconds since the first request, outcome], ...]``).

``POST /v1/embeddings`` answers too when started with ``embeddings=True``.

Faults, drawn per attempt from a seeded generator, or scripted for the first attempts of every
distinct request (``first_attempts=("429", "500")``: the first try gets a 429, the second a 500):

    429        status 429 with ``Retry-After``
    500        status 500
    drop       the connection is closed without an answer
    malformed  status 200 with a body that is not JSON
    slow       the answer comes after ``slow_seconds`` (longer than the client's timeout)

``Faults(scripted={"Hi": ("429",)})`` scripts the first attempts of the requests whose last
message is ``"Hi"`` only.

A requests-per-minute limit (``RateLimit(per_minute=600)``): a token bucket of ``burst`` requests
(default: one second's worth, as OpenAI quantises its limits) refilling at the limit. Every chat
answer carries the limit in headers, in OpenAI's form (``x-ratelimit-limit-requests: 600``,
``x-ratelimit-remaining-requests: 9``, ``x-ratelimit-reset-requests: 100ms``), the IETF draft's
(``headers="ietf"``: ``ratelimit-limit/-remaining/-reset``, whole seconds) or none
(``headers="none"``); a request over the limit gets a 429 with ``retry-after`` (seconds, as a
decimal; none with ``retry_after=False``) and is not counted as answered. The limit is applied after
the server's latency, or on arrival with ``refuse_at_once=True``: then a refusal comes back at once
while an admitted request takes the latency, as from a gateway in front of a slow model.

``stats.log`` records every chat request: (time.monotonic(), body digest, outcome), the outcome
being ``ok``, a fault's name, or ``limited``. The time is when the answer went out, except under a
limit that refuses on arrival: then it is the arrival, when the limit admitted or refused the request.

Run in a thread of the test process (``with FakeServer(...) as server``) or as its own process
(``python tests/fakeserver.py --latency 0.05``, which prints ``READY <port>``), as the benchmarks do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULTS", "FakeServer", "Faults", "RateLimit", "Stats", "echo", "openai_duration"]

FAULTS = ("429", "500", "drop", "malformed", "slow")


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_drop: float = 0.0
    rate_malformed: float = 0.0
    rate_slow: float = 0.0
    retry_after: float = 0.05
    slow_seconds: float = 3.0
    first_attempts: tuple[str, ...] = ()
    scripted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seed: int = 0


@dataclass
class RateLimit:
    """A requests-per-minute limit the server enforces with 429s, announced in headers."""

    per_minute: float
    burst: float | None = None
    headers: str = "openai"  # or "ietf", "none"
    retry_after: bool = True  # False: a refusal says nothing about when to come back, as some gateways do
    refuse_at_once: bool = False  # True: refused on arrival, before the latency (a gateway before a slow model)

    def __post_init__(self) -> None:
        self.capacity = self.burst or max(1.0, self.per_minute / 60)
        self.rate = self.per_minute / 60
        self.level = self.capacity
        self.stamp = time.monotonic()

    def admit(self) -> bool:
        """Take one request from the bucket; False when it is empty."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level < 1:
            return False
        self.level -= 1
        return True

    def announce(self, refused: bool) -> dict[str, str]:
        """The rate-limit headers of an answer (plus ``retry-after`` on a refusal)."""
        remaining = int(self.level)
        reset = (self.capacity - self.level) / self.rate
        extra = {"retry-after": f"{(1 - self.level) / self.rate:.3f}"} if refused and self.retry_after else {}
        if self.headers == "openai":
            extra |= {
                "x-ratelimit-limit-requests": f"{self.per_minute:g}",
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": openai_duration(reset),
            }
        elif self.headers == "ietf":
            extra |= {
                "ratelimit-limit": f"{self.capacity:g}",
                "ratelimit-remaining": str(remaining),
                "ratelimit-reset": str(math.ceil(reset)),
            }
        return extra


def openai_duration(seconds: float) -> str:
    """A duration as OpenAI writes it: ``20ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    text = f"{rest:.3g}s"
    if hours or minutes:
        text = f"{int(minutes)}m{rest:.0f}s"
    return f"{int(hours)}h{text}" if hours else text


@dataclass
class Stats:
    received: int = 0
    answered: int = 0
    limited: int = 0
    faults: Counter = field(default_factory=Counter)
    answered_by_body: Counter = field(default_factory=Counter)
    authorization: set = field(default_factory=set)
    log: list = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "answered": self.answered,
            "limited": self.limited,
            "faults": dict(self.faults),
            "answered_by_body": dict(self.answered_by_body),
            "duplicates": sum(count - 1 for count in self.answered_by_body.values()),
            "first_received": min((t for t, _, _ in self.log), default=None),
            "last_answered": max((t for t, _, outcome in self.log if outcome == "ok"), default=None),
        }


def echo(body: dict[str, Any]) -> str:
    """The default answer: the last message, echoed."""
    return f"echo: {body['messages'][-1]['content']}"


class FakeServer:
    """An OpenAI-compatible server on a free loopback port."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        faults: Faults | None = None,
        models: tuple[str, ...] = ("fake-model",),
        responder: Callable[[dict[str, Any]], str | dict[str, Any]] = echo,
        port: int = 0,
        embeddings: bool = False,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.latency = latency
        self.rate_limit = rate_limit
        self.faults = faults or Faults()
        self.models = models
        self.responder = responder
        self.port = port
        self.embeddings = embeddings
        self.stats = Stats()
        self._rng = random.Random(self.faults.seed)
        self._attempts: Counter = Counter()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- lifecycle -------------------------------------------------------------------------------
    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                if not await self._respond(writer, method, path, headers, body):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, method: str, path: str, headers: dict, body: bytes) -> bool:
        """Answer one request; False when the connection must be closed."""
        if method == "GET" and path.endswith("/models"):
            data = {
                "object": "list",
                "data": [{"id": name, "object": "model", "owned_by": "fake"} for name in self.models],
            }
            await _send(writer, 200, data)
        elif method == "GET" and path == "/_stats":
            await _send(writer, 200, self.stats.as_json())
        elif method == "GET" and path == "/_log":
            log = sorted((moment, outcome) for moment, _, outcome in self.stats.log)
            start = log[0][0] if log else 0.0
            await _send(writer, 200, [[moment - start, outcome] for moment, outcome in log])
        elif method == "POST" and path.endswith("/embeddings") and self.embeddings:
            return await self._embed(writer, json.loads(body or b"{}"))
        elif method == "POST" and path.endswith("/chat/completions"):
            return await self._chat(writer, headers, json.loads(body or b"{}"))
        else:
            await _send(writer, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})
        return True

    async def _chat(self, writer: asyncio.StreamWriter, headers: dict, body: dict[str, Any]) -> bool:
        self.stats.received += 1
        self.stats.authorization.add(headers.get("authorization", ""))
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        limit = self.rate_limit
        arrived = time.monotonic()
        if limit and limit.refuse_at_once and not limit.admit():
            return await self._refuse(writer, digest)
        if self.latency:
            await asyncio.sleep(self.latency)
        if body.get("model") not in self.models:
            error = {
                "message": f"The model '{body.get('model')}' does not exist",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
            await _send(writer, 404, {"error": error})
            return True
        if limit and not limit.refuse_at_once and not limit.admit():
            return await self._refuse(writer, digest)
        announced = self.rate_limit.announce(refused=False) if self.rate_limit else {}
        fault = self._draw_fault(digest, str(body["messages"][-1].get("content")))
        decided = arrived if limit and limit.refuse_at_once else time.monotonic()
        self.stats.log.append((decided, digest, fault or "ok"))
        if fault:
            self.stats.faults[fault] += 1
            return await self._inject(writer, fault)
        content = self.responder(body)
        self.stats.answered += 1
        self.stats.answered_by_body[digest] += 1
        await _send(writer, 200, _completion(body, content), announced)
        return True

    async def _embed(self, writer: asyncio.StreamWriter, body: dict[str, Any]) -> bool:
        """Embeddings, with the same latency, faults and counts as chat completions."""
        self.stats.received += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        fault = self._draw_fault(digest, str(body.get("input")))
        self.stats.log.append((time.monotonic(), digest, fault or "ok"))
        if fault:
            self.stats.faults[fault] += 1
            return await self._inject(writer, fault)
        self.stats.answered += 1
        self.stats.answered_by_body[digest] += 1
        await _send(writer, 200, _embeddings(body))
        return True

    async def _refuse(self, writer: asyncio.StreamWriter, digest: str) -> bool:
        self.stats.limited += 1
        self.stats.log.append((time.monotonic(), digest, "limited"))
        error = {
            "error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}
        }
        await _send(writer, 429, error, self.rate_limit.announce(refused=True))
        return True

    def _draw_fault(self, digest: str, content: str) -> str | None:
        attempt = self._attempts[digest]
        self._attempts[digest] += 1
        script = self.faults.scripted.get(content, self.faults.first_attempts)
        if attempt < len(script):
            return script[attempt]
        roll = self._rng.random()
        for name in FAULTS:
            rate = getattr(self.faults, f"rate_{name}")
            if roll < rate:
                return name
            roll -= rate
        return None

    async def _inject(self, writer: asyncio.StreamWriter, fault: str) -> bool:
        if fault == "429":
            error = {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
            await _send(writer, 429, error, {"Retry-After": f"{self.faults.retry_after}"})
        elif fault == "500":
            await _send(writer, 500, {"error": {"message": "internal error", "type": "server_error"}})
        elif fault == "drop":
            writer.transport.abort()
            return False
        elif fault == "malformed":
            await _send_raw(writer, 200, b'{"id": "chatcmpl-broken", "choices": [{"mess', "application/json")
        elif fault == "slow":
            await asyncio.sleep(self.faults.slow_seconds)
            return False
        return True


def _completion(body: dict[str, Any], reply: str | dict[str, Any]) -> dict[str, Any]:
    """A chat completion; ``reply`` is the content, or a dict with ``content`` and a scripted ``logprobs`` or
    ``finish_reason``."""
    content = reply["content"] if isinstance(reply, dict) else reply
    finish = reply.get("finish_reason", "stop") if isinstance(reply, dict) else "stop"
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
    if isinstance(reply, dict) and "logprobs" in reply:
        choice["logprobs"] = reply["logprobs"]
    prompt_tokens = sum(len(str(message.get("content", "")).split()) for message in body["messages"])
    return {
        "id": f"chatcmpl-{random.getrandbits(48):x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(content.split()),
            "total_tokens": prompt_tokens + len(content.split()),
        },
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic 8-dimensional embeddings: the counts of each text's letters, folded mod 8."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vectors = []
    for text in texts:
        vector = [0.0] * 8
        for character in str(text).lower():
            if character.isalpha():
                vector[ord(character) % 8] += 1.0
        vectors.append(vector)
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict, bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return method, path, headers, body


async def _send(writer: asyncio.StreamWriter, status: int, data: Any, extra: dict | None = None) -> None:
    await _send_raw(writer, status, json.dumps(data).encode(), "application/json", extra)


async def _send_raw(writer, status: int, payload: bytes, content_type: str, extra: dict | None = None) -> None:
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "")
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
    head += [f"{name}: {value}" for name, value in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    await writer.drain()


def start_process(*flags: str) -> tuple[subprocess.Popen, str]:
    """This server in a process of its own, as the benchmarks run it: the process and its base URL.

    ``flags`` are the command line's (``"--latency", "0.05"``, ``"--rpm-limit", "300"``); the caller kills the process.
    """
    process = subprocess.Popen([sys.executable, __file__, *flags], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    if line[:1] != ["READY"]:
        process.kill()
        raise SystemExit(f"the fake server did not start: {line}")
    return process, f"http://127.0.0.1:{line[1]}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    for name in FAULTS:
        parser.add_argument(f"--rate-{name}", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rpm-limit", type=float, default=0.0, help="enforce this many requests per minute")
    parser.add_argument("--rpm-burst", type=float, default=None, help="bucket size (default: one second's worth)")
    parser.add_argument("--rpm-headers", choices=("openai", "ietf", "none"), default="openai")
    parser.add_argument("--rpm-no-retry-after", action="store_true", help="refuse without a retry-after header")
    parser.add_argument("--rpm-at-once", action="store_true", help="refuse on arrival, before the latency")
    args = parser.parse_args()
    faults = Faults(
        **{f"rate_{n}": getattr(args, f"rate_{n}") for n in FAULTS}, retry_after=args.retry_after, seed=args.seed
    )
    limit = (
        RateLimit(args.rpm_limit, args.rpm_burst, args.rpm_headers, not args.rpm_no_retry_after, args.rpm_at_once)
        if args.rpm_limit
        else None
    )
    server = FakeServer(latency=args.latency, faults=faults, port=args.port, rate_limit=limit)

    async def run() -> None:
        await server.serve()
        print(f"READY {server.port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
