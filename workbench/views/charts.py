"""Charts of what happened: altair charts with one theme, that render with no network.

    wb.charts.scores_by_round(history)
    wb.charts.pass_rate_by_round(history, pass_at=4)
    wb.charts.round_over_round(history)
    wb.charts.judge_agreement(frame, "score", "human_score")
    wb.charts.diversity_by_round(history)
    wb.charts.cost_by_stage(history)
    wb.charts.length_vs_score(graded)
    wb.charts.strategies(strategy_table(rows))     # yield with 95% intervals beside the judge's view
    wb.charts.generations(result.table)            # wb.self_train: held-out rate and collapse, per generation

Every function takes the standard frames, aggregates in polars first (so 100,000 rows chart
without altair's row limit), and returns an ``altair.Chart``.

Offline rendering: altair's default renderer loads Vega from a CDN, which fails offline. Importing
``workbench`` enables the ``workbench`` renderer: charts are drawn to SVG in-process by
``vl-convert`` (it bundles Vega), so they show in JupyterLab with the network blocked and survive
export to HTML, nbviewer and GitHub as plain images. For interactive charts (tooltips, zoom) in a
live JupyterLab, call ``wb.charts.interactive()``: altair's JupyterChart widget in offline mode
(needs ``anywidget``); those are not kept in exported HTML. ``wb.charts.static()`` switches back.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import altair as alt
import polars as pl

from ..columns import require_columns
from ..errors import InputError
from ..grading.trust import agreement

__all__ = [
    "cost_by_stage",
    "diversity_by_round",
    "generations",
    "interactive",
    "judge_agreement",
    "length_vs_score",
    "pass_rate_by_round",
    "round_over_round",
    "scores_by_round",
    "static",
    "strategies",
]

PALETTE = ["#3b6ea8", "#e07b39", "#4f9d69", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
WIDTH, HEIGHT = 420, 260
MAX_LINEAGE_LINES = 200


# --- theme and renderer ----------------------------------------------------------------------------
@alt.theme.register("workbench", enable=True)
def _theme() -> alt.theme.ThemeConfig:
    font = "DejaVu Sans, Helvetica, Arial, sans-serif"
    return {
        "config": {
            "view": {
                "continuousWidth": WIDTH,
                "continuousHeight": HEIGHT,
                "discreteWidth": WIDTH,
                "discreteHeight": HEIGHT,
                "stroke": None,
            },
            "font": font,
            "title": {"fontSize": 15, "anchor": "start", "fontWeight": 600, "subtitleColor": "#555", "offset": 10},
            "axis": {
                "labelFontSize": 11,
                "titleFontSize": 12,
                "gridColor": "#e6e6e6",
                "domainColor": "#999",
                "titleFontWeight": 500,
            },
            "legend": {"labelFontSize": 11, "titleFontSize": 12},
            "range": {"category": PALETTE},
            "background": "white",
        }
    }


def _svg_renderer(spec: dict, **metadata: Any) -> dict[str, Any]:
    """SVG for live sessions and HTML exports, plus PNG: JupyterLab shows no SVG from an untrusted notebook
    (one opened from someone else) but does show PNG."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec, vl_version=_vl_version())
    png = base64.b64encode(vl_convert.svg_to_png(svg, scale=1.5)).decode()
    title = spec.get("title", {})
    label = title.get("text") if isinstance(title, dict) else title
    return {"image/svg+xml": svg, "image/png": png, "text/plain": f"<chart: {label or 'untitled'}>"}


def _vl_version() -> str:
    major_minor = alt.SCHEMA_VERSION.lstrip("v").split(".")[:2]
    return "_".join(major_minor)


alt.renderers.register("workbench", _svg_renderer)


def static() -> None:
    """Draw charts as SVG in-process (the default after ``import workbench``): offline, exportable."""
    alt.renderers.enable("workbench")


def interactive() -> None:
    """Interactive charts in a live JupyterLab, offline (altair's JupyterChart widget); not kept in HTML exports."""
    try:
        import anywidget  # noqa: F401
    except ImportError:
        raise InputError(
            "interactive charts need anywidget: pip install anywidget (then restart the kernel)."
        ) from None
    alt.renderers.enable("jupyter", offline=True)


static()


