"""A short script version of the main job: generate a handful of samples, grade them, summarise.

    python -m workbench.demo                 # on the embedded local model, no key
    python -m workbench.demo --backend openai --model gpt-4.1-mini

It writes the run table to ``data/runs/demo-<time>.parquet`` and prints where.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from .generation.generate import generate
from .generation.grids import grid
from .generation.prompts import Prompt
from .grading.grade import grade
from .grading.rubrics import Rubric
from .models.connect import connect

PROMPT = Prompt("Write one short math word problem about {{topic}} for a child, then give its answer.")
TOPICS = ["apples", "trains", "a bakery", "a school trip", "marbles", "a garden"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    llm = connect(args.backend, model=args.model)
    print(f"connected: {llm}")
    samples = generate(llm, PROMPT, grid(topic=TOPICS), temperature=0.8, max_tokens=120)
    graded = grade(llm, samples, Rubric.load("math_word_problem"))
    runs = llm.settings.data_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.parquet"
    graded.write_parquet(path)
    with pl.Config(fmt_str_lengths=70, tbl_rows=20, tbl_width_chars=140):
        print(graded.select("topic", pl.col("response").str.replace_all("\n", " "), "score", "unscored_reason"))
    scored = graded.filter("scored")
    print(
        f"{graded.height} samples, {scored.height} scored, mean score {scored['score'].mean() or 0:.2f}, "
        f"{int(graded['tokens_out'].sum())} tokens generated, {int(graded['cached'].sum())} from cache, "
        f"{time.perf_counter() - started:.1f}s"
    )
    print(f"run table: {path}")


if __name__ == "__main__":
    main()
