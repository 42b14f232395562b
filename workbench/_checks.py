"""Input checks shared by the steps, with messages that say what is wrong and what the frame has."""

from __future__ import annotations

import polars as pl

from .errors import InputError

__all__ = ["require_columns"]


def require_columns(frame: object, *columns: str, purpose: str = "", nonempty: bool = False) -> None:
    """Raise TypeError for a non-frame, InputError naming the first missing column (or an empty frame)."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"expected a polars DataFrame, got {type(frame).__name__}.")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InputError(f"the frame has no column {missing[0]!r}{purpose} (its columns: {', '.join(frame.columns)}).")
    if nonempty and frame.height == 0:
        raise InputError(f"the frame is empty: there is nothing{purpose}.")
