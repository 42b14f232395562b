"""Provider batch jobs (OpenAI's Batch API): half the price, no rate limits, results within 24 hours.

    jobs = wb.generate(llm, prompt, grid, n=3, via="batch")   # returns at once: a BatchJobs handle
    jobs.watch()                                              # a progress view that updates itself
    samples = wb.generate(llm, prompt, grid, n=3, via="batch")   # same cell, later: the run table
    wb.batches(llm)                                           # every job of this data folder

The flow of one call::

    requests ──cache──▶ answered already: never sent
             ──job table──▶ held by a job: re-attach (refresh it; collect it when it has finished)
             ──the rest──▶ split (one model a file, ≤ 50,000 lines, ≤ 200 MB) ─▶ recorded in the
                           job table ─▶ uploaded ─▶ batch created (metadata: the job's id)
    every request answered or failed ──▶ the ordinary response table, from the cache
    otherwise                         ──▶ a BatchJobs handle, at once (the kernel is never blocked)

Each line's ``custom_id`` is the request's response-cache key, so results land under the keys the
online path reads. The job table (``data/cache/batches.sqlite``) is written before anything is
sent: a kernel restart, or the same cell run again, re-attaches instead of paying twice. A request
the provider failed, expired or cancelled is a row with ``error``; ``wb.batches(llm).forget(job)``
lets the next call send those again. Cost is counted at the batch price (half the list price).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import polars as pl

from ..columns import RESPONSE_COLUMNS
from ..errors import BatchJobNotFoundError, BatchRejectedError, ConfigError, InputError, WorkbenchError
from ..models.cache import CachedResponse
from ..models.client import LLM
from ..models.config import load_settings
from ..models.pricing import cost_usd
from ..models.requests import ChatRequest, answered_row, estimated_tokens, failed_row
from ..models.sync import run_sync
from .batch_files import CHAT_URL, MAX_BYTES, MAX_REQUESTS, parse_result_line, request_record, split_requests
from .job_table import TERMINAL, Held, Job, JobRequest, JobTable

__all__ = [
    "BATCH_BACKENDS",
    "BATCH_DISCOUNT",
    "BatchJobNotFoundError",
    "BatchJobs",
    "BatchRejectedError",
    "batch_route",
    "batches",
]

BATCH_BACKENDS = ("openai",)  # backends whose endpoint has the Batch API (files + batches)
BATCH_DISCOUNT = 0.5  # the Batch API costs half the list price
LIMITS = {"max_requests": MAX_REQUESTS, "max_bytes": MAX_BYTES}


# --- the route: llm.chat_many(..., via="batch") -----------------------------------------------------
async def batch_route(
    llm: LLM, requests: list[ChatRequest], *, use_cache: bool, progress: bool, max_concurrency: int
) -> pl.DataFrame | BatchJobs:
    """Answer ``requests`` through provider batch jobs: the response table when all are done, else a handle."""
    _check_backend(llm)
    if not use_cache:
        raise InputError("via='batch' keeps its results in the response cache; call it without cache=False.")
    table = JobTable.beside(llm.settings.cache_path)
    unique = {request.key: request for request in requests}
    async with llm.async_client() as client:
        open_jobs = _open_jobs(llm, table, unique)
        for job in open_jobs:
            await refresh_job(llm, client, table, job)
        _raise_if_rejected(table, open_jobs)
        cached = llm.cache.get_many(unique)
        held = table.latest((key for key in unique if key not in cached), kind="api")
        unsent = [request for key, request in unique.items() if key not in cached and key not in held]
        for group in split_requests(unsent, **LIMITS):
            await submit_job(llm, client, table, group)
    cached = llm.cache.get_many(unique)
    held = table.latest(unique, kind="api")
    running = sorted({held[key].job_id for key in held if key not in cached and held[key].pending})
    if running:
        return BatchJobs(llm, running)
    return response_table(llm, requests, cached, held)


def _check_backend(llm: LLM) -> None:
    if llm.backend not in BATCH_BACKENDS:
        raise ConfigError(
            f"backend {llm.backend!r} has no batch API; the backends that have one: {', '.join(BATCH_BACKENDS)} "
            "(connect with wb.connect('openai', ...)). For a self-hosted server (vLLM), write the requests "
            "as a batch file with wb.scale.write_batch_file(...) and run them with vLLM's run_batch."
        )


def _open_jobs(llm: LLM, table: JobTable, unique: dict[str, ChatRequest]) -> list[Job]:
    held = table.latest(unique, kind="api")
    jobs = [table.job(job_id) for job_id in sorted({holder.job_id for holder in held.values()})]
    return [job for job in jobs if job is not None and job.kind == "api" and not job.finished]


def _raise_if_rejected(table: JobTable, jobs: Sequence[Job]) -> None:
    for job in jobs:
        job = table.job(job.id)
        if job is not None and job.state == "failed":
            raise BatchRejectedError(
                f"{job.message} Fix the request on that line, then forget the job with "
                f"wb.batches(llm).forget({job.id!r}) and run the call again: only unanswered requests are sent."
            )


# --- submitting ------------------------------------------------------------------------------------
async def submit_job(
    llm: LLM, client: openai.AsyncOpenAI, table: JobTable, group: list[tuple[ChatRequest, bytes]]
) -> str:
    """Record one file's requests in the job table, upload the file and create its batch; returns the job id."""
    model = group[0][0].model
    job_id = table.add_job(
        kind="api",
        base_url=llm.base_url,
        endpoint=llm.endpoint,
        model=model,
        requests=[(request.key, request_record(request)) for request, _ in group],
        est_cost_usd=_estimate_cost(llm, [request for request, _ in group]),
    )
    await _send(llm, client, table, job_id, b"".join(line for _, line in group))
    return job_id


