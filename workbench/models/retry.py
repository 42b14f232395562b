"""Which failures are worth another try, and how long to wait before it.

Retried: 408, 409, 429 and 5xx statuses, timeouts, refused or dropped connections, and bodies that
are not a valid chat completion (malformed JSON, missing choices). Recorded at once: every other
4xx (unknown model, bad request, bad key), and a 429 that says the account's quota is used up
(OpenAI's ``insufficient_quota``) — trying again cannot fix those. The messages of the failures a
setting can fix name it: a timeout says ``timeout=``, a prompt too long for llama.cpp's context
says ``local_context=``.

A 429 is the server saying "later", not a fault of the request, so its retries have their own,
larger allowance (``RATE_LIMIT_RETRIES``) instead of counting against ``max_retries``.

The wait is the server's ``Retry-After`` (or ``retry-after-ms``) when it sends one. A connection
dropped mid-answer or a garbled body is a fault of that one attempt, not a sign of load, so its
first retry goes almost at once. Everything else backs off exponentially with full jitter. The
wait belongs to the one request: the batch runner lets the others go on meanwhile.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
import openai

__all__ = ["RATE_LIMIT_RETRIES", "Failure", "MalformedResponse", "backoff_delay", "classify", "may_retry"]

MAX_RETRY_AFTER = 120.0
RATE_LIMIT_RETRIES = 20
MAX_BACKOFF = 30.0
_RETRY_STATUSES = {408, 409, 429}


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a usable chat completion."""


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt, and whether another attempt may help."""

    kind: str
    message: str
    retryable: bool
    retry_after: float | None = None
    unreachable: bool = False
    isolated: bool = False  # a fault of this attempt's connection or body, not of server load
    status: int | None = None
    headers: Mapping[str, str] | None = None

    @property
    def rate_limited(self) -> bool:
        """The server said 429: too many requests."""
        return self.status == 429

    def describe(self) -> str:
        return f"{self.kind}: {self.message}"


def classify(exc: BaseException) -> Failure:
    """Turn an exception from one request into a :class:`Failure`."""
    name = type(exc).__name__
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = (status in _RETRY_STATUSES or status >= 500) and _error_code(exc) != "insufficient_quota"
        headers = exc.response.headers
        return Failure(name, _status_message(exc), retryable, _retry_after(headers), status=status, headers=headers)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(name, _timeout_message(exc), True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        unreachable = isinstance(cause, (httpx2.ConnectError, httpx2.ConnectTimeout))
        return Failure(name, detail, True, unreachable=unreachable, isolated=not unreachable)
    if isinstance(exc, UnicodeEncodeError):  # text the request could not be sent with: no retry can change it
        return Failure(name, f"the request holds text that cannot be sent: {exc}", False)
    if isinstance(exc, (openai.APIResponseValidationError, MalformedResponse, ValueError)):
        return Failure(name, f"malformed response: {exc}", True, isolated=True)
    return Failure(name, str(exc), False)


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return error.get("code") if isinstance(error, dict) else None


def may_retry(failure: Failure, attempts: int, refusals: int, max_retries: int) -> bool:
    """Whether a request that has had ``attempts`` tries, ``refusals`` of them 429s, may have another."""
    if not failure.retryable:
        return False
    if failure.rate_limited:
        return refusals <= RATE_LIMIT_RETRIES
    return attempts - refusals <= max_retries


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    detail = error.get("message") if isinstance(error, dict) else None
    message = f"HTTP {exc.status_code}: {detail or exc.message}"
    kind = error.get("type") if isinstance(error, dict) else None
    if kind == "exceed_context_size_error" or "exceeds the available context size" in message:
        return message + f". {CONTEXT_HINT}"
    return message


CONTEXT_HINT = (
    "The prompt and its reply must fit the model's context: for the embedded model connect with a larger "
    "local_context (tokens per request, 4,096 by default), e.g. wb.connect(local_context=8192); on your own "
    "llama.cpp server raise its --ctx-size; or shorten the prompt"
)


def _timeout_message(exc: openai.APITimeoutError) -> str:
    """The timeout that ran out (from the request's own settings), and what to do about a slow server."""
    limits = getattr(exc.request, "extensions", {}).get("timeout") or {}
    seconds = limits.get("read") if isinstance(limits, dict) else None
    within = f"within timeout={seconds:g} s" if isinstance(seconds, (int, float)) else "within the timeout"
    return (
        f"the server did not answer {within}. If it is just slow (a long reply, a busy or small machine), raise it: "
        "wb.connect(..., timeout=120) or llm.with_options(timeout=120)"
    )


def _retry_after(headers) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``retry-after``."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return min(float(millis) / 1000, MAX_RETRY_AFTER)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(moment - time.time(), 0.0), MAX_RETRY_AFTER)


def backoff_delay(attempt: int, base: float, failure: Failure) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    if failure.retry_after is not None:
        return failure.retry_after + random.uniform(0, 0.1 * failure.retry_after)
    if failure.isolated and attempt == 1:
        return random.uniform(0, base / 10)
    ceiling = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)
