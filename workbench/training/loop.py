"""The training loop, and the one module that imports torch, transformers and peft (inside its functions).

    trained = train_model(rows, base, base_sha256, settings, folder, gguf)   # Trained(gguf, adapter, stats, versions)

    base GGUF ── load_base ──> float32 transformers model (dequantised once, cached as safetensors) [+ LoRA]
    rows ── objective.tokenise ──> token ids, and where each answer starts (prompt rendered as the server does)
    epochs × shuffled batches: objective.loss(model, batch, settings); clip to 1; AdamW; linear decay to 0
    LoRA: the adapter saved (peft format), then merged ── write_gguf ──> one GGUF by llama.cpp's converter

A method is an objective (``OBJECTIVES``): how its rows become tokens, and the loss of one batch, both given the
settings so that a method's own (DPO's beta, say) reach it. ``sft`` is :class:`AnswerOnly` (cross-entropy on the
answer's tokens; the prompt is context). Another method, such as DPO on preference pairs, is another objective
beside it (two answers per prompt, each tokenised by ``prompt_and_answer`` and padded by ``padded``; the
reference scored by the same model with its adapter switched off, ``model.disable_adapter()``, so no second copy)
named in ``settings.METHODS``: loading, the loop, merging and writing stay as they are.

Traps of this model in transformers, handled here:
- A model loaded from GGUF is marked quantised and saving it is refused: ``_save_plain`` clears the marks. The
  base is saved once so (``~/.cache/workbench/training/base-<sha>``) and every training loads that copy.
- The GGUF's chat template adds a default system prompt when the rows have none (~30 tokens); rows are
  rendered by that same template, so training sees what the server will.
- pad = eos (``<|im_end|>``). Batches are padded here, on the right, with an attention mask; the tokenizer's
  ``padding_side`` is never changed, since saving a tokenizer stores it for every later load.

A change here that makes the same settings train a different model must bump ``TRAINING_FORMAT`` (settings.py).
"""

from __future__ import annotations

import math
import os
import random
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from .convert import convert_to_gguf, require_training_packages
from .resources import training_threads
from .settings import TrainingSettings

__all__ = [
    "OBJECTIVES",
    "AnswerOnly",
    "Objective",
    "Trained",
    "check_loadable",
    "load_base",
    "padded",
    "prompt_and_answer",
    "train_model",
]

Tokenised = tuple[list[int], int]  # the ids of prompt and answer, and the index where the answer starts


@dataclass
class Trained:
    """What training wrote: the GGUF, the LoRA adapter folder (None for a full fine-tune), figures, software."""

    gguf: Path
    adapter: Path | None
    stats: dict[str, Any]
    versions: dict[str, str]


class Objective(Protocol):
    """What one training method learns from: its rows as tokens, and the loss of a batch of them."""

    def tokenise(self, tokenizer: Any, rows: list[Any], settings: TrainingSettings) -> list[Any]:
        """Each row as the token ids the loss reads; InputError if no row fits in ``settings.max_length``."""
        ...

    def loss(self, model: Any, batch: list[Any], settings: TrainingSettings) -> tuple[Any, int]:
        """(the batch's loss as a torch scalar, the number of tokens the model read)."""
        ...


class AnswerOnly:
    """``sft``: cross-entropy on the answer's tokens only; the system and user turns are context."""

    def tokenise(self, tokenizer: Any, rows: list[list[dict[str, str]]], settings: TrainingSettings) -> list[Tokenised]:
        """Chat rows (``messages``, the last the answer) as (ids, answer start); rows the prompt fills are left out."""
        tokenised = [prompt_and_answer(tokenizer, messages, settings.max_length) for messages in rows]
        kept = [row for row in tokenised if row is not None]
        if not kept:
            raise InputError(f"every prompt is longer than max_length={settings.max_length} tokens; raise max_length.")
        return kept

    def loss(self, model: Any, batch: list[Tokenised], settings: TrainingSettings) -> tuple[Any, int]:
        """The model's own causal-LM loss, with every label before the answer (and the padding) masked out."""
        ids, mask, labels = padded(batch)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss, int(mask.sum())


OBJECTIVES: dict[str, Objective] = {"sft": AnswerOnly()}


