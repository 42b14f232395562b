"""Adaptive concurrency: how many requests of a batch may be in flight, grown as the server answers.

    start ── 8 in flight (or fewer, if that is the maximum)
      │  slow start: +1 per success (doubling each round trip) up to the batch's maximum
      ▼
    the batch's maximum (``max_concurrency``)

A batch does not open with its whole ``max_concurrency`` at once: a server that cannot take it
refuses fewer requests while the batch finds out. Refusals (429s) do not shrink the gate: they are
about rate, and ``ratelimit.py`` paces the batch at the server's rate, announced in its headers or
learnt from the refusals themselves. (Halving the requests in flight on a 429, as this gate did
before, starves a server whose answers are slow: a model taking 5 s per answer needs 50 in flight
to reach 600 requests/min.) 5xx answers, dropped connections and garbled bodies say nothing about
load either.
"""

from __future__ import annotations

import asyncio

__all__ = ["AdaptiveConcurrency"]

START = 8


class AdaptiveConcurrency:
    """A gate of ``limit`` slots that grows from ``start`` to ``maximum``, one per success."""

    def __init__(self, maximum: int, start: int = START) -> None:
        self.maximum = max(1, maximum)
        self.limit = min(self.maximum, max(1, start))
        self.in_flight = 0
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait for a free slot, then take it."""
        while self.in_flight >= self.limit:
            self._changed.clear()
            await self._changed.wait()
        self.in_flight += 1

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._changed.set()

    def succeeded(self) -> None:
        """An answer came back: one more slot, up to the maximum."""
        if self.limit < self.maximum:
            self.limit += 1
            self._changed.set()
