"""The explorer's filters as one polars expression: a pure function of the conditions and the columns.

    condition({"round": 2, "score": (3, None), "show": "errors", "search": "apples"}, frame.columns,
              text_columns=["response"], pass_at=4, marks={})

``show`` picks a kind of row (:data:`SHOW`), ``search`` finds text (case-insensitive, taken
literally), and every other key names a column: a value (equal), a list (any of), a ``(low, high)``
range (either end may be None), or None (missing). A condition on a column the frame lacks is an
``InputError`` that names the columns it has. Marks are read from the ``_id`` column ``ExplorerState`` adds.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from ..errors import InputError

__all__ = ["SHOW", "SHOW_NEEDS", "condition"]

SHOW = (
    "all",
    "errors",
    "no errors",
    "verified",
    "failed verification",
    "judge pass",
    "judge fail",
    "unscored",
    "duplicates",
    "not duplicates",
    "kept",
    "dropped",
    "unmarked",
)
SHOW_NEEDS = {
    "errors": ("error", "it has no 'error' column"),
    "no errors": ("error", "it has no 'error' column"),
    "verified": ("verified", "run wb.verify first"),
    "failed verification": ("verified", "run wb.verify first"),
    "judge pass": ("score", "grade it first (wb.grade)"),
    "judge fail": ("score", "grade it first (wb.grade)"),
    "unscored": ("score", "grade it first (wb.grade)"),
    "duplicates": ("dup_of", "run wb.dedup first"),
    "not duplicates": ("dup_of", "run wb.dedup first"),
}


def condition(
    conditions: dict[str, Any],
    columns: list[str],
    *,
    text_columns: list[str],
    pass_at: float,
    marks: dict[str, str],
) -> pl.Expr | None:
    """One expression that every condition holds for (None when nothing is filtered)."""
    parts = []
    for name, value in conditions.items():
        if name == "show":
            parts.append(_show(value, columns, pass_at, marks))
        elif name == "search":
            parts.append(_search(value, text_columns))
        else:
            parts.append(_column(name, value, columns))
    parts = [part for part in parts if part is not None]
    return pl.all_horizontal(parts) if parts else None


def _column(name: str, value: Any, columns: list[str]) -> pl.Expr:
    if name not in columns:
        raise InputError(
            f"cannot filter on {name!r}: the frame has no such column (its columns: {', '.join(columns)})."
        )
    column = pl.col(name)
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InputError(f"a range for {name!r} is (low, high); got {value!r}.")
        low, high = value
        bounds = [*([column >= low] if low is not None else []), *([column <= high] if high is not None else [])]
        return pl.all_horizontal([*bounds, pl.lit(True)])
    if isinstance(value, (list, set, frozenset)):
        return column.is_in(list(value))
    return column.is_null() if value is None else column == value


def _search(text: str, text_columns: list[str]) -> pl.Expr | None:
    if not text or not text_columns:
        return None
    pattern = "(?i)" + re.escape(text)  # case-insensitive, the text taken literally
    return pl.any_horizontal([pl.col(c).cast(pl.String).str.contains(pattern) for c in text_columns]).fill_null(False)


def _show(show: str, columns: list[str], pass_at: float, marks: dict[str, str]) -> pl.Expr | None:
    if show not in SHOW:
        raise InputError(f"show must be one of {', '.join(SHOW)}; got {show!r}.")
    needed = SHOW_NEEDS.get(show)
    if needed and needed[0] not in columns:
        raise InputError(f"cannot show {show!r}: the frame has no {needed[0]!r} column ({needed[1]}).")
    passed = pl.col("judge_pass") if "judge_pass" in columns else pl.col("score") >= pass_at
    marked = pl.col("_id").replace_strict(marks, default=None, return_dtype=pl.String)
    expressions = {
        "all": None,
        "errors": pl.col("error").is_not_null(),
        "no errors": pl.col("error").is_null(),
        "verified": pl.col("verified") == True,  # noqa: E712 (a polars expression, not a Python bool)
        "failed verification": pl.col("verified") == False,  # noqa: E712
        "judge pass": passed.fill_null(False),
        "judge fail": ~passed.fill_null(False) & pl.col("score").is_not_null(),
        "unscored": pl.col("score").is_null(),
        "duplicates": pl.col("dup_of").is_not_null(),
        "not duplicates": pl.col("dup_of").is_null(),
        "kept": marked == "keep",
        "dropped": marked == "drop",
        "unmarked": marked.is_null(),
    }
    return expressions[show]
