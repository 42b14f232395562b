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
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import RESPONSE_COLUMNS, require_columns
from ..curation.dedup import check_threshold, mark_clusters, normalise, shingles
from ..errors import ConfigError, RayJobError, RayUnavailableError
from ..models.client import LLM
from ..models.config import Settings
from ..models.requests import ChatRequest

__all__ = ["RayJobError", "RayUnavailableError", "RunnerOptions", "ray_dedup", "ray_route", "start_ray", "stop_ray"]

INSTALL_HINT = "pip install 'workbench[scale]' (or: pip install 'ray[data]')"


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
    folder = _run_folder(llm, unique)
    shards = _shards(unique, OPTIONS.shard_size, folder)
    missing = [shard for shard in shards if not Path(shard["path"]).exists()]
    if missing:
        spec = _spec(llm, use_cache, OPTIONS.max_concurrency or max_concurrency)
        await asyncio.to_thread(_run_shards, ray, missing, spec, progress)
    table = pl.concat([pl.read_parquet(shard["path"]) for shard in shards], how="vertical_relaxed")
    order = pl.DataFrame({"request_id": [request.key for request in requests]})
    return order.join(table.select(list(RESPONSE_COLUMNS)), on="request_id", how="left", maintain_order="left")


def _run_folder(llm: LLM, requests: list[ChatRequest]) -> Path:
    digest = hashlib.sha256("\n".join(request.key for request in requests).encode()).hexdigest()[:16]
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
        price=tuple(spec["price"]) if spec["price"] is not None else None,
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
    shard_rows: int = 20_000,
) -> pl.DataFrame:
    """``wb.dedup`` with its heavy part (shingles and MinHash signatures) run on Ray workers.

    The same result as ``wb.dedup(frame, ...)``: workers compute each row's normalised text, its
    shingle hashes and LSH band keys (the bands ``datasketch``'s ``MinHashLSH`` would use); the
    driver joins rows that share a band (candidate pairs, a polars self-join), checks each pair's
    exact Jaccard similarity, and marks clusters exactly as ``wb.dedup`` does.
    """
    require_columns(frame, column)
    check_threshold(threshold)
    if frame.height == 0:
        return frame.with_columns(*(pl.lit(None, pl.String).alias(c) for c in ("dup_cluster", "dup_of", "dup_kind")))
    ray = _ray()
    if not ray.is_initialized():
        start_ray()
    texts = ["" if text is None else str(text) for text in frame[column]]
    features = _features(ray, texts, threshold, ngram, num_perm, shard_rows)
    parents = list(range(frame.height))
    _union_pairs(parents, _exact_pairs(features))
    _union_pairs(parents, _near_pairs(features, threshold))
    return mark_clusters(frame, parents, features["text"].to_list(), score_column, drop)


def _features(ray: Any, texts: list[str], threshold: float, ngram: int, num_perm: int, shard_rows: int) -> pl.DataFrame:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
    ranges = list(lsh.hashranges)
    items = [{"start": start, "texts": texts[start : start + shard_rows]} for start in range(0, len(texts), shard_rows)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    task = _FeatureTask(ngram, num_perm, ranges)
    parts = dataset.map(task, num_cpus=1).take_all()
    frames = [pl.read_ipc(part["ipc"]) for part in sorted(parts, key=lambda part: part["start"])]
    return pl.concat(frames)


class _FeatureTask:
    """Per row: normalised text, its SHA-1, sorted shingle hashes and LSH band keys."""

    def __init__(self, ngram: int, num_perm: int, ranges: list[tuple[int, int]]) -> None:
        self.ngram, self.num_perm, self.ranges = ngram, num_perm, ranges

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        import io

        from datasketch import MinHash

        texts = [normalise(text) for text in item["texts"]]
        shingled = [shingles(text, self.ngram) for text in texts]
        signatures = MinHash.bulk(shingled, num_perm=self.num_perm)
        frame = pl.DataFrame(
            {
                "row": range(item["start"], item["start"] + len(texts)),
                "text": texts,
                "digest": [hashlib.sha1(text.encode()).hexdigest() for text in texts],
                "shingles": [sorted({_hash64(s) for s in group}) for group in shingled],
                "bands": [[_band_key(sig.hashvalues[a:b]) for a, b in self.ranges] for sig in signatures],
            },
            schema={
                "row": pl.Int64,
                "text": pl.String,
                "digest": pl.String,
                "shingles": pl.List(pl.UInt64),
                "bands": pl.List(pl.UInt64),
            },
        )
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        return {"start": item["start"], "ipc": buffer.getvalue()}


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _band_key(values: Any) -> int:
    return _hash64(values.byteswap().tobytes())


def _exact_pairs(features: pl.DataFrame) -> pl.DataFrame:
    """(a, b): every row joined to the first row with the same normalised text."""
    first = features.group_by("digest").agg(pl.col("row").min().alias("a"))
    return features.join(first, on="digest").filter(pl.col("row") != pl.col("a")).select("a", b=pl.col("row"))


def _near_pairs(features: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Pairs of exact-group representatives that share an LSH band and reach ``threshold`` (exact Jaccard)."""
    first = features.group_by("digest").agg(pl.col("row").min())
    representatives = features.join(first, on=["digest", "row"], how="semi")
    bands = representatives.select("row", pl.col("bands")).with_columns(band=pl.int_ranges(pl.col("bands").list.len()))
    bands = bands.explode(["bands", "band"])
    candidates = (
        bands.join(bands, on=["band", "bands"], suffix="_b")
        .filter(pl.col("row") < pl.col("row_b"))
        .select(a="row", b="row_b")
        .unique()
    )
    sets = representatives.select("row", "shingles")
    scored = candidates.join(sets.rename({"row": "a", "shingles": "sa"}), on="a").join(
        sets.rename({"row": "b", "shingles": "sb"}), on="b"
    )
    inter = pl.col("sa").list.set_intersection("sb").list.len()
    union = pl.col("sa").list.set_union("sb").list.len()
    return scored.filter(pl.when(union > 0).then(inter / union).otherwise(1.0) >= threshold).select("a", "b")


def _union_pairs(parents: list[int], pairs: pl.DataFrame) -> None:
    for a, b in pairs.iter_rows():
        root_a, root_b = _root(parents, a), _root(parents, b)
        if root_a != root_b:
            parents[max(root_a, root_b)] = min(root_a, root_b)


def _root(parents: list[int], item: int) -> int:
    while parents[item] != item:
        parents[item] = parents[parents[item]]
        item = parents[item]
    return item
