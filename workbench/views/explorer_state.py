"""``ExplorerState``: what the explorer shows, with no widgets: filter, sort, page, open a sample, keep/drop marks.

    state = ExplorerState(history, name="pass-1")      # the same options as wb.explore
    state.filter(round=2, show="judge pass")           # rows are kept as row numbers; nothing is copied
    state.sort("cost")                                 # score, tokens, cost, latency, or any column
    state.page(3)                                      # page_frame: the rows of page 3 (counting from 0)
    state.lineage("3f2a9c0d1e4b5a6c")                  # every version; opened_html is what the view shows
    state.mark("3f2a9c0d1e4b5a6c", "drop")             # saved at once to data/marks/pass-1.parquet
    kept = state.marked().filter(pl.col("mark") != "drop")

``wb.explore`` wraps one of these in its widget (``views/explore.py``), which reads it to draw the
page and drives it from the controls; tests and ``bench/explore.py`` use it alone. Filtering and
sorting run in polars and keep only the matching row numbers (``rows``), and only the rows of one
page are read, so 100,000 rows stay fast. The HTML it gives (``card``, ``status_html``,
``opened_html``) is built by the pure functions of ``cards.py``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import InputError, check_counts, check_numbers
from ..models.config import load_settings
from .cards import card_html, lineage_html, pair_html
from .conditions import SHOW, SHOW_NEEDS, condition
from .lineage import lineage
from .saved import load_choices, save_choices

__all__ = ["SORT_KEYS", "ExplorerState"]

SORT_KEYS = {"score": "score", "tokens": "tokens_out", "cost": "cost_usd", "latency": "latency_s"}
MARK_SHOWS = {"kept", "dropped", "unmarked"}  # filters whose rows change when a mark does


class ExplorerState:
    """The rows that pass a filter, in an order, a page of them, the sample opened, and keep/drop marks."""

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
            raise InputError(f"wb.explore takes a polars DataFrame, got {type(frame).__name__}.")
        check_counts(page_size=page_size, max_chars=max_chars)
        check_numbers(pass_at=pass_at)
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
        self.opened_html = ""

    # --- what the frame offers ---------------------------------------------------------------------
    def shows(self) -> list[str]:
        """The ``show`` choices this frame can answer (``"verified"`` only once it has a ``verified`` column...)."""
        return [show for show in SHOW if show not in SHOW_NEEDS or SHOW_NEEDS[show][0] in self.frame.columns]

    def sort_keys(self) -> list[str]:
        """The named sort keys (score, tokens, cost, latency) whose column this frame has."""
        return [key for key, column in SORT_KEYS.items() if column in self.frame.columns]

    def columns(self) -> list[str]:
        """The frame's own columns (without the row number and id the explorer adds)."""
        return [c for c in self.frame.columns if c not in {"_row", "_id"}]

    # --- filters, sorting, pages -------------------------------------------------------------------
    def filter(self, *, show: str = "all", search: str = "", **columns: Any) -> None:
        """Keep only the rows that match every condition (replacing the previous filter); back to page 0.

        ``show`` is one of :data:`SHOW` ("errors", "verified", "judge pass", "duplicates", "kept"...);
        ``search`` finds text in the samples (case-insensitive); every other keyword names a column:
        a value (equal), a list (any of), a ``(low, high)`` range (either end may be None), or None (missing).
        """
        conditions = {"show": show, "search": search, **columns}
        self._expression(conditions)  # raises InputError for a missing column or an unknown choice
        self.conditions = conditions
        self._apply()

    def sort(self, by: str | None = None, *, descending: bool = True) -> None:
        """Order the rows by ``score``, ``tokens``, ``cost``, ``latency`` or any column; None keeps the frame order."""
        if by is not None:
            column = SORT_KEYS.get(by, by)
            if column not in self.columns():
                raise InputError(f"cannot sort by {by!r}: the frame has no column {column!r} ({self._columns()}).")
        self.order = None if by is None else (by, descending)
        self._apply()

    def page(self, number: int) -> None:
        """Go to page ``number`` (counting from 0; clamped to the pages there are)."""
        self.page_number = max(0, min(number, self.pages - 1))

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
        """The rows on the current page, with the frame's own columns."""
        return self.page_rows().drop("_row", "_id")

    def page_rows(self) -> pl.DataFrame:
        """The rows on the current page with the explorer's ``_row`` and ``_id`` columns (what cards are drawn from)."""
        start = self.page_number * self.page_size
        return self.frame[self.rows.slice(start, self.page_size).to_list()] if self.matches else self.frame.clear()

    def selected(self) -> pl.DataFrame:
        """Every row that passes the current filter, in the current order, with the frame's own columns."""
        return (
            self.frame[self.rows.to_list()].drop("_row", "_id")
            if self.matches
            else self.frame.clear().drop("_row", "_id")
        )

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

    def _sort_key(self, by: str) -> pl.Expr:
        if by == "tokens" and {"tokens_in", "tokens_out"} <= set(self.frame.columns):
            return pl.col("tokens_in").fill_null(0) + pl.col("tokens_out").fill_null(0)
        return pl.col(SORT_KEYS.get(by, by))

    def _expression(self, conditions: dict[str, Any]) -> pl.Expr | None:
        columns = self.columns()
        texts = [c for c in (self.column, "response_a", "response_b") if c in columns]
        return condition(conditions, columns, text_columns=texts, pass_at=self.pass_at, marks=self.marks)

    def _columns(self) -> str:
        return "its columns: " + ", ".join(self.columns())

    # --- what the view says ------------------------------------------------------------------------
    def status_html(self) -> str:
        """One line: which rows are shown of how many, the filter and order, the page, how many are marked."""
        total = self.frame.height
        if total == 0:
            return "<b>the frame is empty</b>: there are no samples to explore (0 rows)."
        if self.matches == 0:
            return f"no rows match this filter (of {total:,}): {html.escape(self.filter_text())}"
        start = self.page_number * self.page_size
        end = min(start + self.page_size, self.matches)
        described = self.filter_text()
        return (
            f"rows {start + 1:,}–{end:,} of {self.matches:,}"
            + (f" matching ({total:,} in all)" if self.matches < total else "")
            + (f" · {html.escape(described)}" if described else "")
            + f" · page {self.page_number + 1:,} of {self.pages:,} · {len(self.marks):,} marked"
        )

    def filter_text(self) -> str:
        """The filter and order in words, e.g. ``round = 2, sorted by cost (highest first)``; empty when none."""
        parts = [
            f"{name} = {value!r}"
            for name, value in self.conditions.items()
            if not (name == "show" and value == "all") and not (name == "search" and not value)
        ]
        if self.order:
            parts.append(f"sorted by {self.order[0]}{' (highest first)' if self.order[1] else ''}")
        return ", ".join(parts)

    def card(self, row: dict[str, Any]) -> str:
        """The HTML card of one row of ``page_rows()`` (it needs the ``_id`` column)."""
        return card_html(
            row,
            column=self.column,
            id_value=row["_id"] or "",
            mark=self.marks.get(row["_id"]),
            max_chars=self.max_chars,
        )

    # --- one sample --------------------------------------------------------------------------------
    def lineage(self, sample_id: str) -> pl.DataFrame:
        """Open one sample: every version of it (a pairwise row: both orders); ``opened_html`` shows them in full."""
        sample_id = str(sample_id).strip()
        found = self._found(sample_id)
        row = found.row(0, named=True)
        if self.id_column == "pair":
            versions = found
            self.opened_html = pair_html(row, id_value=sample_id, mark=self.marks.get(sample_id), max_chars=None)
        else:
            versions = lineage(self.frame, sample_id, id_column="_id")
            self.opened_html = self._versions_html(versions, row, sample_id)
        self.opened = sample_id
        return versions.drop("_row", "_id")

    def _versions_html(self, versions: pl.DataFrame, row: dict[str, Any], sample_id: str) -> str:
        rows = list(versions.iter_rows(named=True))
        if len(rows) > 1:
            return lineage_html(rows, column=self.column, id_column=self.id_column)
        whole = card_html(row, column=self.column, id_value=sample_id, max_chars=None)
        return f"<div><b>Sample</b> (one version)</div>{whole}"

    def text(self, sample_id: str) -> str | None:
        """The full text of one sample (cards cut long texts at ``max_chars``)."""
        found = self._found(str(sample_id))
        return found[self.column][0] if self.column in found.columns else None

    def _found(self, sample_id: str) -> pl.DataFrame:
        """The rows of ``sample_id`` (one; a pairwise table may repeat it); an InputError when there are none."""
        found = self.frame.filter(pl.col("_id") == sample_id)
        if found.height == 0:
            raise InputError(f"no sample with {self.id_column} {sample_id!r} in this frame.")
        return found

    # --- marks -------------------------------------------------------------------------------------
    def mark(self, sample_id: str, mark: str | None) -> None:
        """Mark a sample ``"keep"`` or ``"drop"`` (None clears it); every mark is saved at once to ``path``."""
        if mark not in {"keep", "drop", None}:
            raise InputError(f"a mark is 'keep', 'drop' or None; got {mark!r}.")
        sample_id = str(sample_id)
        self._found(sample_id)  # raises InputError for an id the frame does not have
        if mark is None:
            self.marks.pop(sample_id, None)
        else:
            self.marks[sample_id] = mark
        save_choices(self.path, self.marks, "mark", pl.String, stamp="marked_at")
        if self.conditions.get("show") in MARK_SHOWS:
            keep_page = self.page_number
            self._apply()
            self.page(keep_page)

    def marked(self) -> pl.DataFrame:
        """The frame with a ``mark`` column: "keep", "drop", or null where not marked."""
        marks = pl.DataFrame(
            {"_id": list(self.marks), "mark": list(self.marks.values())}, schema={"_id": pl.String, "mark": pl.String}
        )
        joined = self.frame.drop("mark", strict=False).join(marks, on="_id", how="left", maintain_order="left")
        return joined.drop("_row", "_id")


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
