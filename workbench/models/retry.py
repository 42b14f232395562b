"""Which failures are worth another try, and how long to wait before it.

Retried: 408, 409, 429 and 5xx statuses, timeouts, refused or dropped connections, and bodies that
are not a valid chat completion (malformed JSON, missing choices). Recorded at once: every other
4xx (unknown model, bad request, bad key) — trying again cannot fix those. The wait is the
server's ``Retry-After`` (or ``retry-after-ms``) when it sends one, otherwise exponential backoff
with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx2
import openai

__all__ = ["Failure", "MalformedResponse", "backoff_delay", "classify"]

MAX_RETRY_AFTER = 120.0
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

    def describe(self) -> str:
        return f"{self.kind}: {self.message}"


def classify(exc: BaseException) -> Failure:
    """Turn an exception from one request into a :class:`Failure`."""
    name = type(exc).__name__
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in _RETRY_STATUSES or status >= 500
        return Failure(name, _status_message(exc), retryable, _retry_after(exc.response.headers))
    if isinstance(exc, openai.APITimeoutError):
        return Failure(name, "the server did not answer within the timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        return Failure(name, detail, True, unreachable=isinstance(cause, (httpx2.ConnectError, httpx2.ConnectTimeout)))
    if isinstance(exc, (openai.APIResponseValidationError, MalformedResponse, ValueError)):
        return Failure(name, f"malformed response: {exc}", True)
    return Failure(name, str(exc), False)


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    detail = error.get("message") if isinstance(error, dict) else None
    return f"HTTP {exc.status_code}: {detail or exc.message}"


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
    ceiling = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
