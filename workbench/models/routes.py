"""Where a batch of requests is answered: in this kernel (the default), or elsewhere, chosen by name.

    llm.chat_many(requests)                 # here, through the batch runner (models/batch.py)
    llm.chat_many(requests, via="batch")    # a provider batch job (registered by workbench.scale)
    llm.chat_many(requests, via="ray")      # the Ray runner (registered by workbench.scale)

The layers above register their routes with :func:`register_route`; ``LLM.achat_many`` looks the
name up with :func:`find_route`. So models/ calls a route without importing the layer that made it.
A route is ``async handler(llm, requests, *, use_cache, progress, max_concurrency)`` and returns a
response table (``workbench.columns.RESPONSE_COLUMNS``), or a handle while the work runs elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["RouteHandler", "find_route", "known_routes", "register_route"]

RouteHandler = Callable[..., Awaitable[Any]]

_ROUTES: dict[str, RouteHandler] = {}
_PROVIDERS = {"batch": "workbench.scale", "ray": "workbench.scale"}


def register_route(name: str, handler: RouteHandler) -> None:
    """Make ``via=name`` answer requests with ``handler`` (registering a name again replaces it)."""
    if not isinstance(name, str) or not name or name == "kernel":
        raise ConfigError(f"a route needs a name other than 'kernel', got {name!r}.")
    _ROUTES[name] = handler


def known_routes() -> list[str]:
    """The names ``via=`` accepts: ``kernel`` (the default) and every registered route."""
    return ["kernel", *sorted(_ROUTES)]


def find_route(name: str) -> RouteHandler:
    """The handler registered as ``name``, or a ConfigError that says how to get it."""
    if name in _ROUTES:
        return _ROUTES[name]
    if name in _PROVIDERS:
        raise ConfigError(
            f"via={name!r} is not available because {_PROVIDERS[name]} is not imported. "
            f"Run `import {_PROVIDERS[name]}` (plain `import workbench` does it) and call again."
        )
    raise ConfigError(f"unknown route via={name!r}. Choose one of: {', '.join(known_routes())}.")
