"""Run the async core from ordinary code, also inside a running Jupyter kernel.

Jupyter already runs an event loop in the main thread, so ``asyncio.run`` cannot be used there.
Every sync call instead runs its coroutine on one background event loop that the workbench owns,
and waits for it. A ``KeyboardInterrupt`` (Ctrl-C, or the kernel's interrupt button) cancels the
coroutine, waits for it to wind down — so that every response already received stays stored — and
is then raised again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["is_background_loop", "run_sync"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="workbench-loop", daemon=True).start()
        return _loop


def is_background_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True for the workbench's own loop, which lives as long as the process."""
    return loop is _loop


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on the workbench's loop and return its result."""
    finished = threading.Event()

    async def run_then_signal() -> T:
        try:
            return await coroutine
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(run_then_signal(), _background_loop())
    try:
        return _wait(future)
    except KeyboardInterrupt:
        future.cancel()  # cancels the task on the loop; wait until it has wound down
        finished.wait(timeout=30)
        raise


def _wait(future: concurrent.futures.Future[T]) -> T:
    # Waiting in short slices keeps the main thread responsive to KeyboardInterrupt.
    while True:
        try:
            return future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            continue
