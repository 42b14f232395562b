"""Chart specs checked for their encodings and data; large frames aggregate; rendering is offline SVG."""

from __future__ import annotations

import random

import altair as alt
import polars as pl
import pytest

import workbench as wb


def history() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ["a", "b", "a1", "b1", "a2"],
            "parent_id": [None, None, "a", "b", "a1"],
            "lineage_id": ["a", "b", "a", "b", "a"],
            "round": [0, 0, 1, 1, 2],
            "score": [2.0, 3.0, 3.0, 5.0, 4.0],
            "response": ["one two", "one two three", "four five six seven", "eight", "nine ten"],
            "tokens_in": [10, 10, 30, 30, 40],
            "tokens_out": [5, 5, 6, 6, 7],
            "cost_usd": [0.0] * 5,
            "judge_tokens_in": [20] * 5,
            "judge_tokens_out": [10] * 5,
            "judge_cost_usd": [0.0] * 5,
            "critique_tokens": [None, None, 12, 12, 12],
            "critique_cost_usd": [None, None, 0.0, 0.0, 0.0],
        }
    )


def data_of(chart: alt.TopLevelMixin, layer: int | None = None) -> list[dict]:
    """The rows a chart (or one of its layers) draws, wherever altair put them in the spec."""
    spec = chart.to_dict()
    part = spec["layer"][layer] if layer is not None else spec
    data = part.get("data") or spec["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_scores_by_round_plots_the_datasets_mean_after_each_round():
    chart = wb.charts.scores_by_round(history())
    spec = chart.to_dict()
    assert spec["title"]["text"] == "Scores by round"
    line = spec["layer"][1]
    assert line["mark"]["type"] == "line" and line["encoding"]["y"]["field"] == "mean"
    assert spec["layer"][0]["encoding"]["x"] == {
        "axis": {"labelAngle": 0},
        "field": "round",
        "title": "Round",
        "type": "ordinal",
    }
    means = {row["round"]: row["mean"] for row in data_of(chart, 0)}
    assert means == {0: 2.5, 1: 4.0, 2: 4.5}  # after round 2: a is at 4 (round 2), b at 5 (round 1)


def test_pass_rate_by_round_reads_the_dataset_after_each_round():
    chart = wb.charts.pass_rate_by_round(history(), pass_at=4)
    rates = {row["round"]: row["pass_rate"] for row in data_of(chart)}
    assert rates == {0: 0.0, 1: 0.5, 2: 1.0}  # after round 2: a -> 4, b -> 5
    assert chart.to_dict()["encoding"]["y"]["axis"]["format"] == "%"


def test_round_over_round_draws_a_line_per_lineage_and_the_mean():
    chart = wb.charts.round_over_round(history())
    spec = chart.to_dict()
    assert spec["layer"][0]["encoding"]["detail"]["field"] == "lineage_id"
    assert len(data_of(chart, 0)) == 5


def test_judge_agreement_is_a_confusion_heatmap_with_kappa_in_the_subtitle():
    frame = pl.DataFrame({"score": [1.0, 2.0, 2.0, 1.0], "verified": [1.0, 2.0, 1.0, 1.0]})
    chart = wb.charts.judge_agreement(frame, "score", "verified")
    spec = chart.to_dict()
    assert spec["layer"][0]["mark"]["type"] == "rect" and spec["layer"][0]["encoding"]["color"]["field"] == "count"
    cells = {(row["score"], row["verified"]): row["count"] for row in data_of(chart, 0)}
    assert cells == {("1", "1"): 2, ("1", "2"): 0, ("2", "1"): 1, ("2", "2"): 1}
    assert "accuracy 75%" in spec["title"]["subtitle"] and "Cohen's κ 0.50" in spec["title"]["subtitle"]


def test_cost_by_stage_sums_tokens_per_stage():
    chart = wb.charts.cost_by_stage(history())
    spec = chart.to_dict()
    data = spec["hconcat"][0].get("data") or spec["data"]
    values = data["values"] if "values" in data else spec["datasets"][data["name"]]
    rows = {row["stage"]: row["tokens"] for row in values}
    assert rows == {"generation": 30, "revision": 119, "grading": 150, "critique": 36}


def test_diversity_and_length_charts_take_the_standard_frames():
    diversity = wb.charts.diversity_by_round(history())
    metrics = {row["metric"] for row in data_of(diversity)}
    assert {"distinct_1", "distinct_2", "compression_ratio"} <= metrics
    length = wb.charts.length_vs_score(history())
    assert {(row["length_bin"], row["score"]) for row in data_of(length)} >= {(0, 2.0), (0, 5.0)}


def test_a_hundred_thousand_rows_chart_without_a_row_limit_error():
    rng = random.Random(0)
    rounds = [i % 4 for i in range(100_000)]
    big = pl.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(100_000)],
            "lineage_id": [f"l{i // 4}" for i in range(100_000)],
            "parent_id": [None if r == 0 else f"s{i - 1}" for i, r in enumerate(rounds)],
            "round": rounds,
            "score": [float(rng.randint(1, 5)) for _ in rounds],
            "response": ["word " * rng.randint(1, 80) for _ in rounds],
        }
    )
    for chart in (
        wb.charts.scores_by_round(big),
        wb.charts.round_over_round(big),
        wb.charts.length_vs_score(big),
        wb.charts.pass_rate_by_round(big, pass_at=4),
    ):
        spec = chart.to_dict()
        assert len(str(spec)) < 200_000
    assert "size" in wb.charts.round_over_round(big).to_dict()["layer"][0]["encoding"]  # circles, not 25,000 lines


def test_charts_render_offline_as_svg_after_importing_workbench():
    assert alt.renderers.active == "workbench"
    bundle = wb.charts.scores_by_round(history())._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert bundle["image/svg+xml"].lstrip().startswith("<svg") and "Scores by round" in bundle["image/svg+xml"]
    assert "cdn.jsdelivr" not in str(bundle)


def test_bad_input_names_the_missing_column():
    with pytest.raises(wb.InputError, match="no column 'round' to chart"):
        wb.charts.scores_by_round(pl.DataFrame({"score": [1.0]}))
    with pytest.raises(wb.InputError, match="empty"):
        wb.charts.scores_by_round(history().clear())