def train_model(
    rows: list[Any],
    base: Path,
    base_sha256: str,
    settings: TrainingSettings,
    folder: Path,
    gguf: Path,
    progress: bool = True,
) -> Trained:
    """Train ``base`` on ``rows`` (chat rows for sft) as ``settings`` say, and write the result to ``gguf``.

    The LoRA adapter is saved in ``folder / "adapter"`` before it is merged; ``folder`` also holds the
    Hugging Face checkpoint while it is converted.
    """
    require_training_packages()
    started = time.perf_counter()
    objective = OBJECTIVES[settings.method]
    model, tokenizer = load_base(base, base_sha256, settings)
    stats = _fit(model, objective.tokenise(tokenizer, rows, settings), objective, settings, progress)
    adapter = None
    if settings.lora:
        adapter = folder / "adapter"
        model.save_pretrained(adapter)
        model = model.merge_and_unload()
    written = _write_gguf(model, tokenizer, folder / "hf", gguf, settings.outtype)
    stats["seconds_total"] = round(time.perf_counter() - started, 1)
    return Trained(written, adapter, stats, _versions())


def check_loadable(path: Path, architecture: str | None) -> None:
    """Raise InputError unless transformers can load a GGUF model of ``architecture`` for training."""
    require_training_packages()
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    supported = sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))
    if architecture not in supported:
        raise InputError(
            f"{path.name} has architecture {architecture!r}, which cannot be fine-tuned here: transformers loads "
            f"only these from GGUF: {', '.join(supported)}. Choose a model of one of those architectures."
        )


def load_base(base: Path, sha256: str, settings: TrainingSettings) -> tuple[Any, Any]:
    """The base GGUF as a float32 transformers model (dequantised once, then cached as safetensors) and its
    tokenizer; wrapped in a LoRA (rank and alpha from ``settings``, every linear layer) when the mode is LoRA."""
    require_training_packages()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(training_threads())
    cache = _base_cache(sha256)
    if not (cache / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=base.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(base.parent, gguf_file=base.name)
        _save_plain(model, tokenizer, cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(cache)
    if settings.lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(settings.seed)  # LoRA's A matrices start random: from the seed, not the process's history
        lora = LoraConfig(
            r=settings.rank, lora_alpha=settings.lora_alpha, lora_dropout=0.0, target_modules="all-linear"
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def _base_cache(sha256: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return root / "workbench" / "training" / f"base-{sha256[:16]}"


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


def prompt_and_answer(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> Tokenised | None:
    """(ids, where the answer starts) of one conversation whose last turn is the answer, cut at ``max_length``;
    None when the prompt alone fills it. The prompt is what the server's chat template renders."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    if not whole.startswith(prompt):
        raise InputError("the model's chat template does not render the answer after the prompt; cannot train it.")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(whole[len(prompt) :], add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    return (ids, len(prompt_ids)) if len(prompt_ids) < len(ids) else None


def padded(batch: list[Tokenised]) -> tuple[Any, Any, Any]:
    """(input ids, attention mask, labels) as tensors, padded on the right; labels are -100 (ignored) outside
    each answer."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (tokens, answer_start) in enumerate(batch):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        labels[row, answer_start : len(tokens)] = torch.tensor(tokens[answer_start:])
    return ids, mask, labels


def _fit(model: Any, rows: list[Any], objective: Objective, settings: TrainingSettings, progress: bool) -> dict:
    """The loop: ``epochs`` passes over the rows in a seeded shuffle, one AdamW step per batch."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(settings.seed)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    steps = settings.epochs * math.ceil(len(rows) / settings.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)
    losses, tokens, started = [], 0, time.perf_counter()
    bar = tqdm(total=steps, desc=f"fine-tune ({settings.mode})", unit="step", disable=not progress)
    for batch in _batches(rows, settings):
        loss, seen = objective.loss(model, batch, settings)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        losses.append(round(loss.item(), 4))
        tokens += seen
        bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{tokens / (time.perf_counter() - started):.0f}")
        bar.update()
    bar.close()
    model.eval()
    return _figures(len(rows), steps, tokens, time.perf_counter() - started, losses, trainable)


def _figures(rows: int, steps: int, tokens: int, seconds: float, losses: list[float], trainable: list[Any]) -> dict:
    """What one training cost and did, as the model card and ``tuned.stats`` show it."""
    import torch

    return {
        "rows": rows,
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


def _batches(rows: list[Any], settings: TrainingSettings) -> Iterator[list[Any]]:
    """Batches of ``batch_size`` rows, every epoch in a new order drawn from one generator seeded by ``seed``."""
    order = random.Random(settings.seed)
    for _ in range(settings.epochs):
        shuffled = order.sample(rows, len(rows))
        for start in range(0, len(shuffled), settings.batch_size):
            yield shuffled[start : start + settings.batch_size]


def _write_gguf(model: Any, tokenizer: Any, hf_dir: Path, gguf: Path, outtype: str) -> Path:
    _save_plain(model, tokenizer, hf_dir)
    try:
        return convert_to_gguf(hf_dir, gguf, outtype)
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)


def _versions() -> dict[str, str]:
    import importlib.metadata

    return {name: importlib.metadata.version(name) for name in ("torch", "transformers", "peft")}
