"""Diversity of a set of texts, overall or per round / per group.

    wb.diversity(history, by="round")        # one row per round, one column per metric

Metrics (higher means more diverse unless noted):

- ``distinct_1``, ``distinct_2``: distinct word n-grams over all n-grams (Li et al. 2016).
- ``unique_3gram_ratio``: share of the distinct 3-grams that occur only once in the group.
- ``compression_ratio``: raw bytes over gzip-compressed bytes of the group's texts joined; *lower*
  is more diverse (repetitive text compresses well; Shaib et al. 2024).
- ``mean_pairwise_jaccard``: mean Jaccard similarity of word sets over up to ``pairs`` sampled pairs;
  *lower* is more diverse.
- ``embedding_spread``: mean cosine distance to the centroid of the texts' embeddings, when
  ``embeddings=`` names a connection whose endpoint serves ``/v1/embeddings`` (``llm.embed``: cached,
  retried and costed like every call); otherwise the column is null and a message says why.

Collapse measures, for a model's answers over generations of self-training (``wb.self_train``):

- ``self_bleu(texts)``: mean BLEU-4 of each text against all the others (Zhu et al. 2018, Texygen); *higher*
  means the texts repeat each other.
- ``distinct_answers(frame, by="item_id")``: the share of different answers among each item's answers,
  averaged over items (1: every sample of an item differs; 1/k: all k the same).
"""

from __future__ import annotations

import gzip
import math
import random
import warnings
from collections import Counter
from typing import Any

import numpy as np
import polars as pl

from ..errors import InputError, check_counts, check_type
from .dedup import normalise
from .similarity import words