# --- helpers ---------------------------------------------------------------------------------------
def _require(frame: pl.DataFrame, *columns: str) -> None:
    require_columns(frame, *columns, purpose=" to chart", nonempty=True)


def _data(frame: pl.DataFrame) -> alt.Data:
    """Inline data from a small, already aggregated polars frame (plain JSON values)."""
    return alt.Data(values=json.loads(frame.write_json()))


def _title(text: str, subtitle: str | None = None) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=subtitle or alt.Undefined)


# --- charts ----------------------------------------------------------------------------------------
def scores_by_round(history: pl.DataFrame, score: str = "score") -> alt.LayerChart:
    """Mean score of the dataset after each round (every sample's latest version), with a 95% interval.

    A frame without lineage (``lineage_id``) is summarised by its ``round`` column as it is.
    """
    _require(history, "round", score)
    table = (
        _dataset_by_round(history)
        .filter(pl.col(score).is_not_null())
        .group_by("round")
        .agg(pl.col(score).mean().alias("mean"), pl.col(score).std().fill_null(0).alias("sd"), pl.len().alias("n"))
        .with_columns(half=1.96 * pl.col("sd") / pl.col("n").sqrt())
        .with_columns(low=pl.col("mean") - pl.col("half"), high=pl.col("mean") + pl.col("half"))
        .sort("round")
    )
    base = alt.Chart(_data(table)).encode(x=alt.X("round:O", title="Round", axis=alt.Axis(labelAngle=0)))
    band = base.mark_errorbar(ticks=True, color=PALETTE[0]).encode(
        y=alt.Y("low:Q", title="Mean score", scale=alt.Scale(zero=False)), y2="high:Q"
    )
    line = base.mark_line(point=alt.OverlayMarkDef(size=60), color=PALETTE[0]).encode(
        y="mean:Q", tooltip=["round:O", alt.Tooltip("mean:Q", format=".2f"), "n:Q"]
    )
    subtitle = "the dataset after each round (each sample's latest version): mean, 95% interval"
    return alt.layer(band, line, title=_title("Scores by round", subtitle))


def _dataset_by_round(history: pl.DataFrame) -> pl.DataFrame:
    if "lineage_id" not in history.columns:
        return history
    from ..grading.refine import snapshot

    rounds = sorted(history["round"].unique().to_list())
    return pl.concat([snapshot(history, r).with_columns(round=pl.lit(r, pl.Int64)) for r in rounds])


