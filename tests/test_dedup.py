"""Near-dedup keeps its promises: the exact answer on a seeded corpus, bad input refused, odd texts survived."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

import workbench as wb
from workbench.curation.dedup import MinHashPlan, banding, dedup_texts, normalise


def shingle_set(text: str, n: int = 3) -> set[str]:
    words = normalise(text).split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def exact_answer(frame: pl.DataFrame, threshold: float) -> list[str | None]:
    """dup_of by brute force: every pair's Jaccard computed, clusters joined transitively, best score kept."""
    texts = [normalise(text or "") for text in frame["response"]]
    sets = [shingle_set(text) for text in texts]
    cluster = list(range(len(texts)))

    def root(i: int) -> int:
        while cluster[i] != i:
            i = cluster[i]
        return i

    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if texts[i] == texts[j] or len(sets[i] & sets[j]) >= threshold * len(sets[i] | sets[j]):
                cluster[max(root(i), root(j))] = min(root(i), root(j))
    members: dict[int, list[int]] = {}
    for i in range(len(texts)):
        members.setdefault(root(i), []).append(i)
    scores, ids = frame["score"].to_list(), frame["sample_id"].to_list()
    dup_of: list[str | None] = [None] * len(texts)
    for group in members.values():
        keeper = max(group, key=lambda i: (scores[i] is not None, scores[i] or 0, -i))
        for i in group:
            dup_of[i] = ids[keeper] if i != keeper else None
    return dup_of


def seeded_corpus(rows: int = 400, seed: int = 11) -> pl.DataFrame:
    """Random 60-word texts; a third of them copies of an earlier one with 0 to 6 words replaced
    (Jaccard of 3-grams from about 0.6 to 1, many near 0.8), some in upper case with punctuation, some nulls."""
    rng = random.Random(seed)
    vocabulary = [f"v{i}" for i in range(400)]
    texts: list[str | None] = []
    for index in range(rows):
        if index > 10 and rng.random() < 0.33 and texts[index - 1] is not None:
            words = (texts[rng.randrange(index)] or "x").split()
            for _ in range(rng.randint(0, 6)):
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
            text = " ".join(words)
            texts.append(text.upper() + "!" if rng.random() < 0.2 else text)
        else:
            texts.append(None if rng.random() < 0.01 else " ".join(rng.choices(vocabulary, k=60)))
    scores = [rng.choice([None, 1.0, 2.0, 3.0]) for _ in range(rows)]
    return pl.DataFrame({"sample_id": [f"r{i}" for i in range(rows)], "response": texts, "score": scores})


@pytest.mark.parametrize("threshold", [0.8, 0.6])
def test_dedup_finds_exactly_the_clusters_that_every_pair_checked_by_hand_gives(threshold):
    frame = seeded_corpus()
    marked = wb.dedup(frame, threshold=threshold)
    expected = exact_answer(frame, threshold)
    assert marked["dup_of"].to_list() == expected
    kinds = marked["dup_kind"].value_counts().rows()
    assert dict(kinds)["near"] > 30 and dict(kinds)["exact"] > 10  # the corpus holds many of each
    assert marked.columns == [*frame.columns, "dup_cluster", "dup_of", "dup_kind"]


