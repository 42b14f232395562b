"""Export a curated frame: Parquet, JSONL, OpenAI fine-tuning chat JSONL, Hugging Face ``datasets``,
and a dataset card.

    wb.export.parquet(kept, "data/runs/math-v1.parquet")
    wb.export.jsonl(kept, "data/runs/math-v1.jsonl")
    wb.export.openai_chat(kept, "data/runs/math-v1.chat.jsonl", system="You write math problems.")
    wb.export.hf_dataset(kept)                      # needs the hf extra: pip install -e '.[hf]'
    wb.export.dataset_card(kept, "data/runs/math-v1.md", history=history, filters=report)

Every format is written to a temporary file beside the target, checked, and only then renamed over it
(``workbench.files.atomic_path``): an export that fails — bad rows, a full disk — leaves the earlier file
as it was, and a folder that cannot be written is a ``StorageError`` saying so.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import task_texts
from ..errors import InputError
from ..files import atomic_path, storage_error
from .preferences import openai_preferences, preference_card, trl_preferences  # noqa: F401  (wb.export.*, for pairs)

__all__ = ["dataset_card", "hf_dataset", "jsonl", "openai_chat", "parquet", "validate_chat_jsonl"]

CHAT_ROLES = {"system", "user", "assistant"}


_HINT = "Choose a folder you can write to (pass another path)."


@contextlib.contextmanager
def _written(path: str | Path) -> Iterator[Path]:
    """Where an export writes: a temporary file that replaces ``path`` only when the block succeeds.

    A column polars cannot write in the format (Python objects, say) is an InputError naming the file.
    """
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise InputError(f"an export needs a file path, e.g. 'data/runs/kept.jsonl'; got {path!r}.")
    with atomic_path(path, hint=_HINT) as temporary:
        try:
            yield temporary
        except pl.exceptions.PolarsError as exc:
            raise InputError(
                f"the frame cannot be written to {path}: {type(exc).__name__}: {exc}. Drop or convert the column "
                "it names (nothing was written; an earlier file there is unchanged)."
            ) from None


def _check_frame(frame: pl.DataFrame) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise InputError(f"an export takes a polars DataFrame, got {type(frame).__name__}.")
    if frame.height == 0:
        raise InputError("the frame is empty: there is nothing to export. Check the filters that produced it.")


def parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write the frame, every column, as Parquet."""
    _check_frame(frame)
    with _written(path) as temporary:
        frame.write_parquet(temporary)
    return Path(path)


def jsonl(frame: pl.DataFrame, path: str | Path, columns: list[str] | None = None) -> Path:
    """Write one JSON object per row (all columns, or ``columns``)."""
    _check_frame(frame)
    missing = [c for c in columns or [] if c not in frame.columns]
    if missing:
        raise InputError(f"the frame has no column {missing[0]!r} to export.")
    with _written(path) as temporary:
        (frame.select(columns) if columns else frame).write_ndjson(temporary)
    return Path(path)


def openai_chat(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    system: str | None = None,
    response: str = "response",
    task_column: str | None = None,
) -> Path:
    """Write OpenAI fine-tuning chat JSONL: ``{"messages": [system?, user, assistant]}`` per row.

    The user turn is the task (``task_column``, else ``task``, else the last user message of
    ``messages``); the assistant turn is ``response``. The file is validated before it replaces anything
    at ``path``; any problem is an error that names the line.
    """
    _check_frame(frame)
    if response not in frame.columns:
        raise InputError(f"the frame has no column {response!r} for the assistant turn.")
    tasks = task_texts(frame, task_column)
    if all(task is None for task in tasks):
        raise InputError("no task text found: add a 'task' column, or pass task_column=..., or keep 'messages'.")
    with _written(path) as temporary:
        with temporary.open("w", encoding="utf-8") as out:
            for task, answer in zip(tasks, frame[response].to_list(), strict=True):
                messages = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": task},
                    {"role": "assistant", "content": answer},
                ]
                out.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
        problems = validate_chat_jsonl(temporary)
        if problems:
            raise InputError(
                f"{path} would not be valid fine-tuning data: {'; '.join(problems[:5])}. Filter those rows out "
                "(nothing was written; an earlier file there is unchanged)."
            )
    return Path(path)


def validate_chat_jsonl(path: str | Path) -> list[str]:
    """Problems in a chat fine-tuning file (empty when valid): JSON per line, roles, non-empty content."""
    problems = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            example = json.loads(line)
        except ValueError:
            problems.append(f"line {number} is not JSON")
            continue
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            problems.append(f"line {number} has no 'messages' list")
            continue
        problems += [f"line {number}: {problem}" for problem in _message_problems(messages)]
    return problems


