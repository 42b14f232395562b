"""The training loop, and the one module that imports torch, transformers and peft (inside its functions).

    trained = train_model(rows, base, base_sha256, settings, folder, gguf)   # Trained(gguf, adapter, stats, versions)

    base GGUF ── load_base ──> float32 transformers model (dequantised once, cached as safetensors) [+ LoRA]
    rows ── objective.tokenise ──> token ids, and where each answer starts (prompt rendered as the server does)
         ── objective.prepare ──> what the loss needs before any step (DPO: the reference's log-probabilities)
    epochs × shuffled batches: objective.loss(model, batch, settings); clip to 1; AdamW; linear decay to 0
    LoRA: the adapter saved (peft format), then merged ── write_gguf ──> one GGUF by llama.cpp's converter

A method is an objective (``OBJECTIVES``): how its rows become tokens, what is computed once before training, and
the loss of one batch, all given the settings so that a method's own (DPO's beta, say) reach it.

    sft   AnswerOnly   cross-entropy on the answer's tokens; the prompt is context
    dpo   Preference   two answers per prompt, chosen and rejected, each tokenised by ``prompt_and_answer``; the
                       loss pushes the policy's log-ratio to the reference up on the chosen and down on the
                       rejected (``settings.DPO_LOSSES``: DPO, IPO, DPO-Positive; plus ``nll`` × the chosen
                       answer's cross-entropy, RPO). The reference is the base: its log-probabilities are computed
                       once, before the first step, with the LoRA switched off (``model.disable_adapter()``), or
                       by the untouched model for a full fine-tune — no second copy of the model, and no third
                       forward pass per step. ``test_training_dpo.py`` checks the loss against TRL's on one batch.

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

import contextlib
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
    "Pair",
    "Preference",
    "Trained",
    "answer_logps",
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

    def prepare(self, model: Any, rows: list[Any], settings: TrainingSettings) -> list[Any]:
        """The tokenised rows with what the loss needs computed once, before the first step."""
        ...

    def loss(self, model: Any, batch: list[Any], settings: TrainingSettings) -> tuple[Any, int]:
        """(the batch's loss as a torch scalar, the number of tokens the model read)."""
        ...

    def summary(self, model: Any, rows: list[Any], settings: TrainingSettings) -> dict[str, Any]:
        """Figures of the trained model on its own training rows, for the model card (may be empty)."""
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

    def prepare(self, model: Any, rows: list[Tokenised], settings: TrainingSettings) -> list[Tokenised]:
        """Nothing to compute before training: the rows as they are."""
        return rows

    def loss(self, model: Any, batch: list[Tokenised], settings: TrainingSettings) -> tuple[Any, int]:
        """The model's own causal-LM loss, with every label before the answer (and the padding) masked out."""
        ids, mask, labels = padded(batch)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss, int(mask.sum())

    def summary(self, model: Any, rows: list[Tokenised], settings: TrainingSettings) -> dict[str, Any]:
        """No figures beyond the loop's own."""
        return {}


@dataclass
class Pair:
    """One preference pair as the DPO loss reads it: both answers tokenised after the same prompt, and the
    reference's summed log-probability of each answer (filled by :meth:`Preference.prepare`)."""

    chosen: Tokenised
    rejected: Tokenised
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0


DPOP_LAMBDA = 50.0  # DPO-Positive's penalty weight on the chosen answer falling below the reference (Pal et al. 2024)


class Preference:
    """``dpo``: learn from pairs (Rafailov et al. 2023, "Direct Preference Optimization").

    For a pair (prompt x, chosen c, rejected r), with log π the policy's summed log-probability of an answer's
    tokens after the prompt and log π_ref the reference's (the base model, scored once before training):

        Δ = [log π(c|x) − log π_ref(c|x)] − [log π(r|x) − log π_ref(r|x)]
        sigmoid (DPO)   −log σ(β·Δ)
        ipo             (Δ' − 1/(2β))², Δ' the same difference with each log-ratio divided by its answer's tokens
        dpop            −log σ(β·(Δ − 50·max(0, log π_ref(c|x) − log π(c|x))))
        + nll × (mean cross-entropy of the chosen answers' tokens), when ``nll`` > 0 (RPO)

    β (``beta``, default 0.1) sets how strongly the loss pulls and how far from the reference the policy may
    drift: the implicit reward of an answer is β times its log-ratio. Plain DPO only asks that the *gap* grow;
    both answers' likelihoods may fall together, and on short answers the chosen one often does — the ``nll``
    term and DPO-Positive each hold it up. The batch mean over pairs is the loss.
    """

    def tokenise(self, tokenizer: Any, rows: list[dict[str, Any]], settings: TrainingSettings) -> list[Pair]:
        """Rows of ``prompt`` (messages before the answer), ``chosen`` and ``rejected`` (answer texts) as
        :class:`Pair` s; pairs where either answer leaves the prompt no room in ``max_length`` are left out."""
        pairs = []
        for row in rows:
            chosen = prompt_and_answer(tokenizer, [*row["prompt"], _said(row["chosen"])], settings.max_length)
            rejected = prompt_and_answer(tokenizer, [*row["prompt"], _said(row["rejected"])], settings.max_length)
            if chosen is not None and rejected is not None:
                pairs.append(Pair(chosen, rejected))
        if not pairs:
            raise InputError(f"every prompt is longer than max_length={settings.max_length} tokens; raise max_length.")
        return pairs

    def prepare(self, model: Any, rows: list[Pair], settings: TrainingSettings) -> list[Pair]:
        """Score every pair's answers with the reference: the model with its LoRA switched off (or, for a full
        fine-tune, the model before its first step), once, in batches, without gradients."""
        import torch

        switched_off = model.disable_adapter() if settings.lora else contextlib.nullcontext()
        with torch.no_grad(), switched_off:
            for start in range(0, len(rows), settings.batch_size):
                batch = rows[start : start + settings.batch_size]
                scores, _ = answer_logps(model, [p.chosen for p in batch] + [p.rejected for p in batch])
                for pair, chosen, rejected in zip(batch, scores[: len(batch)], scores[len(batch) :], strict=True):
                    pair.ref_chosen, pair.ref_rejected = float(chosen), float(rejected)
        return rows

    def loss(self, model: Any, batch: list[Pair], settings: TrainingSettings) -> tuple[Any, int]:
        """The batch's mean preference loss (and the nll term); the chosen and rejected answers in one forward pass."""
        loss, _, tokens = self._scored(model, batch, settings)
        return loss, tokens

    def summary(self, model: Any, rows: list[Pair], settings: TrainingSettings) -> dict[str, Any]:
        """On the training pairs after training: how often the policy prefers the chosen answer more than the
        reference did, and how far each answer's log-probability moved (a negative ``chosen_logratio`` is the
        chosen answer becoming *less* likely — DPO's known failure on short answers)."""
        import torch

        figures = []
        with torch.no_grad():
            for start in range(0, len(rows), settings.batch_size):
                figures.append(self._scored(model, rows[start : start + settings.batch_size], settings)[1])
        chosen = torch.cat([f[0] for f in figures])
        rejected = torch.cat([f[1] for f in figures])
        return {
            "pairs_preferred": round(float((chosen > rejected).float().mean()), 3),
            "chosen_logratio": round(float(chosen.mean()), 3),
            "rejected_logratio": round(float(rejected.mean()), 3),
        }

    def _scored(self, model: Any, batch: list[Pair], settings: TrainingSettings) -> tuple[Any, tuple, int]:
        import torch
        import torch.nn.functional as F

        size = len(batch)
        logps, lengths = answer_logps(model, [p.chosen for p in batch] + [p.rejected for p in batch])
        reference = torch.tensor([p.ref_chosen for p in batch] + [p.ref_rejected for p in batch])
        ratios = logps - reference
        chosen, rejected = ratios[:size], ratios[size:]
        beta = settings.beta
        if settings.dpo_loss == "ipo":
            gap = chosen / lengths[:size] - rejected / lengths[size:]
            per_pair = (gap - 1 / (2 * beta)) ** 2
        elif settings.dpo_loss == "dpop":
            per_pair = -F.logsigmoid(beta * (chosen - rejected - DPOP_LAMBDA * torch.relu(-chosen)))
        else:
            per_pair = -F.logsigmoid(beta * (chosen - rejected))
        loss = per_pair.mean()
        if settings.nll:
            loss = loss + settings.nll * -(logps[:size].sum() / lengths[:size].sum())
        tokens = sum(len(ids) for ids, _ in [p.chosen for p in batch] + [p.rejected for p in batch])
        return loss, (chosen.detach(), rejected.detach()), tokens


def _said(answer: str) -> dict[str, str]:
    return {"role": "assistant", "content": answer}


def answer_logps(model: Any, rows: list[Tokenised]) -> tuple[Any, Any]:
    """(summed log-probability of each row's answer tokens given what precedes them, each answer's token count):
    one forward pass over the rows, padded on the right.

    The output layer is applied to the answers' positions only: its vocabulary-wide logits are the largest
    tensors of a step, and the prompts (with the template's system prompt) are most of each row.
    """
    import torch
    import torch.nn.functional as F

    ids, mask, labels = padded(rows)
    targets = labels[:, 1:]
    answer = targets != -100
    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    logits = model.get_output_embeddings()(hidden[answer])
    per_token = -F.cross_entropy(logits, targets[answer], reduction="none")
    row_of_token = torch.arange(len(rows)).unsqueeze(1).expand_as(answer)[answer]
    sums = torch.zeros(len(rows), dtype=per_token.dtype).index_add(0, row_of_token, per_token)
    return sums, answer.sum(dim=1)


OBJECTIVES: dict[str, Objective] = {"sft": AnswerOnly(), "dpo": Preference()}


def train_model(
    rows: list[Any],
    base: Path,
    base_sha256: str,
    settings: TrainingSettings,
    folder: Path,
    gguf: Path,
    progress: bool = True,
) -> Trained:
    """Train ``base`` on ``rows`` (chat rows for sft, pairs for dpo) as ``settings`` say; write ``gguf``.

    The LoRA adapter is saved in ``folder / "adapter"`` before it is merged; ``folder`` also holds the
    Hugging Face checkpoint while it is converted.
    """
    require_training_packages()
    started = time.perf_counter()
    objective = OBJECTIVES[settings.method]
    model, tokenizer = load_base(base, base_sha256, settings)
    preparing = time.perf_counter()
    prepared = objective.prepare(model, objective.tokenise(tokenizer, rows, settings), settings)
    seconds_prepare = round(time.perf_counter() - preparing, 1)
    stats = _fit(model, prepared, objective, settings, progress)
    stats.update(objective.summary(model, prepared, settings), seconds_prepare=seconds_prepare)
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
    bar = tqdm(total=steps, desc=f"{settings.method} ({settings.mode})", unit="step", disable=not progress)
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
