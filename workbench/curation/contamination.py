"""Contamination: rows that share a long word n-gram with a reference set (a benchmark, a held-out split).

flagged = wb.contamination(deduped, "my_benchmark.jsonl")   # a JSONL file, a list of texts or a frame
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ..columns import require_columns
from ..errors import InputError
from .dedup import normalise

__all__ = ["contamination", "read_reference"]


def read_reference(reference: str | Path | list[str] | pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """Reference items as a frame with ``ref_id`` and ``text``: from a JSONL/Parquet/text file, a list or a frame."""
    if isinstance(reference, pl.DataFrame):
        frame = reference
    elif isinstance(reference, list):
        frame = pl.DataFrame({column: reference})
    else:
        path = Path(reference)
        if not path.is_file():
            raise InputError(f"no reference file at {path}. Give a .jsonl, .parquet or .txt file of benchmark items.")
        frame = _read_reference_file(path)
    if column not in frame.columns:
        raise InputError(f"the reference has no {column!r} column (it has {', '.join(frame.columns)}).")
    if "ref_id" not in frame.columns:
        frame = frame.with_row_index("ref_id").with_columns(pl.col("ref_id").cast(pl.String))
    return frame.select(pl.col("ref_id").cast(pl.String), pl.col(column).cast(pl.String).alias("text"))


def _read_reference_file(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        return pl.DataFrame([json.loads(line) for line in lines])
    return pl.DataFrame({"text": lines})


def contamination(
    frame: pl.DataFrame,
    reference: str | Path | list[str] | pl.DataFrame,
    column: str = "response",
    *,
    n: int = 13,
    reference_column: str = "text",
) -> pl.DataFrame:
    """Flag rows sharing any word ``n``-gram (default 13, as in GPT-3's decontamination) with a reference item.

    Adds ``contaminated`` (bool), ``contaminated_with`` (the first overlapping reference id) and
    ``overlap_ngrams`` (how many of the row's n-grams occur in the reference).
    """
    require_columns(frame, column)
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive whole number, got {n!r}.")
    items = read_reference(reference, reference_column)
    owner: dict[tuple[str, ...], str] = {}
    for ref_id, text in items.iter_rows():
        for gram in _ngrams(text or "", n):
            owner.setdefault(gram, ref_id)
    hits, first = [], []
    for text in frame[column]:
        found = [owner[gram] for gram in _ngrams(text or "", n) if gram in owner]
        hits.append(len(found))
        first.append(found[0] if found else None)
    return frame.with_columns(
        pl.Series("contaminated", [count > 0 for count in hits], dtype=pl.Boolean),
        pl.Series("contaminated_with", first, dtype=pl.String),
        pl.Series("overlap_ngrams", hits, dtype=pl.Int64),
    )


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = normalise(text).split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
