"""How a model is trained: ``wb.finetune``'s settings, checked once, and the training key they make.

    settings = TrainingSettings(mode="lora", epochs=2)    # refuses a bad value here, naming it and what is allowed
    settings.learning_rate                                # 0.001: None is resolved to the mode's default
    settings.record()                                     # what training.json and the model card show
    settings.key(chat_rows, base_sha256)                  # same rows + base + settings = same key = same model
    TrainingSettings(method="dpo", beta=0.1)              # preference pairs; beta and the loss checked here too

Built once from ``wb.finetune``'s arguments, before any model is loaded, and passed whole to the resource check
and the training loop (``loop.py``). Only what changes the trained model is a setting; where it is written, how
much memory it may take and whether a progress bar shows are arguments of ``finetune`` alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, check_counts

__all__ = ["DPO_LOSSES", "METHODS", "MODES", "OUTTYPES", "TRAINING_FORMAT", "TrainingSettings"]

# What the loss learns from; loop.py holds one objective per method.
METHODS = {
    "sft": "supervised: learn the answers given, loss on the answers only",
    "dpo": "preferences: pairs of a chosen and a rejected answer to the same prompt (Rafailov et al. 2023)",
}
# DPO's loss on one pair (loop.Preference): Δ = [log π(c) − log π_ref(c)] − [log π(r) − log π_ref(r)], summed
# over the answer's tokens.
DPO_LOSSES = {
    "sigmoid": "DPO: −log σ(β·Δ)",
    "ipo": "IPO (Azar et al. 2023): (Δ/length − 1/(2β))², log-ratios averaged per token",
    "dpop": "DPO-Positive (Pal et al. 2024): −log σ(β·(Δ − λ·max(0, log π_ref(c) − log π(c)))), λ = 50",
}
DPO_DEFAULTS = {"beta": 0.1, "dpo_loss": "sigmoid", "nll": 0.0}
MODES = ("lora", "full")
OUTTYPES = ("q8_0", "f16", "bf16", "f32")  # what llama.cpp's converter writes and llama-server serves as it is
DEFAULT_LEARNING_RATE = {"lora": 1e-3, "full": 5e-5}
MAX_LEARNING_RATE = 0.1  # AdamW on a language model diverges long before this
# Part of every key: bump when a change to training would make the same key give a different model.
TRAINING_FORMAT = 1


@dataclass(frozen=True)
class TrainingSettings:
    """Every setting that changes the trained model, validated when built.

    ``method``: what the loss learns from (``"sft"``, ``"dpo"``). ``mode``: ``"lora"`` (rank ``rank``, alpha
    twice the rank, on every linear layer, merged after training) or ``"full"`` (every weight). ``learning_rate``:
    AdamW's, decayed linearly to 0; None takes the mode's default (1e-3 LoRA, 5e-5 full). ``max_length``: tokens
    kept per row. ``system``: the system prompt the rows are rendered with. ``outtype``: the GGUF written.

    DPO only (None elsewhere; None takes the default): ``beta`` (0.1), how far from the reference the policy may
    move — larger keeps it closer (for IPO it is the regulariser τ); ``dpo_loss`` (``"sigmoid"``), one of
    ``DPO_LOSSES``; ``nll`` (0.0), the weight of an added cross-entropy on the chosen answer, averaged over its
    tokens (RPO, Pang et al. 2024; TRL's ``loss_type=["sigmoid", "sft"]`` with ``loss_weights=[1, nll]``).
    """

    method: str = "sft"
    mode: str = "lora"
    epochs: int = 2
    learning_rate: float | None = None
    batch_size: int = 8
    rank: int = 16
    max_length: int = 512
    seed: int = 0
    system: str | None = None
    outtype: str = "q8_0"
    beta: float | None = None
    dpo_loss: str | None = None
    nll: float | None = None

    def __post_init__(self) -> None:
        _check_choice("method", self.method, METHODS)
        self._check_preference_settings()
        _check_choice("mode", self.mode, MODES)
        _check_choice("outtype", self.outtype, OUTTYPES)
        check_counts(epochs=self.epochs, batch_size=self.batch_size, rank=self.rank, max_length=self.max_length)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed must be a whole number of 0 or more, got {self.seed!r}.")
        if self.system is not None and not isinstance(self.system, str):
            raise InputError(f"system must be the system prompt's text or None, got {type(self.system).__name__}.")
        rate = DEFAULT_LEARNING_RATE[self.mode] if self.learning_rate is None else self.learning_rate
        object.__setattr__(self, "learning_rate", _checked_rate(rate, self.mode))

    def _check_preference_settings(self) -> None:
        given = {name: getattr(self, name) for name in DPO_DEFAULTS if getattr(self, name) is not None}
        if self.method != "dpo":
            if given:
                raise InputError(
                    f"{', '.join(given)} set{'s' if len(given) == 1 else ''} the DPO loss, but method={self.method!r}: "
                    "pass method='dpo' (with preference pairs), or leave it out."
                )
            return
        for name, default in DPO_DEFAULTS.items():
            object.__setattr__(self, name, given.get(name, default))
        _check_choice("dpo_loss", self.dpo_loss, DPO_LOSSES)
        beta, nll = self.beta, self.nll
        if not _finite(beta) or beta <= 0:
            raise InputError(f"beta must be a number above 0, got {beta!r}. Usual values: 0.05 to 0.5 (default 0.1).")
        if not _finite(nll) or nll < 0:
            raise InputError(f"nll must be a number of 0 or more, got {nll!r}. 0 is plain DPO; RPO used 1.0.")
        object.__setattr__(self, "beta", float(beta))
        object.__setattr__(self, "nll", float(nll))

    @property
    def lora(self) -> bool:
        """True when a LoRA adapter is trained (and kept beside the merged model)."""
        return self.mode == "lora"

    @property
    def lora_alpha(self) -> int:
        """LoRA's scale numerator: twice the rank, so the update's scale (alpha / rank) is 2 at every rank."""
        return 2 * self.rank

    def record(self) -> dict[str, Any]:
        """The settings as ``training.json``, ``tuned.settings`` and the model card show them; the key hashes this."""
        record = {
            "mode": self.mode,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "rank": self.rank if self.lora else None,
            "max_length": self.max_length,
            "seed": self.seed,
            "system": self.system,
            "outtype": self.outtype,
            "format": TRAINING_FORMAT,
        }
        if self.method != "sft":  # sft came first, unnamed: its models trained before methods existed keep their keys
            record["method"] = self.method
            record.update({name: getattr(self, name) for name in DPO_DEFAULTS})
        return record

    def key(self, chat_rows: bytes, base_sha256: str) -> str:
        """SHA-256 of the training rows (as written to train.chat.jsonl, or train.pairs.jsonl for DPO), the base
        file's SHA-256 and the record."""
        digest = hashlib.sha256(chat_rows)
        digest.update(base_sha256.encode())
        digest.update(json.dumps(self.record(), sort_keys=True).encode())
        return digest.hexdigest()


def _check_choice(name: str, value: Any, allowed: dict[str, str] | tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        named = [f"{choice} ({allowed[choice]})" if isinstance(allowed, dict) else choice for choice in allowed]
        raise InputError(f"{name} must be one of {', '.join(named)}; got {value!r}.")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _checked_rate(rate: Any, mode: str) -> float:
    if not _finite(rate) or not 0 < rate <= MAX_LEARNING_RATE:
        raise InputError(
            f"learning_rate must be a number above 0 and at most {MAX_LEARNING_RATE}, got {rate!r}. Usual values: "
            f"1e-4 to 1e-3 for LoRA, 1e-5 to 1e-4 for a full fine-tune; None takes {DEFAULT_LEARNING_RATE[mode]} "
            f"for mode={mode!r}."
        )
    return float(rate)
