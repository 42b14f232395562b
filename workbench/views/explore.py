"""``wb.explore``: read a run table page by page, follow one sample's revisions, mark what to keep.

    ex = wb.explore(history)                           # any run table: generate, grade, refine, compare
    ex                                                 # the widget: filters, pages, cards, lineage
    ex.filter(round=2, score=(1, 3), search="apples")  # the same filters as the controls, from code
    ex.sort("cost")                                    # score, tokens, cost, latency, or any column
    ex.lineage("3f2a9c0d1e4b5a6c")                     # every version, critiques, scores, word diffs
    ex.mark("3f2a9c0d1e4b5a6c", "drop")                # saved at once to data/marks/<name>.parquet
    kept = ex.marked().filter(pl.col("mark") != "drop")

The explorer is three pieces, one module each:

    explorer_state.py  ExplorerState: filter, sort, page, open a sample, marks; no widgets (``ex.state``)
    explore.py         Explorer: the ipywidgets box that reads the state and drives it from its controls
    chart_link.py      click a point of an altair chart to open its sample (``ex.chart``, ``ex.link``)

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
from typing import Any

import altair as alt
import ipywidgets as widgets
import polars as pl

from ..errors import InputError
from .chart_link import link_chart, scatter
from .conditions import SHOW
from .explorer_state import ExplorerState
from .snapshot import SnapshotBox

__all__ = ["SHOW", "Explorer", "ExplorerState", "explore"]


def explore(frame: pl.DataFrame, **options: Any) -> Explorer:
    """An inline explorer of ``frame``: pages of full texts, filters, lineage with word diffs, keep/drop marks.

    Options: ``name`` (the marks file, default "marks"), ``column`` (the text shown, default
    ``response``), ``page_size`` (10), ``pass_at`` (the score that passes the judge), ``max_chars``
    (texts longer than this are cut on the cards, 2000), ``marks_dir``.
    """
    return Explorer(ExplorerState(frame, **options))


def _from_state(name: str) -> property:
    """An attribute of the explorer that is its state's, read-only here (change it through the methods)."""
    return property(lambda self: getattr(self.state, name), doc=f"The state's ``{name}`` (see ExplorerState).")


