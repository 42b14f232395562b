"""``wb.finetune``: train a model on a run table's chat rows and get back a GGUF that ``wb.connect`` serves.

    tuned = wb.finetune(kept)                     # LoRA on the embedded model, loss on the answers only
    llm = tuned.connect()                         # the same llama.cpp server, now with the tuned weights
    print(tuned.card.read_text())                 # the model card: base, settings, the rows it learned from
    tuned = wb.finetune(pairs, method="dpo")      # preference pairs (wb.preference_pairs): DPO, same server, same card

The rows are the ones ``wb.export.openai_chat`` writes (the user turn is the task, the assistant turn is the
response); for ``method="dpo"`` the pairs ``wb.export.trl_preferences`` writes (the prompt, a chosen and a rejected
answer). DPO's reference model is the base itself, with the LoRA switched off (``loop.Preference``).

The base GGUF is loaded dequantised to float32 by ``transformers``; a ``peft`` LoRA (``mode="lora"``) or every
weight (``mode="full"``) is trained with AdamW; the LoRA is merged into the weights and llama.cpp's converter writes
one GGUF (Q8_0: about 145 MB for SmolLM2-135M). A merged file rather than the adapter over the
base (``llama-server --lora``): ``bench/train.py`` serves both, and the merged one ran 1.2-1.35x faster with
nearly the same answers. The adapter is kept too (``tuned.adapter``, peft format; ``convert.convert_adapter_to_gguf``).

Training is keyed like the response cache: the SHA-256 of the chat rows, the base file and every setting
(``TrainingSettings.key``). The same call again finds the model under ``data/models/`` and trains nothing.

    finetune ─ TrainingSettings(...)      every argument checked, before anything is loaded   (settings.py)
             ─ the chat rows, the base    written to JSONL (pairs for DPO), hashed with the settings: the key
             ─ data/models/<base>-[dpo-]<mode>-<key>/training.json there?  → that model, nothing trained
             ─ check_resources            free memory and disk against what the mode needs     (resources.py)
             ─ train_model                load, tokenise, train, merge, write the GGUF          (loop.py)
             ─ MODEL_CARD.md, training.json
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..curation.export import openai_chat
from ..curation.preferences import trl_preferences
from ..errors import InputError, ResourceError
from ..models.client import LLM
from ..models.config import load_settings
from ..models.local import default_model_path
from .convert import gguf_facts, require_training_packages
from .loop import Trained, check_loadable, train_model
from .model_card import lineage, model_card, pair_lineage
from .resources import check_resources, resources_needed
from .settings import MODES, TrainingSettings

__all__ = ["MODES", "ResourceError", "TunedModel", "finetune"]


@dataclass
class TunedModel:
    """A trained model: its GGUF file, its model card, and what training it took."""

    path: Path
    card: Path
    key: str
    trained: bool
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    # the LoRA adapter before merging (peft format: peft, vLLM's --lora-modules); None for a full fine-tune, and
    # for a model trained before adapters were kept (2026-11-26) or whose adapter folder was deleted
    adapter: Path | None = None

    def connect(self, **settings: Any) -> LLM:
        """Serve the tuned model through the embedded llama.cpp server: ``wb.connect(local_model=path)``."""
        from ..models.connect import connect

        return connect(local_model=self.path, **settings)


def finetune(
    frame: pl.DataFrame,
    *,
    base: str | Path | None = None,
    method: str = "sft",
    mode: str = "lora",
    epochs: int = 2,
    learning_rate: float | None = None,
    batch_size: int = 8,
    rank: int = 16,
    max_length: int = 512,
    seed: int = 0,
    system: str | None = None,
    response: str = "response",
    task_column: str | None = None,
    outtype: str = "q8_0",
    beta: float | None = None,
    dpo_loss: str | None = None,
    nll: float | None = None,
    max_memory_gb: float | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> TunedModel:
    """Fine-tune ``base`` (a GGUF file; default: the embedded SmolLM2) on ``frame``'s chat rows, or its pairs.

    ``method`` is what the loss learns from: ``"sft"``, the answers given (loss on the assistant's answer
    only); or ``"dpo"``, preference pairs (``prompt``, ``chosen``, ``rejected``: ``wb.preference_pairs``), with
    ``beta`` (0.1), ``dpo_loss`` (``"sigmoid"`` DPO, ``"ipo"``, ``"dpop"`` DPO-Positive) and ``nll`` (0: the weight
    of a cross-entropy on the chosen answer, RPO) — see ``loop.Preference``. ``mode`` is ``"lora"`` (rank
    ``rank`` on every linear layer, merged after training) or ``"full"``. ``max_memory_gb`` caps the memory
    training may use (default: what is free). Returns a :class:`TunedModel`; ``trained`` is False when the same
    rows, base and settings were trained before and the model was found under ``data_dir/models``.
    """
    settings = TrainingSettings(
        method=method,
        mode=mode,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        rank=rank,
        max_length=max_length,
        seed=seed,
        system=system,
        outtype=outtype,
        beta=beta,
        dpo_loss=dpo_loss,
        nll=nll,
    )
    base_path, base_info = _base(base)
    models_dir = _models_dir(data_dir)
    preferences = settings.method == "dpo"
    if preferences:
        rows_file = _pair_rows(frame, models_dir, settings.system)
    else:
        rows_file = _chat_rows(frame, models_dir, system=settings.system, response=response, task_column=task_column)
    key = settings.key(rows_file.read_bytes(), base_info["sha256"])
    stem = base_path.stem.split(".")[0]
    target = models_dir / f"{stem}-{'dpo-' if preferences else ''}{settings.mode}-{key[:12]}"
    found = _finished(target)
    if found is not None:
        rows_file.unlink()
        return found
    check_resources(resources_needed(base_info["parameters"], settings), target.parent, max_memory_gb)
    target.mkdir(parents=True, exist_ok=True)
    kept = rows_file.replace(target / ("train.pairs.jsonl" if preferences else "train.chat.jsonl"))
    frame.write_parquet(target / "train.parquet")
    rows = [_training_row(json.loads(line), preferences) for line in kept.read_text().splitlines()]
    gguf = target / f"{stem}-{key[:12]}.{settings.outtype}.gguf"
    trained = train_model(rows, base_path, base_info["sha256"], settings, target, gguf, progress)
    shown = pair_lineage(frame) if preferences else lineage(frame, response, task_column)
    return _record(target, key, base_info, settings, trained, shown)


def _training_row(line: dict[str, Any], preferences: bool) -> Any:
    """What the training loop reads from one line: the chat messages, or a pair's prompt and two answers."""
    if not preferences:
        return line["messages"]
    return {
        "prompt": line["prompt"],
        "chosen": line["chosen"][0]["content"],
        "rejected": line["rejected"][0]["content"],
    }


