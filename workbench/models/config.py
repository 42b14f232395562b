"""Settings: from arguments, then the environment, then a ``workbench.toml``, then defaults.

The environment variables are the usual ones: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``WORKBENCH_MODEL`` (the model on a remote endpoint), ``WORKBENCH_BACKEND``,
``WORKBENCH_LOCAL_MODEL`` (a GGUF file for the embedded server) and ``WORKBENCH_DATA_DIR``.
The embedded server also takes ``lora`` (an adapter GGUF), ``local_port``, ``local_slots`` and
``local_context`` (tokens per slot).

``workbench.toml`` is looked for in the current folder and its parents; the folder holding it is the
project root, and ``data/`` beside it is where the cache, runs and labels go. Unknown keys are an
error, so a typo never passes silently. An API key is never read from the file: name the variable
that holds it with ``api_key_env`` instead.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["Settings", "find_config_file", "load_settings"]

CONFIG_FILE = "workbench.toml"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one connection. The key is kept out of ``repr``."""

    backend: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = "OPENAI_API_KEY"
    local_model: str | None = None
    lora: str | None = None  # a LoRA adapter (GGUF) for the embedded server
    local_port: int | None = None  # a fixed loopback port for the embedded server (default: any free one)
    local_slots: int | None = None  # requests the embedded server runs at once (default 8)
    local_context: int | None = None  # tokens per slot, prompt + reply (default 4096)
    max_concurrency: int | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float | None = None
    max_retries: int = 4
    retry_base_delay: float = 0.5
    data_dir: Path = Path("data")
    price_per_million: tuple[float, float] | None = None

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / "responses.sqlite"


_FILE_KEYS = {f.name for f in fields(Settings)} - {"api_key"}


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``workbench.toml`` in ``start`` (default: the current folder) or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file or remove it.") from exc
    table = values.get("workbench", values)
    if "api_key" in table:
        raise ConfigError(
            f"{path} holds an API key. Keys do not belong in files that get shared: remove it and "
            'set OPENAI_API_KEY (or name another variable with api_key_env = "...").'
        )
    unknown = sorted(set(table) - _FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(sorted(_FILE_KEYS))}."
        )
    if "data_dir" in table:
        table["data_dir"] = (path.parent / table["data_dir"]).resolve()
    if "price_per_million" in table:
        table["price_per_million"] = tuple(table["price_per_million"])
    table.setdefault("data_dir", path.parent / "data")
    return dict(table)


def _read_env() -> dict[str, Any]:
    names = {
        "WORKBENCH_BACKEND": "backend",
        "OPENAI_BASE_URL": "base_url",
        "WORKBENCH_MODEL": "model",
        "WORKBENCH_LOCAL_MODEL": "local_model",
        "WORKBENCH_DATA_DIR": "data_dir",
    }
    values: dict[str, Any] = {key: os.environ[var] for var, key in names.items() if os.environ.get(var)}
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    return values


def load_settings(config_file: Path | None = None, **arguments: Any) -> Settings:
    """Merge settings: ``arguments`` (those not None) over the environment over the file.

    The API key is looked up last, in the variable named by ``api_key_env`` (``OPENAI_API_KEY``
    by default), unless it was given as an argument.
    """
    path = config_file if config_file is not None else find_config_file()
    merged: dict[str, Any] = {}
    merged.update(_read_file(path))
    merged.update(_read_env())
    merged.update({key: value for key, value in arguments.items() if value is not None})
    unknown = sorted(set(merged) - _FILE_KEYS - {"api_key"})
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(sorted(_FILE_KEYS))}.")
    if "data_dir" in merged:
        merged["data_dir"] = Path(merged["data_dir"]).expanduser()
    settings = Settings(**merged)
    if settings.api_key is None:
        settings = replace(settings, api_key=os.environ.get(settings.api_key_env) or None)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    for name in (
        "max_concurrency",
        "requests_per_minute",
        "tokens_per_minute",
        "timeout",
        "retry_base_delay",
        "local_slots",
        "local_context",
    ):
        value = getattr(settings, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive number, got {value!r}.")
    if settings.local_port is not None and not 0 < settings.local_port < 65536:
        raise ConfigError(f"local_port must be a port number (1-65535), got {settings.local_port!r}.")
    if settings.max_retries < 0:
        raise ConfigError(f"max_retries must be 0 or more, got {settings.max_retries!r}.")
