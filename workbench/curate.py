"""Curation: exact and near-duplicate removal, contamination checks, and filters with a report.

    deduped = wb.dedup(graded)                  # marks duplicates: dup_of, dup_cluster, dup_kind
    wb.duplicate_clusters(deduped)              # one row per cluster, to look at
    flagged = wb.contamination(deduped, "data/reference/benchmark_sample.jsonl")
    kept, report = wb.keep(flagged, min_score=4)    # the dataset, and what each filter removed

Near duplicates are found with MinHash LSH (Broder 1997; ``datasketch``) over word n-gram shingles:
LSH proposes candidate pairs (banded for recall), and a pair whose exact Jaccard similarity of
shingle sets reaches ``threshold`` joins one cluster (transitively). In
each cluster the best-scored row is kept (the first among equals) and the rest are marked with
``dup_of``. Defaults: ``threshold=0.8``, word 3-gram shingles, 128 permutations.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
from datasketch import MinHash, MinHashLSH

from ._checks import require_columns
from .errors import InputError

__all__ = ["contamination", "dedup", "duplicate_clusters", "keep", "normalise", "read_reference"]

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, white space folded: what "exactly the same" compares."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise InputError(f"threshold must be in (0, 1], got {threshold!r}.")


def dedup(
    frame: pl.DataFrame,
    column: str = "response",
    threshold: float = 0.8,
    *,
    ngram: int = 3,
    num_perm: int = 128,
    score_column: str = "score",
    drop: bool = False,
) -> pl.DataFrame:
    """Mark exact and near duplicates of ``column``; with ``drop=True`` return only the kept rows.

    Adds ``dup_cluster`` (id of the row kept for the cluster; null for a row with no duplicate),
    ``dup_of`` (the kept row's id, on the rows that duplicate it) and ``dup_kind`` (``exact`` or
    ``near``). Ids are ``sample_id`` when the frame has one, else the row number as text.
    """
    require_columns(frame, column)
    _check_threshold(threshold)
    if frame.height == 0:
        return frame.with_columns(*(pl.lit(None, pl.String).alias(c) for c in ("dup_cluster", "dup_of", "dup_kind")))
    texts = ["" if text is None else normalise(str(text)) for text in frame[column]]
    parents = list(range(len(texts)))
    _union_exact(texts, parents)
    _union_near(texts, parents, threshold, ngram, num_perm)
    return _mark(frame, parents, texts, score_column, drop)


def _find(parents: list[int], item: int) -> int:
    while parents[item] != item:
        parents[item] = parents[parents[item]]
        item = parents[item]
    return item


def _union(parents: list[int], a: int, b: int) -> None:
    root_a, root_b = _find(parents, a), _find(parents, b)
    if root_a != root_b:
        parents[max(root_a, root_b)] = min(root_a, root_b)


def _union_exact(texts: list[str], parents: list[int]) -> None:
    """Join rows with the same normalised text (compared by hash)."""
    first: dict[str, int] = {}
    for index, text in enumerate(texts):
        digest = hashlib.sha1(text.encode()).hexdigest()
        if digest in first:
            _union(parents, first[digest], index)
        else:
            first[digest] = index


def _union_near(texts: list[str], parents: list[int], threshold: float, ngram: int, num_perm: int) -> None:
    representatives = [i for i in range(len(texts)) if _find(parents, i) == i]  # one row per exact group
    shingles = [_shingles(texts[i], ngram) for i in representatives]
    signatures = MinHash.bulk(shingles, num_perm=num_perm)
    # Bands tuned for recall (few false negatives); every candidate pair is then checked exactly.
    index = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
    with index.insertion_session() as session:
        for position, signature in enumerate(signatures):
            session.insert(position, signature, check_duplication=False)
    sets = [set(items) for items in shingles]
    for position, signature in enumerate(signatures):
        for other in index.query(signature):
            if other > position and _jaccard(sets[position], sets[other]) >= threshold:
                _union(parents, representatives[position], representatives[other])


def _jaccard(a: set[bytes], b: set[bytes]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _shingles(text: str, ngram: int) -> list[bytes]:
    words = text.split()
    if len(words) <= ngram:
        return [text.encode()]
    return [" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)]


def _mark(frame: pl.DataFrame, parents: list[int], texts: list[str], score_column: str, drop: bool) -> pl.DataFrame:
    if "sample_id" in frame.columns:
        ids = frame["sample_id"].cast(pl.String).to_list()
    else:
        ids = [str(i) for i in range(frame.height)]
    scores = frame[score_column].to_list() if score_column in frame.columns else [None] * frame.height
    clusters: dict[int, list[int]] = {}
    for index in range(frame.height):
        clusters.setdefault(_find(parents, index), []).append(index)
    cluster_of, dup_of, kind = [None] * frame.height, [None] * frame.height, [None] * frame.height
    for members in clusters.values():
        if len(members) == 1:
            continue
        keeper = max(members, key=lambda i: (scores[i] is not None, scores[i] or 0, -i))
        for member in members:
            cluster_of[member] = ids[keeper]
            if member != keeper:
                dup_of[member] = ids[keeper]
                kind[member] = "exact" if texts[member] == texts[keeper] else "near"
    marked = frame.with_columns(
        pl.Series("dup_cluster", cluster_of, dtype=pl.String),
        pl.Series("dup_of", dup_of, dtype=pl.String),
        pl.Series("dup_kind", kind, dtype=pl.String),
    )
    return marked.filter(pl.col("dup_of").is_null()) if drop else marked


def duplicate_clusters(deduped: pl.DataFrame, column: str = "response") -> pl.DataFrame:
    """One row per duplicate cluster: its kept id, size, and the member texts (kept one first)."""
    require_columns(deduped, "dup_cluster")
    members = deduped.filter(pl.col("dup_cluster").is_not_null()).with_columns(
        pl.col("dup_of").is_null().alias("_kept")
    )
    return (
        members.sort("_kept", descending=True)
        .group_by("dup_cluster", maintain_order=True)
        .agg(pl.len().alias("size"), pl.col(column).alias("texts"), pl.col("dup_kind").drop_nulls().alias("kinds"))
        .sort("size", descending=True)
    )


# --- contamination ---------------------------------------------------------------------------------
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


# --- filters ---------------------------------------------------------------------------------------
def keep(
    frame: pl.DataFrame,
    *,
    min_score: float | None = None,
    drop_errors: bool = True,
    drop_unscored: bool = False,
    drop_duplicates: bool = True,
    drop_contaminated: bool = True,
    where: pl.Expr | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the filters in order; returns (kept rows, a report of rows removed by each filter).

    Filters whose column is absent are skipped (and say so in the report).
    """
    rules: list[tuple[str, str | None, Any]] = [
        ("request errors", "error", pl.col("error").is_null() if drop_errors else None),
        ("unscored", "scored", pl.col("scored").fill_null(False) if drop_unscored else None),
        (
            f"score below {min_score}",
            "score",
            (pl.col("score") >= min_score).fill_null(False) if min_score is not None else None,
        ),
        ("duplicates", "dup_of", pl.col("dup_of").is_null() if drop_duplicates else None),
        ("contaminated", "contaminated", ~pl.col("contaminated").fill_null(False) if drop_contaminated else None),
        ("custom filter", None, where),
    ]
    report = []
    for name, column, rule in rules:
        if rule is None:
            continue
        if column is not None and column not in frame.columns:
            report.append({"filter": name, "removed": 0, "remaining": frame.height, "note": f"skipped: no {column!r}"})
            continue
        before = frame.height
        frame = frame.filter(rule)
        report.append({"filter": name, "removed": before - frame.height, "remaining": frame.height, "note": None})
    schema = {"filter": pl.String, "removed": pl.Int64, "remaining": pl.Int64, "note": pl.String}
    return frame, pl.DataFrame(report, schema=schema)
