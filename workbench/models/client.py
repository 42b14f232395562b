"""The connection to a model: one OpenAI-compatible endpoint, used through the official client.

``LLM`` is what ``wb.connect()`` returns. Its batch call answers many chat requests at once::

    llm = wb.connect()
    table = llm.chat_many(["Name a fruit.", "Name a colour."], temperature=0.7)

Every backend — the embedded model, OpenAI, vLLM, Ollama — goes through the same code path here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import openai
import polars as pl

from ..columns import empty_responses
from ..errors import ConfigError, RequestFailedError, check_counts
from .batch import run_batch
from .cache import ResponseCache
from .config import Settings, check_settings
from .pricing import Price, given_price, price_for
from .requests import embedding_requests, normalise_requests
from .routes import Answer, find_route, refuse_via
from .sync import is_background_loop, run_sync

__all__ = ["LLM", "RequestFailedError"]

_caches: dict[str, ResponseCache] = {}
_caches_lock = threading.Lock()  # two threads opening one new file at once: 'database is locked'


OPENAI_REFUSED_KEYWORDS = frozenset({"minLength", "maxLength"})


def _without_keys(value: Any, keys: frozenset[str]) -> Any:
    """A copy of a JSON schema without ``keys`` at any depth (a property *named* like one is kept)."""
    if isinstance(value, list):
        return [_without_keys(item, keys) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: (
            {name: _without_keys(item, keys) for name, item in child.items()}
            if key == "properties" and isinstance(child, dict)
            else _without_keys(child, keys)
        )
        for key, child in value.items()
        if key not in keys
    }


class LLM:
    """A connected model. Make one with ``wb.connect(...)``; the API key stays out of its repr."""

    def __init__(
        self,
        *,
        backend: str,
        base_url: str,
        model: str,
        endpoint: str,
        settings: Settings,
        price: Price | tuple[float, ...] | None,
    ) -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.endpoint = endpoint
        self.settings = settings
        self._price = price if price is None or isinstance(price, Price) else given_price(price)
        self._client: openai.AsyncOpenAI | None = None

    def __repr__(self) -> str:
        key = "set" if self.settings.api_key else "none"
        return f"LLM(backend={self.backend!r}, model={self.model!r}, base_url={self.base_url!r}, api_key={key})"

    @property
    def cache(self) -> ResponseCache:
        """The response cache shared by every connection that uses the same file."""
        path = str(self.settings.cache_path.resolve())
        with _caches_lock:
            if path not in _caches or _caches[path].closed:
                _caches[path] = ResponseCache(path)
            return _caches[path]

    def price_for(self, model: str) -> Price | None:
        """The price of ``model`` here (dollars per million tokens in, out and cached in), or None when unknown.

        The price given to ``connect`` (or the connection's own model's list price) prices every model asked of
        this connection; without one, another model is looked up in genai-prices (``models/pricing.py``).
        """
        if self._price is not None or model == self.model or self.backend == "local":
            return self._price
        return price_for(model, provider="openai" if self.backend == "openai" else None, base_url=self.base_url)

    def json_format(self, schema: dict[str, Any], name: str = "output") -> dict[str, Any]:
        """The ``response_format`` that makes this backend answer JSON valid under ``schema``.

        Every backend — OpenAI, vLLM, Ollama and llama.cpp's ``llama-server`` (the embedded model) —
        takes OpenAI's ``json_schema`` form; ``strict`` is set when the schema closes its objects. OpenAI's
        strict mode refuses string length bounds, so they are left out there (the grammar-based servers
        enforce them).
        """
        strict = schema.get("additionalProperties") is False  # OpenAI's strict mode needs closed objects
        if self.backend == "openai":
            schema = _without_keys(schema, OPENAI_REFUSED_KEYWORDS)
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}

    def with_options(self, **settings: Any) -> LLM:
        """A copy of this connection with some settings changed, e.g. ``max_concurrency=4``."""
        model = settings.pop("model", self.model)
        try:
            changed = replace(self.settings, **settings)
        except TypeError:
            known = ", ".join(sorted(f for f in Settings.__dataclass_fields__ if f != "api_key"))
            raise ConfigError(f"unknown setting(s) {', '.join(sorted(settings))}. Known settings: {known}.") from None
        check_settings(changed)
        return LLM(
            backend=self.backend,
            base_url=self.base_url,
            model=model,
            endpoint=self.endpoint,
            settings=changed,
            price=self._price,
        )

    @contextlib.asynccontextmanager
    async def async_client(self) -> AsyncIterator[openai.AsyncOpenAI]:
        """An ``openai.AsyncOpenAI`` client for the running loop (retries are ours, so 0 there).

        On the workbench's own loop (behind the sync calls) one client is kept and reused; on any
        other loop — a notebook's, or ``asyncio.run`` — the client lives for one batch and is closed
        with it, so that nothing is left bound to a loop that has ended.
        """
        loop = asyncio.get_running_loop()
        if is_background_loop(loop):
            if self._client is None:
                self._client = self._new_client()
            yield self._client
            return
        client = self._new_client()
        try:
            yield client
        finally:
            await client.close()

    def _new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.settings.api_key or "no-key-needed",
            max_retries=0,
            timeout=self.settings.timeout,
        )

    async def achat_many(
        self,
        requests: Any,
        *,
        cache: bool = True,
        progress: bool = True,
        max_concurrency: int | None = None,
        via: str | None = None,
        **params: Any,
    ) -> Answer:
        """Answer many chat requests; one row per request, in input order (see ``workbench.columns``).

        ``requests`` is a list whose items are each a list of messages, a dict with ``messages`` and
        its own parameters (``temperature``, ``max_tokens``, ``model``, ``sample_index``, ...), or a
        plain string sent as one user message. ``params`` apply to every request. A failed request
        is a row with ``error`` set; the batch goes on. Responses are cached as they arrive. A
        ``seed`` is sent as each request's own seed, derived from the one given and the request's
        cache key (``workbench.models.requests.request_seed``): reproducible, never shared.
        ``via`` answers them elsewhere: ``"batch"`` (a provider batch job) or ``"ray"`` (see
        ``workbench.models.routes``); a route may return a :class:`~workbench.models.routes.Pending`
        handle while its work runs (``is_pending`` tells), and the same call again returns the table.
        """
        if max_concurrency is not None:
            check_counts(max_concurrency=max_concurrency)
        normalised = normalise_requests(requests, endpoint=self.endpoint, model=self.model, params=params)
        if not normalised:
            return empty_responses()
        concurrency = max_concurrency or self.settings.max_concurrency or 16
        if via is not None and via != "kernel":
            handler = find_route(via)
            return await handler(self, normalised, use_cache=cache, progress=progress, max_concurrency=concurrency)
        return await run_batch(self, normalised, use_cache=cache, progress=progress, max_concurrency=concurrency)

    def chat_many(self, requests: Any, **options: Any) -> Answer:
        """The sync form of :meth:`achat_many`; works in scripts and inside a running Jupyter kernel."""
        return run_sync(self.achat_many(requests, **options))

    async def aembed(
        self,
        texts: Any,
        *,
        model: str | None = None,
        cache: bool = True,
        progress: bool = True,
        max_concurrency: int | None = None,
        **params: Any,
    ) -> pl.DataFrame:
        """Embed every text through ``/embeddings``; one row per text, in input order.

        The same guarantees as :meth:`achat_many` (the batch runner: cache, retries, rate limits,
        cost, progress): columns ``text``, ``embedding`` (a list of floats; null when the request
        failed), then ``model``, ``tokens_in``, ``cost_usd``, ``latency_s``, ``cached``, ``attempts``,
        ``error`` and ``request_id``. One request per text, so a repeated text is sent once.
        """
        if max_concurrency is not None:
            check_counts(max_concurrency=max_concurrency)
        requests = embedding_requests(texts, endpoint=self.endpoint, model=model or self.model, params=params)
        concurrency = max_concurrency or self.settings.max_concurrency or 16
        answers = await run_batch(self, requests, use_cache=cache, progress=progress, max_concurrency=concurrency)
        vectors = [json.loads(text) if text is not None else None for text in answers["response"]]
        shown = ["model", "tokens_in", "cost_usd", "latency_s", "cached", "attempts", "error", "request_id"]
        return pl.DataFrame(
            {"text": [r.messages[0]["content"] for r in requests], "embedding": vectors},
            schema={"text": pl.String, "embedding": pl.List(pl.Float64)},
        ).hstack(answers.select(shown))

    def embed(self, texts: Any, **options: Any) -> pl.DataFrame:
        """The sync form of :meth:`aembed`: ``llm.embed(["a text", "another"])["embedding"]``."""
        return run_sync(self.aembed(texts, **options))

    async def achat(self, messages: Any, **params: Any) -> str:
        """One reply's text. Unlike a batch, a failure raises :class:`RequestFailedError`."""
        refuse_via(params, "llm.chat")
        row = (await self.achat_many([messages], progress=False, **params)).row(0, named=True)
        if row["error"]:
            raise RequestFailedError(f"the request to {self.base_url} failed: {row['error']}")
        return row["response"]

    def chat(self, messages: Any, **params: Any) -> str:
        """The sync form of :meth:`achat`: ``llm.chat("Name a prime number.")``."""
        return run_sync(self.achat(messages, **params))
