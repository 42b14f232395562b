"""Every error the workbench raises on purpose, in one tree.

    WorkbenchError                 base class: catch this to catch them all
    ├── ConfigError                a setting is missing, unknown or malformed (also a ValueError)
    │   └── MissingAPIKeyError     a hosted backend needs a key that is not set
    ├── InputError                 data or arguments a step cannot use (also a ValueError)
    │   ├── PromptError            a template that cannot be parsed or rendered
    │   ├── SchemaError            a structured-output schema that is not a valid JSON schema
    │   └── BatchFileError         a batch input file that breaks the Batch API's rules, or an
    │                              unreadable results file                     (scale/batch_files)
    ├── StorageError               a file or folder that cannot be written: read-only, full, or a file
    │                              where a folder should be (also an OSError)
    ├── LocalModelError            the embedded llama.cpp server could not start or find its model
    ├── EndpointUnreachableError   no request of a batch reached the server, after retries
    ├── RequestFailedError         the one request of ``llm.chat`` failed after every retry
    ├── BatchRejectedError         the provider refused a batch job's upload or file  (scale/batch_jobs)
    ├── BatchJobNotFoundError      a job in the job table the provider no longer knows (scale/batch_jobs)
    ├── RayUnavailableError        Ray is not installed, or its cluster cannot be reached (scale/ray_runner)
    ├── RayJobError                a Ray job stopped before every shard finished   (scale/ray_runner)
    ├── TrainingDependencyError    the ``train`` extra is missing (also an ImportError) (training)
    ├── ResourceError              not enough free memory or disk to train           (training/resources)
    └── ConversionError            llama.cpp's converter could not write a GGUF      (training/convert)

Every class is defined here, so the whole tree reads in one place; the module in brackets is where
it is raised (and from where it is also importable). Each message says what to do next. Errors of
single requests inside a batch are never raised: they are recorded in the row's ``error`` column
and the batch goes on. ``tests/test_errors.py`` fails on a subclass this drawing does not name.

No message says a key: every ``WorkbenchError``'s message, every row error and every record of the
``workbench`` logger pass through :func:`redact`, the one place that knows what a key looks like
(``views/report.py`` uses it for reports too).

The checks every entry point shares, one helper per kind, each raising the error it is given
(``InputError`` by default) with the argument's name:

    check_counts(n=n, k=k)                 whole numbers of 1 or more (``at_least=0``, ``at_most=...``)
    check_numbers(stop_at=stop_at)         finite real numbers (None passes: an option left unset)
    check_type(llm, LLM, "llm", hint)      an object of the expected type, or a message with the hint
"""

from __future__ import annotations

import logging
import math
import os
import re
from numbers import Real
from typing import Any

__all__ = [
    "BatchFileError",
    "BatchJobNotFoundError",
    "BatchRejectedError",
    "ConfigError",
    "ConversionError",
    "EndpointUnreachableError",
    "InputError",
    "LocalModelError",
    "MissingAPIKeyError",
    "PromptError",
    "RayJobError",
    "RayUnavailableError",
    "RequestFailedError",
    "ResourceError",
    "SchemaError",
    "StorageError",
    "TrainingDependencyError",
    "WorkbenchError",
    "check_counts",
    "check_numbers",
    "check_type",
    "looks_like_key",
    "redact",
]

REDACTED = "[redacted]"
# What a key looks like: OpenAI's and most providers' (sk-, sk-proj-, rk-, ...), Groq's, Hugging Face's, Google's,
# xAI's, and a bearer token. Long enough that ordinary words and ids never match.
_KEY_PATTERN = re.compile(
    r"\b(?:(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}|gsk_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|AIza[A-Za-z0-9_\-]{30,}"
    r"|xai-[A-Za-z0-9]{20,})|(?<=Bearer )[A-Za-z0-9._\-]{16,}"
)
_SECRET_VARIABLE = re.compile(r"API_KEY|_KEY$|TOKEN$|SECRET|PASSWORD", re.IGNORECASE)
_SHORTEST_SECRET = 12  # shorter values of such variables (a model name, "1") are not worth hiding


