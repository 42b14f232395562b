"""What one request is, and the row that answers it.

    normalise_requests(["Name a fruit."] * 3, endpoint=..., model=..., params={"temperature": 0.8})
    # three ChatRequests with sample indexes 0, 1, 2 and three distinct cache keys

Every way of answering a batch — here (``models/batch.py``), a provider batch job, a batch file, the
Ray runner — starts from :class:`ChatRequest` and ends with :func:`answered_row` or
:func:`failed_row`, so a new column of the response table changes in one place.

**Seeds.** A ``seed`` you give means *reproducible*, never *identical* and never *correlated*: it is
part of each request's cache key (with the messages, the model, every other parameter and the sample
index), and the seed actually sent is :func:`request_seed` of that key — a hash folded to 31 bits. So
the same call with the same seed sends the same seeds (and hits the cache); the ``n`` samples of one
prompt, and any two different prompts, get different sampling streams. OpenAI documents its ``seed``
as best effort: the same seed there makes answers likely, not certain, to repeat.

**Parameters.** A generation parameter is one that OpenAI's ``chat.completions.create`` (or, for
embeddings, ``embeddings.create``) takes — asked of the installed ``openai`` client, so the list
follows it — and a typo like ``temprature=`` is an error that names them. A server's own extras
(llama.cpp's ``top_k``, vLLM's ``min_p``, ...) go in ``extra_body={...}``, merged into the body as
sent and part of the cache key. Numbers must be finite (a NaN would be sent as invalid JSON).

**Text that is not Unicode.** A message holding a lone surrogate (``"bad \\ud800"``: half an emoji, or
bytes decoded with ``errors="surrogateescape"``) cannot be encoded to send; that request gets
``problem`` set, and the batch runner records it as the row's error without sending it, so the
rest of the batch goes on.
"""

from __future__ import annotations

import inspect
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.embeddings import AsyncEmbeddings

from ..errors import InputError, check_counts, check_numbers, check_type, redact
from .cache import CachedResponse, request_key

__all__ = [
    "EMBEDDING_ROLE",
    "MAX_BATCH_REQUESTS",
    "ChatRequest",
    "answered_row",
    "embedding_requests",
    "estimated_tokens",
    "failed_row",
    "generation_parameters",
    "normalise_requests",
    "request_seed",
]

MAX_BATCH_REQUESTS = 1_000_000  # one call's requests are held in memory: more is a mistake, or a run to split
DEFAULT_COMPLETION_BUDGET = 256  # completion tokens assumed for a request that sets no max_tokens
EMBEDDING_ROLE = "embedding-input"  # the one "message" of an embedding request: no chat role, so no key is shared

_EXPECTED = (
    "a list of requests, each a list of chat messages ([{'role': 'user', 'content': '...'}]), "
    "a dict with 'messages' and its own parameters, or a plain string (sent as one user message)"
)


@dataclass(frozen=True)
class ChatRequest:
    """One request, normalised: what is sent and the key it is cached under.

    A chat completion, or (``is_embedding``) one text for ``/embeddings``, held as a single message
    whose role is :data:`EMBEDDING_ROLE`, so that its key never equals a chat request's.
    """

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    sample_index: int
    key: str
    problem: str | None = None  # why this request cannot be sent (recorded as its row's error), or None

    @property
    def is_embedding(self) -> bool:
        return self.messages[0].get("role") == EMBEDDING_ROLE

    @property
    def sent_params(self) -> dict[str, Any]:
        """The parameters as sent: the ``seed`` given, if any, becomes this request's own seed, and the
        ``extra_body`` given is merged in."""
        params = {key: value for key, value in self.params.items() if key != "extra_body"}
        if params.get("seed") is not None:
            params["seed"] = request_seed(self.key)
        return {**params, **(self.params.get("extra_body") or {})}


def request_seed(key: str) -> int:
    """The sampling seed sent with the request whose cache key is ``key``: its first 31 bits (0 .. 2**31 - 1).

    The key already holds everything that makes a request distinct — the seed given, the messages, the
    model, the other parameters and the sample index — so each request gets its own stream, the same on
    every run.
    """
    return int(key[:8], 16) & 0x7FFFFFFF


