"""ROUGE-L by rapidfuzz's Indel distance: the very scores of the textbook LCS, and the same pool-filter picks."""

from __future__ import annotations

import random

from workbench.curation.similarity import lcs_length, most_similar, rouge_l, words


def textbook_rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 from a dynamic-programming LCS (Lin 2004), as the workbench computed it before."""
    if not a or not b:
        return 0.0
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, start=1):
        for j, y in enumerate(b, start=1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    common = table[-1][-1]
    if common == 0:
        return 0.0
    precision, recall = common / len(b), common / len(a)
    return 2 * precision * recall / (precision + recall)


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocabulary = [f"t{i}" for i in range(12)] + ["the", "a", "of"]
    return [" ".join(rng.choices(vocabulary, k=rng.randint(0, 25))) for _ in range(count)]


def test_rouge_l_scores_are_identical_to_the_textbook_lcs_to_the_last_bit():
    texts = random_texts(150, seed=1)
    for a in texts[:50]:
        for b in texts[50:]:
            assert rouge_l(a, b) == textbook_rouge_l(words(a), words(b))
            assert lcs_length(words(a), words(b)) == lcs_length(words(b), words(a))


def test_the_pool_filter_picks_the_same_closest_instruction_with_the_same_score():
    pool = random_texts(300, seed=2)
    for text in random_texts(40, seed=3):
        scores = [textbook_rouge_l(words(other), words(text)) for other in pool]
        best = max(scores)
        expected = (best, pool[scores.index(best)]) if best > 0 else (0.0, None)  # the first among equals
        assert most_similar(text, pool) == expected


def test_the_pool_filter_on_an_empty_pool_or_an_empty_text():
    assert most_similar("anything at all", []) == (0.0, None)
    assert most_similar("", ["anything at all"]) == (0.0, None)
    assert most_similar("write a poem", ["", "write a poem", "write a poem"]) == (1.0, "write a poem")