async def _send(llm: LLM, client: openai.AsyncOpenAI, table: JobTable, job_id: str, content: bytes) -> None:
    try:
        upload = await client.files.create(file=(f"{job_id}.jsonl", content, "application/jsonl"), purpose="batch")
        batch = await client.batches.create(
            input_file_id=upload.id, endpoint=CHAT_URL, completion_window="24h", metadata={"workbench_job": job_id}
        )
    except openai.APIStatusError as exc:
        table.forget(job_id)
        raise BatchRejectedError(
            f"{llm.base_url} refused the batch (HTTP {exc.status_code}: {_message(exc)}). Does this endpoint "
            f"have the Batch API? Only {', '.join(BATCH_BACKENDS)} does; nothing was submitted."
        ) from exc
    table.update(job_id, batch_id=batch.id, state=batch.status)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:300]


def _estimate_cost(llm: LLM, requests: list[ChatRequest]) -> float | None:
    """Dollars at the batch price, from each request's estimated tokens (``models.requests.estimated_tokens``)."""
    price = llm.price_for(requests[0].model)
    if price is None:
        return None
    estimates = [estimated_tokens(request) for request in requests]
    tokens_in, tokens_out = sum(e[0] for e in estimates), sum(e[1] for e in estimates)
    return cost_usd(price, tokens_in, tokens_out) * BATCH_DISCOUNT


# --- attaching and collecting ----------------------------------------------------------------------
async def refresh_job(llm: LLM, client: openai.AsyncOpenAI, table: JobTable, job: Job) -> Job:
    """Ask the provider how the job is doing; collect its results into the cache once it has finished."""
    if job.finished:
        return job
    if job.batch_id is None:
        found = await _find_submitted(client, job.id)
        if found is None:  # the kernel stopped before the batch was created: send the same file again
            records = table.requests_of(job.id)
            await _send(llm, client, table, job.id, _lines_from_records(records))
            return table.job(job.id)
        table.update(job.id, batch_id=found)
        job = table.job(job.id)
    try:
        batch = await client.batches.retrieve(job.batch_id)
    except openai.NotFoundError as exc:
        raise BatchJobNotFoundError(
            f"batch {job.batch_id} (job {job.id}) no longer exists at {job.base_url}. Forget it with "
            f"wb.batches(llm).forget({job.id!r}); the next call sends its unanswered requests again."
        ) from exc
    counts = batch.request_counts
    table.update(
        job.id,
        state=batch.status,
        total=counts.total if counts else job.total,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
    )
    if batch.status in TERMINAL:
        await _collect(llm, client, table, table.job(job.id), batch)
    return table.job(job.id)


