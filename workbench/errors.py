"""Every error the workbench raises on purpose, in one tree.

    WorkbenchError                 base class: catch this to catch them all
    ├── ConfigError                a setting is missing, unknown or malformed (also a ValueError)
    │   └── MissingAPIKeyError     a hosted backend needs a key that is not set
    ├── InputError                 data or arguments a step cannot use (also a ValueError)
    │   ├── PromptError            a template that cannot be parsed or rendered
    │   ├── SchemaError            a structured-output schema that is not a valid JSON schema
    │   └── BatchFileError         a batch input file that breaks the Batch API's rules, or an
    │                              unreadable results file                     (scale/batch_files)
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
"""

from __future__ import annotations

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
    "TrainingDependencyError",
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


def check_counts(**counts: Any) -> None:
    """Refuse any count that is not a whole number of 1 or more, naming it: ``check_counts(k=k, epochs=epochs)``."""
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}.")