def pass_rate_by_round(history: pl.DataFrame, pass_at: float, score: str = "score") -> alt.Chart:
    """Share of the dataset passing (score >= ``pass_at``) after each round (every lineage's latest row)."""
    from ..grading.refine import per_round

    _require(history, "round", score, "lineage_id", "sample_id", "parent_id")
    table = per_round(history, pass_at=pass_at).select("round", "pass_rate", "rows")
    return (
        alt.Chart(_data(table), title=_title("Pass rate by round", f"share of the dataset with score ≥ {pass_at:g}"))
        .mark_bar(color=PALETTE[2], size=28)
        .encode(
            x=alt.X("round:O", title="Round", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("pass_rate:Q", title="Pass rate", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            tooltip=["round:O", alt.Tooltip("pass_rate:Q", format=".1%"), "rows:Q"],
        )
    )


def round_over_round(history: pl.DataFrame, score: str = "score") -> alt.LayerChart:
    """Each lineage's score from round to round (thin lines), with the mean (thick); past 200 lineages,
    circles sized by how many lineages sit at each (round, score) replace the lines."""
    _require(history, "round", score, "lineage_id")
    scored = history.filter(pl.col(score).is_not_null()).select("lineage_id", "round", score)
    mean = scored.group_by("round").agg(pl.col(score).mean().alias("mean")).sort("round")
    x = alt.X("round:O", title="Round", axis=alt.Axis(labelAngle=0))
    y = alt.Y(f"{score}:Q", title="Score", scale=alt.Scale(zero=False))
    if scored["lineage_id"].n_unique() <= MAX_LINEAGE_LINES:
        paths = (
            alt.Chart(_data(scored))
            .mark_line(opacity=0.35, strokeWidth=1, color="#8c8c8c", point=True)
            .encode(x=x, y=y, detail="lineage_id:N", tooltip=["lineage_id:N", "round:O", f"{score}:Q"])
        )
    else:
        counts = scored.group_by("round", score).agg(pl.len().alias("lineages"))
        paths = (
            alt.Chart(_data(counts))
            .mark_circle(color="#8c8c8c", opacity=0.6)
            .encode(
                x=x, y=y, size=alt.Size("lineages:Q", title="Lineages"), tooltip=["round:O", f"{score}:Q", "lineages:Q"]
            )
        )
    average = alt.Chart(_data(mean)).mark_line(color=PALETTE[1], strokeWidth=3).encode(x=x, y="mean:Q")
    return alt.layer(
        paths,
        average,
        title=_title("Round over round", "each sample's score as it is revised; orange: mean of that round's rows"),
    )


def judge_agreement(frame: pl.DataFrame, a: str = "score", b: str = "human_score") -> alt.LayerChart:
    """Confusion heatmap of two label columns (judge vs verifier or human), with kappa in the subtitle."""
    _require(frame, a, b)
    found = agreement(frame, a, b)
    table = found.confusion.with_columns(_label(found.confusion[a]), _label(found.confusion[b]))
    kappa = f"n = {found.n}, accuracy {found.accuracy:.0%}, Cohen's κ {found.kappa:.2f}"
    if found.weighted_kappa is not None:
        kappa += f", weighted κ {found.weighted_kappa:.2f}"
    x = alt.X(f"{b}:O", title=b, axis=alt.Axis(labelAngle=0))
    base = alt.Chart(_data(table)).encode(x=x, y=alt.Y(f"{a}:O", title=a, sort="descending"))
    heat = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), title="Rows"),
        tooltip=[f"{a}:O", f"{b}:O", "count:Q"],
    )
    text = base.mark_text(fontSize=12).encode(
        text="count:Q",
        color=alt.condition(alt.datum.count > table["count"].max() / 2, alt.value("white"), alt.value("black")),
    )
    return alt.layer(heat, text, title=_title(f"Agreement: {a} vs {b}", kappa)).properties(width=260, height=260)


def _label(series: pl.Series) -> pl.Series:
    """Labels as text, with whole-number floats shown as integers (4.0 -> "4")."""
    if series.dtype.is_float() and (series.drop_nulls() == series.drop_nulls().round()).all():
        series = series.cast(pl.Int64)
    return series.cast(pl.String)