async def _find_submitted(client: openai.AsyncOpenAI, job_id: str) -> str | None:
    async for batch in client.batches.list(limit=100):
        if (batch.metadata or {}).get("workbench_job") == job_id:
            return batch.id
    return None


def _lines_from_records(records: list[JobRequest]) -> bytes:
    request = [
        ChatRequest(r.model, r.record["messages"], r.record["params"], r.record["sample_index"], r.key) for r in records
    ]
    return b"".join(line for group in split_requests(request) for _, line in group)


async def _collect(llm: LLM, client: openai.AsyncOpenAI, table: JobTable, job: Job, batch: Any) -> None:
    records = {r.key: (r.model, r.record) for r in table.requests_of(job.id)}
    outcomes: dict[str, tuple[str, str | None]] = {}
    spent = 0.0
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        text = (await client.files.content(file_id)).text
        for number, line in enumerate(text.splitlines(), start=1):
            key, response, error = parse_result_line(json.loads(line), file_id, number)
            if key not in records:
                continue
            if response is None:
                outcomes[key] = ("error", error)
                continue
            model, record = records[key]
            response = replace(response, price_factor=BATCH_DISCOUNT)
            llm.cache.put(key, endpoint=job.endpoint, model=model, request=record, response=response)
            outcomes[key] = ("answered", None)
            spent += response.cost(llm.price_for(model)) or 0.0
    table.set_outcomes(job.id, outcomes)
    message = _rejection(batch) if batch.status == "failed" else None
    table.fail_pending(job.id, message or f"BatchRequestError: the batch ended {batch.status} without answering this")
    cost = spent if llm.price_for(job.model) is not None else None
    table.update(job.id, collected=1, message=message, est_cost_usd=cost)


def _rejection(batch: Any) -> str:
    errors = (batch.errors.data if batch.errors else None) or []
    described = [
        (f"line {e.line}: " if e.line is not None else "") + f"{e.message or 'rejected'} ({e.code or 'error'})"
        for e in errors
    ]
    return f"the endpoint rejected batch {batch.id}: " + ("; ".join(described) or "no reason given") + "."


# --- the response table -----------------------------------------------------------------------------
def response_table(
    llm: LLM,
    requests: list[ChatRequest],
    cached: dict[str, CachedResponse],
    held: dict[str, Held],
) -> pl.DataFrame:
    """One row per request, in input order: answers from the cache (at the price they were paid), errors."""
    rows = []
    for request in requests:
        response = cached.get(request.key)
        if response is None:
            holder = held.get(request.key)
            error = (holder.error if holder else None) or "BatchRequestError: no answer"
            rows.append(failed_row(request, error, attempts=1))
        else:
            cost = _cost(llm, request, response, held)
            rows.append(answered_row(request, response, cost=cost, cached=True, attempts=0))
    return pl.DataFrame(rows, schema=RESPONSE_COLUMNS)


def _cost(llm: LLM, request: ChatRequest, response: CachedResponse, held: dict[str, Held]) -> float | None:
    """At the price paid (an answer a job collected before the cache kept ``price_factor`` was paid at the batch
    price)."""
    holder = held.get(request.key)
    if response.price_factor is None and holder is not None and holder.answered:
        response = replace(response, price_factor=BATCH_DISCOUNT)
    return response.cost(llm.price_for(request.model))


