"""The table of batch jobs, on disk beside the response cache (``data/cache/batches.sqlite``).

Every job sent elsewhere — a provider batch job, or a batch file written for a self-hosted fleet —
is a row in ``jobs``, and each of its requests a row in ``job_requests`` keyed by the response
cache key (which is also the line's ``custom_id``). Rows are written *before* anything is sent, so
that a kernel restart, or the same cell run again, finds the job and re-attaches to it instead of
paying twice. A request's ``outcome`` is ``pending``, ``answered`` (its response is in the response
cache) or ``error`` (with the reason); forgetting a job lets its unanswered requests be sent again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

__all__ = ["JOB_COLUMNS", "Held", "Job", "JobRequest", "JobTable", "TERMINAL"]

# Provider states after which nothing more happens to a job.
TERMINAL = ("completed", "failed", "expired", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    batch_id TEXT,
    base_url TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    est_cost_usd REAL,
    path TEXT,
    message TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS job_requests (
    job_id TEXT NOT NULL,
    key TEXT NOT NULL,
    line INTEGER NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX IF NOT EXISTS job_requests_key ON job_requests (key);
"""

JOB_COLUMNS: dict[str, pl.DataType] = {
    "job": pl.String(),
    "kind": pl.String(),
    "batch_id": pl.String(),
    "model": pl.String(),
    "state": pl.String(),
    "total": pl.Int64(),
    "completed": pl.Int64(),
    "failed": pl.Int64(),
    "est_cost_usd": pl.Float64(),
    "created": pl.Datetime("ms"),
    "message": pl.String(),
}


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    kind: str
    batch_id: str | None
    base_url: str
    endpoint: str
    model: str
    state: str
    collected: bool
    total: int
    completed: int
    failed: int
    est_cost_usd: float | None
    path: str | None
    message: str | None
    created: float

    @property
    def finished(self) -> bool:
        """True once the provider is done with the job and its results are in the cache."""
        return self.state in TERMINAL and self.collected


class JobRequest(NamedTuple):
    """One request of a job, as recorded before it was sent."""

    key: str  # the response cache key, also the line's custom_id
    line: int  # its line in the job's file, from 1
    model: str
    record: dict[str, Any]  # messages, params and sample_index, as sent
    outcome: str  # pending, answered or error


class Held(NamedTuple):
    """Which job holds a request, and how that request stands there."""

    job_id: str
    outcome: str  # pending, answered or error
    error: str | None

    @property
    def pending(self) -> bool:
        return self.outcome == "pending"

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


class JobTable:
    """The job table of one data folder. Safe to share between threads; several processes may open it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def beside(cls, cache_path: str | Path) -> JobTable:
        """The job table in the same folder as the response cache at ``cache_path``."""
        return cls(Path(cache_path).with_name("batches.sqlite"))

    def add_job(
        self,
        *,
        kind: str,
        base_url: str,
        endpoint: str,
        model: str,
        requests: list[tuple[str, dict[str, Any]]],
        est_cost_usd: float | None,
        path: str | None = None,
    ) -> str:
        """Record a job and its requests ((key, record) in line order) before it is sent; returns its id."""
        job_id = f"wb-{uuid.uuid4().hex[:12]}"
        now = time.time()
        rows = [
            (job_id, key, line, model, json.dumps(record, sort_keys=True, default=str))
            for line, (key, record) in enumerate(requests, start=1)
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO jobs (id, kind, base_url, endpoint, model, state, total, est_cost_usd, path, created, "
                "updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, base_url, endpoint, model, "submitting", len(rows), est_cost_usd, path, now, now),
            )
            self._db.executemany(
                "INSERT INTO job_requests (job_id, key, line, model, request) VALUES (?,?,?,?,?)", rows
            )
            self._db.execute("COMMIT")
        return job_id

    def update(self, job_id: str, **fields: Any) -> None:
        """Change some fields of a job (state, batch_id, counts, message, collected, est_cost_usd)."""
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {names}, updated = ? WHERE id = ?", (*fields.values(), time.time(), job_id)
            )

    def job(self, job_id: str) -> Job | None:
        """The job with this id (or provider batch id), or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_FIELDS} FROM jobs WHERE id = ? OR batch_id = ?", (job_id, job_id)
            ).fetchone()
        return Job(*row[:7], bool(row[7]), *row[8:]) if row else None

    def jobs(self) -> list[Job]:
        """Every job of this data folder, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_JOB_FIELDS} FROM jobs ORDER BY created").fetchall()
        return [Job(*row[:7], bool(row[7]), *row[8:]) for row in rows]

    def requests_of(self, job_id: str) -> list[JobRequest]:
        """Every request of a job, in line order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, line, model, request, outcome FROM job_requests WHERE job_id = ? ORDER BY line", (job_id,)
            ).fetchall()
        return [
            JobRequest(key, line, model, json.loads(request), outcome) for key, line, model, request, outcome in rows
        ]

    def latest(self, keys: Iterable[str], kind: str | None = None) -> dict[str, Held]:
        """For each key that some job (of ``kind``, if given) holds: how the newest such job holds it."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Held] = {}
        kinds = (kind,) if kind else ("api", "file")
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    "SELECT r.key, r.job_id, r.outcome, r.error FROM job_requests r JOIN jobs j ON j.id = r.job_id "
                    f"WHERE r.key IN ({','.join('?' * len(chunk))}) AND j.kind IN (?, ?) ORDER BY j.created",
                    [*chunk, kinds[0], kinds[-1]],
                )
                found.update({key: Held(job, outcome, error) for key, job, outcome, error in rows})
        return found

    def set_outcomes(self, job_id: str, outcomes: dict[str, tuple[str, str | None]]) -> None:
        """Record each key's (outcome, error) for one job, in one transaction."""
        rows = [(outcome, error, job_id, key) for key, (outcome, error) in outcomes.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE job_requests SET outcome = ?, error = ? WHERE job_id = ? AND key = ?", rows)
            self._db.execute("COMMIT")

    def fail_pending(self, job_id: str, reason: str) -> None:
        """Every request of the job still pending becomes an error with ``reason``."""
        with self._lock:
            self._db.execute(
                "UPDATE job_requests SET outcome = 'error', error = ? WHERE job_id = ? AND outcome = 'pending'",
                (reason, job_id),
            )

    def forget(self, job_id: str) -> None:
        """Drop a job and its request records; the unanswered ones are sent again by the next call."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM job_requests WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._db.execute("COMMIT")

    def frame(self) -> pl.DataFrame:
        """The job table as a polars frame (see :data:`JOB_COLUMNS`)."""
        rows = [
            {
                "job": job.id,
                "kind": job.kind,
                "batch_id": job.batch_id,
                "model": job.model,
                "state": job.state if job.collected or job.state not in TERMINAL else f"{job.state} (collecting)",
                "total": job.total,
                "completed": job.completed,
                "failed": job.failed,
                "est_cost_usd": job.est_cost_usd,
                "created": int(job.created * 1000),
                "message": job.message,
            }
            for job in self.jobs()
        ]
        return pl.DataFrame(rows, schema={**JOB_COLUMNS, "created": pl.Int64()}).with_columns(
            pl.col("created").cast(pl.Datetime("ms"))
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


_JOB_FIELDS = (
    "id, kind, batch_id, base_url, endpoint, model, state, collected, total, completed, failed, "
    "est_cost_usd, path, message, created"
)
