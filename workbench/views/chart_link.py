"""Click a point, open its sample: the explorer's link from an altair chart back to the rows behind it.

    live = link_chart(chart, id_column="sample_id", open_sample=explorer.lineage)
    live = link_chart(scatter(explorer.selected(), "tokens_out", "score", id_column="sample_id"), ...)

``link_chart`` adds a point selection on the id column and wraps the chart in altair's
``JupyterChart`` (an anywidget, so it needs ``anywidget`` and a live kernel); when a point is
clicked, the browser sends the selection back and ``open_sample`` is called with that point's id.
Without ``anywidget`` it says what to install, and that ``explorer.lineage(sample_id)`` works anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import polars as pl

from ..errors import InputError

__all__ = ["PICK", "link_chart", "scatter"]

PICK = "explore_pick"  # the name of the selection, as the browser reports it back


def link_chart(chart: alt.Chart, *, id_column: str, open_sample: Callable[[str], Any]) -> Any:
    """A live chart where clicking a point calls ``open_sample(id)`` (altair's JupyterChart; needs ``anywidget``).

    The chart's data must have ``id_column`` on every point, as :func:`scatter` makes.
    """
    _need_anywidget()
    if not isinstance(chart, alt.Chart):
        raise InputError("link() takes one alt.Chart whose points carry sample_id (layered charts cannot select).")
    pick = alt.selection_point(name=PICK, fields=[id_column], on="click", clear="dblclick")
    live = alt.JupyterChart(chart.add_params(pick))
    live.selections.observe(lambda change: _on_pick(change["new"], id_column, open_sample), names=[PICK])
    return live


def scatter(rows: pl.DataFrame, x: str, y: str, *, id_column: str, limit: int = 5000) -> alt.Chart:
    """A scatter of the first ``limit`` rows, ``y`` by ``x``; each point carries its id for :func:`link_chart`."""
    for name in (x, y):
        if name not in rows.columns:
            raise InputError(
                f"cannot chart {name!r}: the frame has no such column (its columns: {', '.join(rows.columns)})."
            )
    points = rows.head(limit).select(id_column, x, y).with_columns(pl.col(id_column).cast(pl.String))
    return (
        alt.Chart(alt.Data(values=points.to_dicts()))
        .mark_circle(size=60, opacity=0.7)
        .encode(
            x=alt.X(x, type="quantitative"),
            y=alt.Y(y, type="quantitative"),
            tooltip=[
                alt.Tooltip(id_column, type="nominal"),
                alt.Tooltip(x, type="quantitative"),
                alt.Tooltip(y, type="quantitative"),
            ],
        )
        .properties(title=f"{y} by {x}: click a point to open its sample")
    )


def _on_pick(selection: Any, id_column: str, open_sample: Callable[[str], Any]) -> None:
    picked = [point.get(id_column) for point in getattr(selection, "value", []) or []]
    if picked and picked[0] is not None:
        open_sample(picked[0])


def _need_anywidget() -> None:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        raise InputError(
            "clicking a chart to open a sample needs anywidget: pip install anywidget (then restart the kernel); "
            "explorer.lineage(sample_id) works without it."
        ) from None
    alt.JupyterChart.enable_offline()
