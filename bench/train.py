"""What training costs and what serving the result costs, on the embedded model, side by side in one run.

For LoRA and for a full fine-tune (each in its own process, so that peak memory is its own): training
tokens/s and peak resident memory on the same rows (one-digit sums), then the serving speed of the tuned
(merged, Q8_0) model beside the base model's (Q4_1): completion tokens/s over concurrent requests on the
same llama.cpp server code, uncached.

    python bench/train.py [--rows 64] [--epochs 1] [--requests 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402

TRAIN_ONE = """
import json, sys, polars as pl, workbench as wb
rows, epochs, mode, data_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)][:rows]
frame = pl.DataFrame({"task": [f"What is {a} + {b}?" for a, b in pairs], "response": [str(a + b) for a, b in pairs]})
tuned = wb.finetune(frame, mode=mode, epochs=epochs, data_dir=data_dir, progress=False)
print(json.dumps({"path": str(tuned.path), **tuned.stats}))
"""


def train(mode: str, rows: int, epochs: int, data_dir: Path) -> dict:
    command = [sys.executable, "-c", TRAIN_ONE, str(rows), str(epochs), mode, str(data_dir)]
    # Both modes on the same threads: left to the load average, the second run saw the first's load and took one.
    env = {**os.environ, "WORKBENCH_TRAIN_THREADS": os.environ.get("WORKBENCH_TRAIN_THREADS", str(os.cpu_count()))}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def serving_speed(llm: wb.LLM, requests: int) -> dict:
    prompts = [f"Write a short story about a {animal}." for animal in ["cat", "dog", "fox", "owl"]] * (requests // 4)
    started = time.perf_counter()
    table = llm.chat_many(prompts, temperature=0.8, max_tokens=96, cache=False, progress=False, max_concurrency=8)
    seconds = time.perf_counter() - started
    tokens = int(table["tokens_out"].sum())
    return {"completion_tokens": tokens, "seconds": round(seconds, 1), "tokens_per_s": round(tokens / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--requests", type=int, default=32)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    trained = {mode: train(mode, args.rows, args.epochs, data_dir) for mode in ("lora", "full")}
    rows = [
        {
            "mode": mode,
            "rows": stats["rows"],
            "tokens": stats["tokens"],
            "train_s": stats["seconds_training"],
            "train_tokens_per_s": stats["tokens_per_s"],
            "peak_memory_gb": stats["peak_memory_gb"],
            "total_s": stats["seconds_total"],
            "threads": stats["threads"],
        }
        for mode, stats in trained.items()
    ]
    print(pl.DataFrame(rows))
    base = serving_speed(wb.connect(data_dir=data_dir), args.requests)
    tuned = serving_speed(wb.connect(local_model=trained["lora"]["path"], data_dir=data_dir), args.requests)
    print(pl.DataFrame([{"model": "base (Q4_1)", **base}, {"model": "LoRA merged (Q8_0)", **tuned}]))
    lora, full = rows
    print(
        f"LoRA/full training tokens/s: {lora['train_tokens_per_s'] / full['train_tokens_per_s']:.2f}x; "
        f"peak memory {lora['peak_memory_gb']} vs {full['peak_memory_gb']} GB"
    )
    print(f"tuned/base serving tokens/s: {tuned['tokens_per_s'] / base['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
