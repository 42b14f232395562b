"""What a person chooses in a view (the Labeler's scores, the explorer's marks), saved at every click.

    labels = load_choices(path, "human_score")
    save_choices(path, labels, "human_score", pl.Int64, stamp="labelled_at")

One Parquet file per name: ``sample_id``, the value, and when it was saved. Written to a temporary file
and renamed over the old one, so a crash mid-write never leaves a broken file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from ..files import atomic_path

__all__ = ["load_choices", "save_choices"]


def load_choices(path: Path, column: str) -> dict[str, Any]:
    """``{sample_id: value}`` from ``path``; empty when nothing was saved yet."""
    if not path.is_file():
        return {}
    saved = pl.read_parquet(path)
    return dict(zip(saved["sample_id"], saved[column], strict=True))


def save_choices(path: Path, choices: dict[str, Any], column: str, dtype: pl.DataType, *, stamp: str) -> None:
    """Write every choice to ``path`` atomically, each with the time of this save in ``stamp``.

    A folder that cannot be written is a ``StorageError`` naming it; the choices stay in memory, so a view
    made with another folder (``labels_dir=`` / ``marks_dir=``) can save them.
    """
    now = time.time()
    schema = {"sample_id": pl.String, column: dtype, stamp: pl.Float64}
    rows = [{"sample_id": key, column: value, stamp: now} for key, value in choices.items()]
    hint = "Make the view with labels_dir= (the Labeler) or marks_dir= (the explorer) set to a folder you can write to."
    with atomic_path(path, hint=hint) as temporary:
        pl.DataFrame(rows, schema=schema).write_parquet(temporary)
