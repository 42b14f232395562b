"""Every error the workbench raises on purpose, in one tree.

    WorkbenchError                 base class: catch this to catch them all
    ├── ConfigError                a setting is missing, unknown or malformed (also a ValueError)
    │   └── MissingAPIKeyError     a hosted backend needs a key that is not set
    ├── InputError                 data or arguments a step cannot use (also a ValueError)
    │   ├── PromptError            a template that cannot be parsed or rendered
    │   └── SchemaError            a structured-output schema that is not a valid JSON schema
    ├── LocalModelError            the embedded llama.cpp server could not start or find its model
    └── EndpointUnreachableError   no request of a batch reached the server, after retries

Each message says what to do next. Errors of single requests inside a batch are never raised: they
are recorded in the row's ``error`` column and the batch goes on.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "EndpointUnreachableError",
    "InputError",
    "LocalModelError",
    "MissingAPIKeyError",
    "PromptError",
    "SchemaError",
    "WorkbenchError",
    "check_counts",
]


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError, ValueError):
    """A setting is missing, unknown or malformed."""


class MissingAPIKeyError(ConfigError):
    """A hosted backend needs an API key that is not set."""


class InputError(WorkbenchError, ValueError):
    """Data or arguments a step cannot use: an empty grid, a missing column, ``n < 1``."""


class PromptError(InputError):
    """A template that cannot be parsed, or rendered with the variables given."""


class SchemaError(InputError):
    """A structured-output schema that is neither a pydantic model nor a valid JSON schema."""


class LocalModelError(WorkbenchError):
    """The embedded local model could not be found or its server could not start."""


class EndpointUnreachableError(WorkbenchError):
    """Not one request of a batch reached the endpoint, after every retry."""


def check_counts(**counts: Any) -> None:
    """Refuse any count that is not a whole number of 1 or more, naming it: ``check_counts(k=k, epochs=epochs)``."""
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}.")