def test_the_best_scored_row_is_kept_nan_and_null_count_as_no_score_and_the_first_wins_ties():
    text = "the same answer written out again in exactly the same words"
    frame = pl.DataFrame(
        {"response": [text, text + "!", text.upper(), text, "something else entirely here"]},
        schema_overrides={"response": pl.String},
    )
    kept = wb.dedup(frame.with_columns(score=pl.Series([None, 4.0, float("nan"), 4.0, 5.0])))
    assert kept["dup_of"].to_list() == ["1", None, "1", "1", None]  # ids are row numbers without sample_id
    assert kept["dup_kind"].to_list() == ["exact", None, "exact", "exact", None]
    assert wb.dedup(frame)["dup_of"].to_list() == [None, "0", "0", "0", None]  # no scores: the first row


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ngram": 0}, "ngram must be a positive whole number, got 0"),
        ({"ngram": -3}, "ngram must be a positive whole number, got -3"),
        ({"ngram": 2.5}, "ngram must be a positive whole number"),
        ({"num_perm": 0}, "num_perm must be a positive whole number, got 0"),
        ({"threshold": 0}, r"threshold must be in \(0, 1\]"),
        ({"threshold": 1.01}, r"threshold must be in \(0, 1\]"),
        ({"threshold": float("nan")}, r"threshold must be in \(0, 1\]"),
        ({"threshold": True}, r"threshold must be in \(0, 1\]"),
    ],
)
def test_options_outside_their_range_are_refused_with_the_range(options, message):
    frame = seeded_corpus(30)
    with pytest.raises(wb.InputError, match=message):
        wb.dedup(frame, **options)
    with pytest.raises(wb.InputError, match=message):
        wb.dedup(frame.clear(), **options)  # an empty frame is no excuse


def test_a_missing_column_names_the_columns_there_are_and_a_number_column_is_refused_by_name():
    frame = seeded_corpus(30)
    with pytest.raises(wb.InputError, match=r"no column 'text' to compare \(its columns: sample_id, response, score\)"):
        wb.dedup(frame, column="text")
    with pytest.raises(wb.InputError, match="column 'score' holds Float64, not text"):
        wb.dedup(frame, column="score")


def test_null_and_empty_texts_and_a_one_megabyte_text_are_taken_in_stride():
    rng = random.Random(2)
    huge = " ".join(rng.choices([f"t{i}" for i in range(5000)], k=180_000))  # about 1.2 MB
    assert len(huge) > 1_000_000
    frame = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d", "e", "f", "g"],
            "response": [None, "", "   ", huge, huge.replace("t1 ", "t2 ", 3), "!!!", "short one"],
        }
    )
    marked = wb.dedup(frame)
    # null, empty, blank and punctuation-only texts normalise to the same empty text: one exact group
    assert marked["dup_of"].to_list() == [None, "a", "a", None, "d", "a", None]
    assert marked["dup_kind"].to_list() == [None, "exact", "exact", None, "near", "exact", None]


def test_the_columnar_normalisation_is_the_python_one():
    texts = [
        "Hello,   World!",
        "Tabs\tand\nnew lines\r\nand\u00a0no-break spaces\u3000too",
        "snake_case stays; kebab-case splits",
        "Café, naïve, ÉCOLE, straße, İstanbul, ΟΔΥΣΣΕΥΣ",
        "数字 123 and ½ ² ٣",
        "  leading and trailing  ",
        "a\x1cfile\x1fseparator",
        "",
    ]
    frame = pl.DataFrame({"response": texts})
    assert dedup_texts(frame, "response").to_list() == [normalise(text) for text in texts]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0])
def test_the_banding_finds_a_pair_at_the_threshold_with_at_least_99_percent_chance(threshold):
    bands, rows = banding(threshold, 128)
    assert bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= 0.99
    assert banding(0.8, 128) == (21, 6)
    assert MinHashPlan.for_threshold(0.8) == MinHashPlan(3, 128, 21, 6)


def test_minhash_signatures_agree_on_about_the_jaccard_share_of_positions():
    from workbench.curation.dedup import shingle_hashes, signatures

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in rng.integers(0, 10**6, 200)]
    other = list(words)
    for position in range(0, 200, 10):  # 20 words replaced: Jaccard of 3-grams about 0.53
        other[position] = "changed"
    texts = pl.Series([" ".join(words), " ".join(other)])
    hashes, counts = shingle_hashes(texts, 3)
    first, second = set(hashes[: counts[0]]), set(hashes[counts[0] :])
    similarity = len(first & second) / len(first | second)
    signed = signatures(hashes, counts, 1024)
    assert abs((signed[0] == signed[1]).mean() - similarity) < 0.05