def _base(base: str | Path | None) -> tuple[Path, dict[str, Any]]:
    """The base GGUF's path and facts (architecture, name, parameters, file, path, sha256); InputError if
    it is no GGUF or of an architecture transformers cannot load for training."""
    require_training_packages()
    path = Path(base).expanduser().resolve() if base else default_model_path()
    facts = gguf_facts(path)
    check_loadable(path, facts["architecture"])
    return path, {**facts, "file": path.name, "path": str(path), "sha256": _file_sha256(path)}


def _models_dir(data_dir: str | Path | None) -> Path:
    resolved = load_settings(data_dir=data_dir).data_dir if data_dir is not None else load_settings().data_dir
    return Path(resolved) / "models"


def _chat_rows(frame: pl.DataFrame, folder: Path, **options: Any) -> Path:
    """The frame as chat JSONL, written by the same code as the OpenAI fine-tuning export."""
    return _training_file(
        frame,
        folder,
        ".chat.jsonl",
        lambda name: openai_chat(frame, name, **options),
        kind="chat rows",
        empty="nothing to train on: the frame has no rows. If a filter or verifier rejected every sample, sample "
        "more (a larger k or more items), raise the temperature, or loosen the filter.",
        unusable="the frame has no usable chat rows for fine-tuning: {error} Training needs a task (a 'task' column, "
        "task_column=..., or the 'messages' a run table keeps) and a non-empty answer in 'response' per row.",
    )


def _pair_rows(frame: pl.DataFrame, folder: Path, system: str | None) -> Path:
    """The pairs as TRL's conversational preference JSONL, written by the same code as that export."""
    return _training_file(
        frame,
        folder,
        ".pairs.jsonl",
        lambda name: trl_preferences(frame, name, system=system),
        kind="preference pairs",
        empty="nothing to train on: the frame has no pairs. wb.preference_pairs says why when it finds none; sample "
        "more answers per item so that some differ.",
        unusable="the frame has no usable preference pairs for method='dpo': {error} Make them with "
        "wb.preference_pairs(samples, by=...): columns prompt, chosen and rejected, two different answers.",
    )


def _training_file(
    frame: pl.DataFrame, folder: Path, suffix: str, write: Any, *, kind: str, empty: str, unusable: str
) -> Path:
    """``write(name)`` into a new file in ``folder``; an empty or unusable frame is an InputError and leaves no file."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"finetune expects a polars DataFrame of {kind}, got {type(frame).__name__}.")
    if frame.height == 0:
        raise InputError(empty)
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="train-", suffix=suffix, dir=folder)
    os.close(handle)
    os.chmod(name, 0o644)
    try:
        return write(name)
    except InputError as error:
        Path(name).unlink(missing_ok=True)
        raise InputError(unusable.format(error=error)) from None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finished(target: Path) -> TunedModel | None:
    record = target / "training.json"
    if not record.is_file():
        return None
    facts = json.loads(record.read_text())
    gguf = Path(facts["gguf"])
    if not gguf.is_file():
        return None
    adapter = Path(facts["adapter"]) if facts.get("adapter") else None
    adapter = adapter if adapter is not None and adapter.is_dir() else None
    card = target / "MODEL_CARD.md"
    return TunedModel(gguf, card, facts["key"], False, facts["settings"], facts["stats"], adapter)


def _record(
    target: Path, key: str, base: dict[str, Any], settings: TrainingSettings, trained: Trained, rows: pl.DataFrame
) -> TunedModel:
    """Write the model card and training.json (last: a folder without it is trained again) for a new model."""
    facts = {
        "name": trained.gguf.stem,
        "key": key,
        "gguf": str(trained.gguf),
        "adapter": str(trained.adapter) if trained.adapter else None,
        "base": base,
        "settings": settings.record(),
        "stats": trained.stats,
        "versions": trained.versions,
    }
    (target / "MODEL_CARD.md").write_text(model_card(facts, rows), encoding="utf-8")
    (target / "training.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return TunedModel(
        trained.gguf, target / "MODEL_CARD.md", key, True, facts["settings"], trained.stats, trained.adapter
    )
