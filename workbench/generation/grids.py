"""Variable grids: every combination of some axes, a seeded sample of them, or a table you bring.

wb.grid(topic=["apples", "trains"], level=["easy", "hard"])      # 4 rows
wb.sample_grid(10, seed=1, topic=topics, level=levels, tone=tones) # 10 distinct random rows
wb.personas().sample(5, seed=0)                                    # shipped personas, one per row
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import InputError, check_counts, check_type

__all__ = ["as_variables", "grid", "personas", "sample_grid", "shipped_data_dir"]


def shipped_data_dir() -> Path:
    """The folder inside the package where seed tasks, personas, rubrics and the reference sample ship.

    Inside the package (``workbench/shipped/``, declared as package data), so that an install from a wheel — a
    class's wheelhouse, ``pip install git+...`` — has them too; the repository's ``data/`` holds what runs write.
    """
    return Path(__file__).resolve().parents[1] / "shipped"


def grid(**axes: Any) -> pl.DataFrame:
    """Every combination of the axes' values, one row each, in a stable order."""
    names, values = _axes(axes)
    return _frame([dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)])


def sample_grid(n: int, *, seed: int = 0, **axes: Any) -> pl.DataFrame:
    """``n`` distinct combinations drawn at random (seeded) from the full grid of ``axes``."""
    check_counts(n=n)
    check_type(seed, int, "seed", "a whole number")
    names, values = _axes(axes)
    total = 1
    for column in values:
        total *= len(column)
    if not 1 <= n <= total:
        raise InputError(f"sample_grid: n must be between 1 and {total} (the number of combinations), got {n}.")
    chosen = random.Random(seed).sample(range(total), n)
    rows = []
    for flat in chosen:
        row = {}
        for name, column in zip(reversed(names), reversed(values), strict=True):
            flat, position = divmod(flat, len(column))
            row[name] = column[position]
        rows.append({name: row[name] for name in names})
    return _frame(rows)


def _axes(axes: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    if not axes:
        raise InputError("a grid needs at least one axis, e.g. wb.grid(topic=['apples', 'trains']).")
    values = []
    for name, axis in axes.items():
        column = [axis] if isinstance(axis, (str, bytes)) or not isinstance(axis, Iterable) else list(axis)
        if not column:
            raise InputError(f"the grid axis {name!r} is empty; give it at least one value.")
        values.append(column)
    return list(axes), values


def as_variables(variables: pl.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> pl.DataFrame:
    """Accept a frame, one dict of variables, or a list of dicts; return a frame of rows."""
    if variables is None:
        return pl.DataFrame([{}])
    if isinstance(variables, pl.DataFrame):
        frame = variables
    elif isinstance(variables, Mapping):
        frame = _frame([dict(variables)])
    elif isinstance(variables, Sequence) and not isinstance(variables, (str, bytes)):
        if not all(isinstance(row, Mapping) for row in variables):
            raise InputError("variables as a list must be a list of dicts, one per row, e.g. [{'topic': 'cats'}].")
        frame = _frame([dict(row) for row in variables])
    else:
        raise InputError(
            f"variables must be a polars DataFrame, a dict or a list of dicts; got {type(variables).__name__}."
        )
    if frame.height == 0:
        raise InputError("the variables table is empty: there is nothing to generate. Check the grid or filter.")
    return frame


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The rows as a frame, or an InputError saying why polars cannot hold them."""
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        raise InputError(
            f"a variable holds text that is not valid Unicode ({bad}, a lone surrogate); clean it, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')."
        ) from None
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"the variables cannot make a table: {type(exc).__name__}: {exc}. Give each variable values of one "
            "kind (all text, or all numbers)."
        ) from None


def personas(path: str | Path | None = None) -> pl.DataFrame:
    """The shipped personas (``workbench/shipped/personas.jsonl``): columns ``persona_id``, ``persona``, ``domain``."""
    path = Path(path) if path else shipped_data_dir() / "personas.jsonl"
    if not path.is_file():
        raise InputError(f"no personas file at {path}.")
    return pl.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
