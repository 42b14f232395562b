"""Past one kernel: rows per second for generate in the kernel and on Ray, and dedup on a million rows.

Two measurements, side by side in one run:

1. ``wb.generate`` over ``--rows`` rows against the fake chat server (its own process, 50 ms latency a
   request), each run on an empty cache: the single-kernel path, then ``via="ray"`` on a local Ray
   cluster with 1 and with 2 workers (every worker, like the kernel, keeps ``--concurrency``
   requests in flight).
2. ``wb.dedup`` (one process) and ``wb.scale.ray_dedup`` (the same code, with shingles, MinHash and band
   keys on 2 Ray workers) on ``--dedup-rows`` rows of about 50 words, 5% of them planted near duplicates:
   wall time and the peak resident memory of the process that ran it (for Ray: the driver), each in a
   fresh subprocess. ``bench/dedup.py`` compares the implementations and measures recall.

    python bench/scale.py [--rows 4000] [--concurrency 16] [--dedup-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dedup import peak_mb  # noqa: E402  (bench/dedup.py: VmHWM, the peak since exec)

import workbench as wb  # noqa: E402
import workbench.scale as scale  # noqa: E402

PROMPT = wb.Prompt("Write a {{level}} problem about {{topic}}.")
RAY_OPTIONS = {"num_cpus": 2, "object_store_memory": 500 * 1024 * 1024}


def start_fake_server(latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = process.stdout.readline().split()[1]
    return process, f"http://127.0.0.1:{port}/v1"


def generate_rate(base_url: str, rows: int, concurrency: int, via: str | None) -> float:
    """Rows per second of one generate run on an empty cache."""
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        llm = wb.connect(base_url=base_url, model="fake-model", data_dir=folder, max_concurrency=concurrency)
        grid = pl.DataFrame({"topic": [f"topic {i}" for i in range(rows // 2)]}).join(
            pl.DataFrame({"level": ["easy", "hard"]}), how="cross"
        )
        started = time.perf_counter()
        table = wb.generate(llm, PROMPT, grid, progress=False, via=via)
        elapsed = time.perf_counter() - started
        assert table.height == rows and table["error"].null_count() == rows
        return rows / elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dedup_child(kind: str, path: str) -> None:
    """Run one dedup in this (fresh) process; print its time, peak memory and what it found, as JSON."""
    frame = pl.read_parquet(path)
    if kind == "ray":
        scale.start_ray(**RAY_OPTIONS)
    started = time.perf_counter()
    marked = scale.ray_dedup(frame) if kind == "ray" else wb.dedup(frame)
    elapsed = time.perf_counter() - started
    if kind == "ray":
        scale.stop_ray()
    peak = peak_mb()
    duplicates = marked["dup_of"].is_not_null().sum()
    digest = pl.Series(marked["dup_of"].fill_null("")).hash().sum()
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, "duplicates": int(duplicates), "digest": int(digest)}))


def dedup_run(kind: str, path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--dedup-child", kind, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--dedup-rows", type=int, default=1_000_000)
    parser.add_argument("--dedup-child", nargs=2, metavar=("KIND", "PARQUET"))
    parser.add_argument("--skip-generate", action="store_true", help="only the dedup part")
    args = parser.parse_args()
    if args.dedup_child:
        dedup_child(*args.dedup_child)
        return

    if not args.skip_generate:
        generate_part(args)
    dedup_part(args.dedup_rows)


def generate_part(args: argparse.Namespace) -> None:
    server, base_url = start_fake_server(args.latency)
    try:
        print(
            f"generate, {args.rows} rows, fake server at {args.latency * 1000:.0f} ms a request, "
            f"{args.concurrency} requests in flight per process"
        )
        kernel = generate_rate(base_url, args.rows, args.concurrency, None)
        print(f"  single kernel        {kernel:8.1f} rows/s   1.00x")
        scale.start_ray(**RAY_OPTIONS, shard_size=max(1, args.rows // 8))
        for workers in (1, 2):
            scale.start_ray(shard_size=8, workers=workers)
            generate_rate(base_url, 16 * workers, args.concurrency, "ray")  # start every worker before timing
            scale.start_ray(shard_size=max(1, args.rows // 8), workers=workers)
            rate = generate_rate(base_url, args.rows, args.concurrency, "ray")
            print(
                f"  Ray, {workers} worker{'s' if workers > 1 else ' '}       {rate:8.1f} rows/s   {rate / kernel:.2f}x"
            )
        scale.stop_ray()
    finally:
        server.terminate()
        server.wait()


def dedup_part(rows: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        path = folder / "corpus.parquet"
        recipe = [sys.executable, str(ROOT / "bench" / "dedup.py"), "--corpus", str(rows), str(path)]
        subprocess.run(recipe, check=True)  # bench/dedup.py's corpus, built in its own process
        print(f"dedup, {rows:,} rows of 45-55 words, 5% planted near duplicates")
        results = {kind: dedup_run(kind, path) for kind in ("kernel", "ray")}
        for kind, label in (("kernel", "wb.dedup, one process"), ("ray", "ray_dedup, 2 workers ")):
            result = results[kind]
            if "error" in result:
                print(f"  {label}  failed: {result['error']}")
            else:
                print(
                    f"  {label}  {result['seconds']:8.1f} s   {rows / result['seconds']:8,.0f} rows/s   "
                    f"peak {result['peak_mb']:8,.0f} MB (this process)   {result['duplicates']:,} marked"
                )
        if all("digest" in result for result in results.values()):
            print(f"  same duplicates marked: {results['kernel']['digest'] == results['ray']['digest']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
