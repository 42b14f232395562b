"""What model collapse looks like, measured per generation of self-training (``wb.self_train``).

    collapse_measures(samples)        # the answers a model wrote: distinct-n, self-BLEU, length, distinct per item
    answer_entropy(answered)          # its next-token entropy along its greedy answers to a fixed probe set

Recursive training on a model's own output is reported to narrow it: the tails of the distribution vanish and
the outputs repeat one another (Shumailov et al., Nature 2024). Each measure below reads one side of that:

    distinct_1, distinct_2   distinct word n-grams over all of them, across every answer (lower: narrower)
    self_bleu                mean BLEU-4 of each answer against the others (higher: the answers repeat each other)
    answer_words             mean words per answer
    distinct_answers         share of different answers among each item's k samples, averaged (1/k: all alike)
    entropy                  mean next-token entropy (nats) along the greedy answers to the held-out prompts,
                             from the server's top-20 log-probabilities: the probability outside the top 20
                             counts as one more outcome, so this is a lower bound of the true entropy; the
                             probe set is the same for every generation and arm

The text measures come from ``curation.diversity``; the entropy needs only the ``logprobs`` column of a
``chat_many(..., logprobs=True, top_logprobs=20)`` table, which llama.cpp's server (and OpenAI's) fills.
"""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

from ..curation.diversity import distinct_answers, distinct_n, self_bleu

__all__ = ["PROBE_TOP_LOGPROBS", "answer_entropy", "collapse_measures", "token_entropy"]

PROBE_TOP_LOGPROBS = 20  # OpenAI's maximum; llama.cpp's server returns as many


def collapse_measures(samples: pl.DataFrame, column: str = "response", by: str = "item_id") -> dict[str, Any]:
    """The text measures of one model's samples (k answers per item; see the module docstring)."""
    texts = [text for text in samples[column].to_list() if text]
    return {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        "answer_words": sum(len(text.split()) for text in texts) / len(texts) if texts else None,
        "distinct_answers": distinct_answers(samples, by=by, column=column),
    }


def answer_entropy(answered: pl.DataFrame) -> float | None:
    """Mean next-token entropy (nats) over every generated token of the rows' ``logprobs``; None without any."""
    entropies = [
        token_entropy(token["top_logprobs"])
        for text in answered["logprobs"].to_list()
        if text
        for token in json.loads(text)
        if token.get("top_logprobs")
    ]
    return sum(entropies) / len(entropies) if entropies else None


def token_entropy(top_logprobs: list[dict[str, Any]]) -> float:
    """Entropy of one next-token distribution known by its top log-probabilities, the rest lumped as one outcome."""
    probabilities = [math.exp(entry["logprob"]) for entry in top_logprobs]
    rest = max(0.0, 1.0 - sum(probabilities))
    return -sum(p * math.log(p) for p in [*probabilities, rest] if p > 0)
