"""What this process has asked of models: the connections made, and per connection the calls sent, the answers
served from the cache, tokens and cost.

    wb.connect(...)             ──record_connection──▶  backend, model, base_url (never a key)
    the batch runner (batch.py) ──record──▶  a row answered by the server (or failed there), or from the cache

A report reads :func:`snapshot` from the notebook's kernel when the run ends and prints it in the run card
(``workbench.views.run_card``). Only what this process runs is counted: work sent elsewhere (``via="ray"``
workers, provider batch jobs) is counted where it runs, not here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["record", "record_connection", "reset", "snapshot"]


@dataclass
class Tally:
    """The requests of one connection: sent (answered or failed) and served from the cache; tokens and cost.

    Tokens and cost count only what was sent: an answer from the cache costs nothing again.
    ``cached_cost_usd`` is what the cached answers cost when they were first paid for.
    """

    calls: int = 0  # requests sent (a retried request counts once)
    failed: int = 0  # requests that ended in an error, sent or refused before sending
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # calls whose cost is unknown (no price for the model)
    cached_cost_usd: float = 0.0


_lock = threading.Lock()
_connections: dict[tuple[str, str], str] = {}  # (base_url, model) -> backend, in the order they were made
_tallies: dict[tuple[str, str], Tally] = {}


def record_connection(backend: str, model: str, base_url: str) -> None:
    """Note a connection ``wb.connect()`` made (the same one twice is noted once)."""
    with _lock:
        _connections.setdefault((_safe_url(base_url), model), backend)


def record(base_url: str, rows: Iterable[Mapping[str, Any]], *, sent: bool) -> None:
    """Count response rows (``workbench.columns.RESPONSE_COLUMNS``) of ``base_url``: ``sent`` to the server
    (answered, or failed when the row has an ``error``), or else served from the cache."""
    with _lock:
        for row in rows:
            tally = _tallies.setdefault((_safe_url(base_url), row["model"]), Tally())
            if not sent:
                tally.cached += 1
                tally.cached_cost_usd += row.get("cost_usd") or 0.0
                continue
            tally.calls += bool(row.get("attempts", 1))  # 0: refused before it was sent
            tally.failed += row.get("error") is not None
            tally.tokens_in += row.get("tokens_in") or 0
            tally.tokens_out += row.get("tokens_out") or 0
            if row.get("cost_usd") is None:
                tally.unpriced += row.get("error") is None
            else:
                tally.cost_usd += row["cost_usd"]


def snapshot() -> dict[str, Any]:
    """Every connection with its tally, in the order made, and the totals; plain JSON types.

    ``{"connections": [{"backend", "model", "base_url", "calls", "failed", "cached", "tokens_in",
    "tokens_out", "cost_usd", "unpriced", "cached_cost_usd"}, ...], "total": {"calls", ...}}``. A model
    that answered without a ``wb.connect()`` of its own (another model named per request) has backend None.
    """
    with _lock:
        keys = list(_connections) + [key for key in _tallies if key not in _connections]
        rows = [
            {
                "backend": _connections.get(key),
                "model": key[1],
                "base_url": key[0],
                **asdict(_tallies.get(key, Tally())),
            }
            for key in keys
        ]
    total = Tally()
    for row in rows:
        for name in asdict(total):
            setattr(total, name, getattr(total, name) + row[name])
    return {"connections": rows, "total": asdict(total)}


def reset() -> None:
    """Forget every connection and count (a fresh kernel starts this way)."""
    with _lock:
        _connections.clear()
        _tallies.clear()


def _safe_url(url: str) -> str:
    """``url`` without a user or password in it, nor a query: what a run card may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) if parts.scheme else url
