"""Exact and near-duplicate removal.

    deduped = wb.dedup(graded)                  # marks duplicates: dup_of, dup_cluster, dup_kind
    wb.duplicate_clusters(deduped)              # one row per cluster, to look at

Near duplicates are found with MinHash LSH (Broder 1997; ``datasketch``) over word n-gram shingles:
LSH proposes candidate pairs (banded for recall), and a pair whose exact Jaccard similarity of
shingle sets reaches ``threshold`` joins one cluster (transitively). In
each cluster the best-scored row is kept (the first among equals) and the rest are marked with
``dup_of``. Defaults: ``threshold=0.8``, word 3-gram shingles, 128 permutations.
"""

from __future__ import annotations

import hashlib
import re

import polars as pl
from datasketch import MinHash, MinHashLSH

from ..columns import require_columns
from ..errors import InputError

# check_threshold, shingles and mark_clusters are shared with the Ray runner (``scale/ray_runner.py``), which finds
# the same clusters across shards.
__all__ = ["check_threshold", "dedup", "duplicate_clusters", "mark_clusters", "normalise", "shingles"]

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, white space folded: what "exactly the same" compares."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def check_threshold(threshold: float) -> None:
    """Refuse a similarity threshold outside (0, 1]."""
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
    check_threshold(threshold)
    if frame.height == 0:
        return frame.with_columns(*(pl.lit(None, pl.String).alias(c) for c in ("dup_cluster", "dup_of", "dup_kind")))
    texts = ["" if text is None else normalise(str(text)) for text in frame[column]]
    parents = list(range(len(texts)))
    _union_exact(texts, parents)
    _union_near(texts, parents, threshold, ngram, num_perm)
    return mark_clusters(frame, parents, texts, score_column, drop)


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
    shingled = [shingles(texts[i], ngram) for i in representatives]
    signatures = MinHash.bulk(shingled, num_perm=num_perm)
    # Bands tuned for recall (few false negatives); every candidate pair is then checked exactly.
    index = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
    with index.insertion_session() as session:
        for position, signature in enumerate(signatures):
            session.insert(position, signature, check_duplication=False)
    sets = [set(items) for items in shingled]
    for position, signature in enumerate(signatures):
        for other in index.query(signature):
            if other > position and _jaccard(sets[position], sets[other]) >= threshold:
                _union(parents, representatives[position], representatives[other])


def _jaccard(a: set[bytes], b: set[bytes]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def shingles(text: str, ngram: int) -> list[bytes]:
    """The word ``ngram``-grams of ``text`` (the whole text when it is shorter), as MinHash input."""
    words = text.split()
    if len(words) <= ngram:
        return [text.encode()]
    return [" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)]


def mark_clusters(
    frame: pl.DataFrame, parents: list[int], texts: list[str], score_column: str, drop: bool
) -> pl.DataFrame:
    """Keep the best-scored row of each union-find cluster; mark the rest (or drop them)."""
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
