"""Synthetic Data Workbench: prototype prompts that generate synthetic data, grade and refine it.

    import workbench as wb
    llm = wb.connect()                         # the embedded local model: no key, no network
    table = llm.chat_many(["Name a fruit."] * 3, temperature=0.8)

The public names are listed in ``__all__`` (a test pins them). The package reads as the loop it
serves; each part uses only parts drawn below it (``tests/test_layout.py`` pins what each may use):

    views/        what a person looks at: charts, PromptLab, Labeler, the explorer, reports
    training/     fine-tuning on the data made here, self-training rounds, model cards
    scale/        what runs outside the kernel: provider batch jobs, batch files, the Ray runner
                  (uses models and curation only)
    grading/      judges, verifiers and tasks, refine rounds, judge trust, experiments
    generation/   prompts, grids, personas, structured output, recipes, generate, estimate
    curation/     dedup, diversity, contamination, filters, export (needs no model)
    models/       the one seam to a model: connect, client, batch runner, cache, retries, the local server
    errors.py, columns.py   the error tree (with the checks and key redaction) and the run-table columns
    files.py                writing files atomically, with a clear error where a folder cannot be written
"""

from __future__ import annotations

from .columns import GENERATION_COLUMNS, RESPONSE_COLUMNS
from .curation import export
from .curation.contamination import contamination
from .curation.dedup import dedup, duplicate_clusters
from .curation.diversity import diversity
from .curation.filters import keep
from .curation.preferences import preference_pairs
from .errors import (
    ConfigError,
    EndpointUnreachableError,
    InputError,
    LocalModelError,
    MissingAPIKeyError,
    PromptError,
    SchemaError,
    StorageError,
    WorkbenchError,
)
from .generation.estimate import Estimate, estimate
from .generation.generate import agenerate, generate
from .generation.grids import grid, personas, sample_grid
from .generation.prompts import Prompt
from .generation.recipes import evol_instruct, load_seed_tasks, persona_generate, self_instruct
from .grading import tasks
from .grading.grade import GRADE_COLUMNS, agrade, grade, verify
from .grading.judge_check import judge_check
from .grading.pairwise import acompare, compare
from .grading.refine import arefine, best, per_round, refine, snapshot
from .grading.rubrics import Rubric
from .grading.strategies import compare_strategies, strategy_table
from .grading.trust import Agreement, agreement, cohen_kappa, position_bias, self_agreement
from .models.cache import ResponseCache
from .models.client import LLM, RequestFailedError
from .models.config import Settings
from .models.connect import BACKENDS, connect
from .models.routes import is_pending
from .scale import batches
from .training.finetune import TunedModel, finetune
from .training.self_train import self_train
from .views import charts
from .views.explore import explore
from .views.labeler import Labeler
from .views.promptlab import PromptLab

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
    "batches",
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
    "compare_strategies",
    "strategy_table",
    "tasks",
    "finetune",
    "self_train",
    "preference_pairs",
    "TunedModel",
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
    "StorageError",
    "WorkbenchError",
    "__version__",
    "agenerate",
    "connect",
    "estimate",
    "evol_instruct",
    "explore",
    "generate",
    "grid",
    "judge_check",
    "is_pending",
    "load_seed_tasks",
    "persona_generate",
    "personas",
    "sample_grid",
    "self_instruct",
]
