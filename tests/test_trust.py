"""Judge agreement figures, checked against values worked out by hand; the Labeler widget."""

from __future__ import annotations

import polars as pl
import pytest

import workbench as wb


def test_accuracy_and_kappa_match_the_hand_computed_values():
    frame = pl.DataFrame({"judge": [1, 2, 3, 1, 2], "human": [1, 2, 2, 1, 3]})
    found = wb.agreement(frame, "judge", "human")
    # observed agreement 3/5; both marginals (.4, .4, .2): chance .16 + .16 + .04 = .36
    assert found.accuracy == 0.6
    assert found.kappa == pytest.approx((0.6 - 0.36) / (1 - 0.36))  # 0.375
    # quadratic weights (|i-j|/2)^2: observed disagreement .1, expected .28
    assert found.weighted_kappa == pytest.approx(1 - 0.1 / 0.28)
    assert found.n == 5
    counts = {(row["judge"], row["human"]): row["count"] for row in found.confusion.iter_rows(named=True)}
    assert counts[(3, 2)] == 1 and counts[(2, 3)] == 1 and counts[(1, 1)] == 2 and counts[(3, 3)] == 0
    assert found.confusion.height == 9


def test_linear_weights_and_boolean_labels():
    frame = pl.DataFrame({"a": [1, 2, 3, 1, 2], "b": [1, 2, 2, 1, 3]})
    # linear weights |i-j|/2: observed .5 * .2 + .5 * .2 = .2;
    # expected 2 * .5 * (.4 * .4) + 2 * 1 * (.4 * .2) + 2 * .5 * (.4 * .2) = .16 + .16 + .08 = .4
    assert wb.agreement(frame, "a", "b", weights="linear").weighted_kappa == pytest.approx(1 - 0.2 / 0.4)
    flags = pl.DataFrame({"judge_pass": [True, True, False, False], "verified": [True, False, False, False]})
    found = wb.agreement(flags, "judge_pass", "verified")
    # observed .75; chance .5*.25 + .5*.75 = .5
    assert found.accuracy == 0.75 and found.kappa == pytest.approx(0.5) and found.weighted_kappa is None


def test_a_judges_float_scores_against_a_humans_integer_labels():
    # weighted (G-Eval) scores are floats; a human labels in whole numbers
    for frame, accuracy in (
        (pl.DataFrame({"score": [1.0, 2.0, 2.5, 3.0], "human": [1, 2, 3, 3]}), 0.75),
        (pl.DataFrame({"score": [1, 3, 3, 3], "human": [1.0, 2.0, 2.5, 3.0]}), 0.5),  # labels: [1, 2.0, 2.5, 3]
    ):
        found = wb.agreement(frame, "score", "human")
        assert found.accuracy == accuracy
        counts = {(row["score"], row["human"]): row["count"] for row in found.confusion.iter_rows(named=True)}
        assert found.confusion.height == 16 and counts[(3.0, 3.0)] >= 1
        wb.charts.judge_agreement(frame, "score", "human")


def test_rows_missing_a_label_are_left_out_and_missing_columns_are_named():
    frame = pl.DataFrame({"a": [1, None, 2], "b": [1, 2, None]})
    assert wb.agreement(frame, "a", "b").n == 1
    with pytest.raises(wb.InputError, match="no column 'human'"):
        wb.agreement(frame, "a", "human")
    with pytest.raises(wb.InputError, match="no row has both"):
        wb.agreement(pl.DataFrame({"a": [None], "b": [1]}, schema={"a": pl.Int64, "b": pl.Int64}), "a", "b")


def test_self_agreement_from_votes():
    frame = pl.DataFrame({"votes": [[3, 3, 3], [2, 3, 4], [5]]})
    assert wb.self_agreement(frame) == {"rows": 2, "pairwise_agreement": 0.5, "unanimous": 0.5, "mean_spread": 1.0}
    with pytest.raises(wb.InputError, match="votes=k"):
        wb.self_agreement(pl.DataFrame({"votes": [[1]]}))


def graded_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "response": ["first", "second", "third"],
            "score": [4.0, 2.0, None],
            "reason": ["fine", "weak", None],
        }
    )


def test_the_labeler_saves_each_label_and_resumes_where_it_stopped(tmp_path):
    labeler = wb.Labeler(graded_frame(), name="round1", labels_dir=tmp_path)
    assert labeler.index == 0 and "first" in labeler.sample.value and "judge: <b>4</b> — fine" in labeler.judge.value

    labeler.score_buttons[4].click()  # a 5 for "first"
    assert labeler.index == 1 and "second" in labeler.sample.value
    labeler.skip_button.click()
    labeler.back_button.click()
    labeler.score_buttons[1].click()  # a 2 for "second"

    saved = pl.read_parquet(tmp_path / "round1.parquet")
    assert dict(zip(saved["sample_id"], saved["human_score"], strict=True)) == {"a": 5, "b": 2}

    resumed = wb.Labeler(graded_frame(), name="round1", labels_dir=tmp_path)
    assert resumed.index == 2 and "third" in resumed.sample.value and "not graded" in resumed.judge.value
    assert resumed.progress.value == "sample 3 of 3 · 2 labelled"
    labelled = resumed.labelled()
    assert labelled["human_score"].to_list() == [5, 2, None]
    assert wb.agreement(labelled, "score", "human_score").n == 2


def test_the_labeler_refuses_frames_it_cannot_show(tmp_path):
    with pytest.raises(wb.InputError, match="needs a 'sample_id' column"):
        wb.Labeler(pl.DataFrame({"response": ["x"]}), labels_dir=tmp_path)
    with pytest.raises(wb.InputError, match="empty"):
        wb.Labeler(graded_frame().clear(), labels_dir=tmp_path)
