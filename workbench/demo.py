"""The main job of ``make demo``: generate a handful of samples, grade them, print a summary.

    python -m workbench.demo                 # on the embedded local model, no key
    python -m workbench.demo --backend openai --model gpt-4.1-mini

It writes the run table to ``data/runs/demo-<time>.parquet`` and prints where.
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl

from .client import LLM
from .connect import connect

TOPICS = ["apples", "trains", "a bakery", "a school trip", "marbles", "a garden"]
GENERATE = "Write one short math word problem about {topic} for a child, then give its answer."
GRADE = (
    "Rate this math word problem from 1 (unsolvable or wrong answer) to 5 (clear, solvable, correct "
    "answer). Reply in JSON with a short reason and the score.\n\n{sample}"
)
GRADE_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
    "required": ["reason", "score"],
}


def generate(llm: LLM) -> pl.DataFrame:
    requests = [[{"role": "user", "content": GENERATE.format(topic=topic)}] for topic in TOPICS]
    table = llm.chat_many(requests, temperature=0.8, max_tokens=120)
    return table.with_columns(pl.Series("topic", TOPICS), pl.lit(0).alias("round"))


def grade(llm: LLM, samples: pl.DataFrame) -> pl.DataFrame:
    requests = [[{"role": "user", "content": GRADE.format(sample=text or "")}] for text in samples["response"]]
    grades = llm.chat_many(requests, temperature=0.0, max_tokens=120, response_format=llm.json_format(GRADE_SCHEMA))
    parsed = [_parse_grade(text) for text in grades["response"]]
    return samples.with_columns(
        pl.Series("score", [score for score, _ in parsed], dtype=pl.Int64),
        pl.Series("grade_error", [problem for _, problem in parsed], dtype=pl.String),
        grade_tokens=grades["tokens_in"] + grades["tokens_out"],
    )


def _parse_grade(text: str | None) -> tuple[int | None, str | None]:
    try:
        score = json.loads(text or "")["score"]
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"unparseable grade: {type(exc).__name__}"
    if not isinstance(score, int) or not 1 <= score <= 5:
        return None, f"score out of range: {score!r}"
    return score, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    llm = connect(args.backend, model=args.model)
    print(f"connected: {llm}")
    table = grade(llm, generate(llm))
    runs = llm.settings.data_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.parquet"
    table.write_parquet(path)
    with pl.Config(fmt_str_lengths=70, tbl_rows=20, tbl_width_chars=140):
        print(table.select("topic", pl.col("response").str.replace_all("\n", " "), "score", "grade_error", "cached"))
    scored = table["score"].drop_nulls()
    print(
        f"{table.height} samples, {scored.len()} scored, mean score {scored.mean() or 0:.2f}, "
        f"{int(table['tokens_out'].sum())} tokens generated, {time.perf_counter() - started:.1f}s"
    )
    print(f"run table: {path}")


if __name__ == "__main__":
    main()
