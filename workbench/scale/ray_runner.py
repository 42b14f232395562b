"""The Ray runner: the same steps, as Ray Data jobs over shards, for runs too big for one kernel.

    wb.scale.start_ray()                                   # a local Ray cluster on this machine
    wb.scale.start_ray("ray://head:10001", workers=32)     # or your cluster
    samples = wb.generate(llm, prompt, grid, via="ray")    # the same call, the same run table
    graded = wb.grade(llm, samples, rubric, via="ray")     # (refine's calls take via= the same way)
    deduped = wb.scale.ray_dedup(graded)                   # wb.dedup's result, shingling on the workers

``via="ray"`` cuts the requests into shards of ``shard_size`` in input order. Each shard is a Ray
Data task on a worker that rebuilds the connection and answers it with the workbench's own client
(cache first, ``max_concurrency`` requests in flight, retries), then writes the shard's response
table as one Parquet file under ``data/runs/ray/<run>/``, atomically. The driver reads the shards
back into one polars frame in input order, so lineage and columns are those of the kernel path.
A shard whose file exists is never sent again: after a failure, a killed worker or a restart, the
same call sends only the missing shards (and inside a shard, answers already cached are reused).

Why not ``ray.data.llm.build_processor``? Its HTTP stage has no response cache and no resume, and
its rows carry no cache key, so a retried or restarted run pays again; it stays the right tool for
a GPU cluster running vLLM in-process. For OpenAI-compatible endpoints this runner uses the
workbench's client in each worker, so cache keys, retries and the run table are identical.

The API key is never shipped to workers: each reads it from its own environment
(``OPENAI_API_KEY``, or the connection's ``api_key_env``). Each worker keeps its responses in the
response cache under the connection's ``data_dir`` on its own machine (SQLite wants a local disk);
on a cluster of several machines, give ``start_ray(shard_dir=...)`` a folder that every node and
the driver share, since the driver reads the shards from there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..columns import RESPONSE_COLUMNS
from ..curation.dedup import MinHashPlan, band_keys, dedup, dedup_texts, find_clusters, mark_clusters
from ..errors import ConfigError, RayJobError, RayUnavailableError
from ..models.client import LLM
from ..models.config import Settings
from ..models.requests import ChatRequest

__all__ = ["RayJobError", "RayUnavailableError", "RunnerOptions", "ray_dedup", "ray_route", "start_ray", "stop_ray"]

INSTALL_HINT = "pip install -e '.[scale]' in the workbench's folder (or: pip install 'ray[data,client]')"


@dataclass
class RunnerOptions:
    """How the Ray runner cuts and runs work: rows a shard, parallel shards, requests in flight a worker."""

    shard_size: int = 500
    workers: int | None = None
    max_concurrency: int | None = None
    shard_dir: Path | None = None


OPTIONS = RunnerOptions()


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailableError(f"the Ray runner needs Ray, which is not installed: {INSTALL_HINT}.") from exc
    return ray


def start_ray(
    address: str | None = None,
    *,
    shard_size: int = 500,
    workers: int | None = None,
    max_concurrency: int | None = None,
    shard_dir: str | Path | None = None,
    **init_options: Any,
) -> dict[str, Any]:
    """Connect to Ray (``address=None``: start a local cluster here) and set how the runner shards work.

    ``workers`` caps the shards run at once (default: Ray's choice, one per CPU);
    ``max_concurrency`` is each worker's requests in flight (default: the connection's);
    ``shard_dir`` is where shards are written (default ``<data_dir>/runs/ray``; on a cluster of
    several machines, a folder every node and the driver share).
    Other keywords go to ``ray.init`` (``num_cpus``, ``object_store_memory``, ``runtime_env``...).
    Returns the cluster's resources.
    """
    ray = _ray()
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(
            f"shard_size is the requests (or rows) a shard holds and must be 1 or more, got {shard_size!r}."
        )
    OPTIONS.shard_size, OPTIONS.workers, OPTIONS.max_concurrency = shard_size, workers, max_concurrency
    OPTIONS.shard_dir = Path(shard_dir) if shard_dir is not None else None
    if not ray.is_initialized():
        init_options.setdefault("include_dashboard", False)
        init_options.setdefault("log_to_driver", False)
        if address is None:
            _start_local(ray, init_options)
        else:
            _connect(ray, address, init_options)
    return ray.cluster_resources()


def _connect(ray: Any, address: str, init_options: dict[str, Any]) -> None:
    try:
        _check_reachable(address)
        ray.init(address=address, **init_options)
    except Exception as exc:  # Ray raises bare Exceptions, ConnectionErrors and RuntimeErrors here
        raise RayUnavailableError(
            f"could not reach a Ray cluster at {address!r} ({type(exc).__name__}: {str(exc)[:200]}). Is the head "
            "node running and the address right (ray://host:10001 for Ray Client, host:6379 on the cluster)? "
            "Or call wb.scale.start_ray() with no address for a local cluster."
        ) from exc


def _start_local(ray: Any, init_options: dict[str, Any], attempts: int = 2) -> None:
    """Start a local cluster; Ray gives its raylet 30 s, which a busy machine can miss, so try twice."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**init_options)
            return
        except Exception as exc:  # "The current node timed out during startup" is a bare Exception
            ray.shutdown()
            if attempt == attempts:
                raise RayUnavailableError(
                    f"Ray could not start a local cluster ({type(exc).__name__}: {str(exc)[:200]}). Is the machine "
                    "short of CPU or memory? Try again, or pass num_cpus=... and object_store_memory=... ."
                ) from exc


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast (a TCP connect) rather than wait out Ray's own minute-long retries."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port or ray://host:port, got {address!r}")
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


