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
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, check_counts, check_numbers, looks_like_key
from .pricing import given_price

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
    price_per_million: tuple[float, ...] | None = None  # (input, output) or (input, output, cached_input)

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
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file or remove it.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc}. Check config_file=.") from exc
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
    if isinstance(table.get("price_per_million"), list):
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
    if isinstance(merged.get("data_dir"), (str, Path)):
        merged["data_dir"] = Path(merged["data_dir"]).expanduser()
    settings = Settings(**merged)
    check_settings(settings)
    if settings.api_key is None:
        settings = replace(settings, api_key=os.environ.get(settings.api_key_env) or None)
    return settings


_TEXTS = ("backend", "model", "base_url", "api_key", "local_model", "lora")
_COUNTS = ("max_concurrency", "local_slots", "local_context", "local_port")
_RATES = ("requests_per_minute", "tokens_per_minute", "timeout", "retry_base_delay")


def check_settings(settings: Settings) -> None:
    """Refuse a setting of the wrong kind, naming it: every mistake is a ConfigError at ``connect``, not later."""
    for name in _TEXTS:
        value = getattr(settings, name)
        if value is not None and not isinstance(value, (str, Path) if name in ("local_model", "lora") else str):
            raise ConfigError(f"{name} must be text, got {type(value).__name__} ({value!r}).")
    counts = {name: getattr(settings, name) for name in _COUNTS if getattr(settings, name) is not None}
    check_counts(error=ConfigError, **counts)
    check_counts(at_least=0, error=ConfigError, max_retries=settings.max_retries)
    check_numbers(above=0, error=ConfigError, **{name: getattr(settings, name) for name in _RATES})
    if settings.local_port is not None and settings.local_port > 65535:
        raise ConfigError(f"local_port must be a port number (1-65535), got {settings.local_port!r}.")
    if not isinstance(settings.data_dir, Path):
        raise ConfigError(f"data_dir must be a folder path, got {type(settings.data_dir).__name__}.")
    given_price(settings.price_per_million)
    _check_key_variable(settings.api_key_env)


def _check_key_variable(name: Any) -> None:
    """``api_key_env`` names the variable that holds the key: a name, never the key itself (which is not shown)."""
    if isinstance(name, str) and looks_like_key(name):
        raise ConfigError(
            "api_key_env holds what looks like an API key, not the name of the variable that holds one. Remove the "
            "key from there (and if the file was shared, revoke it), set it in a variable, and write api_key_env = "
            '"OPENAI_API_KEY" (or your variable\'s name).'
        )
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(
            f"api_key_env is the name of an environment variable, like OPENAI_API_KEY; got {name!r}, which is not one."
        )
