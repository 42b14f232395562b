"""``wb.Labeler``: collect a few human scores inline, beside the judge's, saved as you go.

    labeler = wb.Labeler(graded, name="math-v1")    # shows one sample at a time with its judge score
    labeler                                          # click a score; it is saved at once
    wb.agreement(labeler.labelled(), "score", "human_score")

Labels go to ``data/labels/<name>.parquet`` (``sample_id``, ``human_score``, ``labelled_at``) after
every click, so closing the notebook loses nothing and a new ``Labeler`` with the same name resumes
at the first unlabelled sample. Everything is widget state a test can drive: ``score_buttons``,
``skip_button``, ``back_button``, ``sample.value``, ``index``, ``labels``.
"""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets
import polars as pl

from ..errors import InputError, check_type
from ..grading.rubrics import check_scale
from ..models.config import load_settings
from .saved import load_choices, save_choices
from .snapshot import SnapshotBox

__all__ = ["Labeler"]


class Labeler(SnapshotBox):
    """One sample at a time: its text, the judge's score and reason, and a button per score."""

    def __init__(
        self,
        frame: pl.DataFrame,
        *,
        name: str = "labels",
        scale: tuple[int, int] = (1, 5),
        column: str = "response",
        labels_dir: str | Path | None = None,
    ) -> None:
        check_type(
            frame, pl.DataFrame, "the Labeler's frame", "a polars frame of samples (e.g. what wb.grade returned)"
        )
        missing = [c for c in ("sample_id", column) if c not in frame.columns]
        if missing:
            raise InputError(f"the Labeler needs a {missing[0]!r} column (the frame has {', '.join(frame.columns)}).")
        if frame.height == 0:
            raise InputError("the frame is empty: there is nothing to label.")
        low, high = check_scale(scale)
        self.frame, self.column = frame, column
        self.path = Path(labels_dir or load_settings().data_dir / "labels") / f"{name}.parquet"
        self.labels: dict[str, int] = load_choices(self.path, "human_score")
        self.sample = widgets.HTML()
        self.judge = widgets.HTML()
        self.progress = widgets.HTML()
        self.score_buttons = [
            widgets.Button(description=str(value), layout=widgets.Layout(width="48px"))
            for value in range(low, high + 1)
        ]
        for button in self.score_buttons:
            button.on_click(lambda clicked: self.label(int(clicked.description)))
        self.back_button = widgets.Button(description="◀ back")
        self.skip_button = widgets.Button(description="skip ▶")
        self.back_button.on_click(lambda _: self.show(self.index - 1))
        self.skip_button.on_click(lambda _: self.show(self.index + 1))
        buttons = widgets.HBox([self.back_button, *self.score_buttons, self.skip_button])
        super().__init__([self.progress, self.sample, self.judge, buttons])
        self.index = 0
        self.show(self._first_unlabelled())

    def snapshot_html(self) -> str:
        """The sample shown now and the judge's side, as static HTML."""
        return (
            "<div style='border:1px solid #ccc;padding:8px;border-radius:4px'><b>Labeler</b> (static view) · "
            f"{self.progress.value}{self.sample.value}<div>{self.judge.value}</div></div>"
        )

    def _first_unlabelled(self) -> int:
        ids = self.frame["sample_id"].to_list()
        return next((i for i, sample_id in enumerate(ids) if sample_id not in self.labels), len(ids) - 1)

    def show(self, index: int) -> None:
        """Show sample ``index`` (clamped to the frame)."""
        self.index = max(0, min(index, self.frame.height - 1))
        row = self.frame.row(self.index, named=True)
        self.sample.value = f"<div style='white-space:pre-wrap'>{html.escape(str(row[self.column]))}</div>"
        score, reason = row.get("score"), row.get("reason")
        judged = "not graded" if score is None else f"judge: <b>{score:g}</b> — {html.escape(str(reason or ''))}"
        mine = self.labels.get(row["sample_id"])
        self.judge.value = judged + ("" if mine is None else f" · your score: <b>{mine}</b>")
        self.progress.value = f"sample {self.index + 1} of {self.frame.height} · {len(self.labels)} labelled"

    def label(self, value: int) -> None:
        """Record ``value`` for the sample shown, save every label, and move to the next sample."""
        self.labels[self.frame["sample_id"][self.index]] = value
        save_choices(self.path, self.labels, "human_score", pl.Int64, stamp="labelled_at")
        self.show(self.index + 1)

    def labelled(self) -> pl.DataFrame:
        """The frame with a ``human_score`` column (null where not labelled)."""
        saved = pl.DataFrame(
            [{"sample_id": k, "human_score": v} for k, v in self.labels.items()],
            schema={"sample_id": pl.String, "human_score": pl.Int64},
        )
        return self.frame.drop("human_score", strict=False).join(
            saved, on="sample_id", how="left", maintain_order="left"
        )
