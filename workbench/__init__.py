"""Synthetic Data Workbench: prototype prompts that generate synthetic data, grade and refine it.

    import workbench as wb
    llm = wb.connect()                         # the embedded local model: no key, no network
    table = llm.chat_many(["Name a fruit."] * 3, temperature=0.8)

The public names are listed in ``__all__`` (a test pins them).
"""

from __future__ import annotations

from .cache import ResponseCache
from .client import LLM, RequestFailedError
from .columns import RESPONSE_COLUMNS
from .config import Settings
from .connect import BACKENDS, connect
from .errors import ConfigError, EndpointUnreachableError, LocalModelError, MissingAPIKeyError, WorkbenchError

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "LLM",
    "RESPONSE_COLUMNS",
    "ConfigError",
    "EndpointUnreachableError",
    "LocalModelError",
    "MissingAPIKeyError",
    "RequestFailedError",
    "ResponseCache",
    "Settings",
    "WorkbenchError",
    "__version__",
    "connect",
]
