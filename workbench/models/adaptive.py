"""Adaptive concurrency: how many requests of a batch may be in flight, learned from the server.

AIMD, as TCP, NeMo Data Designer and inspect_ai's adaptive connections do it::

    start ── 8 in flight (or fewer, if that is the maximum)
      │  slow start: +1 per success (doubling each round trip) up to the batch's maximum
      ▼
    steady ── +1 per (limit/4 + 1) successes, up to the maximum
      │  congestion: a quarter or more of the recent answers were 429s
      ▼
    hold every new request for each 429's Retry-After (the server is full, not just refusing
    one request), and halve the limit, at most once per round of in-flight requests

A lone 429 among successes is not congestion: only that request waits for its Retry-After, and the
others go on. 5xx answers, dropped connections and garbled bodies leave the limit as it is: they
say nothing about load. A server that announces its limit in headers is paced by ``ratelimit.py``
instead, so that it is rarely refused at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

__all__ = ["AdaptiveConcurrency"]

log = logging.getLogger("workbench")

START = 8
WINDOW = 32  # recent answers looked at to tell congestion from a one-off 429
CONGESTED_SHARE = 0.25
MIN_429S = 3
GROWTH_STEP = 8  # after congestion: +1 per this many successes, or per round once the limit is larger


class AdaptiveConcurrency:
    """A gate of ``limit`` slots between 1 and ``maximum`` that grows and shrinks with the server."""

    def __init__(self, maximum: int, start: int = START) -> None:
        self.maximum = max(1, maximum)
        self.limit = min(self.maximum, max(1, start))
        self.in_flight = 0
        self.slow_start = True
        self.blocked_until = 0.0
        self.decreases = 0
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._streak = 0
        self._answered = 0
        self._epoch_end = 0
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait for a free slot (and for any hold after congestion), then take it."""
        while True:
            hold = self.blocked_until - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            elif self.in_flight < self.limit:
                self.in_flight += 1
                return
            else:
                self._changed.clear()
                await self._changed.wait()

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._changed.set()

    def succeeded(self) -> None:
        """An answer came back: grow."""
        self._note(rate_limited=False)
        self._streak += 1
        step = 1 if self.slow_start else max(GROWTH_STEP, self.limit)
        if self._streak >= step and self.limit < self.maximum:
            self.limit += 1
            self._streak = 0
            self._changed.set()

    def failed(self, *, rate_limited: bool, retry_after: float | None = None) -> None:
        """An attempt failed; a 429 may mean the server is full."""
        self._note(rate_limited=rate_limited)
        if not (rate_limited and self._congested()):
            return
        if retry_after:  # a little past the refused requests' own wait, so that they go first
            self.blocked_until = max(self.blocked_until, time.monotonic() + retry_after * 1.1)
        if self._answered >= self._epoch_end:
            self._decrease()

    def _note(self, *, rate_limited: bool) -> None:
        self._recent.append(rate_limited)
        self._answered += 1

    def _congested(self) -> bool:
        refusals = sum(self._recent)
        return refusals >= MIN_429S and refusals >= CONGESTED_SHARE * len(self._recent)

    def _decrease(self) -> None:
        log.debug("the server is refusing many requests: concurrency %d -> %d", self.limit, max(1, self.limit // 2))
        self.limit = max(1, self.limit // 2)
        self.slow_start = False
        self.decreases += 1
        self._streak = 0
        self._epoch_end = self._answered + self.in_flight  # the requests already out count as this round
