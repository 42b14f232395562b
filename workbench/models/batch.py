"""Running a batch of chat requests: cache first, then adaptive concurrency, retries and progress.

The flow of one batch::

    requests ──normalise (requests.py)──▶ ChatRequest (messages, params, sample_index, key)
             ──cache.get_many──▶ rows already paid for (cached=True, no request sent)
             ──▶ work queue: retries whose wait is over first, then fresh requests in order
                   ▲
                   │   workers (max_concurrency), each: a slot from the adaptive gate (adaptive.py)
                   │     ─▶ the front of the queue ─▶ rate limiter (ratelimit.py: the limits you set,
                   │     the allowance the server's headers announce, or the rate its 429s reveal)
                   │     ─▶ POST /chat/completions
                   │        ├─ success: stored in the cache at once, then counted in the progress bar
                   │        └─ failure: classified (retry.py) ...
                   └──────────── ... retryable: back in the queue after its own wait (a timer,
                                 not a worker: the others go on meanwhile)
                                 otherwise, or out of retries: recorded in the row's ``error``
             ──▶ polars.DataFrame, one row per request, in input order

Each answer's rate-limit headers and status feed the rate limiter, and each success grows the gate.

Identical requests in one batch get sample indexes 0, 1, 2, ... so that they are distinct samples
with distinct cache keys, and the same on every re-run (``requests.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
from tqdm.std import tqdm

from ..columns import RESPONSE_COLUMNS
from ..errors import EndpointUnreachableError, WorkbenchError
from . import usage
from .adaptive import AdaptiveConcurrency
from .cache import CachedResponse, ResponseCache
from .pricing import Price, cached_tokens
from .progress import progress_bar
from .ratelimit import RateLimiter
from .requests import ChatRequest, answered_row, estimated_tokens, failed_row
from .retry import Failure, MalformedResponse, backoff_delay, classify, may_retry

if TYPE_CHECKING:
    import openai

    from .config import Settings

__all__ = ["Endpoint", "run_batch", "token_logprobs"]

log = logging.getLogger("workbench")


class Endpoint(Protocol):
    """What a batch needs of a connection; ``wb.connect()``'s ``LLM`` is one.

    The batch runner knows the connection only through this, so the client layer calls down into
    the runner and nothing calls back up.
    """

    base_url: str
    endpoint: str
    model: str
    settings: Settings

    @property
    def cache(self) -> ResponseCache: ...

    def price_for(self, model: str) -> Price | None: ...

    def async_client(self) -> AbstractAsyncContextManager[openai.AsyncOpenAI]: ...


async def run_batch(
    llm: Endpoint,
    requests: list[ChatRequest],
    *,
    use_cache: bool,
    progress: bool,
    max_concurrency: int,
) -> pl.DataFrame:
    """Answer every request (from the cache or the server) and return the response table."""
    cache = llm.cache if use_cache else None
    async with llm.async_client() as client:
        run = _BatchRun(llm, client, cache, progress)
        try:
            await run.execute(requests, max_concurrency)
        finally:
            run.close()
    return run.frame(requests)


class _BatchRun:
    """The state of one batch: results by key, counters, the progress bar."""

    def __init__(self, llm: Endpoint, client: openai.AsyncOpenAI, cache: ResponseCache | None, progress: bool) -> None:
        self.llm = llm
        self.client = client
        self.cache = cache
        self.limiter = RateLimiter(llm.settings.requests_per_minute, llm.settings.tokens_per_minute)
        self.results: dict[str, dict[str, Any]] = {}
        self.successes = 0
        self.errors = 0
        self.tokens = 0
        self.spent = 0.0
        self.progress = progress
        self.bar: tqdm | None = None
        self.gate = AdaptiveConcurrency(1)
        self.refusals: Counter[str] = Counter()  # 429s per request, retried apart from max_retries

    async def execute(self, requests: list[ChatRequest], max_concurrency: int) -> None:
        unique = {request.key: request for request in requests}
        self.bar = progress_bar(total=len(unique), desc=self.llm.model, unit="req", disable=not self.progress)
        stored = self.cache.get_many(unique) if self.cache else {}
        for key, response in stored.items():
            self.results[key] = self._row(unique[key], response, cached=True, attempts=0)
        usage.record(self.llm.base_url, (self.results[key] for key in stored), sent=False)
        self.bar.update(len(stored))
        pending = [request for key, request in unique.items() if key not in stored]
        if not pending:
            return
        workers = min(max_concurrency, len(pending))
        self.gate = AdaptiveConcurrency(workers)
        queue = _WorkQueue(pending)
        try:
            await self._run_workers(queue, workers)
        except asyncio.CancelledError:
            log.warning(
                "batch interrupted: %d responses received and kept in the cache; run the same call again "
                "to send only the rest",
                self.successes,
            )
            raise
        finally:
            queue.close()

    async def _run_workers(self, queue: _WorkQueue, workers: int) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(queue))
        except* WorkbenchError as group_error:  # unreachable endpoint, or a cache that cannot be written
            raise group_error.exceptions[0] from None

    async def _worker(self, queue: _WorkQueue) -> None:
        """Take a slot first, then the front of the queue, so that retries keep their place in line."""
        while True:
            await self.gate.acquire()
            try:
                item = await queue.next()
                if item is None:
                    return
                try:
                    await self._attempt(queue, *item)
                finally:
                    queue.finished()
            finally:
                self.gate.release()

    async def _attempt(self, queue: _WorkQueue, request: ChatRequest, attempt: int) -> None:
        """One try; a retryable failure goes back in the queue for later, so the worker moves on."""
        if request.problem:  # it cannot be sent (requests.py says why): its row says so, the batch goes on
            self._record_failure(request, Failure("InvalidRequest", request.problem, retryable=False), 0)
            return
        estimate = sum(estimated_tokens(request))
        outcome = await self._try_once(request, estimate)
        if isinstance(outcome, CachedResponse):
            self._record_success(request, outcome, attempt, estimate)
        elif self._may_retry(request, outcome, attempt):
            delay = backoff_delay(attempt, self.llm.settings.retry_base_delay, outcome)
            log.debug("retry %d in %.2fs after %s", attempt, delay, outcome.kind)
            queue.retry_later(request, attempt + 1, delay)
        else:
            self._record_failure(request, outcome, attempt)

    def _may_retry(self, request: ChatRequest, failure: Failure, attempt: int) -> bool:
        self.refusals[request.key] += failure.rate_limited
        return may_retry(failure, attempt, self.refusals[request.key], self.llm.settings.max_retries)

    async def _try_once(self, request: ChatRequest, estimate: float) -> CachedResponse | Failure:
        ticket = await self.limiter.acquire(estimate)
        started = time.perf_counter()
        try:
            fields = await self._send(request, ticket)
        except Exception as exc:  # every failure of one request becomes a row, never a crash
            failure = classify(exc)
            self.limiter.observe(failure.headers, ticket, failure.status)
            return failure
        self.gate.succeeded()
        return CachedResponse(**fields, latency_s=time.perf_counter() - started)

    async def _send(self, request: ChatRequest, ticket: int) -> dict[str, Any]:
        if request.is_embedding:
            return await self._send_embedding(request, ticket)
        raw = await self.client.chat.completions.with_raw_response.create(
            model=request.model, messages=request.messages, extra_body=request.sent_params or None
        )
        self.limiter.observe(raw.headers, ticket)
        try:
            completion = raw.parse()
            choice = completion.choices[0]
            counted = completion.usage  # the server's token counts (not the usage module)
            return {
                "response": choice.message.content,
                "finish_reason": choice.finish_reason,
                "tokens_in": counted.prompt_tokens if counted else None,
                "tokens_out": counted.completion_tokens if counted else None,
                "tokens_cached": cached_tokens(counted),
                "logprobs": token_logprobs(choice),
            }
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise MalformedResponse(f"{type(exc).__name__}: {exc}") from exc

    async def _send_embedding(self, request: ChatRequest, ticket: int) -> dict[str, Any]:
        """POST /embeddings for one text; the vector is kept as JSON in ``response``."""
        raw = await self.client.embeddings.with_raw_response.create(
            model=request.model, input=request.messages[0]["content"], extra_body=request.sent_params or None
        )
        self.limiter.observe(raw.headers, ticket)
        try:
            reply = raw.parse()
            vector = [float(value) for value in reply.data[0].embedding]
            tokens = reply.usage.prompt_tokens if reply.usage else None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"{type(exc).__name__}: {exc}") from exc
        return {"response": json.dumps(vector), "finish_reason": "stop", "tokens_in": tokens, "tokens_out": 0}

    def _record_success(self, request: ChatRequest, response: CachedResponse, attempts: int, estimate: float) -> None:
        if self.cache is not None:
            record = {"messages": request.messages, "params": request.params, "sample_index": request.sample_index}
            self.cache.put(
                request.key, endpoint=self.llm.endpoint, model=request.model, request=record, response=response
            )
        row = self._row(request, response, cached=False, attempts=attempts)
        self.results[request.key] = row
        usage.record(self.llm.base_url, [row], sent=True)
        self.successes += 1
        self.tokens += (response.tokens_in or 0) + (response.tokens_out or 0)
        self.spent += row["cost_usd"] or 0.0
        self.limiter.refund(estimate, (response.tokens_in or 0) + (response.tokens_out or 0))
        self._tick()

    def _record_failure(self, request: ChatRequest, failure: Failure, attempts: int) -> None:
        if failure.unreachable and self.successes == 0:
            raise EndpointUnreachableError(
                f"could not reach {self.llm.base_url} after {attempts} tries ({failure.message}). "
                "Is the server running at that address? Check base_url (or OPENAI_BASE_URL), "
                "or call wb.connect() for the embedded local model."
            )
        self.results[request.key] = failed_row(request, failure.describe(), attempts=attempts)
        usage.record(self.llm.base_url, [self.results[request.key]], sent=True)
        self.errors += 1
        self._tick()

    def _row(self, request: ChatRequest, response: CachedResponse, *, cached: bool, attempts: int) -> dict[str, Any]:
        cost = response.cost(self.llm.price_for(request.model))
        return answered_row(request, response, cost=cost, cached=cached, attempts=attempts)

    def _tick(self) -> None:
        self.bar.set_postfix(errors=self.errors, tokens=self.tokens, cost=f"${self.spent:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def frame(self, requests: list[ChatRequest]) -> pl.DataFrame:
        rows = [self.results[request.key] for request in requests]
        return pl.DataFrame(rows, schema=RESPONSE_COLUMNS)


class _WorkQueue:
    """The requests still to try: retries whose wait is over first, then fresh ones in order.

    A retry waits on a timer, not in a worker, so its wait costs the batch no concurrency. A worker
    stops only when nothing is queued, waiting or being tried.
    """

    def __init__(self, requests: list[ChatRequest]) -> None:
        self.fresh = deque(requests)
        self.ready: deque[tuple[ChatRequest, int]] = deque()
        self.active = 0
        self.waiting = 0
        self._timers: list[asyncio.TimerHandle] = []
        self._changed = asyncio.Event()

    async def next(self) -> tuple[ChatRequest, int] | None:
        """The next (request, attempt number) to try, or None when the batch is done."""
        while not (self.ready or self.fresh):
            if not self.active and not self.waiting:
                return None
            self._changed.clear()
            await self._changed.wait()
        self.active += 1
        return self.ready.popleft() if self.ready else (self.fresh.popleft(), 1)

    def finished(self) -> None:
        """A worker is done with the item it took."""
        self.active -= 1
        self._changed.set()

    def retry_later(self, request: ChatRequest, attempt: int, delay: float) -> None:
        """Queue ``request`` again once ``delay`` seconds have passed."""
        self.waiting += 1
        self._timers.append(asyncio.get_running_loop().call_later(delay, self._wake, request, attempt))

    def _wake(self, request: ChatRequest, attempt: int) -> None:
        self.waiting -= 1
        self.ready.append((request, attempt))
        self._changed.set()

    def close(self) -> None:
        """Cancel the retry timers still pending (the batch was interrupted)."""
        for timer in self._timers:
            timer.cancel()


def token_logprobs(choice: Any) -> str | None:
    """The choice's per-token logprobs as JSON, or None when the request did not ask for them.

    A list with one item per generated token: ``{"token", "logprob", "top_logprobs": [{"token",
    "logprob"}, ...]}``; the servers' extra fields (``bytes``, llama.cpp's ``id``) are dropped.
    """
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if content is None:
        return None
    tokens = [
        {
            "token": item.token,
            "logprob": item.logprob,
            "top_logprobs": [{"token": top.token, "logprob": top.logprob} for top in item.top_logprobs or []],
        }
        for item in content
    ]
    return json.dumps(tokens, ensure_ascii=False)
