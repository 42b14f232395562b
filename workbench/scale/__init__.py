"""scale — what runs outside the kernel: provider batch jobs, batch files for your own fleet, the Ray runner.

    batch_jobs.py   ``via="batch"``: OpenAI Batch API jobs that survive a restart; ``wb.batches(llm)``
    batch_files.py  the same requests as a batch input file (vLLM ``run_batch`` too); results read back
    job_table.py    the job table on disk beside the response cache (``data/cache/batches.sqlite``)
    ray_runner.py   ``via="ray"`` and ``ray_dedup``: the same steps as Ray Data jobs over shards

The notebook code does not change: ``wb.generate(...)``, ``wb.grade(...)`` and ``llm.chat_many(...)``
take ``via="batch"`` or ``via="ray"``; importing this package registers both routes with
``workbench.models.routes``. Optional dependencies (``ray``) are imported only inside functions
here, with an install hint when missing.
"""

from __future__ import annotations

from ..models.routes import register_route
from .batch_files import check_batch_file, read_batch_results, write_batch_file
from .batch_jobs import BATCH_BACKENDS, BatchJobNotFoundError, BatchJobs, BatchRejectedError, batch_route, batches
from .ray_runner import RayJobError, RayUnavailableError, ray_dedup, ray_route, start_ray, stop_ray

__all__ = [
    "BATCH_BACKENDS",
    "BatchJobNotFoundError",
    "BatchJobs",
    "BatchRejectedError",
    "RayJobError",
    "RayUnavailableError",
    "batches",
    "check_batch_file",
    "ray_dedup",
    "read_batch_results",
    "start_ray",
    "stop_ray",
    "write_batch_file",
]

register_route("batch", batch_route)
register_route("ray", ray_route)
