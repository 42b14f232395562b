"""``wb.explore``: read a run table page by page, follow one sample's revisions, mark what to keep.

    ex = wb.explore(history)                           # any run table: generate, grade, refine, compare
    ex                                                 # the widget: filters, pages, cards, lineage
    ex.filter(round=2, score=(1, 3), search="apples")  # the same filters as the controls, from code
    ex.sort("cost")                                    # score, tokens, cost, latency, or any column
    ex.lineage("3f2a9c0d1e4b5a6c")                     # every version, critiques, scores, word diffs
    ex.mark("3f2a9c0d1e4b5a6c", "drop")                # saved at once to data/marks/<name>.parquet
    kept = ex.marked().filter(pl.col("mark") != "drop")

The view never calls a model. Filtering and sorting run in polars on row numbers only, and only one
page of cards is rendered, so 100,000 rows stay fast (``bench/explore.py``). Marks (keep/drop) are
written after every click, atomically, like the Labeler's labels; a new explorer with the same
``name`` finds them again and can filter on them (``show="kept"``). Everything is widget state a
test can drive: ``round_filter``, ``score_filter``, ``show_filter``, ``search_box``, ``sort_by``,
``next_button``, ``slots`` (each with ``open_button``, ``keep``, ``drop``), ``detail.value``,
``status.value``. In a live JupyterLab, ``ex.link(chart)`` / ``ex.chart(x, y)`` open the sample
behind a clicked point (altair's JupyterChart, needs ``anywidget``); ``ex.lineage(id)`` always works.
An HTML report keeps a static snapshot: the page shown and the lineage opened.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import altair as alt
import ipywidgets as widgets
import polars as pl

from ..errors import InputError
from ..models.config import load_settings
from .cards import card_html, lineage_html, pair_html
from .conditions import SHOW, SHOW_NEEDS, condition
from .lineage import lineage
from .saved import load_choices, save_choices
from .snapshot import SnapshotBox

__all__ = ["SHOW", "Explorer", "explore"]

SORT_KEYS = {"score": "score", "tokens": "tokens_out", "cost": "cost_usd", "latency": "latency_s"}


def explore(frame: pl.DataFrame, **options: Any) -> Explorer:
    """An inline explorer of ``frame``: pages of full texts, filters, lineage with word diffs, keep/drop marks.

    Options: ``name`` (the marks file, default "marks"), ``column`` (the text shown, default
    ``response``), ``page_size`` (10), ``pass_at`` (the score that passes the judge), ``max_chars``
    (texts longer than this are cut on the cards, 2000), ``marks_dir``.
    """
    return Explorer(frame, **options)


class Explorer(SnapshotBox):
    """Pages of samples with filters and sorting, one sample's lineage, and keep/drop marks saved at once."""

    def __init__(
        self,
        frame: pl.DataFrame,
        *,
        name: str = "marks",
        column: str | None = None,
        page_size: int = 10,
        pass_at: float | None = None,
        max_chars: int = 2000,
        marks_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(f"wb.explore takes a polars DataFrame, got {type(frame).__name__}.")
        if not isinstance(page_size, int) or page_size < 1:
            raise InputError(f"page_size must be a whole number of 1 or more, got {page_size!r}.")
        self.id_column = _id_column(frame)
        self.column = _text_column(frame, column)
        self.page_size, self.max_chars = page_size, max_chars
        self.pass_at = pass_at if pass_at is not None else _default_pass_at(frame)
        identity = (
            pl.col(self.id_column).cast(pl.String) if self.id_column in frame.columns else pl.lit(None, pl.String)
        )
        self.frame = frame.with_columns(identity.alias("_id")).with_row_index("_row")
        self.path = Path(marks_dir or load_settings().data_dir / "marks") / f"{name}.parquet"
        self.marks: dict[str, str] = load_choices(self.path, "mark")
        self.conditions: dict[str, Any] = {}
        self.order: tuple[str, bool] | None = None
        self.rows = self.frame["_row"]
        self.page_number = 0
        self.opened: str | None = None
        self._syncing = False
        self._build()
        self._apply()

    # --- widgets -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.round_filter = widgets.Dropdown(options=_round_options(self.frame), description="round")
        self.score_filter = _score_slider(self.frame)
        self.show_filter = widgets.Dropdown(options=self._show_options(), value="all", description="show")
        self.search_box = widgets.Text(description="search", placeholder="text in the samples", continuous_update=False)
        self.sort_by = widgets.Dropdown(options=self._sort_options(), index=0, description="sort by")
        self.descending = widgets.Checkbox(value=True, description="highest first", indent=False)
        for control in (self.round_filter, self.score_filter, self.show_filter, self.search_box):
            control.observe(lambda _: self._from_controls(), names="value")
        for control in (self.sort_by, self.descending):
            control.observe(lambda _: self._sort_from_controls(), names="value")
        self.previous_button = widgets.Button(description="◀ previous")
        self.next_button = widgets.Button(description="next ▶")
        self.previous_button.on_click(lambda _: self.page(self.page_number - 1))
        self.next_button.on_click(lambda _: self.page(self.page_number + 1))
        self.goto_box = widgets.Text(placeholder="sample id", description="open", continuous_update=False)
        self.goto_box.observe(lambda change: change["new"] and self._safely(self.lineage, change["new"]), names="value")
        self.status = widgets.HTML()
        self.slots = [_Slot(self, index) for index in range(self.page_size)]
        self.detail = widgets.HTML()
        controls = widgets.VBox(
            [
                widgets.HBox([self.round_filter, self.show_filter, self.score_filter]),
                widgets.HBox([self.search_box, self.sort_by, self.descending]),
                widgets.HBox([self.previous_button, self.next_button, self.goto_box]),
            ]
        )
        super().__init__([controls, self.status, *(slot.box for slot in self.slots), self.detail])

    def _show_options(self) -> list[str]:
        return [show for show in SHOW if show not in SHOW_NEEDS or SHOW_NEEDS[show][0] in self.frame.columns]

    def _sort_options(self) -> list[tuple[str, str | None]]:
        options: list[tuple[str, str | None]] = [("frame order", None)]
        return options + [(key, key) for key, column in SORT_KEYS.items() if column in self.frame.columns]

    def snapshot_html(self) -> str:
        """What the explorer shows now, as static HTML: the status line, the page of cards, the opened sample."""
        cards = "".join(slot.html.value for slot in self.slots if slot.box.layout.display != "none")
        return (
            "<div style='border:1px solid #ccc;padding:8px;border-radius:4px'><b>Explorer</b> (static view) · "
            f"{self.status.value}{cards}{self.detail.value}</div>"
        )

    # --- filters, sorting, pages -------------------------------------------------------------------
    def filter(self, *, show: str = "all", search: str = "", **columns: Any) -> None:
        """Show only the rows that match every condition (replacing the previous filter).

        ``show`` is one of :data:`SHOW` ("errors", "verified", "judge pass", "duplicates", "kept"...);
        ``search`` finds text in the samples (case-insensitive); every other keyword names a column:
        a value (equal), a list (any of), a ``(low, high)`` range (either end may be None), or None (missing).
        """
        conditions = {"show": show, "search": search, **columns}
        self._expression(conditions)  # raises InputError for a missing column or an unknown choice
        self.conditions = conditions
        self._apply()
        self._sync_controls()

    def sort(self, by: str | None = None, *, descending: bool = True) -> None:
        """Order the rows by ``score``, ``tokens``, ``cost``, ``latency`` or any column; None keeps the frame order."""
        if by is not None:
            column = SORT_KEYS.get(by, by)
            if column not in self.frame.columns or column in {"_row", "_id"}:
                raise InputError(f"cannot sort by {by!r}: the frame has no column {column!r} ({self._columns()}).")
        self.order = None if by is None else (by, descending)
        self._apply()

    def page(self, number: int) -> None:
        """Show page ``number`` (counting from 0; clamped to the pages there are)."""
        self.page_number = max(0, min(number, self.pages - 1))
        self._render()

    @property
    def matches(self) -> int:
        """How many rows pass the current filter."""
        return self.rows.len()

    @property
    def pages(self) -> int:
        """How many pages the current filter has (at least 1)."""
        return max(1, -(-self.matches // self.page_size))

    @property
    def page_frame(self) -> pl.DataFrame:
        """The rows on the page shown, with the frame's own columns."""
        return self._page_rows().drop("_row", "_id")

    def selected(self) -> pl.DataFrame:
        """Every row that passes the current filter, in the current order, with the frame's own columns."""
        return (
            self.frame[self.rows.to_list()].drop("_row", "_id")
            if self.matches
            else self.frame.clear().drop("_row", "_id")
        )

    def _page_rows(self) -> pl.DataFrame:
        start = self.page_number * self.page_size
        return self.frame[self.rows.slice(start, self.page_size).to_list()] if self.matches else self.frame.clear()

    def _apply(self) -> None:
        lazy = self.frame.lazy()
        expression = self._expression(self.conditions)
        if expression is not None:
            lazy = lazy.filter(expression)
        if self.order is not None:
            by, descending = self.order
            lazy = lazy.sort(self._sort_key(by), descending=descending, nulls_last=True, maintain_order=True)
        try:
            self.rows = lazy.select("_row").collect()["_row"]
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"cannot apply this filter: {exc}") from None
        self.page_number = 0
        self._render()

    def _sort_key(self, by: str) -> pl.Expr:
        if by == "tokens" and {"tokens_in", "tokens_out"} <= set(self.frame.columns):
            return pl.col("tokens_in").fill_null(0) + pl.col("tokens_out").fill_null(0)
        return pl.col(SORT_KEYS.get(by, by))

    def _expression(self, conditions: dict[str, Any]) -> pl.Expr | None:
        columns = [c for c in self.frame.columns if c not in {"_row", "_id"}]
        texts = [c for c in (self.column, "response_a", "response_b") if c in columns]
        return condition(conditions, columns, text_columns=texts, pass_at=self.pass_at, marks=self.marks)

    def _columns(self) -> str:
        return "its columns: " + ", ".join(c for c in self.frame.columns if c not in {"_row", "_id"})

    # --- the controls ------------------------------------------------------------------------------
    def _from_controls(self) -> None:
        if self._syncing:
            return
        controlled = {"show", "search", "round", "score"}
        conditions = {name: value for name, value in self.conditions.items() if name not in controlled}  # from code
        conditions.update(show=self.show_filter.value, search=self.search_box.value)
        if self.round_filter.value is not None:
            conditions["round"] = self.round_filter.value
        if self.score_filter.value != (self.score_filter.min, self.score_filter.max):
            conditions["score"] = tuple(self.score_filter.value)
        self._safely(self.filter, **conditions)

    def _sort_from_controls(self) -> None:
        self._safely(self.sort, self.sort_by.value, descending=self.descending.value)

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            self.show_filter.value = self.conditions.get("show", "all")
            self.search_box.value = self.conditions.get("search", "")
            wanted_round = self.conditions.get("round")
            rounds = [value for _, value in self.round_filter.options]
            self.round_filter.value = wanted_round if wanted_round in rounds else None
            low, high = self.conditions.get("score") or (None, None)
            if isinstance(low, (int, float, type(None))) and isinstance(high, (int, float, type(None))):
                bottom, top = self.score_filter.min, self.score_filter.max
                self.score_filter.value = (bottom if low is None else low, top if high is None else high)
        finally:
            self._syncing = False

    def _safely(self, action, *args: Any, **kwargs: Any) -> None:
        """Run a control's action; a bad filter shows its message in the status line, never a traceback."""
        try:
            action(*args, **kwargs)
        except InputError as exc:
            self.status.value = f"<span style='color:#cf222e'>{html.escape(str(exc))}</span>"

    # --- rendering ---------------------------------------------------------------------------------
    def _render(self) -> None:
        page = self._page_rows()
        rows = list(page.iter_rows(named=True))
        for slot, row in zip(self.slots, rows + [None] * (self.page_size - len(rows)), strict=True):
            slot.show(row)
        self.status.value = self._status_text()
        self.previous_button.disabled = self.page_number == 0
        self.next_button.disabled = self.page_number >= self.pages - 1

    def _status_text(self) -> str:
        total = self.frame.height
        if total == 0:
            return "<b>the frame is empty</b>: there are no samples to explore (0 rows)."
        if self.matches == 0:
            return f"no rows match this filter (of {total:,}): {html.escape(self._filter_text())}"
        start = self.page_number * self.page_size
        end = min(start + self.page_size, self.matches)
        described = self._filter_text()
        return (
            f"rows {start + 1:,}–{end:,} of {self.matches:,}"
            + (f" matching ({total:,} in all)" if self.matches < total else "")
            + (f" · {html.escape(described)}" if described else "")
            + f" · page {self.page_number + 1:,} of {self.pages:,} · {len(self.marks):,} marked"
        )

    def _filter_text(self) -> str:
        parts = [
            f"{name} = {value!r}"
            for name, value in self.conditions.items()
            if not (name == "show" and value == "all") and not (name == "search" and not value)
        ]
        if self.order:
            parts.append(f"sorted by {self.order[0]}{' (highest first)' if self.order[1] else ''}")
        return ", ".join(parts)

    def card(self, row: dict[str, Any]) -> str:
        """The HTML card of one row."""
        return card_html(
            row,
            column=self.column,
            id_value=row["_id"] or "",
            mark=self.marks.get(row["_id"]),
            max_chars=self.max_chars,
        )

    # --- one sample --------------------------------------------------------------------------------
    def lineage(self, sample_id: str) -> pl.DataFrame:
        """Show one sample in full below the page: every version of it (a pairwise row: both orders); returns them."""
        sample_id = str(sample_id).strip()
        found = self.frame.filter(pl.col("_id") == sample_id)
        if found.height == 0:
            raise InputError(f"no sample with {self.id_column} {sample_id!r} in this frame.")
        row = found.row(0, named=True)
        if self.id_column == "pair":
            versions = found
            self.detail.value = pair_html(row, id_value=sample_id, mark=self.marks.get(sample_id), max_chars=None)
        else:
            versions = lineage(self.frame, sample_id, id_column="_id")
            rows = list(versions.iter_rows(named=True))
            if len(rows) > 1:
                self.detail.value = lineage_html(rows, column=self.column, id_column=self.id_column)
            else:
                whole = card_html(row, column=self.column, id_value=sample_id, max_chars=None)
                self.detail.value = f"<div><b>Sample</b> (one version)</div>{whole}"
        self.opened = sample_id
        return versions.drop("_row", "_id")

    def text(self, sample_id: str) -> str | None:
        """The full text of one sample (cards cut long texts at ``max_chars``)."""
        found = self.frame.filter(pl.col("_id") == str(sample_id))
        if found.height == 0:
            raise InputError(f"no sample with {self.id_column} {sample_id!r} in this frame.")
        return found[self.column][0] if self.column in found.columns else None

    # --- marks -------------------------------------------------------------------------------------
    def mark(self, sample_id: str, mark: str | None) -> None:
        """Mark a sample ``"keep"`` or ``"drop"`` (None clears it); every mark is saved at once."""
        if mark not in {"keep", "drop", None}:
            raise InputError(f"a mark is 'keep', 'drop' or None; got {mark!r}.")
        sample_id = str(sample_id)
        if self.frame.filter(pl.col("_id") == sample_id).height == 0:
            raise InputError(f"no sample with {self.id_column} {sample_id!r} in this frame.")
        if mark is None:
            self.marks.pop(sample_id, None)
        else:
            self.marks[sample_id] = mark
        save_choices(self.path, self.marks, "mark", pl.String, stamp="marked_at")
        if self.conditions.get("show") in {"kept", "dropped", "unmarked"}:
            keep_page = self.page_number
            self._apply()
            self.page(keep_page)
        else:
            self._render()

    def marked(self) -> pl.DataFrame:
        """The frame with a ``mark`` column: "keep", "drop", or null where not marked."""
        marks = pl.DataFrame(
            {"_id": list(self.marks), "mark": list(self.marks.values())}, schema={"_id": pl.String, "mark": pl.String}
        )
        joined = self.frame.drop("mark", strict=False).join(marks, on="_id", how="left", maintain_order="left")
        return joined.drop("_row", "_id")

    # --- charts ------------------------------------------------------------------------------------
    def link(self, chart: alt.Chart) -> Any:
        """A live chart where clicking a point opens its sample (altair's JupyterChart; needs ``anywidget``).

        The chart's data must have the id column (``sample_id``) on every point, as ``chart()`` makes.
        """
        _need_anywidget()
        if not isinstance(chart, alt.Chart):
            raise InputError("link() takes one alt.Chart whose points carry sample_id (layered charts cannot select).")
        pick = alt.selection_point(name="explore_pick", fields=[self.id_column], on="click", clear="dblclick")
        live = alt.JupyterChart(chart.add_params(pick))
        live.selections.observe(lambda change: self._on_pick(change["new"]), names=["explore_pick"])
        return live

    def chart(self, x: str = "tokens_out", y: str = "score", *, limit: int = 5000) -> Any:
        """A scatter of the rows that pass the filter (the first ``limit``); click a point to open its sample."""
        for name in (x, y):
            if name not in self.frame.columns:
                raise InputError(f"cannot chart {name!r}: the frame has no such column ({self._columns()}).")
        points = (
            self.selected()
            .head(limit)
            .select(self.id_column, x, y)
            .with_columns(pl.col(self.id_column).cast(pl.String))
        )
        chart = (
            alt.Chart(alt.Data(values=points.to_dicts()))
            .mark_circle(size=60, opacity=0.7)
            .encode(
                x=alt.X(x, type="quantitative"),
                y=alt.Y(y, type="quantitative"),
                tooltip=[
                    alt.Tooltip(self.id_column, type="nominal"),
                    alt.Tooltip(x, type="quantitative"),
                    alt.Tooltip(y, type="quantitative"),
                ],
            )
            .properties(title=f"{y} by {x}: click a point to open its sample")
        )
        return self.link(chart)

    def _on_pick(self, selection: Any) -> None:
        picked = [point.get(self.id_column) for point in getattr(selection, "value", []) or []]
        if picked and picked[0] is not None:
            self._safely(self.lineage, picked[0])


class _Slot:
    """One card on the page and its buttons (reused from page to page)."""

    def __init__(self, explorer: Explorer, index: int) -> None:
        self.explorer, self.index, self.sample_id = explorer, index, None
        self.html = widgets.HTML()
        small = {"layout": widgets.Layout(width="90px")}
        self.open_button = widgets.Button(description="open", tooltip="every version, full text, diffs", **small)
        self.keep = widgets.Button(description="keep", button_style="success", **small)
        self.drop = widgets.Button(description="drop", button_style="danger", **small)
        self.open_button.on_click(lambda _: self.sample_id and explorer._safely(explorer.lineage, self.sample_id))
        self.keep.on_click(lambda _: self.sample_id and explorer.mark(self.sample_id, self._toggle("keep")))
        self.drop.on_click(lambda _: self.sample_id and explorer.mark(self.sample_id, self._toggle("drop")))
        self.box = widgets.VBox([self.html, widgets.HBox([self.open_button, self.keep, self.drop])])

    def _toggle(self, mark: str) -> str | None:
        return None if self.explorer.marks.get(self.sample_id) == mark else mark

    def show(self, row: dict[str, Any] | None) -> None:
        self.sample_id = None if row is None else row["_id"]
        self.box.layout.display = "none" if row is None else None
        self.html.value = "" if row is None else self.explorer.card(row)


# --- reading a frame -----------------------------------------------------------------------------
def _id_column(frame: pl.DataFrame) -> str:
    if "sample_id" in frame.columns:
        return "sample_id"
    if {"pair", "response_a", "response_b"} <= set(frame.columns):
        return "pair"
    if frame.height == 0 and not frame.columns:
        return "sample_id"
    raise InputError(
        "wb.explore needs a 'sample_id' column (every run table from generate, grade and refine has one), or "
        "'pair', 'response_a' and 'response_b' (the verdicts of wb.compare); this frame has: "
        f"{', '.join(frame.columns) or 'no columns'}."
    )


def _text_column(frame: pl.DataFrame, column: str | None) -> str:
    if column is not None:
        if column not in frame.columns:
            raise InputError(f"column={column!r} is not in the frame (its columns: {', '.join(frame.columns)}).")
        return column
    if "response" in frame.columns or "pair" in frame.columns or frame.height == 0:
        return "response"
    raise InputError(
        "wb.explore shows the text in 'response', which this frame lacks: pass column= one of "
        f"{', '.join(c for c, t in frame.schema.items() if t == pl.String)}."
    )


def _default_pass_at(frame: pl.DataFrame) -> float:
    """4 on a judge's 1-5 scale; 1 when every score is within 0-1 (a verifier's)."""
    if "score" not in frame.columns or frame["score"].null_count() == frame.height:
        return 4.0
    return 1.0 if (frame["score"].max() or 0) <= 1 else 4.0


def _round_options(frame: pl.DataFrame) -> list[tuple[str, int | None]]:
    options: list[tuple[str, int | None]] = [("all", None)]
    if "round" in frame.columns:
        options += [(str(value), value) for value in frame["round"].drop_nulls().unique().sort().to_list()]
    return options


def _score_slider(frame: pl.DataFrame) -> widgets.FloatRangeSlider:
    has_scores = "score" in frame.columns and frame["score"].null_count() < frame.height
    low = float(frame["score"].min()) if has_scores else 0.0
    high = float(frame["score"].max()) if has_scores else 1.0
    high = high if high > low else low + 1.0
    return widgets.FloatRangeSlider(
        value=(low, high),
        min=low,
        max=high,
        step=0.5 if high - low >= 2 else 0.05,
        description="score",
        continuous_update=False,
        disabled=not has_scores,
    )


def _need_anywidget() -> None:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        raise InputError(
            "clicking a chart to open a sample needs anywidget: pip install anywidget (then restart the kernel); "
            "explorer.lineage(sample_id) works without it."
        ) from None
    alt.JupyterChart.enable_offline()