def stop_ray() -> None:
    """Disconnect from Ray (and stop the local cluster, if this process started one)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


# --- via="ray" --------------------------------------------------------------------------------------
async def ray_route(
    llm: LLM, requests: list[ChatRequest], *, use_cache: bool, progress: bool, max_concurrency: int
) -> pl.DataFrame:
    """Answer ``requests`` as a Ray Data job over shards; returns the response table in input order."""
    ray = _ray()
    if not ray.is_initialized():
        start_ray(shard_size=OPTIONS.shard_size, workers=OPTIONS.workers, max_concurrency=OPTIONS.max_concurrency)
    unique = list({request.key: request for request in requests}.values())
    folder = _run_folder(llm, unique, OPTIONS.shard_size)
    shards = _shards(unique, OPTIONS.shard_size, folder)
    missing = [shard for shard in shards if not Path(shard["path"]).exists()]
    if missing:
        spec = _spec(llm, use_cache, OPTIONS.max_concurrency or max_concurrency)
        await asyncio.to_thread(_run_shards, ray, missing, spec, progress)
    table = pl.concat([pl.read_parquet(shard["path"]) for shard in shards], how="vertical_relaxed")
    order = pl.DataFrame({"request_id": [request.key for request in requests]})
    return order.join(table.select(list(RESPONSE_COLUMNS)), on="request_id", how="left", maintain_order="left")


def _run_folder(llm: LLM, requests: list[ChatRequest], shard_size: int) -> Path:
    """One folder per (requests, shard size): shard n holds other rows at another size, so sizes never mix."""
    keys = "\n".join(request.key for request in requests)
    digest = hashlib.sha256(f"{shard_size}\n{keys}".encode()).hexdigest()[:16]
    return (OPTIONS.shard_dir or llm.settings.data_dir / "runs" / "ray") / digest


def _shards(requests: list[ChatRequest], size: int, folder: Path) -> list[dict[str, Any]]:
    shards = []
    for number, start in enumerate(range(0, len(requests), size)):
        part = requests[start : start + size]
        items = [{"messages": r.messages, "model": r.model, "sample_index": r.sample_index, **r.params} for r in part]
        shards.append({"shard": number, "path": str(folder / f"shard-{number:05d}.parquet"), "requests": items})
    return shards


def _spec(llm: LLM, use_cache: bool, max_concurrency: int) -> dict[str, Any]:
    """What a worker needs to rebuild the connection: everything but the API key."""
    settings = asdict(replace(llm.settings, api_key=None))
    return {
        "backend": llm.backend,
        "base_url": llm.base_url,
        "model": llm.model,
        "endpoint": llm.endpoint,
        "settings": settings,
        "price": llm._price,
        "use_cache": use_cache,
        "max_concurrency": max_concurrency,
    }


def _run_shards(ray: Any, shards: list[dict[str, Any]], spec: dict[str, Any], progress: bool) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    dataset = ray.data.from_items(shards, override_num_blocks=len(shards))
    done = dataset.map(_ShardTask(spec), concurrency=OPTIONS.workers, num_cpus=1)
    try:
        done.take_all()
    except Exception as exc:  # a shard that failed for good; the finished ones stay on disk
        finished = sum(Path(shard["path"]).exists() for shard in shards)
        raise RayJobError(
            f"the Ray job stopped with {finished} of {len(shards)} shards finished ({type(exc).__name__}: "
            f"{str(exc)[-300:]}). Finished shards are kept in {Path(shards[0]['path']).parent}; run the same call "
            "again to send only the rest."
        ) from exc


class _ShardTask:
    """Answer one shard on a worker and write it as Parquet (to a temporary name, then renamed)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def __call__(self, shard: dict[str, Any]) -> dict[str, Any]:
        path = Path(shard["path"])
        if path.exists():  # finished by an earlier attempt
            return {"shard": shard["shard"], "rows": -1}
        llm = _rebuild(self.spec)
        table = asyncio.run(
            llm.achat_many(
                list(shard["requests"]),
                cache=self.spec["use_cache"],
                progress=False,
                max_concurrency=self.spec["max_concurrency"],
            )
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        table.write_parquet(partial)
        partial.replace(path)
        return {"shard": shard["shard"], "rows": table.height}


def _rebuild(spec: dict[str, Any]) -> LLM:
    values = dict(spec["settings"])
    values["data_dir"] = Path(values["data_dir"])
    settings = Settings(**values)
    key = os.environ.get(settings.api_key_env or "OPENAI_API_KEY") if spec["backend"] != "local" else None
    return LLM(
        backend=spec["backend"],
        base_url=spec["base_url"],
        model=spec["model"],
        endpoint=spec["endpoint"],
        settings=replace(settings, api_key=key),
        price=spec["price"],  # a models.pricing.Price (picklable), or None
    )


# --- dedup ----------------------------------------------------------------------------------------
def ray_dedup(
    frame: pl.DataFrame,
    column: str = "response",
    threshold: float = 0.8,
    *,
    ngram: int = 3,
    num_perm: int = 128,
    score_column: str = "score",
    drop: bool = False,
    shard_rows: int = 50_000,
) -> pl.DataFrame:
    """``wb.dedup`` with its heavy part (shingles, MinHash signatures, band keys) run on Ray workers.

    The same code as ``wb.dedup`` (``curation/dedup.py``), so the same result: the driver normalises
    the texts and finds the exact groups; the workers compute the band keys of ``shard_rows`` texts
    each (``band_keys``); the driver joins rows that share a band, checks each candidate pair's exact
    Jaccard similarity, and marks the clusters. Texts and keys travel through files, not the driver's
    memory: the texts as one Parquet file, each shard's keys as a ``.npy`` file, in a temporary folder
    under ``start_ray(shard_dir=...)`` (which, on a cluster of several machines, every node must share)
    or else the system's temporary folder; the folder is removed afterwards.
    """
    texts = dedup_texts(frame, column)
    plan = MinHashPlan.for_threshold(threshold, ngram, num_perm)
    if not isinstance(shard_rows, int) or shard_rows < 1:
        raise ConfigError(
            f"shard_rows is the texts a worker signs at a time and must be 1 or more, got {shard_rows!r}."
        )
    if frame.height == 0:
        return dedup(frame, column, threshold, ngram=ngram, num_perm=num_perm, score_column=score_column, drop=drop)
    ray = _ray()
    if not ray.is_initialized():
        start_ray()
    clusters = find_clusters(
        texts, threshold, plan, keys_of=lambda kept, plan: _ray_band_keys(ray, kept, plan, shard_rows)
    )
    return mark_clusters(frame, clusters, score_column, drop)


def _ray_band_keys(ray: Any, texts: pl.Series, plan: MinHashPlan, shard_rows: int) -> np.ndarray:
    """``band_keys`` of ``texts``, one Ray Data task a shard of ``shard_rows`` texts, in row order."""
    if OPTIONS.shard_dir is not None:
        OPTIONS.shard_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="dedup-", dir=OPTIONS.shard_dir))
    try:
        source = folder / "texts.parquet"
        texts.to_frame("text").write_parquet(source, row_group_size=shard_rows)
        shards = [
            {"source": str(source), "start": start, "rows": min(shard_rows, texts.len() - start), "out": str(folder)}
            for start in range(0, texts.len(), shard_rows)
        ]
        dataset = ray.data.from_items(shards, override_num_blocks=len(shards))
        dataset.map(_BandKeysTask(plan), num_cpus=1).take_all()
        keys = np.empty((plan.bands, texts.len()), np.uint64)
        for shard in shards:
            keys[:, shard["start"] : shard["start"] + shard["rows"]] = np.load(folder / f"keys-{shard['start']}.npy")
        return keys
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _BandKeysTask:
    """On a worker: the band keys of one shard of normalised texts (``curation.dedup.band_keys``), to a file."""

    def __init__(self, plan: MinHashPlan) -> None:
        self.plan = plan

    def __call__(self, shard: dict[str, Any]) -> dict[str, Any]:
        texts = pl.scan_parquet(shard["source"]).slice(shard["start"], shard["rows"]).collect()["text"]
        out = Path(shard["out"]) / f"keys-{shard['start']}.npy"
        partial = out.with_name(f".{out.name}.{os.getpid()}.part")
        with partial.open("wb") as file:
            np.save(file, band_keys(texts, self.plan, threads=1))
        partial.replace(out)
        return {"start": shard["start"]}
