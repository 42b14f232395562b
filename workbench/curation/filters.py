"""Filters with a report: the dataset, and what each filter removed.

kept, report = wb.keep(flagged, min_score=4)
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..errors import check_numbers, check_type

__all__ = ["keep"]


def keep(
    frame: pl.DataFrame,
    *,
    min_score: float | None = None,
    drop_errors: bool = True,
    drop_unscored: bool = False,
    drop_duplicates: bool = True,
    drop_contaminated: bool = True,
    where: pl.Expr | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the filters in order; returns (kept rows, a report of rows removed by each filter).

    Filters whose column is absent are skipped (and say so in the report).
    """
    check_type(frame, pl.DataFrame, "keep's frame", "a polars DataFrame")
    check_numbers(min_score=min_score)
    check_type(
        where, (pl.Expr, type(None)), "where", "a polars expression, e.g. pl.col('response').str.len_chars() > 20"
    )
    rules: list[tuple[str, str | None, Any]] = [
        ("request errors", "error", pl.col("error").is_null() if drop_errors else None),
        ("unscored", "scored", pl.col("scored").fill_null(False) if drop_unscored else None),
        (
            f"score below {min_score}",
            "score",
            (pl.col("score") >= min_score).fill_null(False) if min_score is not None else None,
        ),
        ("duplicates", "dup_of", pl.col("dup_of").is_null() if drop_duplicates else None),
        ("contaminated", "contaminated", ~pl.col("contaminated").fill_null(False) if drop_contaminated else None),
        ("custom filter", None, where),
    ]
    report = []
    for name, column, rule in rules:
        if rule is None:
            continue
        if column is not None and column not in frame.columns:
            report.append({"filter": name, "removed": 0, "remaining": frame.height, "note": f"skipped: no {column!r}"})
            continue
        before = frame.height
        frame = frame.filter(rule)
        report.append({"filter": name, "removed": before - frame.height, "remaining": frame.height, "note": None})
    schema = {"filter": pl.String, "removed": pl.Int64, "remaining": pl.Int64, "note": pl.String}
    return frame, pl.DataFrame(report, schema=schema)
