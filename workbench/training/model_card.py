"""The model card every trained model carries: the base, the settings, and the rows it learned from.

The card names each training row by ``sample_id`` with its lineage (``parent_id``, ``round``, the model
and prompt template that wrote it) so a reader can trace any behaviour of the tuned model back to the
samples, and the samples back to the prompts; a DPO model's card names each pair, why its chosen answer was
preferred and the samples both answers came from. It is written beside the GGUF file as ``MODEL_CARD.md``.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from ..columns import task_texts

__all__ = ["LINEAGE_COLUMNS", "PAIR_LINEAGE_COLUMNS", "lineage", "model_card", "pair_lineage"]

LINEAGE_COLUMNS = ["sample_id", "parent_id", "round", "model", "prompt_hash"]
PAIR_LINEAGE_COLUMNS = ["pair_id", "chosen_sample_id", "rejected_sample_id", "why", "prompt", "chosen", "rejected"]


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


def pair_lineage(pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per training pair: its id, the samples its two answers came from, why, the prompt and answers."""
    table = pairs.with_row_index("row")
    return table.select(
        pl.col("pair_id") if "pair_id" in pairs.columns else pl.format("pair-{}", "row").alias("pair_id"),
        *[pl.col(name).cast(pl.String) for name in PAIR_LINEAGE_COLUMNS[1:] if name in pairs.columns],
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
        *_data_heading(settings, rows),
        "",
        *_lineage_table(rows),
        "",
        f"_Card written {time.strftime('%Y-%m-%d %H:%M')}._",
        "",
    ]
    return "\n".join(lines)


def _data_heading(settings: dict[str, Any], rows: pl.DataFrame) -> list[str]:
    if settings.get("method") == "dpo":
        nll = f" plus {settings['nll']:g} x the chosen answer's cross-entropy" if settings.get("nll") else ""
        return [
            f"## Data: {rows.height} preference pairs",
            "",
            f"Loss: `{settings['dpo_loss']}` with beta {settings['beta']:g}{nll}, on the answers' tokens only; the "
            "reference model is the base (the LoRA switched off). The pairs are in `train.pairs.jsonl` (as "
            "`wb.export.trl_preferences` writes them); every column of the pair frame is in `train.parquet`.",
        ]
    return [
        f"## Data: {rows.height} training rows",
        "",
        "Loss was computed on the assistant's answer only. The chat rows are in `train.chat.jsonl` (as "
        "`wb.export.openai_chat` writes them); every column of the training frame is in `train.parquet`.",
    ]


def _show(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _lineage_table(rows: pl.DataFrame) -> list[str]:
    order = PAIR_LINEAGE_COLUMNS if "pair_id" in rows.columns else [*LINEAGE_COLUMNS, "task", "answer"]
    columns = [c for c in order if c in rows.columns]
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