# --- the handle ------------------------------------------------------------------------------------
class BatchJobs:
    """Batch jobs of one data folder: their state, counts and cost; refresh, watch, cancel, forget.

    ``wb.generate(..., via="batch")`` returns one while its jobs run; ``wb.batches(llm)`` returns
    one for every job of the data folder. Run the same call again once ``done`` to get the table.
    """

    def __init__(self, llm: LLM | None, job_ids: Sequence[str] | None = None, *, data_dir: Path | None = None) -> None:
        self._llm = llm
        self.table = JobTable.beside(
            llm.settings.cache_path if llm is not None else load_settings(data_dir=data_dir).cache_path
        )
        self._ids = list(job_ids) if job_ids is not None else None
        self._watcher: threading.Thread | None = None

    @property
    def llm(self) -> LLM:
        """The connection that refreshes, cancels and collects the jobs."""
        if self._llm is None:
            raise InputError("to refresh, cancel or collect jobs, pass the connection: wb.batches(llm).")
        return self._llm

    @property
    def jobs(self) -> list[Job]:
        """The jobs this handle follows, oldest first."""
        every = self.table.jobs()
        return every if self._ids is None else [job for job in every if job.id in self._ids]

    @property
    def done(self) -> bool:
        """True when every job has finished and its results are in the cache."""
        return all(job.finished or job.kind != "api" for job in self.jobs)

    def frame(self) -> pl.DataFrame:
        """The jobs as a table: job, kind, batch_id, model, state, counts, est_cost_usd, created, message."""
        frame = self.table.frame()
        return frame if self._ids is None else frame.filter(pl.col("job").is_in(self._ids))

    def refresh(self) -> BatchJobs:
        """Ask the provider about every unfinished job; collect the finished ones into the cache."""
        run_sync(self._refresh())
        return self

    async def _refresh(self) -> None:
        async with self.llm.async_client() as client:
            for job in self.jobs:
                if job.kind == "api" and not job.finished and job.base_url == self.llm.base_url:
                    await refresh_job(self.llm, client, self.table, job)

    def cancel(self, job_id: str | None = None) -> BatchJobs:
        """Cancel one job (or all unfinished ones); what was answered before is kept."""
        run_sync(self._cancel(job_id))
        return self

    async def _cancel(self, job_id: str | None) -> None:
        async with self.llm.async_client() as client:
            for job in self.jobs:
                if (job_id in (None, job.id, job.batch_id)) and job.batch_id and job.state not in TERMINAL:
                    batch = await client.batches.cancel(job.batch_id)
                    self.table.update(job.id, state=batch.status)

    def forget(self, job_id: str) -> BatchJobs:
        """Drop a job from the table: its unanswered requests are sent again by the next call."""
        job = self.table.job(job_id)
        if job is None:
            raise InputError(f"no job {job_id!r} in {self.table.path}; wb.batches(llm) lists them.")
        self.table.forget(job.id)
        if self._ids is not None and job.id in self._ids:
            self._ids.remove(job.id)
        return self

    def wait(self, every: float = 30.0, timeout: float | None = None) -> BatchJobs:
        """Block until every job has finished (refreshing every ``every`` seconds); rarely what a notebook wants."""
        run_sync(self._wait(every, timeout))
        return self

    async def _wait(self, every: float, timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while True:
                await self._refresh()
                if self.done:
                    return
                await asyncio.sleep(every)

    def watch(self, every: float = 30.0) -> Any:
        """A progress view (an ipywidgets HTML) that refreshes itself in the background until all are done."""
        import ipywidgets

        view = ipywidgets.HTML(self._repr_html_())

        def loop() -> None:
            stop = threading.Event()
            while not stop.wait(every):
                try:
                    self.refresh()
                except WorkbenchError as exc:
                    view.value = f"<b>{type(exc).__name__}</b>: {exc}"
                    return
                view.value = self._repr_html_()
                if self.done:
                    return

        self._watcher = threading.Thread(target=loop, name="workbench-batch-watch", daemon=True)
        self._watcher.start()
        return view

    def __repr__(self) -> str:
        jobs = self.jobs
        states = ", ".join(f"{job.id}: {job.state} {job.completed + job.failed}/{job.total}" for job in jobs)
        return f"BatchJobs({len(jobs)} jobs; {states or 'none'}; done={self.done})"

    def _repr_html_(self) -> str:
        hint = (
            "All finished: run the same call again for the run table."
            if self.done
            else "Running at the provider. Run the same call again to re-attach (nothing is sent twice)."
        )
        columns = ["job", "batch_id", "model", "state", "total", "completed", "failed", "est_cost_usd", "message"]
        return self.frame().select(columns)._repr_html_() + f"<p>{hint}</p>"


def batches(llm: LLM | None = None, *, data_dir: str | Path | None = None) -> BatchJobs:
    """Every batch job of a data folder (provider jobs and batch files), with state, counts and cost.

    ``wb.batches(llm)`` can also refresh, cancel and collect them; ``wb.batches()`` lists those of
    the data folder the settings point at (``data_dir=`` to name another).
    """
    return BatchJobs(llm, data_dir=Path(data_dir) if data_dir is not None else None)