def normalise_requests(requests: Any, *, endpoint: str, model: str, params: dict[str, Any]) -> list[ChatRequest]:
    """Check ``requests`` and turn each into a :class:`ChatRequest`."""
    if isinstance(requests, (str, bytes, dict)) or not isinstance(requests, (Sequence, pl.Series)):
        raise InputError(f"chat_many expects {_EXPECTED}; got {type(requests).__name__}.")
    seen: Counter[str] = Counter()
    normalised = []
    shared = {key: value for key, value in params.items() if key not in ("model", "sample_index")}
    check_parameters(shared, "chat")
    shared_problem = _text_problem(json.dumps(shared, ensure_ascii=False, default=str))
    for position, request in enumerate(requests):
        messages, own = _split(request, position)
        merged = {**params, **own}
        chosen_model = merged.pop("model", model)
        explicit_index = merged.pop("sample_index", None)
        if own:  # a request's own parameters; the shared ones were checked once
            check_parameters(merged, "chat")
        identity = json.dumps([chosen_model, messages, merged], sort_keys=True, default=str)
        index = explicit_index if explicit_index is not None else seen[identity]
        seen[identity] += 1
        key = request_key(endpoint, chosen_model, messages, merged, index)
        problem = _messages_problem(messages) or shared_problem
        if own and not problem:
            problem = _text_problem(json.dumps(own, ensure_ascii=False, default=str))
        normalised.append(ChatRequest(chosen_model, messages, merged, index, key, problem))
    return normalised


# Parameters of create() that are not generation parameters here: the workbench sets them, or they belong to
# the connection, or the batch runner cannot read what they ask for. Each with what to do instead.
_NOT_HERE = {
    "model": None,
    "messages": None,
    "input": None,
    "extra_body": None,
    "timeout": "timeout is a connection setting: wb.connect(..., timeout=120) or llm.with_options(timeout=120)",
    "extra_headers": "extra headers are not sent per request; put what the server needs in extra_body={...}",
    "extra_query": "query parameters are not sent per request; put what the server needs in extra_body={...}",
    "stream": "the workbench reads whole answers and does not stream; leave stream out",
    "stream_options": "the workbench reads whole answers and does not stream; leave stream_options out",
    "n": "one request gives one answer here (only the first choice would be kept): for k samples ask with "
    "wb.generate(..., n=k), or repeat the request",
}


@cache
def generation_parameters(kind: str = "chat") -> frozenset[str]:
    """The generation parameters a request may carry: those OpenAI's ``create`` takes (chat or embeddings)."""
    create = AsyncCompletions.create if kind == "chat" else AsyncEmbeddings.create
    names = set(inspect.signature(create).parameters) - {"self"}
    return frozenset(name for name in names if name not in _NOT_HERE)


def check_parameters(params: dict[str, Any], kind: str) -> None:
    """Refuse an unknown parameter (naming the known ones), a misplaced one, or a number that is not finite."""
    known = generation_parameters(kind)
    for name, value in params.items():
        if name in _NOT_HERE and _NOT_HERE[name]:
            raise InputError(f"{name}= is not a generation parameter: {_NOT_HERE[name]}.")
        if name not in known and name != "extra_body":
            raise InputError(
                f"unknown generation parameter {name!r}. Known: {', '.join(sorted(known))}. A parameter only your "
                f"server takes goes in extra_body={{{name!r}: ...}}."
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value!r}.")
    _check_values(params)
    extra = params.get("extra_body")
    if extra is not None and not isinstance(extra, dict):
        raise InputError(f"extra_body must be a dict of the server's own parameters, got {type(extra).__name__}.")