def _message_problems(messages: list[Any]) -> list[str]:
    problems = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in CHAT_ROLES:
            problems.append(f"a message has role {role!r} (allowed: system, user, assistant)")
        elif not isinstance(message.get("content"), str) or not message["content"].strip():
            problems.append(f"an empty {role} message")
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        problems.append("it does not end with an assistant message")
    return problems


def hf_dataset(frame: pl.DataFrame, path: str | Path | None = None) -> Any:
    """A Hugging Face ``datasets.Dataset`` of the frame; with ``path``, also saved there (``save_to_disk``)."""
    _check_frame(frame)
    try:
        import datasets
    except ImportError:
        raise InputError(
            "Hugging Face export needs the 'datasets' package: pip install -e '.[hf]' in the workbench's folder "
            "(or pip install datasets)."
        ) from None
    dataset = datasets.Dataset.from_polars(frame)
    if path is not None:
        _save_dataset(dataset, Path(path))
    return dataset


def _save_dataset(dataset: Any, path: Path) -> None:
    """``save_to_disk`` into a temporary folder beside ``path``, then swapped in: a failure leaves the earlier one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    old = temporary.with_name(temporary.name + ".old")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.save_to_disk(str(temporary))
        if path.exists():  # a folder cannot be renamed over a full one: the earlier one steps aside for the swap
            path.rename(old)
        temporary.rename(path)
    except OSError as exc:
        if old.exists() and not path.exists():
            old.rename(path)
        raise storage_error(path, exc, _HINT) from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)


def dataset_card(
    frame: pl.DataFrame,
    path: str | Path | None = None,
    *,
    title: str = "Synthetic dataset",
    history: pl.DataFrame | None = None,
    filters: pl.DataFrame | None = None,
    description: str = "",
) -> str:
    """A Markdown dataset card: sources, prompts, models, rounds, filters, counts; written to ``path`` if given."""
    _check_frame(frame)
    source = history if history is not None else frame
    lines = [f"# {title}", "", description or "Synthetic data made with the Synthetic Data Workbench.", ""]
    lines += ["## Counts", "", f"- rows in this dataset: {frame.height}"]
    if history is not None:
        lines.append(f"- rows generated and revised in all: {history.height}")
    if "round" in source.columns:
        lines.append(f"- refinement rounds: {source['round'].max()}")
    if "score" in frame.columns and frame["score"].drop_nulls().len():
        scores = frame["score"].drop_nulls()
        lines.append(f"- score: mean {scores.mean():.2f}, min {scores.min():g}, max {scores.max():g}")
    lines += ["", "## Sources", ""] + _sources(source)
    lines += ["", "## Models", ""] + _models(source)
    if filters is not None and filters.height:
        lines += ["", "## Filters", "", "| filter | removed | remaining | note |", "|---|---|---|---|"]
        for rule in filters.iter_rows(named=True):
            lines.append(f"| {rule['filter']} | {rule['removed']} | {rule['remaining']} | {rule['note'] or ''} |")
    lines += [
        "",
        "## Columns",
        "",
        ", ".join(f"`{c}`" for c in frame.columns),
        "",
        f"_Card written {time.strftime('%Y-%m-%d %H:%M')}._",
        "",
    ]
    card = "\n".join(lines)
    if path is not None:
        with _written(path) as temporary:
            temporary.write_text(card, encoding="utf-8")
    return card


def _sources(frame: pl.DataFrame) -> list[str]:
    lines = []
    if "prompt_hash" in frame.columns:
        hashes = frame["prompt_hash"].drop_nulls().unique().sort().to_list()
        lines.append(f"- prompt templates (hash): {', '.join(hashes) or 'none recorded'}")
    originals = frame.filter(pl.col("round") == 0) if "round" in frame.columns else frame
    example = next((task for task in task_texts(originals) if task), None)
    if example:
        lines.append(f"- an example prompt: {example[:300]!r}")
    if "params" in frame.columns:
        lines.append(f"- generation parameters: {', '.join(frame['params'].drop_nulls().unique().sort().to_list())}")
    return lines or ["- not recorded"]


def _models(frame: pl.DataFrame) -> list[str]:
    lines = []
    if "model" in frame.columns:
        lines.append(f"- generator: {', '.join(frame['model'].drop_nulls().unique().sort().to_list())}")
    if "judge" in frame.columns:
        lines.append(f"- judge: {', '.join(frame['judge'].drop_nulls().unique().sort().to_list())}")
    return lines or ["- not recorded"]
