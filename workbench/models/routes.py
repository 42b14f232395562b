"""Where a batch of requests is answered: in this kernel (the default), or elsewhere, chosen by name.

    llm.chat_many(requests)                 # here, through the batch runner (models/batch.py)
    llm.chat_many(requests, via="batch")    # a provider batch job (registered by workbench.scale)
    llm.chat_many(requests, via="ray")      # the Ray runner (registered by workbench.scale)

The layers above register their routes with :func:`register_route`; ``LLM.achat_many`` looks the
name up with :func:`find_route`. So models/ calls a route without importing the layer that made it.
A route is ``async handler(llm, requests, *, use_cache, progress, max_concurrency)`` and returns a
response table (``workbench.columns.RESPONSE_COLUMNS``), or a :class:`Pending` handle while the work
runs elsewhere (a provider batch job: ``BatchJobs``). Every call that takes ``via=`` is typed
``-> Answer``; :func:`is_pending` tells the two apart, and the same call made again once the work is
done returns the table. Entry points that cannot hand back a handle refuse ``via`` by name
(:func:`refuse_via`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

import polars as pl

from ..errors import ConfigError, InputError

__all__ = [
    "Answer",
    "Pending",
    "RouteHandler",
    "find_route",
    "is_pending",
    "known_routes",
    "refuse_via",
    "register_route",
]


@runtime_checkable
class Pending(Protocol):
    """Work that runs elsewhere and has not finished: run the same call again once ``done`` for the table."""

    @property
    def done(self) -> bool: ...


Answer: TypeAlias = "pl.DataFrame | Pending"
RouteHandler = Callable[..., Awaitable[Answer]]


def is_pending(answer: Answer) -> bool:
    """True when ``answer`` is a handle to work still running elsewhere rather than a finished table."""
    return not isinstance(answer, pl.DataFrame)


def refuse_via(options: Mapping[str, Any], entry: str) -> None:
    """Refuse ``via=`` in ``options`` for an entry point that answers only in this kernel, naming it."""
    if options.get("via") not in (None, "kernel"):
        raise InputError(
            f"{entry} does not take via={options['via']!r}: it needs every answer before it can go on, so it "
            "runs in this kernel. Send the requests elsewhere with wb.generate, wb.grade, wb.refine or "
            "llm.chat_many(..., via=...), then call it on the table they return."
        )


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
