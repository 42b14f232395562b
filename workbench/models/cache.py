"""A content-addressed SQLite cache of model responses, written the moment each one arrives.

The key is a SHA-256 of the endpoint, the model, the messages, every generation parameter and the
sample index (so that ``n`` samples of one prompt stay distinct). The API key is never part of the
key nor of anything stored. Only successful responses are stored: a failed request is tried again
on the next run. The database runs in WAL mode, so readers never wait for the writer and a kernel
interrupt loses nothing that was already committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import StorageError
from ..files import storage_error
from .pricing import Price, cost_usd

__all__ = ["CachedResponse", "ResponseCache", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT,
    finish_reason TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    latency_s REAL,
    logprobs TEXT,
    price_factor REAL,
    tokens_cached INTEGER
)
"""

# Columns added since the first release, with their type: a cache file written before gets them on open.
_ADDED_COLUMNS = {"logprobs": "TEXT", "price_factor": "REAL", "tokens_cached": "INTEGER"}


def request_key(endpoint: str, model: str, messages: list[dict], params: dict, sample_index: int) -> str:
    """The cache key of one request: stable across runs, processes and dict orderings."""
    canonical = _canonical(endpoint, model, messages, params, sample_index)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()  # text with a lone surrogate too


def _canonical(endpoint: str, model: str, messages: list[dict], params: dict, sample_index: int) -> str:
    payload = {"endpoint": endpoint, "model": model, "messages": messages, "params": params, "sample": sample_index}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class CachedResponse:
    """One stored response. ``price_factor`` is the share of the list price it cost: 0.5 for an answer a
    provider batch job paid for, None for the list price. ``tokens_cached``: the prompt tokens the provider
    served from its prompt cache (part of ``tokens_in``, charged at the cached-input price)."""

    response: str | None
    finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    latency_s: float
    logprobs: str | None = None
    price_factor: float | None = None
    tokens_cached: int | None = None

    def cost(self, price: Price | None) -> float | None:
        """Dollars this response cost at ``price``; None without a price."""
        dollars = cost_usd(price, self.tokens_in, self.tokens_out, self.tokens_cached)
        if dollars is None or self.price_factor is None:
            return dollars
        return dollars * self.price_factor


class ResponseCache:
    """The response store behind every batch. Safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(_SCHEMA)
            self._migrate()
        except (OSError, sqlite3.OperationalError) as exc:
            raise self._unwritable(exc) from exc

    def _unwritable(self, exc: Exception) -> StorageError:
        """Why the cache cannot be opened or written, and what to do: a data_dir that can be written."""
        problem = exc if isinstance(exc, OSError) else OSError(str(exc))
        return storage_error(
            self.path,
            problem,
            "The response cache lives in data_dir/cache/: connect with data_dir= a folder you can write to "
            "(or set WORKBENCH_DATA_DIR).",
        )

    def _migrate(self) -> None:
        """Add the columns a cache file from an older version lacks; its rows keep null there."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                try:
                    self._db.execute(f"ALTER TABLE responses ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it a moment ago
                    if "duplicate column" not in str(exc):
                        raise

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The stored responses among ``keys``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedResponse] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT key, response, finish_reason, tokens_in, tokens_out, latency_s, logprobs, price_factor, "
                    f"tokens_cached FROM responses WHERE key IN ({marks})",
                    chunk,
                )
                found.update({row[0]: CachedResponse(*row[1:]) for row in rows})
        return found

    def put(self, key: str, *, endpoint: str, model: str, request: dict[str, Any], response: CachedResponse) -> None:
        """Store one response and commit at once."""
        values = asdict(response)
        with self._lock, self._storing():
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, created, endpoint, model, request, response, "
                "finish_reason, tokens_in, tokens_out, latency_s, logprobs, price_factor, tokens_cached) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    key,
                    time.time(),
                    endpoint,
                    model,
                    json.dumps(request, sort_keys=True, ensure_ascii=False, default=str),
                    values["response"],
                    values["finish_reason"],
                    values["tokens_in"],
                    values["tokens_out"],
                    values["latency_s"],
                    values["logprobs"],
                    values["price_factor"],
                    values["tokens_cached"],
                ),
            )

    @contextlib.contextmanager
    def _storing(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # a read-only file or a full disk: not a fault of the request
            raise self._unwritable(exc) from exc

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.closed = True
