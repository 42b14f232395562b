"""What training costs and what serving the result costs, on the embedded model, side by side in one run.

For LoRA and for a full fine-tune, each by SFT and by DPO (each in its own process, so that peak memory is its
own): training tokens/s and peak resident memory on the same rows (one-digit sums; SFT learns the sum, DPO
prefers it to the sum plus one: the same prompts, one row or one pair each). DPO reads two answers per row, and
scores the reference once before training (``prepare_s``, not in ``train_s``). Then the two ways to serve the LoRA
on the same llama.cpp server code, beside the base model (Q4_1): merged into the weights and written as
Q8_0 (what ``wb.finetune`` returns), and the adapter (f16 GGUF) applied over the Q4_1 base with
``llama-server --lora``. For each: completion tokens/s over concurrent requests (uncached; two rounds in
opposite orders), and exact answers on all 81 one-digit sums at temperature 0 (trained on the first
``--rows``; the rest never seen).

    python bench/train.py [--rows 64] [--epochs 1] [--requests 32] [--methods sft,dpo]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import workbench as wb  # noqa: E402
from workbench.training.convert import convert_adapter_to_gguf  # noqa: E402

PAIRS = [(a, b) for a in range(1, 10) for b in range(1, 10)]

TRAIN_ONE = """
import json, sys, polars as pl, workbench as wb
pairs, epochs, mode, method, data_dir = json.loads(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
asked = [f"What is {a} + {b}?" for a, b in pairs]
if method == "dpo":
    frame = pl.DataFrame({"prompt": asked, "chosen": [str(a + b) for a, b in pairs],
                          "rejected": [str(a + b + 1) for a, b in pairs]})
else:
    frame = pl.DataFrame({"task": asked, "response": [str(a + b) for a, b in pairs]})
tuned = wb.finetune(frame, method=method, mode=mode, epochs=epochs, data_dir=data_dir, progress=False)
print(json.dumps({"path": str(tuned.path), "adapter": str(tuned.adapter), **tuned.stats}))
"""


def train(mode: str, method: str, rows: int, epochs: int, data_dir: Path) -> dict:
    command = [sys.executable, "-c", TRAIN_ONE, json.dumps(PAIRS[:rows]), str(epochs), mode, method, str(data_dir)]
    # Both modes on the same threads: left to the machine's load, the second run could count the first and take one.
    env = {**os.environ, "WORKBENCH_TRAIN_THREADS": os.environ.get("WORKBENCH_TRAIN_THREADS", str(os.cpu_count()))}
    env["PYTHONPATH"] = str(REPO)  # this copy of the package, wherever the venv installed one
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def serving_speed(llm: wb.LLM, requests: int) -> dict:
    prompts = [f"Write a short story about a {animal}." for animal in ["cat", "dog", "fox", "owl"]] * (requests // 4)
    started = time.perf_counter()
    table = llm.chat_many(prompts, temperature=0.8, max_tokens=96, cache=False, progress=False, max_concurrency=8)
    seconds = time.perf_counter() - started
    tokens = int(table["tokens_out"].sum())
    return {"completion_tokens": tokens, "seconds": round(seconds, 1), "tokens_per_s": round(tokens / seconds, 1)}


def exact_answers(llm: wb.LLM, rows: int) -> dict:
    """Replies that are exactly the sum, on the trained pairs and on the pairs never trained on."""
    table = llm.chat_many([f"What is {a} + {b}?" for a, b in PAIRS], temperature=0.0, max_tokens=8, progress=False)
    right = [(reply or "").strip() == str(a + b) for reply, (a, b) in zip(table["response"], PAIRS, strict=True)]
    return {"trained_right": f"{sum(right[:rows])}/{rows}", "unseen_right": f"{sum(right[rows:])}/{len(PAIRS) - rows}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--methods", default="sft,dpo", help="training methods, side by side")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    methods = args.methods.split(",")
    trained = {
        (mode, method): train(mode, method, args.rows, args.epochs, data_dir)
        for mode in ("lora", "full")
        for method in methods
    }
    rows = [
        {
            "mode": mode,
            "method": method,
            "rows": stats["rows"],
            "tokens": stats["tokens"],
            "train_s": stats["seconds_training"],
            "train_tokens_per_s": stats["tokens_per_s"],
            "rows_per_s": round(stats["rows"] * args.epochs / stats["seconds_training"], 2),
            "prepare_s": stats.get("seconds_prepare"),
            "peak_memory_gb": stats["peak_memory_gb"],
            "total_s": stats["seconds_total"],
            "threads": stats["threads"],
        }
        for (mode, method), stats in trained.items()
    ]
    print(pl.DataFrame(rows))
    print(f"load average after training: {os.getloadavg()[0]:.1f}")
    _ratios(rows, methods)
    adapter = convert_adapter_to_gguf(Path(trained[("lora", "sft")]["adapter"]), data_dir / "adapter.f16.gguf")
    servers = {
        "base (Q4_1)": wb.connect(data_dir=data_dir),
        "LoRA merged (Q8_0)": wb.connect(local_model=trained[("lora", "sft")]["path"], data_dir=data_dir),
        "LoRA adapter over base (f16 --lora)": wb.connect(lora=adapter, data_dir=data_dir),
    }
    speeds: dict[str, list[float]] = {name: [] for name in servers}
    for order in (list(servers), list(servers)[::-1]):
        for name in order:
            speeds[name].append(serving_speed(servers[name], args.requests)["tokens_per_s"])
    served = []
    for name, llm in servers.items():
        runs = speeds[name]
        mean = round(sum(runs) / len(runs), 1)
        served.append({"model": name, "tokens_per_s": mean, "runs": runs, **exact_answers(llm, args.rows)})
    print(pl.DataFrame(served))
    base, merged, over = (row["tokens_per_s"] for row in served)
    print(f"serving tokens/s against the base: merged {merged / base:.2f}x, adapter {over / base:.2f}x")


def _ratios(rows: list[dict], methods: list[str]) -> None:
    """LoRA against full (SFT), and DPO against SFT in each mode: the ratios measured side by side."""
    by = {(row["mode"], row["method"]): row for row in rows}
    lora, full = by[("lora", "sft")], by[("full", "sft")]
    print(
        f"LoRA/full training tokens/s: {lora['train_tokens_per_s'] / full['train_tokens_per_s']:.2f}x; "
        f"peak memory {lora['peak_memory_gb']} vs {full['peak_memory_gb']} GB"
    )
    if "dpo" not in methods:
        return
    for mode in ("lora", "full"):
        sft, dpo = by[(mode, "sft")], by[(mode, "dpo")]
        print(
            f"{mode}: DPO/SFT training tokens/s {dpo['train_tokens_per_s'] / sft['train_tokens_per_s']:.2f}x, "
            f"rows/s {dpo['rows_per_s'] / sft['rows_per_s']:.2f}x (a DPO row is a pair: two answers); "
            f"peak memory {dpo['peak_memory_gb']} vs {sft['peak_memory_gb']} GB "
            f"({dpo['peak_memory_gb'] / sft['peak_memory_gb']:.2f}x)"
        )


if __name__ == "__main__":
    main()