# The parameters whose kind every server agrees on (their ranges differ, and are the server's to check).
_TOKEN_BUDGETS = ("max_tokens", "max_completion_tokens")
_REALS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def _check_values(params: dict[str, Any]) -> None:
    budgets = {name: params[name] for name in _TOKEN_BUDGETS if params.get(name) is not None}
    check_counts(**budgets)
    check_numbers(**{name: params.get(name) for name in _REALS})
    check_numbers(at_least=0, temperature=params.get("temperature"))
    if params.get("seed") is not None:
        check_type(params["seed"], int, "seed", "a whole number")
    if params.get("top_logprobs") is not None:
        check_counts(at_least=0, top_logprobs=params["top_logprobs"])


def _messages_problem(messages: list[dict[str, Any]]) -> str | None:
    for message in messages:
        content = message["content"]
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
        problem = _text_problem(text)
        if problem:
            return problem
    return None


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent (it is not valid Unicode), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        return (
            f"the request holds text that is not valid Unicode ({bad}, a lone surrogate: half an emoji, or bytes "
            "decoded with errors='surrogateescape'), so it was not sent. Clean the text, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8'), and run again."
        )
    return None


def embedding_requests(texts: Any, *, endpoint: str, model: str, params: dict[str, Any]) -> list[ChatRequest]:
    """One embedding request per text; the same text gets the same key (an embedding is not sampled)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (Sequence, pl.Series)):
        raise InputError(f"embed expects a list of texts; got {type(texts).__name__}.")
    check_parameters(params, "embeddings")
    requests = []
    for position, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise InputError(f"text {position} is {text!r}: embed takes non-empty strings; drop or fill the others.")
        messages = [{"role": EMBEDDING_ROLE, "content": text}]
        key = request_key(endpoint, model, messages, params, 0)
        requests.append(ChatRequest(model, messages, dict(params), 0, key, _text_problem(text)))
    return requests


def _split(request: Any, position: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if isinstance(request, str):
        return [{"role": "user", "content": request}], {}
    if isinstance(request, dict):
        if "messages" not in request:
            raise InputError(f"request {position} is a dict without 'messages'; expected {_EXPECTED}.")
        own = {key: value for key, value in request.items() if key != "messages"}
        return _check_messages(request["messages"], position), own
    return _check_messages(request, position), {}


def _check_messages(messages: Any, position: int) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InputError(f"request {position} is not a non-empty list of messages; expected {_EXPECTED}.")
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InputError(
                f"request {position} has a message without 'role' and 'content': {message!r}. "
                "Each message is a dict like {'role': 'user', 'content': 'Hello'}."
            )
    return [dict(message) for message in messages]


def answered_row(
    request: ChatRequest, response: CachedResponse, *, cost: float | None, cached: bool, attempts: int
) -> dict[str, Any]:
    """The response-table row of an answered request (``workbench.columns.RESPONSE_COLUMNS``)."""
    return {
        "request_id": request.key,
        "sample_index": request.sample_index,
        "model": request.model,
        "response": response.response,
        "finish_reason": response.finish_reason,
        "logprobs": response.logprobs,
        "tokens_in": response.tokens_in,
        "tokens_out": response.tokens_out,
        "cost_usd": cost,
        "latency_s": response.latency_s,
        "cached": cached,
        "attempts": attempts,
        "error": None,
    }


def failed_row(request: ChatRequest, error: str, *, attempts: int) -> dict[str, Any]:
    """The response-table row of a request that got no answer: ``error`` says why, the rest is null."""
    return {
        "request_id": request.key,
        "sample_index": request.sample_index,
        "model": request.model,
        "cached": False,
        "attempts": attempts,
        "error": redact(error),  # a server may echo what it was sent: never a key
    }


def estimated_tokens(request: ChatRequest) -> tuple[int, int]:
    """(prompt, completion) tokens before sending: 4 characters a token, and the ``max_tokens`` budget (or 256).

    What rate limits reserve and what a batch job's cost estimate counts; the server's count replaces it.
    """
    characters = sum(len(str(message.get("content", ""))) for message in request.messages)
    budget = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
    return characters // 4, budget or DEFAULT_COMPLETION_BUDGET
