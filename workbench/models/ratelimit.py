"""Rate limits: the ones you set (requests/tokens per minute) and the one the server announces.

Limits you set are token buckets: a bucket holds up to one minute's allowance and refills
continuously, so a batch may start with a burst of up to the whole allowance and then settles at
the limit.

The server's limit is read from the headers of its answers, 200s and 429s alike, so that a batch
runs close to it without anything configured on our side:

    OpenAI, and gateways in front of vLLM   x-ratelimit-{limit,remaining,reset}-requests
                                            (reset as a duration: "1s", "6m0s", "20ms")
    IETF draft (RateLimit fields)           ratelimit-limit / -remaining / -reset (seconds),
                                            or one ``ratelimit: limit=.., remaining=.., reset=..``
    older APIs                              x-ratelimit-limit / -remaining / -reset (seconds or
                                            a Unix time)
    Anthropic                               anthropic-ratelimit-requests-* (reset as a timestamp)

vLLM itself sends none of these; a server without them is handled by the adaptive concurrency in
``adaptive.py`` and each 429's own ``Retry-After``.

Every request takes a ticket (its place in sending order). The answer to ticket ``t`` says how many
requests the server will still take; the requests sent after ``t`` come off that. When nothing is
left ("remaining: 0"), every request waits until the reset the server announced: that is a real
limit, not a one-off refusal.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Bucket", "LimitReading", "RateLimiter", "ServerLimit", "parse_duration", "read_limit_headers"]

_UNKNOWN_RESET = 1.0  # seconds to wait when a server says "none left" but not when it comes back
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Bucket:
    """A token bucket of ``per_minute`` units that refills continuously."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (0 when they are)."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)


@dataclass(frozen=True)
class LimitReading:
    """What one answer's headers say about the server's request allowance."""

    remaining: float
    limit: float | None = None  # requests per minute
    reset: float | None = None  # seconds until the allowance is back


def read_limit_headers(headers: Mapping[str, str] | None) -> LimitReading | None:
    """The request allowance announced in ``headers``, in any of the forms above; None without one."""
    if not headers:
        return None
    for read in (_openai, _anthropic, _ietf_fields, _ietf_structured, _legacy):
        reading = read(headers)
        if reading is not None:
            return reading
    return None


def _openai(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("x-ratelimit-remaining-requests"))
    if remaining is None:
        return None
    reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
    return LimitReading(remaining, _number(headers.get("x-ratelimit-limit-requests")), reset)


def _anthropic(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("anthropic-ratelimit-requests-remaining"))
    if remaining is None:
        return None
    reset = _seconds_until(headers.get("anthropic-ratelimit-requests-reset"))
    return LimitReading(remaining, _number(headers.get("anthropic-ratelimit-requests-limit")), reset)


def _ietf_fields(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("ratelimit-remaining"))
    if remaining is None:
        return None
    return LimitReading(remaining, None, _number(headers.get("ratelimit-reset")))


def _ietf_structured(headers: Mapping[str, str]) -> LimitReading | None:
    fields = dict(re.findall(r"(\w+)\s*=\s*([\d.]+)", headers.get("ratelimit", "")))
    remaining = _number(fields.get("remaining") or fields.get("r"))
    if remaining is None:
        return None
    return LimitReading(remaining, None, _number(fields.get("reset") or fields.get("t")))


def _legacy(headers: Mapping[str, str]) -> LimitReading | None:
    remaining = _number(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return None
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None and reset > 1e9:  # a Unix time, not a number of seconds
        reset = max(reset - time.time(), 0.0)
    return LimitReading(remaining, None, reset)


def _number(text: str | None) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None


def _seconds_until(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError):
            return None
    return max(moment - time.time(), 0.0)


def parse_duration(text: str | None) -> float | None:
    """Seconds in a duration like OpenAI's ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"`` or ``"0.5"``."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION.findall(text)
    if parts and "".join(value + unit for value, unit in parts) == text:
        return sum(float(value) * _UNIT[unit] for value, unit in parts)
    return _number(text) if re.fullmatch(r"\d+(?:\.\d+)?", text) else None


class ServerLimit:
    """The server's request allowance as its headers last told it, counted down as we send.

    ``budget`` is how many more requests the server will take now: unknown (infinite) until a
    reading arrives. Only the reading for the latest ticket is used: older answers are staler.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.budget = math.inf
        self.capacity = 1.0
        self.per_second: float | None = None
        self.reset_at: float | None = None
        self.reading_ticket = -1
        self.stamp = time.monotonic()

    @property
    def known(self) -> bool:
        """True once the server has announced a limit."""
        return self.reading_ticket >= 0

    def take(self) -> int:
        """Count one request as sent; its ticket."""
        ticket = self.sent
        self.sent += 1
        self.budget -= 1
        return ticket

    def observe(self, reading: LimitReading | None, ticket: int) -> None:
        """Take in the reading from the answer to ``ticket``."""
        if reading is None or ticket < self.reading_ticket:
            return
        now = time.monotonic()
        self.reading_ticket = ticket
        self.capacity = max(self.capacity, reading.remaining + 1)
        self.per_second = reading.limit / 60 if reading.limit else self.per_second
        self.budget = reading.remaining - self._sent_since_reading()
        reset = self._reset_after(reading)
        self.reset_at = now + reset if reset is not None else None
        self.stamp = now

    def _reset_after(self, reading: LimitReading) -> float | None:
        """Seconds until the allowance is back; None when it refills continuously at the limit."""
        if reading.reset is not None:
            return reading.reset
        return None if self.per_second else _UNKNOWN_RESET

    def wait_time(self) -> float:
        """Seconds until one more request may go (0 when it may go now)."""
        now = time.monotonic()
        if self.reset_at is not None and now >= self.reset_at:
            self.budget = max(self.budget, self.capacity - self._sent_since_reading())
            self.reset_at = None
        elif self.reset_at is None and self.per_second:
            self.budget = min(self.capacity, self.budget + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.budget >= 1:
            return 0.0
        if self.reset_at is not None:
            return self.reset_at - now
        return (1 - self.budget) / self.per_second if self.per_second else _UNKNOWN_RESET

    def _sent_since_reading(self) -> int:
        return self.sent - self.reading_ticket - 1


class RateLimiter:
    """Holds each request until the limits you set and the server's announced allowance permit it."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None
        self.server = ServerLimit()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: float = 0.0) -> int:
        """Wait until one request of about ``tokens`` tokens may be sent; its ticket for :meth:`observe`."""
        if self.requests is None and self.tokens is None and not self.server.known:
            return self.server.take()
        async with self._lock:
            while True:
                wait = max(self._wait(self.requests, 1.0), self._wait(self.tokens, tokens), self.server.wait_time())
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1.0)
            if self.tokens:
                self.tokens.take(tokens)
            return self.server.take()

    def observe(self, headers: Mapping[str, str] | None, ticket: int) -> None:
        """Read the server's rate-limit headers from the answer to ``ticket``."""
        self.server.observe(read_limit_headers(headers), ticket)

    def refund(self, estimated: float, actual: float) -> None:
        """Correct the token bucket once the real usage of a request is known."""
        if self.tokens:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + estimated - actual)

    @staticmethod
    def _wait(bucket: Bucket | None, amount: float) -> float:
        return bucket.wait_time(amount) if bucket else 0.0