def diversity_by_round(history_or_table: pl.DataFrame, column: str = "response", by: str = "round") -> alt.FacetChart:
    """Diversity metrics per round (or per ``by`` group), one small panel each.

    Takes a history (or any frame with ``column`` and ``by``), or the table ``wb.diversity(..., by=...)`` made.
    """
    from ..curation.diversity import diversity

    table = history_or_table
    if "distinct_1" not in table.columns:
        _require(table, by, column)
        table = diversity(table, column, by=by)
    metrics = ["distinct_1", "distinct_2", "unique_3gram_ratio", "compression_ratio", "mean_pairwise_jaccard"]
    long = table.select(pl.col(by).cast(pl.String), *metrics).unpivot(
        index=by, variable_name="metric", value_name="value"
    )
    mark = alt.Chart(_data(long.drop_nulls()))
    mark = mark.mark_line(point=True, color=PALETTE[4]) if by == "round" else mark.mark_bar(color=PALETTE[4])
    title = "Diversity by round" if by == "round" else f"Diversity by {by}"
    return (
        mark.encode(
            x=alt.X(f"{by}:O", title=by.replace("_", " ").capitalize(), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=by != "round")),
            tooltip=["metric:N", f"{by}:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=150, height=120)
        .facet(facet=alt.Facet("metric:N", title=None), columns=5)
        .resolve_scale(y="independent")
        .properties(title=_title(title, "compression ratio and Jaccard: lower is more diverse"))
    )


_STAGES = {
    "generation": ("tokens_in", "tokens_out", "cost_usd"),
    "grading": ("judge_tokens_in", "judge_tokens_out", "judge_cost_usd"),
}


def cost_by_stage(history: pl.DataFrame) -> alt.HConcatChart:
    """Tokens and dollars by stage: generation (round 0), grading, critique and revision (later rounds)."""
    _require(history, "tokens_in", "tokens_out")
    table = pl.DataFrame(_stage_rows(history))
    bars = alt.Chart(_data(table)).encode(
        y=alt.Y("stage:N", title=None, sort=["generation", "grading", "critique", "revision"]),
        color=alt.Color("stage:N", legend=None),
    )
    tokens = bars.mark_bar().encode(x=alt.X("tokens:Q", title="Tokens"), tooltip=["stage:N", "tokens:Q"])
    dollars = bars.mark_bar().encode(x=alt.X("cost_usd:Q", title="Cost (USD)"), tooltip=["stage:N", "cost_usd:Q"])
    subtitle = "cost is null where a model's price is unknown; local models cost 0"
    return alt.hconcat(
        tokens.properties(width=240, height=140),
        dollars.properties(width=240, height=140),
        title=_title("Tokens and cost by stage", subtitle),
    )


def _stage_rows(history: pl.DataFrame) -> list[dict[str, Any]]:
    first = history.filter(pl.col("round") == 0) if "round" in history.columns else history
    later = history.filter(pl.col("round") > 0) if "round" in history.columns else history.clear()
    rows = [_stage("generation", first, *_STAGES["generation"]), _stage("revision", later, *_STAGES["generation"])]
    if "judge_tokens_in" in history.columns:
        rows.append(_stage("grading", history, *_STAGES["grading"]))
    if "critique_tokens" in history.columns:
        critiques = later.select(pl.col("critique_tokens").sum(), pl.col("critique_cost_usd").sum())
        rows.append({"stage": "critique", "tokens": int(critiques[0, 0] or 0), "cost_usd": critiques[0, 1]})
    return rows


def _stage(name: str, frame: pl.DataFrame, tokens_in: str, tokens_out: str, cost: str) -> dict[str, Any]:
    tokens = int((frame[tokens_in].sum() or 0) + (frame[tokens_out].sum() or 0)) if frame.height else 0
    known = frame[cost].null_count() == 0 if cost in frame.columns else False
    return {"stage": name, "tokens": tokens, "cost_usd": float(frame[cost].sum()) if known else None}


def length_vs_score(frame: pl.DataFrame, column: str = "response", score: str = "score") -> alt.Chart:
    """Response length (words) against score; binned counts, so any number of rows charts."""
    _require(frame, column, score)
    table = (
        frame.filter(pl.col(score).is_not_null())
        .with_columns(words=pl.col(column).fill_null("").str.count_matches(r"\S+"))
        .with_columns(length_bin=(pl.col("words") // 10) * 10)
        .group_by("length_bin", score)
        .agg(pl.len().alias("rows"))
    )
    return (
        alt.Chart(_data(table), title=_title("Length vs score", "responses binned by 10 words"))
        .mark_circle(color=PALETTE[0], opacity=0.75)
        .encode(
            x=alt.X("length_bin:Q", title="Response length (words)"),
            y=alt.Y(f"{score}:Q", title="Score", scale=alt.Scale(zero=False)),
            size=alt.Size("rows:Q", title="Rows"),
            tooltip=["length_bin:Q", f"{score}:Q", "rows:Q"],
        )
    )


def strategies(table: pl.DataFrame) -> alt.HConcatChart:
    """The equal-budget comparison: each strategy's yield (verified items per item, 95% Wilson interval)
    beside the judge's mean score of what it kept — a strategy that moves only the right panel pleases
    the judge without making the data better. Reads ``strategy_table``'s frame (one run), or
    ``experiment.seed_table``'s (several run seeds: the mean, one run's interval as the thin bar, and the
    lowest to highest seed as the thick one)."""
    seeds = "run_ci_low" in table.columns
    low, high = ("run_ci_low", "run_ci_high") if seeds else ("yield_ci_low", "yield_ci_high")
    _require(table, "task", "strategy", "yield", low, high, "judge_mean_kept")
    shown = ["task", "strategy", "yield", low, high, "judge_mean_kept", *(["seed_low", "seed_high"] if seeds else [])]
    data = _data(table.select(shown))
    order = table["strategy"].unique(maintain_order=True).to_list()
    y = alt.Y("strategy:N", sort=order, title=None)
    color = alt.Color("task:N", scale=alt.Scale(range=PALETTE), title="Task")
    offset = alt.YOffset("task:N")
    base = alt.Chart(data).encode(y=y, color=color, yOffset=offset)
    bars = base.mark_errorbar(ticks=True).encode(
        x=alt.X(f"{low}:Q", title="Verified yield (95% interval)", scale=alt.Scale(domain=[0, 1])), x2=f"{high}:Q"
    )
    points = base.mark_point(filled=True, size=60).encode(
        x=alt.X("yield:Q", axis=alt.Axis(format="%")),
        tooltip=["task:N", "strategy:N", alt.Tooltip("yield:Q", format=".1%")],
    )
    layers = [bars, points]
    if seeds:
        layers.insert(1, base.mark_rule(strokeWidth=5, opacity=0.5).encode(x="seed_low:Q", x2="seed_high:Q"))
    judged = base.mark_point(filled=True, size=60, shape="diamond").encode(
        x=alt.X("judge_mean_kept:Q", title="Judge's mean score of the kept answers", scale=alt.Scale(domain=[1, 5])),
        y=alt.Y("strategy:N", sort=order, title=None, axis=alt.Axis(labels=False, ticks=False)),
        tooltip=["task:N", "strategy:N", alt.Tooltip("judge_mean_kept:Q", format=".2f")],
    )
    left = alt.layer(*layers).properties(width=300, title="What the verifier says")
    right = judged.properties(width=220, title="What the judge says")
    return alt.hconcat(left, right, title=_title("Strategies at equal budget", "same items, same calls per item"))


def generations(table: pl.DataFrame) -> alt.FacetChart:
    """``wb.self_train``'s table over generations, one panel per measure: the held-out rate with its 95%
    interval, and what collapse looks like (entropy, distinct-2, self-BLEU, distinct answers per item, length).
    One line per arm (the base model is every arm's generation 0), dashed for ``data="accumulate"``; tables of
    several runs may be concatenated (``pl.concat``)."""
    measures = {
        "heldout_rate": "held-out verified rate (95% CI)",
        "entropy": "entropy on the probe set (nats)",
        "distinct_2": "distinct-2 of the samples",
        "self_bleu": "self-BLEU of the samples (higher: alike)",
        "distinct_answers": "distinct answers per item",
        "answer_words": "words per answer",
    }
    _require(table, "iteration", "arm", *measures)
    table = table.with_columns(pl.col("data").fill_null("replace") if "data" in table.columns else pl.lit("replace"))
    base = table.filter(pl.col("arm") == "base")
    arms = table.filter(pl.col("arm") != "base").select("arm", "data").unique(maintain_order=True)
    lines = pl.concat([base.drop("arm", "data").join(arms, how="cross"), table.filter(pl.col("arm") != "base")],
                      how="diagonal_relaxed")  # fmt: skip
    long = lines.select(
        "iteration", "arm", "data", "ci_low", "ci_high", *[pl.col(m).cast(pl.Float64) for m in measures]
    ).unpivot(index=["iteration", "arm", "data", "ci_low", "ci_high"], variable_name="measure", value_name="value")
    long = long.with_columns(
        pl.when(pl.col("measure") == "heldout_rate").then(pl.col(name)).alias(name) for name in ("ci_low", "ci_high")
    ).with_columns(pl.col("measure").replace_strict(measures))
    color = alt.Color("arm:N", scale=alt.Scale(range=PALETTE), title="Arm")
    dash = alt.StrokeDash("data:N", title="Data", sort=["replace", "accumulate"])
    x = alt.X("iteration:O", title="Generation", axis=alt.Axis(labelAngle=0))
    chart = alt.Chart(_data(long.drop_nulls("value")))
    line = chart.mark_line(point=True).encode(
        x=x, y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)), color=color, strokeDash=dash,
        tooltip=["measure:N", "arm:N", "data:N", "iteration:O", alt.Tooltip("value:Q", format=".3f")],
    )  # fmt: skip
    interval = chart.mark_rule(opacity=0.5).encode(x=x, y="ci_low:Q", y2="ci_high:Q", color=color)
    return (
        alt.layer(interval, line)
        .properties(width=190, height=130)
        .facet(facet=alt.Facet("measure:N", title=None, sort=list(measures.values())), columns=3)
        .resolve_scale(y="independent")
        .properties(
            title=_title(
                "Generations of self-training",
                "generation 0 is the base model; each later one is trained on what the one before it wrote",
            )
        )  # fmt: skip
    )
