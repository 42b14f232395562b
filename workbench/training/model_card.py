"""The model card every trained model carries: the base, the settings, and the rows it learned from.

The card names each training row by ``sample_id`` with its lineage (``parent_id``, ``round``, the model
and prompt template that wrote it) so a reader can trace any behaviour of the tuned model back to the
samples, and the samples back to the prompts. It is written beside the GGUF file as ``MODEL_CARD.md``.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from ..columns import task_texts

__all__ = ["LINEAGE_COLUMNS", "lineage", "model_card"]

LINEAGE_COLUMNS = ["sample_id", "parent_id", "round", "model", "prompt_hash"]


def lineage(frame: pl.DataFrame, response: str = "response", task_column: str | None = None) -> pl.DataFrame:
    """One row per training row: its id, lineage columns (when the frame has them), task and answer."""
    present = [column for column in LINEAGE_COLUMNS if column in frame.columns]
    table = frame.with_row_index("row").select(
        pl.col("sample_id") if "sample_id" in present else pl.format("row-{}", "row").alias("sample_id"),
        *[pl.col(column) for column in present if column != "sample_id"],
    )
    return table.with_columns(
        pl.Series("task", task_texts(frame, task_column), dtype=pl.String),
        frame[response].cast(pl.String).alias("answer"),
    )


def model_card(facts: dict[str, Any], rows: pl.DataFrame) -> str:
    """The Markdown card for a trained model: ``facts`` (base, settings, stats, paths) and its ``lineage`` rows."""
    settings, stats, base = facts["settings"], facts["stats"], facts["base"]
    lines = [
        f"# {facts['name']}",
        "",
        f"A {settings['mode']} fine-tune of `{base['file']}` ({base['architecture']}, {base['parameters']:,} "
        "parameters) on the rows below, made with the Synthetic Data Workbench.",
        "",
        "Serve it: `wb.connect(local_model=" + repr(str(facts["gguf"])) + ")`",
        *_adapter_line(facts.get("adapter")),
        "",
        "## Base model",
        "",
        f"- file: `{base['path']}`",
        f"- sha256: `{base['sha256']}`",
        "",
        "## Settings",
        "",
        *[f"- {name}: `{value}`" for name, value in sorted(settings.items())],
        f"- training key: `{facts['key']}` (same rows + same base + same settings = same model; never trained twice)",
        f"- output: GGUF `{settings['outtype']}`, written by llama.cpp's convert_hf_to_gguf.py",
        f"- software: {', '.join(f'{name} {version}' for name, version in sorted(facts['versions'].items()))}",
        "",
        "## Training",
        "",
        *[f"- {name}: {_show(value)}" for name, value in stats.items() if name != "losses"],
        "",
        f"## Data: {rows.height} training rows",
        "",
        "Loss was computed on the assistant's answer only. The chat rows are in `train.chat.jsonl` (as "
        "`wb.export.openai_chat` writes them); every column of the training frame is in `train.parquet`.",
        "",
        *_lineage_table(rows),
        "",
        f"_Card written {time.strftime('%Y-%m-%d %H:%M')}._",
        "",
    ]
    return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _lineage_table(rows: pl.DataFrame) -> list[str]:
    columns = [c for c in [*LINEAGE_COLUMNS, "task", "answer"] if c in rows.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows.iter_rows(named=True):
        lines.append("| " + " | ".join(_cell(row[column]) for column in columns) + " |")
    return lines


def _cell(value: Any, width: int = 60) -> str:
    text = "" if value is None else " ".join(str(value).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|")


def _adapter_line(adapter: str | None) -> list[str]:
    if not adapter:
        return []
    return [
        "",
        f"The LoRA adapter itself, before merging, is in `{adapter}` (peft format: `peft`, vLLM's `--lora-modules`).",
    ]
