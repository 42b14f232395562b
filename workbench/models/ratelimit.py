"""Requests-per-minute and tokens-per-minute limits, as token buckets, plus a shared pause.

A bucket holds up to one minute's allowance and refills continuously, so a batch may start with a
burst of up to the whole allowance and then settles at the limit. A 429 with ``Retry-After`` pauses
every request of the batch, not just the one that was refused: the server has said it is full.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Bucket", "RateLimiter"]


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


class RateLimiter:
    """Holds each request until the per-minute limits and any server-asked pause allow it."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (the server asked for it)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    async def acquire(self, tokens: float = 0.0) -> None:
        """Wait until one request of about ``tokens`` tokens may be sent."""
        if self.requests is None and self.tokens is None:
            await self._wait_for_pause()
            return
        async with self._lock:
            while True:
                await self._wait_for_pause()
                wait = max(self._wait(self.requests, 1.0), self._wait(self.tokens, tokens))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1.0)
            if self.tokens:
                self.tokens.take(tokens)

    def refund(self, estimated: float, actual: float) -> None:
        """Correct the token bucket once the real usage of a request is known."""
        if self.tokens:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + estimated - actual)

    async def _wait_for_pause(self) -> None:
        delay = self.paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    @staticmethod
    def _wait(bucket: Bucket | None, amount: float) -> float:
        return bucket.wait_time(amount) if bucket else 0.0
