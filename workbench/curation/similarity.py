"""Text similarity helpers shared by the recipes and curation: word tokens, ROUGE-L."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["lcs_length", "most_similar", "rouge_l", "words"]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), as ROUGE's default tokenizer makes them."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


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
    """The highest ROUGE-L between ``text`` and any text of ``pool``, and that text."""
    tokens = _cached_words(text)
    best, match = 0.0, None
    for other in pool:
        score = rouge_l(_cached_words(other), tokens)
        if score > best:
            best, match = score, other
    return best, match
