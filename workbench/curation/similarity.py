"""Text similarity helpers shared by the recipes and curation: word tokens, ROUGE-L.

ROUGE-L's F-measure (Lin 2004) of token lists ``a`` and ``b`` with a longest common subsequence of ``L``
tokens: precision ``L / len(b)``, recall ``L / len(a)``, and ``F = 2PR / (P + R) = 2L / (len(a) + len(b))``.
The Indel distance (insertions and deletions only) of the two lists is ``len(a) + len(b) - 2L``, so
``F = 1 - Indel / (len(a) + len(b))`` (rapidfuzz's ``Indel.normalized_similarity``): rapidfuzz computes
it in C++ with a bit-parallel LCS, on token lists as on strings. Here ``L`` is taken from that distance
and ``F`` computed from ``P`` and ``R`` as above, so every score is the same float as the pure-Python LCS
gave (the two closed forms can differ in the last bit). Self-Instruct's pool filter (``most_similar``)
scores a new instruction against the whole pool in one call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Indel

__all__ = ["lcs_length", "most_similar", "rouge_l", "words"]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), as ROUGE's default tokenizer makes them."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    return (len(a) + len(b) - Indel.distance(a, b)) // 2


def rouge_l(reference: str | Sequence[str], candidate: str | Sequence[str]) -> float:
    """ROUGE-L F-measure (Lin 2004) between two texts or token lists, in [0, 1]."""
    a = words(reference) if isinstance(reference, str) else reference
    b = words(candidate) if isinstance(candidate, str) else candidate
    if not a or not b:
        return 0.0
    common = lcs_length(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(b), common / len(a)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=65536)
def _cached_words(text: str) -> tuple[str, ...]:
    return tuple(words(text))


def most_similar(text: str, pool: Iterable[str]) -> tuple[float, str | None]:
    """The highest ROUGE-L between ``text`` and any text of ``pool``, and that text (the first of equals)."""
    tokens = _cached_words(text)
    pool = list(pool)
    if not tokens or not pool:
        return 0.0, None
    others = [_cached_words(other) for other in pool]
    distances = process.cdist([tokens], others, scorer=Indel.distance, dtype=np.int64, workers=1)[0]
    lengths = np.fromiter((len(other) for other in others), np.int64, len(others))
    common = (len(tokens) + lengths - distances) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        precision, recall = common / len(tokens), common / lengths
        scores = np.where(common > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(scores))
    return (float(scores[best]), pool[best]) if scores[best] > 0 else (0.0, None)