class Explorer(SnapshotBox):
    """The explorer's widget: controls that drive an :class:`ExplorerState`, a page of cards, the sample opened."""

    # the state's attributes, read here as before the split (change them through the methods)
    frame = _from_state("frame")
    id_column = _from_state("id_column")
    column = _from_state("column")
    page_size = _from_state("page_size")
    max_chars = _from_state("max_chars")
    pass_at = _from_state("pass_at")
    path = _from_state("path")
    marks = _from_state("marks")
    conditions = _from_state("conditions")
    order = _from_state("order")
    rows = _from_state("rows")
    matches = _from_state("matches")
    pages = _from_state("pages")
    page_number = _from_state("page_number")
    page_frame = _from_state("page_frame")
    opened = _from_state("opened")

    def __init__(self, state: ExplorerState | pl.DataFrame, **options: Any) -> None:
        """Draw ``state`` (or a new state of a frame and ``wb.explore``'s options) and its controls."""
        self.state = state if isinstance(state, ExplorerState) else ExplorerState(state, **options)
        self._syncing = False
        self._build()
        self._render()
        self._sync_controls()

    # --- widgets -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.round_filter = widgets.Dropdown(options=_round_options(self.state.frame), description="round")
        self.score_filter = _score_slider(self.state.frame)
        self.show_filter = widgets.Dropdown(options=self.state.shows(), value="all", description="show")
        self.search_box = widgets.Text(description="search", placeholder="text in the samples", continuous_update=False)
        self.sort_by = widgets.Dropdown(options=self._sort_options(), index=0, description="sort by")
        self.descending = widgets.Checkbox(value=True, description="highest first", indent=False)
        for control in (self.round_filter, self.score_filter, self.show_filter, self.search_box):
            control.observe(lambda _: self._from_controls(), names="value")
        for control in (self.sort_by, self.descending):
            control.observe(lambda _: self._sort_from_controls(), names="value")
        self.previous_button = widgets.Button(description="◀ previous")
        self.next_button = widgets.Button(description="next ▶")
        self.previous_button.on_click(lambda _: self.page(self.state.page_number - 1))
        self.next_button.on_click(lambda _: self.page(self.state.page_number + 1))
        self.goto_box = widgets.Text(placeholder="sample id", description="open", continuous_update=False)
        self.goto_box.observe(lambda change: change["new"] and self._open_safely(change["new"]), names="value")
        self.status = widgets.HTML()
        self.slots = [_Slot(self, index) for index in range(self.state.page_size)]
        self.detail = widgets.HTML(self.state.opened_html)
        controls = widgets.VBox(
            [
                widgets.HBox([self.round_filter, self.show_filter, self.score_filter]),
                widgets.HBox([self.search_box, self.sort_by, self.descending]),
                widgets.HBox([self.previous_button, self.next_button, self.goto_box]),
            ]
        )
        super().__init__([controls, self.status, *(slot.box for slot in self.slots), self.detail])

    def _sort_options(self) -> list[tuple[str, str | None]]:
        options: list[tuple[str, str | None]] = [("frame order", None)]
        return options + [(key, key) for key in self.state.sort_keys()]

    def snapshot_html(self) -> str:
        """What the explorer shows now, as static HTML: the status line, the page of cards, the opened sample."""
        cards = "".join(slot.html.value for slot in self.slots if slot.box.layout.display != "none")
        return (
            "<div style='border:1px solid #ccc;padding:8px;border-radius:4px'><b>Explorer</b> (static view) · "
            f"{self.status.value}{cards}{self.detail.value}</div>"
        )

    # --- filters, sorting, pages: the state's, then drawn ------------------------------------------
    def filter(self, *, show: str = "all", search: str = "", **columns: Any) -> None:
        """Show only the rows that match every condition (replacing the previous filter).

        ``show`` is one of :data:`SHOW` ("errors", "verified", "judge pass", "duplicates", "kept"...);
        ``search`` finds text in the samples (case-insensitive); every other keyword names a column:
        a value (equal), a list (any of), a ``(low, high)`` range (either end may be None), or None (missing).
        """
        self.state.filter(show=show, search=search, **columns)
        self._render()
        self._sync_controls()

    def sort(self, by: str | None = None, *, descending: bool = True) -> None:
        """Order the rows by ``score``, ``tokens``, ``cost``, ``latency`` or any column; None keeps the frame order."""
        self.state.sort(by, descending=descending)
        self._render()
        self._sync_controls()

    def page(self, number: int) -> None:
        """Show page ``number`` (counting from 0; clamped to the pages there are)."""
        self.state.page(number)
        self._render()

    def selected(self) -> pl.DataFrame:
        """Every row that passes the current filter, in the current order, with the frame's own columns."""
        return self.state.selected()

    def card(self, row: dict[str, Any]) -> str:
        """The HTML card of one row."""
        return self.state.card(row)

    # --- one sample --------------------------------------------------------------------------------
    def lineage(self, sample_id: str) -> pl.DataFrame:
        """Show one sample in full below the page: every version of it (a pairwise row: both orders); returns them."""
        versions = self.state.lineage(sample_id)
        self.detail.value = self.state.opened_html
        return versions

    def text(self, sample_id: str) -> str | None:
        """The full text of one sample (cards cut long texts at ``max_chars``)."""
        return self.state.text(sample_id)

    # --- marks -------------------------------------------------------------------------------------
    def mark(self, sample_id: str, mark: str | None) -> None:
        """Mark a sample ``"keep"`` or ``"drop"`` (None clears it); every mark is saved at once."""
        self.state.mark(sample_id, mark)
        self._render()

    def marked(self) -> pl.DataFrame:
        """The frame with a ``mark`` column: "keep", "drop", or null where not marked."""
        return self.state.marked()

    # --- charts ------------------------------------------------------------------------------------
    def link(self, chart: alt.Chart) -> Any:
        """A live chart where clicking a point opens its sample (altair's JupyterChart; needs ``anywidget``).

        The chart's data must have the id column (``sample_id``) on every point, as ``chart()`` makes.
        """
        return link_chart(chart, id_column=self.state.id_column, open_sample=self._open_safely)

    def chart(self, x: str = "tokens_out", y: str = "score", *, limit: int = 5000) -> Any:
        """A scatter of the rows that pass the filter (the first ``limit``); click a point to open its sample."""
        return self.link(scatter(self.state.selected(), x, y, id_column=self.state.id_column, limit=limit))

    # --- the controls ------------------------------------------------------------------------------
    def _from_controls(self) -> None:
        if self._syncing:
            return
        controlled = {"show", "search", "round", "score"}
        from_code = {name: value for name, value in self.state.conditions.items() if name not in controlled}
        conditions = {**from_code, "show": self.show_filter.value, "search": self.search_box.value}
        if self.round_filter.value is not None:
            conditions["round"] = self.round_filter.value
        if self.score_filter.value != (self.score_filter.min, self.score_filter.max):
            conditions["score"] = tuple(self.score_filter.value)
        self._safely(self.filter, **conditions)

    def _sort_from_controls(self) -> None:
        if self._syncing:
            return
        self._safely(self.sort, self.sort_by.value, descending=self.descending.value)

    def _sync_controls(self) -> None:
        """Set the controls to the state's filter and order (a filter or a sort from code shows in the controls)."""
        self._syncing = True
        try:
            self._sync_filters()
            self._sync_sort()
        finally:
            self._syncing = False

    def _sync_filters(self) -> None:
        conditions = self.state.conditions
        self.show_filter.value = conditions.get("show", "all")
        self.search_box.value = conditions.get("search", "")
        wanted_round = conditions.get("round")
        rounds = [value for _, value in self.round_filter.options]
        self.round_filter.value = wanted_round if wanted_round in rounds else None
        low, high = conditions.get("score") or (None, None)
        if isinstance(low, (int, float, type(None))) and isinstance(high, (int, float, type(None))):
            bottom, top = self.score_filter.min, self.score_filter.max
            self.score_filter.value = (bottom if low is None else low, top if high is None else high)

    def _sync_sort(self) -> None:
        by, descending = self.state.order or (None, self.descending.value)
        if by not in [value for _, value in self.sort_by.options]:  # any column sorts; the menu learns it
            self.sort_by.options = [*self.sort_by.options, (by, by)]
        self.sort_by.value = by
        self.descending.value = descending

    def _safely(self, action, *args: Any, **kwargs: Any) -> None:
        """Run a control's action; a bad filter shows its message in the status line, never a traceback."""
        try:
            action(*args, **kwargs)
        except InputError as exc:
            self.status.value = f"<span style='color:#cf222e'>{html.escape(str(exc))}</span>"

    def _open_safely(self, sample_id: str) -> None:
        """Open a sample from a control (the open box, a card's button, a chart's point)."""
        self._safely(self.lineage, sample_id)

    # --- drawing the state -------------------------------------------------------------------------
    def _render(self) -> None:
        rows = list(self.state.page_rows().iter_rows(named=True))
        for slot, row in zip(self.slots, rows + [None] * (self.state.page_size - len(rows)), strict=True):
            slot.show(row)
        self.status.value = self.state.status_html()
        self.previous_button.disabled = self.state.page_number == 0
        self.next_button.disabled = self.state.page_number >= self.state.pages - 1


