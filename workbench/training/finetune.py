"""``wb.finetune``: train a model on a run table's chat rows and get back a GGUF that ``wb.connect`` serves.

    tuned = wb.finetune(kept)                     # LoRA on the embedded model, loss on the answers only
    llm = tuned.connect()                         # the same llama.cpp server, now with the tuned weights
    print(tuned.card.read_text())                 # the model card: base, settings, the rows it learned from

The rows are the ones ``wb.export.openai_chat`` writes (the user turn is the task, the assistant turn is the
response). The base GGUF is loaded dequantised to float32 by ``transformers``; a ``peft`` LoRA (``mode="lora"``)
or every weight (``mode="full"``) is trained with AdamW; the LoRA is merged into the weights and llama.cpp's
converter writes one GGUF (Q8_0: about 145 MB for SmolLM2-135M). A merged file rather than the adapter over the
base (``llama-server --lora``): ``bench/train.py`` serves both, and the merged one ran 1.2-1.35x faster with
nearly the same answers. The adapter is kept too (``tuned.adapter``, peft format; ``convert.convert_adapter_to_gguf``).

Training is keyed like the response cache: the SHA-256 of the chat rows, the base file and every setting.
The same call again finds the model under ``data/models/`` and trains nothing. Before training starts the
free memory and disk are checked against what the chosen mode needs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..curation.export import openai_chat
from ..errors import ConfigError, InputError, ResourceError, check_counts
from ..models.client import LLM
from ..models.config import load_settings
from ..models.local import default_model_path
from .convert import convert_to_gguf, gguf_facts, require_training_packages
from .model_card import lineage, model_card

__all__ = ["MODES", "ResourceError", "TunedModel", "check_resources", "finetune", "resources_needed"]

MODES = ("lora", "full")
TRAINING_FORMAT = 1  # bump when a change to training would make the same key give a different model
_DEFAULT_LR = {"lora": 1e-3, "full": 5e-5}
_GB = 1024**3


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
    max_memory_gb: float | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> TunedModel:
    """Fine-tune ``base`` (a GGUF file; default: the embedded SmolLM2) on ``frame``'s chat rows.

    ``mode`` is ``"lora"`` (rank ``rank`` on every linear layer, merged after training) or ``"full"``.
    The loss counts only the assistant's answer. ``max_memory_gb`` caps the memory training may use
    (default: what is free). Returns a :class:`TunedModel`; ``trained`` is False when the same rows,
    base and settings were trained before and the model was found under ``data_dir/models``.
    """
    require_training_packages()
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    check_counts(epochs=epochs, batch_size=batch_size, rank=rank, max_length=max_length)
    base_path = Path(base).expanduser().resolve() if base else default_model_path()
    facts = gguf_facts(base_path)
    settings = {
        "mode": mode,
        "epochs": epochs,
        "learning_rate": learning_rate or _DEFAULT_LR[mode],
        "batch_size": batch_size,
        "rank": rank if mode == "lora" else None,
        "max_length": max_length,
        "seed": seed,
        "system": system,
        "outtype": outtype,
        "format": TRAINING_FORMAT,
    }
    models_dir = _models_dir(data_dir)
    chat_file = _chat_rows(frame, models_dir, system=system, response=response, task_column=task_column)
    base_info = {**facts, "file": base_path.name, "path": str(base_path), "sha256": _file_sha256(base_path)}
    key = _training_key(chat_file, base_info["sha256"], settings)
    target = models_dir / f"{base_path.stem.split('.')[0]}-{mode}-{key[:12]}"
    found = _finished(target)
    if found is not None:
        chat_file.unlink()
        return found
    check_resources(resources_needed(facts["parameters"], mode), target.parent, max_memory_gb)
    target.mkdir(parents=True, exist_ok=True)
    chat_file.replace(target / "train.chat.jsonl")
    frame.write_parquet(target / "train.parquet")
    return _train_and_write(frame, target, base_path, base_info, settings, key, response, task_column, progress)


def _models_dir(data_dir: str | Path | None) -> Path:
    resolved = load_settings(data_dir=data_dir).data_dir if data_dir is not None else load_settings().data_dir
    return Path(resolved) / "models"


def _chat_rows(frame: pl.DataFrame, folder: Path, **options: Any) -> Path:
    """The frame as chat JSONL, written by the same code as the OpenAI fine-tuning export."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"finetune expects a polars DataFrame of chat rows, got {type(frame).__name__}.")
    if frame.height == 0:
        raise InputError(
            "nothing to train on: the frame has no rows. If a filter or verifier rejected every sample, sample "
            "more (a larger k or more items), raise the temperature, or loosen the filter."
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="train-", suffix=".chat.jsonl", dir=folder)
    os.close(handle)
    os.chmod(name, 0o644)
    try:
        return openai_chat(frame, name, **options)
    except InputError as error:
        Path(name).unlink(missing_ok=True)
        raise InputError(
            f"the frame has no usable chat rows for fine-tuning: {error} Training needs a task (a 'task' column, "
            "task_column=..., or the 'messages' a run table keeps) and a non-empty answer in 'response' per row."
        ) from None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _training_key(chat_file: Path, base_sha: str, settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(chat_file.read_bytes())
    digest.update(base_sha.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
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


def resources_needed(parameters: int, mode: str) -> dict[str, float]:
    """Bytes of memory and disk that training a model of ``parameters`` weights in ``mode`` needs (estimates).

    Memory: float32 weights, plus gradients and two AdamW moments for a full fine-tune, plus about 1.5 GB
    for activations and the libraries. Disk: the float32 checkpoint and the GGUF written from it.
    """
    weights = parameters * 4
    memory = weights * (4 if mode == "full" else 1.3) + 1.5 * _GB
    return {"memory": memory, "disk": weights * 1.6 + 0.2 * _GB}


def check_resources(
    needed: dict[str, float],
    folder: Path,
    max_memory_gb: float | None = None,
    available: dict[str, float] | None = None,
) -> None:
    """Raise :class:`ResourceError` when free memory or disk (``available``, default: measured now) is short."""
    available = available or {"memory": _free_memory(), "disk": _free_disk(folder)}
    if max_memory_gb is not None:
        available = {**available, "memory": min(available["memory"], max_memory_gb * _GB)}
    for kind, advice in (
        ("memory", "close other programs, use mode='lora' (it needs far less than 'full'), or raise max_memory_gb"),
        ("disk", f"free space where models are written ({folder}) or pass data_dir=... on a larger disk"),
    ):
        if needed[kind] > available[kind]:
            raise ResourceError(
                f"not enough free {kind} to train: about {needed[kind] / _GB:.1f} GB needed, "
                f"{available[kind] / _GB:.1f} GB available. Nothing was trained; {advice}."
            )


def _free_memory() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def _free_disk(folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    return float(shutil.disk_usage(folder).free)


def _train_and_write(
    frame: pl.DataFrame,
    target: Path,
    base_path: Path,
    base_info: dict[str, Any],
    settings: dict[str, Any],
    key: str,
    response: str,
    task_column: str | None,
    progress: bool,
) -> TunedModel:
    examples = [json.loads(line)["messages"] for line in (target / "train.chat.jsonl").read_text().splitlines()]
    started = time.perf_counter()
    model, tokenizer = _load_base(base_path, base_info["sha256"], settings)
    batches = _tokenise(tokenizer, examples, settings["max_length"])
    stats = _train(model, batches, settings, progress)
    adapter = None
    if settings["mode"] == "lora":
        adapter = target / "adapter"
        model.save_pretrained(adapter)
        model = model.merge_and_unload()
    gguf = _write_gguf(model, tokenizer, target, base_path, key, settings["outtype"])
    stats["seconds_total"] = round(time.perf_counter() - started, 1)
    facts = {
        "name": gguf.stem,
        "key": key,
        "gguf": str(gguf),
        "adapter": str(adapter) if adapter else None,
        "base": base_info,
        "settings": settings,
        "stats": stats,
        "versions": _versions(),
    }
    (target / "MODEL_CARD.md").write_text(model_card(facts, lineage(frame, response, task_column)), encoding="utf-8")
    (target / "training.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return TunedModel(gguf, target / "MODEL_CARD.md", key, True, settings, stats, adapter)


def _versions() -> dict[str, str]:
    import importlib.metadata

    return {name: importlib.metadata.version(name) for name in ("torch", "transformers", "peft")}


def training_threads() -> int:
    """Threads for torch: ``$WORKBENCH_TRAIN_THREADS`` if set, else the cores not already busy (1-minute
    load average), at least one.

    On a shared 2-core machine under load, two contending threads trained five times slower than one.
    """
    fixed = os.environ.get("WORKBENCH_TRAIN_THREADS", "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ConfigError(f"WORKBENCH_TRAIN_THREADS must be a whole number of threads, 1 or more; got {fixed!r}.")
        return int(fixed)
    cores = os.cpu_count() or 1
    idle = cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else cores
    return max(1, min(cores, round(idle)))


def _base_cache(sha256: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return root / "workbench" / "training" / f"base-{sha256[:16]}"


def _load_base(base_path: Path, sha256: str, settings: dict[str, Any]) -> tuple[Any, Any]:
    """The base as a float32 transformers model (dequantised once, then cached as safetensors), with its
    tokenizer; wrapped in a LoRA when the mode asks for one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(training_threads())
    cache = _base_cache(sha256)
    if not (cache / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(base_path.parent, gguf_file=base_path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(base_path.parent, gguf_file=base_path.name)
        _save_plain(model, tokenizer, cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(cache)
    if settings["mode"] == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=settings["rank"], lora_alpha=2 * settings["rank"], lora_dropout=0.0, target_modules="all-linear"
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def _save_plain(model: Any, tokenizer: Any, folder: Path) -> None:
    """save_pretrained a model loaded from GGUF: transformers marks it quantised and refuses until that is cleared."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)


def _tokenise(tokenizer: Any, examples: list[list[dict[str, str]]], max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, where the answer starts) per example; the prompt is what the server's chat template renders."""
    tokenised = []
    for messages in examples:
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        whole = tokenizer.apply_chat_template(messages, tokenize=False)
        if not whole.startswith(prompt):
            raise InputError("the model's chat template does not render the answer after the prompt; cannot train it.")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(whole[len(prompt) :], add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + answer_ids)[:max_length]
        if len(prompt_ids) < len(ids):
            tokenised.append((ids, len(prompt_ids)))
    if not tokenised:
        raise InputError(f"every prompt is longer than max_length={max_length} tokens; raise max_length.")
    return tokenised


def _train(model: Any, examples: list[tuple[list[int], int]], settings: dict[str, Any], progress: bool) -> dict:
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(settings["seed"])
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=settings["learning_rate"], weight_decay=0.0)
    size = settings["batch_size"]
    steps = settings["epochs"] * math.ceil(len(examples) / size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)
    order = random.Random(settings["seed"])
    losses, tokens, started = [], 0, time.perf_counter()
    bar = tqdm(total=steps, desc=f"fine-tune ({settings['mode']})", unit="step", disable=not progress)
    for _ in range(settings["epochs"]):
        shuffled = order.sample(examples, len(examples))
        for start in range(0, len(shuffled), size):
            ids, mask, labels = _batch(shuffled[start : start + size], torch)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            losses.append(round(loss.item(), 4))
            tokens += int(mask.sum())
            bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{tokens / (time.perf_counter() - started):.0f}")
            bar.update()
    bar.close()
    seconds = time.perf_counter() - started
    model.eval()
    return {
        "rows": len(examples),
        "steps": steps,
        "tokens": tokens,
        "seconds_training": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "threads": torch.get_num_threads(),
    }


def _batch(examples: list[tuple[list[int], int]], torch: Any) -> tuple[Any, Any, Any]:
    width = max(len(ids) for ids, _ in examples)
    ids = torch.zeros((len(examples), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (tokens, answer_start) in enumerate(examples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        labels[row, answer_start : len(tokens)] = torch.tensor(tokens[answer_start:])
    return ids, mask, labels


def _write_gguf(model: Any, tokenizer: Any, target: Path, base_path: Path, key: str, outtype: str) -> Path:
    hf_dir = target / "hf"
    _save_plain(model, tokenizer, hf_dir)
    try:
        return convert_to_gguf(hf_dir, target / f"{base_path.stem.split('.')[0]}-{key[:12]}.{outtype}.gguf", outtype)
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)
