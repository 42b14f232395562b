"""Curation on crafted data where the right answer is known: planted duplicates and contamination."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

import workbench as wb
from workbench.generation.grids import shipped_data_dir

BASE = (
    "The baker sold forty loaves of rye bread on Monday morning and twice as many on Tuesday, then closed the "
    "shop early to visit her sister who lives by the harbour in the old town"
)


def planted() -> pl.DataFrame:
    rng = random.Random(4)
    vocabulary = [f"word{i}" for i in range(3000)]
    unique = [" ".join(rng.choices(vocabulary, k=40)) for _ in range(30)]
    near = BASE.replace("forty", "fifty")  # one word changed out of 34: Jaccard of 3-gram shingles about 0.83
    texts = unique + [BASE, BASE.upper() + "!!", near, "Completely different: " + unique[0][:20]]
    scores = [3.0] * 30 + [2.0, 5.0, 4.0, 1.0]
    return pl.DataFrame({"sample_id": [f"s{i}" for i in range(len(texts))], "response": texts, "score": scores})


def test_dedup_finds_planted_exact_and_near_duplicates_and_keeps_the_best_scored():
    marked = wb.dedup(planted())

    cluster = marked.filter(pl.col("dup_cluster").is_not_null())
    assert sorted(cluster["sample_id"]) == ["s30", "s31", "s32"]
    assert set(cluster["dup_cluster"]) == {"s31"}  # the best-scored member (5.0) is kept
    dups = {row["sample_id"]: (row["dup_of"], row["dup_kind"]) for row in cluster.iter_rows(named=True)}
    assert dups == {"s30": ("s31", "exact"), "s31": (None, None), "s32": ("s31", "near")}
    assert marked.filter(pl.col("dup_of").is_not_null()).height == 2
    assert wb.dedup(planted(), drop=True).height == planted().height - 2


def test_the_clusters_can_be_seen():
    clusters = wb.duplicate_clusters(wb.dedup(planted()))
    assert clusters.height == 1 and clusters["size"][0] == 3
    assert clusters["texts"][0].to_list()[0] == BASE.upper() + "!!"  # the kept one first
    assert sorted(clusters["kinds"][0].to_list()) == ["exact", "near"]


def test_a_stricter_threshold_keeps_near_duplicates_apart():
    marked = wb.dedup(planted(), threshold=0.95)
    assert marked.filter(pl.col("dup_of").is_not_null())["sample_id"].to_list() == ["s30"]


@pytest.mark.parametrize("threshold", [0, -0.1, 1.5, "high"])
def test_a_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(wb.InputError, match=r"threshold must be in \(0, 1\]"):
        wb.dedup(planted(), threshold=threshold)


def test_missing_columns_and_empty_frames():
    with pytest.raises(wb.InputError, match="no column 'text'"):
        wb.dedup(planted(), column="text")
    empty = wb.dedup(planted().clear())
    assert empty.height == 0 and {"dup_of", "dup_cluster", "dup_kind"} <= set(empty.columns)


def test_contamination_flags_rows_that_share_a_13_gram_with_the_reference():
    reference = shipped_data_dir() / "reference" / "benchmark_sample.jsonl"
    leaked = json.loads(reference.read_text().splitlines()[4])["text"]  # the train question, bench_04
    frame = pl.DataFrame(
        {
            "response": [
                "Here is a new problem. " + leaked + " Show your work.",
                "A train travels 200 kilometres in 4 hours. What is its speed?",  # the same idea, not the same words
                "Write a poem about the sea.",
            ]
        }
    )

    flagged = wb.contamination(frame, reference)

    assert flagged["contaminated"].to_list() == [True, False, False]
    assert flagged["contaminated_with"].to_list() == ["bench_04", None, None]
    assert flagged["overlap_ngrams"][0] == len(leaked.split()) - 12
    assert wb.contamination(frame, reference, n=5)["contaminated"].to_list() == [True, False, False]


def test_contamination_accepts_a_list_and_refuses_a_missing_file(tmp_path):
    frame = pl.DataFrame({"response": ["one two three four five six"]})
    assert wb.contamination(frame, ["zero one two three four five six seven"], n=4)["contaminated"][0]
    with pytest.raises(wb.InputError, match="no reference file at"):
        wb.contamination(frame, tmp_path / "missing.jsonl")


def test_keep_applies_filters_in_order_and_reports_each():
    frame = wb.dedup(planted()).with_columns(error=pl.lit(None, pl.String))
    kept, report = wb.keep(frame, min_score=3)
    # scores below 3: s30 (2.0, itself a duplicate) and s33 (1.0); then s32 duplicates the kept s31
    assert sorted(set(frame["sample_id"]) - set(kept["sample_id"])) == ["s30", "s32", "s33"]
    assert report.to_dicts() == [
        {"filter": "request errors", "removed": 0, "remaining": 34, "note": None},
        {"filter": "score below 3", "removed": 2, "remaining": 32, "note": None},
        {"filter": "duplicates", "removed": 1, "remaining": 31, "note": None},
        {"filter": "contaminated", "removed": 0, "remaining": 31, "note": "skipped: no 'contaminated'"},
    ]


def test_diversity_metrics_on_texts_with_known_values():
    frame = pl.DataFrame({"round": [0, 0, 1, 1], "response": ["a b a b", "a b a b", "a b c d", "e f g h"]})

    table = wb.diversity(frame, by="round")

    assert table["round"].to_list() == [0, 1]
    # round 0: 1-grams a,b (2 distinct of 8); 2-grams ab, ba (2 of 6); 3-grams aba, bab each twice -> none unique
    assert table["distinct_1"].to_list() == [2 / 8, 8 / 8]
    assert table["distinct_2"].to_list() == [2 / 6, 6 / 6]
    assert table["unique_3gram_ratio"].to_list() == [0.0, 1.0]
    assert table["mean_pairwise_jaccard"].to_list() == [1.0, 0.0]
    assert table["compression_ratio"][0] > 0 and table["embedding_spread"].null_count() == 2


def test_embedding_spread_uses_an_embeddings_endpoint_or_says_it_skipped(fake_server, connect_to):
    frame = pl.DataFrame({"response": ["aaaa", "bbbb", "aaaa"]})
    with_embeddings = connect_to(fake_server(embeddings=True))
    spread = wb.diversity(frame, embeddings=with_embeddings)["embedding_spread"][0]
    # unit vectors e_a, e_b, e_a: centroid direction (2, 1)/sqrt(5); distances 1 - 2/sqrt5 (twice), 1 - 1/sqrt5
    assert spread == pytest.approx((2 * (1 - 2 / 5**0.5) + (1 - 1 / 5**0.5)) / 3)

    without = connect_to(fake_server(), max_retries=0)
    with pytest.warns(UserWarning, match="embedding_spread skipped: .* does not serve embeddings"):
        table = wb.diversity(frame, embeddings=without)
    assert table["embedding_spread"][0] is None and table["distinct_1"][0] == 2 / 3
