"""Synthetic Data Workbench: prototype prompts that generate synthetic data, grade and refine it.

    import workbench as wb
    llm = wb.connect()                         # the embedded local model: no key, no network
    table = llm.chat_many(["Name a fruit."] * 3, temperature=0.8)

The public names are listed in ``__all__`` (a test pins them).
"""

from __future__ import annotations

from . import charts, export
from .cache import ResponseCache
from .client import LLM, RequestFailedError
from .columns import GENERATION_COLUMNS, RESPONSE_COLUMNS
from .config import Settings
from .connect import BACKENDS, connect
from .curate import contamination, dedup, duplicate_clusters, keep
from .diversity import diversity
from .errors import (
    ConfigError,
    EndpointUnreachableError,
    InputError,
    LocalModelError,
    MissingAPIKeyError,
    PromptError,
    SchemaError,
    WorkbenchError,
)
from .estimate import Estimate, estimate
from .generate import agenerate, generate
from .grade import GRADE_COLUMNS, agrade, grade, verify
from .grids import grid, personas, sample_grid
from .labeler import Labeler
from .pairwise import acompare, compare
from .promptlab import PromptLab
from .prompts import Prompt
from .recipes import evol_instruct, load_seed_tasks, persona_generate, self_instruct
from .refine import arefine, best, per_round, refine, snapshot
from .rubrics import Rubric
from .trust import Agreement, agreement, cohen_kappa, position_bias, self_agreement

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "GENERATION_COLUMNS",
    "GRADE_COLUMNS",
    "Agreement",
    "charts",
    "contamination",
    "dedup",
    "diversity",
    "duplicate_clusters",
    "export",
    "keep",
    "Labeler",
    "Rubric",
    "acompare",
    "agrade",
    "agreement",
    "arefine",
    "best",
    "cohen_kappa",
    "compare",
    "grade",
    "per_round",
    "position_bias",
    "refine",
    "self_agreement",
    "snapshot",
    "verify",
    "LLM",
    "RESPONSE_COLUMNS",
    "ConfigError",
    "EndpointUnreachableError",
    "InputError",
    "LocalModelError",
    "MissingAPIKeyError",
    "Estimate",
    "Prompt",
    "PromptError",
    "PromptLab",
    "RequestFailedError",
    "ResponseCache",
    "SchemaError",
    "Settings",
    "WorkbenchError",
    "__version__",
    "agenerate",
    "connect",
    "estimate",
    "evol_instruct",
    "generate",
    "grid",
    "load_seed_tasks",
    "persona_generate",
    "personas",
    "sample_grid",
    "self_instruct",
]
