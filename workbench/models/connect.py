"""``wb.connect``: pick a backend, resolve its settings, and return an :class:`~workbench.models.client.LLM`.

wb.connect()                                         # embedded local model, no key, no network
wb.connect("openai", model="gpt-4.1-mini")           # needs OPENAI_API_KEY
wb.connect(base_url="http://localhost:8000/v1")      # any OpenAI-compatible server (model asked for)
wb.connect("ollama", model="llama3.2")               # named servers with their usual local address
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EndpointUnreachableError, MissingAPIKeyError
from . import usage
from .client import LLM
from .config import Settings, load_settings
from .local import DEFAULT_SLOTS, fingerprint, local_server
from .pricing import FREE, given_price, price_for

__all__ = ["BACKENDS", "connect"]

# name: default base URL (None for the embedded model, which gets a free loopback port)
BACKENDS: dict[str, str | None] = {
    "local": None,
    "openai": "https://api.openai.com/v1",
    "compatible": None,
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
}
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
_LOCAL_DEFAULTS = {"timeout": 600.0}  # and max_concurrency: the server's slots
_REMOTE_DEFAULTS = {"max_concurrency": 16, "timeout": 60.0}


def connect(
    backend: str | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    local_model: str | Path | None = None,
    config_file: str | Path | None = None,
    **settings: Any,
) -> LLM:
    """Connect to a model and return an ``LLM``.

    ``backend`` is one of ``local`` (the default: the embedded SmolLM2 model), ``openai``,
    ``vllm``, ``ollama``, ``lmstudio``, ``llamacpp`` or ``compatible`` (with ``base_url``).
    Settings come from the arguments, then the environment (``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL``, ``WORKBENCH_MODEL``), then ``workbench.toml``. Further keyword
    settings: ``max_concurrency``, ``requests_per_minute``, ``tokens_per_minute``, ``timeout``,
    ``max_retries``, ``retry_base_delay``, ``data_dir``, ``price_per_million=(input, output)`` or
    ``(input, output, cached_input)`` (dollars per million tokens, for a model genai-prices does not know);
    for the embedded server: ``lora`` (a LoRA adapter GGUF), ``local_port``, ``local_slots``
    (requests served at once, 8 by default; also the default ``max_concurrency``) and
    ``local_context`` (tokens per slot, 4,096 by default).
    """
    resolved = load_settings(
        Path(config_file) if config_file else None,
        backend=backend,
        model=model,
        base_url=base_url,
        api_key=api_key,
        local_model=str(local_model) if local_model else None,
        **settings,
    )
    name = _backend_name(resolved)
    llm = _connect_local(resolved) if name == "local" else _connect_remote(name, resolved)
    usage.record_connection(llm.backend, llm.model, llm.base_url)  # for the run card of a report
    return llm


def _backend_name(settings: Settings) -> str:
    name = settings.backend
    if name is None:
        return "compatible" if settings.base_url else "local"
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}. Choose one of: {', '.join(BACKENDS)}.")
    return name


def _connect_local(settings: Settings) -> LLM:
    slots = settings.local_slots or DEFAULT_SLOTS
    settings = _with_defaults(settings, {**_LOCAL_DEFAULTS, "max_concurrency": slots})
    server = local_server(
        settings.local_model,
        settings.data_dir / "logs",
        lora=settings.lora,
        port=settings.local_port,
        slots=slots,
        context=settings.local_context,
    )
    endpoint = f"local:{server.model_path.name}:{fingerprint(server.model_path)}"
    if server.lora is not None:
        endpoint += f"+lora:{server.lora.name}:{fingerprint(server.lora)}"
    settings = replace(settings, api_key=None)  # a local server needs no key: never send one there
    return LLM(
        backend="local",
        base_url=server.base_url,
        model=server.alias,
        endpoint=endpoint,
        settings=settings,
        price=FREE,
    )


def _connect_remote(name: str, settings: Settings) -> LLM:
    settings = _with_defaults(settings, _REMOTE_DEFAULTS)
    base_url = (settings.base_url or BACKENDS[name] or "").rstrip("/")
    if not base_url:
        raise ConfigError("backend 'compatible' needs base_url=..., e.g. http://localhost:8000/v1.")
    if name == "openai" and not settings.api_key:
        raise MissingAPIKeyError(
            f"OpenAI needs an API key, and {settings.api_key_env} is not set. Set it in your shell "
            f"(export {settings.api_key_env}=sk-...) or in a notebook (%env {settings.api_key_env}=sk-...), "
            "or pass api_key=... . The key is never written to the cache, logs or reports."
        )
    model = settings.model or (DEFAULT_OPENAI_MODEL if name == "openai" else _served_model(base_url, settings))
    price = given_price(settings.price_per_million) or price_for(
        model, provider="openai" if name == "openai" else None, base_url=base_url
    )
    return LLM(backend=name, base_url=base_url, model=model, endpoint=base_url, settings=settings, price=price)


def _with_defaults(settings: Settings, defaults: dict[str, Any]) -> Settings:
    return replace(settings, **{key: value for key, value in defaults.items() if getattr(settings, key) is None})


def _served_model(base_url: str, settings: Settings) -> str:
    """The model a server offers, when it offers exactly one (asked at ``GET /models``)."""
    request = urllib.request.Request(f"{base_url}/models")
    if settings.api_key:
        request.add_header("Authorization", f"Bearer {settings.api_key}")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            names = [entry["id"] for entry in json.load(response).get("data", [])]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        raise EndpointUnreachableError(
            f"could not ask {base_url}/models which model it serves ({exc}). Is the server running there? "
            "Or pass model=... (or set WORKBENCH_MODEL) to skip the question."
        ) from exc
    if len(names) != 1:
        offered = ", ".join(names) or "none"
        raise ConfigError(f"{base_url} serves {len(names)} models ({offered}); choose one with model=... .")
    return names[0]