__all__ = [
    "compression_ratio",
    "distinct_answers",
    "distinct_n",
    "diversity",
    "embedding_spread",
    "mean_pairwise_jaccard",
    "self_bleu",
]


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams (0 when there are none)."""
    grams = [tuple(tokens[i : i + n]) for tokens in map(words, texts) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def unique_ngram_ratio(texts: list[str], n: int = 3) -> float:
    """Share of the distinct n-grams that occur exactly once."""
    counts: dict[tuple[str, ...], int] = {}
    for tokens in map(words, texts):
        for i in range(len(tokens) - n + 1):
            gram = tuple(tokens[i : i + n])
            counts[gram] = counts.get(gram, 0) + 1
    return sum(count == 1 for count in counts.values()) / len(counts) if counts else 0.0


def compression_ratio(texts: list[str]) -> float:
    """Raw over gzip-compressed size of the texts joined by newlines (lower is more diverse)."""
    raw = "\n".join(texts).encode()
    return len(raw) / len(gzip.compress(raw, compresslevel=9)) if raw else 0.0


def mean_pairwise_jaccard(texts: list[str], pairs: int = 2000, seed: int = 0) -> float | None:
    """Mean Jaccard similarity of the word sets of up to ``pairs`` random pairs (None with < 2 texts)."""
    sets = [set(words(text)) for text in texts]
    if len(sets) < 2:
        return None
    rng = random.Random(seed)
    total = len(sets) * (len(sets) - 1) // 2
    if total <= pairs:
        chosen = [(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))]
    else:
        chosen = [tuple(rng.sample(range(len(sets)), 2)) for _ in range(pairs)]
    scores = [len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if sets[i] | sets[j] else 1.0 for i, j in chosen]
    return sum(scores) / len(scores)


def embedding_spread(llm: Any, texts: list[str], model: str | None = None) -> float:
    """Mean cosine distance of the texts' embeddings to their centroid.

    The embeddings come from ``llm.embed`` (cached, retried, costed like every model call); this does
    only the maths. InputError when a text could not be embedded (the first error is named).
    """
    table = llm.embed(texts, model=model, progress=False)
    failed = table.filter(pl.col("error").is_not_null())
    if failed.height:
        raise InputError(f"{failed.height} of {table.height} texts got no embedding: {failed['error'][0]}")
    vectors = np.array(table["embedding"].to_list(), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    return float(np.mean(1.0 - vectors @ centre))


def diversity(
    frame: pl.DataFrame,
    column: str = "response",
    by: str | None = None,
    *,
    embeddings: Any = None,
    embedding_model: str | None = None,
    pairs: int = 2000,
) -> pl.DataFrame:
    """The diversity metrics of ``column``, one row per value of ``by`` (or one row overall)."""
    check_type(frame, pl.DataFrame, "diversity's frame", "a polars DataFrame")
    check_counts(pairs=pairs)
    if column not in frame.columns:
        raise InputError(f"the frame has no column {column!r} (its columns: {', '.join(frame.columns)}).")
    if by is not None and by not in frame.columns:
        raise InputError(f"the frame has no column {by!r} to group by.")
    if frame.height == 0:
        raise InputError("the frame is empty: there is no text to measure.")
    groups = frame.group_by(by, maintain_order=True) if by else [((None,), frame)]
    rows, skipped = [], None
    for key, part in groups:
        texts = [text for text in part[column].to_list() if text]
        row = {by: key[0]} if by else {}
        row.update(_metrics(texts, pairs))
        spread, skipped = _spread(embeddings, texts, embedding_model, skipped)
        row["embedding_spread"] = spread
        rows.append(row)
    if skipped:
        warnings.warn(f"embedding_spread skipped: {skipped}", stacklevel=2)
    table = pl.DataFrame(rows, infer_schema_length=None)
    return table.sort(by) if by else table


def _metrics(texts: list[str], pairs: int) -> dict[str, Any]:
    return {
        "texts": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "unique_3gram_ratio": unique_ngram_ratio(texts, 3),
        "compression_ratio": compression_ratio(texts),
        "mean_pairwise_jaccard": mean_pairwise_jaccard(texts, pairs),
    }


def _spread(llm: Any, texts: list[str], model: str | None, skipped: str | None) -> tuple[float | None, str | None]:
    if llm is None:
        return None, skipped
    if skipped or len(texts) < 2:
        return None, skipped
    try:
        return embedding_spread(llm, texts, model), None
    except Exception as exc:  # an endpoint without embeddings: say so once, keep the other metrics
        return None, f"{llm.base_url} does not serve embeddings ({type(exc).__name__}: {str(exc)[:120]})"


def self_bleu(texts: list[str], n: int = 4, sample: int = 200, seed: int = 0) -> float | None:
    """Mean BLEU-``n`` of each text against all the others as references (Zhu et al. 2018); higher = less diverse.

    BLEU as Papineni et al. 2002 define it for one hypothesis and many references, on word tokens: the geometric
    mean of the clipped 1- to n-gram precisions (uniform weights) times the brevity penalty against the
    reference closest in length. A precision with no match counts 0.1 over its n-grams, and a text with no
    matching word scores 0 (nltk's ``sentence_bleu`` with smoothing method 1, as Texygen scores it). Up to
    ``sample`` texts are scored (drawn with ``seed``), each against all the others. None with fewer than 2 texts.
    """
    tokens = [words(text) for text in texts if text]
    if len(tokens) < 2:
        return None
    chosen = range(len(tokens)) if len(tokens) <= sample else random.Random(seed).sample(range(len(tokens)), sample)
    scores = [_bleu(tokens[i], tokens[:i] + tokens[i + 1 :], n) for i in chosen]
    return sum(scores) / len(scores)


def _bleu(hypothesis: list[str], references: list[list[str]], n: int) -> float:
    if not hypothesis:
        return 0.0
    logs = []
    for order in range(1, n + 1):
        grams = Counter(tuple(hypothesis[i : i + order]) for i in range(len(hypothesis) - order + 1))
        most: Counter = Counter()
        for reference in references:
            for gram, count in Counter(
                tuple(reference[i : i + order]) for i in range(len(reference) - order + 1)
            ).items():
                most[gram] = max(most[gram], count)
        matched, total = sum(min(count, most[gram]) for gram, count in grams.items()), max(1, sum(grams.values()))
        if order == 1 and matched == 0:
            return 0.0
        logs.append(math.log((matched or 0.1) / total))
    closest = min(
        (len(reference) for reference in references), key=lambda length: (abs(length - len(hypothesis)), length)
    )
    penalty = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return penalty * math.exp(sum(logs) / n)


def distinct_answers(frame: pl.DataFrame, by: str = "item_id", column: str = "response") -> float | None:
    """The share of different answers among each ``by`` group's answers (compared as ``wb.dedup`` compares:
    case, punctuation and spacing ignored), averaged over groups; None when no group has an answer."""
    for name in (by, column):
        if name not in frame.columns:
            raise InputError(f"the frame has no column {name!r} (its columns: {', '.join(frame.columns)}).")
    shares = [
        len({normalise(text) for text in texts}) / len(texts)
        for texts in frame.filter(pl.col(column).is_not_null()).group_by(by).agg(pl.col(column))[column].to_list()
        if texts
    ]
    return sum(shares) / len(shares) if shares else None
