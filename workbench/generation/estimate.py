"""``wb.estimate``: how many tokens and dollars a generation will take, before running it.

    wb.estimate(prompt, wb.grid(topic=topics), n=3, model="gpt-4.1-mini", max_tokens=200)

Prompt tokens are counted exactly for OpenAI models (o200k/cl100k BPE through ``bpe-openai``, a
tiktoken-compatible tokenizer that ships its vocabulary, so it works offline; ``tiktoken`` itself
downloads its vocabulary on first use), with the embedded model's own tokenizer for a local
connection, and approximated at 4 characters a token otherwise — the ``method`` says which.
``bpe-openai`` is optional (the ``tokens`` extra): without it, an OpenAI model's count is
approximate too, and the ``method`` says how to make it exact. Output tokens are ``max_tokens``
per request when given (an upper bound), else an assumed 256.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import check_counts, check_type
from ..models.client import LLM
from ..models.pricing import cost_usd, price_for
from .grids import as_variables
from .prompts import Prompt

__all__ = ["Estimate", "estimate"]

ASSUMED_OUTPUT_TOKENS = 256
APPROXIMATE = "approximate (4 characters a token)"
BPE_REQUIREMENT = "bpe-openai>=0.1.4,<0.2"  # the `tokens` extra of pyproject.toml (tests/test_install.py checks)
_PER_MESSAGE = 3  # OpenAI's chat format adds about 3 tokens a message and 3 to prime the reply
_PER_REPLY = 3


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, before it runs."""

    model: str
    requests: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    method: str
    output_basis: str

    def __repr__(self) -> str:
        cost = "unknown (no price for this model)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return (
            f"Estimate({self.model}: {self.requests} requests, {self.tokens_in:,} prompt tokens [{self.method}], "
            f"{self.tokens_out:,} output tokens [{self.output_basis}], cost {cost})"
        )


def estimate(
    prompt: Prompt | str,
    variables: Any = None,
    n: int = 1,
    model: str | LLM = "gpt-4.1-mini",
    *,
    max_tokens: int | None = None,
) -> Estimate:
    """Count the prompt tokens of every request ``wb.generate`` would send, and price them."""
    prompt = prompt if isinstance(prompt, Prompt) else Prompt(prompt)
    check_counts(n=n, **({"max_tokens": max_tokens} if max_tokens is not None else {}))
    check_type(model, (str, LLM), "model", "a model name like 'gpt-4.1-mini', or a connection from wb.connect()")
    frame = as_variables(variables)
    conversations = [prompt.render(row, row=index) for index, row in enumerate(frame.iter_rows(named=True))]
    count, method = _counter(model)
    per_row = [sum(count(m["content"]) + _PER_MESSAGE for m in messages) + _PER_REPLY for messages in conversations]
    tokens_in = sum(per_row) * n
    requests = frame.height * n
    reply = max_tokens or ASSUMED_OUTPUT_TOKENS
    tokens_out = requests * reply
    basis = "max_tokens, an upper bound" if max_tokens else f"assumed {ASSUMED_OUTPUT_TOKENS} a request"
    name = model.model if isinstance(model, LLM) else model
    price = model.price_for(name) if isinstance(model, LLM) else price_for(name, provider="openai")
    cost = None if price is None else n * sum(cost_usd(price, tokens, reply) for tokens in per_row)  # as billed
    return Estimate(name, requests, tokens_in, tokens_out, cost, method, basis)


def _counter(model: str | LLM):
    if isinstance(model, LLM) and model.backend == "local":
        return _local_counter(model), "exact (the embedded model's tokenizer)"
    name = model.model if isinstance(model, LLM) else model
    if price_for(name, provider="openai") is None:  # not an OpenAI model: no OpenAI tokenizer applies
        return _approximate, APPROXIMATE
    try:
        encoding = _openai_encoding(name)
    except ImportError:
        return _approximate, f"approximate (4 characters a token; for exact counts: pip install '{BPE_REQUIREMENT}')"
    return (lambda text: len(encoding.encode(text))), f"exact ({encoding.name})"


def _approximate(text: str) -> int:
    return max(1, round(len(text) / 4))


def _openai_encoding(model: str):
    import bpe_openai

    try:
        return bpe_openai.encoding_for_model(model)
    except Exception:  # an OpenAI model the tokenizer does not know yet: o200k is the current vocabulary
        return bpe_openai.get_encoding("o200k_base")


def _local_counter(llm: LLM):
    root = llm.base_url.removesuffix("/v1")
    seen: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in seen:
            body = json.dumps({"content": text, "add_special": False}).encode()
            request = urllib.request.Request(f"{root}/tokenize", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                seen[text] = len(json.load(response)["tokens"])
        return seen[text]

    return count