class _Slot:
    """One card on the page and its buttons (reused from page to page)."""

    def __init__(self, explorer: Explorer, index: int) -> None:
        self.explorer, self.index, self.sample_id = explorer, index, None
        self.html = widgets.HTML()
        small = {"layout": widgets.Layout(width="90px")}
        self.open_button = widgets.Button(description="open", tooltip="every version, full text, diffs", **small)
        self.keep = widgets.Button(description="keep", button_style="success", **small)
        self.drop = widgets.Button(description="drop", button_style="danger", **small)
        self.open_button.on_click(lambda _: self.sample_id and explorer._open_safely(self.sample_id))
        self.keep.on_click(lambda _: self.sample_id and explorer.mark(self.sample_id, self._toggle("keep")))
        self.drop.on_click(lambda _: self.sample_id and explorer.mark(self.sample_id, self._toggle("drop")))
        self.box = widgets.VBox([self.html, widgets.HBox([self.open_button, self.keep, self.drop])])

    def _toggle(self, mark: str) -> str | None:
        return None if self.explorer.state.marks.get(self.sample_id) == mark else mark

    def show(self, row: dict[str, Any] | None) -> None:
        self.sample_id = None if row is None else row["_id"]
        self.box.layout.display = "none" if row is None else None
        self.html.value = "" if row is None else self.explorer.state.card(row)


# --- controls that depend on the frame ----------------------------------------------------------
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