def redact(text: str) -> str:
    """``text`` with anything that looks like a key replaced by ``[redacted]``.

    A key is a token shaped like one (``sk-...``, ``gsk_...``, ``hf_...``, ``AIza...``, a bearer token), or the
    value of an environment variable whose name says it holds one (``*API_KEY*``, ``*_KEY``, ``*TOKEN``,
    ``*SECRET*``, ``*PASSWORD*``).
    """
    for name, value in os.environ.items():
        if len(value) >= _SHORTEST_SECRET and _SECRET_VARIABLE.search(name) and value in text:
            text = text.replace(value, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


def looks_like_key(text: str) -> bool:
    """True when ``text`` holds something :func:`redact` would hide."""
    return redact(text) != text


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose. Its message never shows a key."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


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


class StorageError(WorkbenchError, OSError):
    """A file or folder the workbench cannot write: read-only, full, or a file where a folder should be."""


class LocalModelError(WorkbenchError):
    """The embedded local model could not be found or its server could not start."""


class EndpointUnreachableError(WorkbenchError):
    """Not one request of a batch reached the endpoint, after every retry."""


class RequestFailedError(WorkbenchError):
    """A single ``llm.chat`` request failed after every retry."""


class BatchFileError(InputError):
    """A batch file that breaks the Batch API's rules, or a results file that cannot be read."""


class BatchRejectedError(WorkbenchError):
    """The endpoint refused a batch: its upload, or the file's validation (the message names the line)."""


class BatchJobNotFoundError(WorkbenchError):
    """A job in the job table whose batch the provider no longer knows."""


class RayUnavailableError(WorkbenchError):
    """Ray is not installed, or the cluster at the given address cannot be reached."""


class RayJobError(WorkbenchError):
    """A Ray job stopped before every shard finished; the finished shards are kept."""


class TrainingDependencyError(WorkbenchError, ImportError):
    """Training needs torch, transformers, peft, gguf and sentencepiece (the ``train`` extra)."""


class ResourceError(WorkbenchError):
    """Not enough free memory or disk for the chosen training mode (checked before training starts)."""


class ConversionError(WorkbenchError):
    """llama.cpp's converter could not write the trained model as GGUF."""


def check_counts(
    *,
    at_least: int = 1,
    at_most: int | None = None,
    why: str = "",
    error: type[WorkbenchError] = InputError,
    **counts: Any,
) -> None:
    """Refuse any count that is not a whole number of ``at_least`` (1) or more (and ``at_most``), naming it.

    ``check_counts(k=k)``; ``check_counts(at_most=limit, why="a batch is held in memory", n=n)``.
    """
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < at_least:
            wanted = "a positive whole number" if at_least == 1 else f"a whole number of {at_least} or more"
            raise error(f"{name} must be {wanted}, got {value!r}.")
        if at_most is not None and value > at_most:
            raise error(f"{name} must be at most {at_most:,} here, got {value:,}{': ' + why if why else ''}.")


def check_numbers(
    *,
    above: float | None = None,
    at_least: float | None = None,
    error: type[WorkbenchError] = InputError,
    **numbers: Any,
) -> None:
    """Refuse any value that is not a finite real number (``above``/``at_least`` a bound), naming it.

    None passes: it is an option left unset. ``check_numbers(stop_at=stop_at)``; ``check_numbers(above=0, timeout=t)``.
    """
    for name, value in numbers.items():
        if value is None:
            continue
        finite = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        if not finite or (above is not None and value <= above) or (at_least is not None and value < at_least):
            bound = (
                f" above {above:g}"
                if above is not None
                else f" of {at_least:g} or more"
                if at_least is not None
                else ""
            )
            raise error(f"{name} must be a finite number{bound}, got {value!r}.")


def check_type(value: Any, expected: type | tuple[type, ...], name: str, hint: str) -> None:
    """Refuse ``value`` unless it is an ``expected``: the message names the argument, what it got and the ``hint``."""
    if not isinstance(value, expected):
        raise InputError(f"{name} must be {hint}; got {type(value).__name__} ({_short(value)}).")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _RedactKeys(logging.Filter):
    """Hides keys in every record of the ``workbench`` logger (see :func:`redact`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


logging.getLogger("workbench").addFilter(_RedactKeys())
