"""What training takes from the machine: free memory and disk, checked before training starts, and the cores.

    check_resources(resources_needed(parameters, settings), models_dir)   # ResourceError if short; nothing trained
    training_threads()                                                    # torch's threads: the idle cores

Both checks run before any model is loaded, so a machine that is short loses nothing but the check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ConfigError, ResourceError
from ..models.local import free_cores, threads_from_env
from .settings import TrainingSettings

__all__ = ["ResourceError", "check_resources", "resources_needed", "training_threads"]

_GB = 1024**3


def resources_needed(parameters: int, settings: TrainingSettings) -> dict[str, float]:
    """Bytes of memory and disk that training a model of ``parameters`` weights with ``settings`` needs (estimates).

    Memory: float32 weights, plus gradients and two AdamW moments for a full fine-tune, plus about 1.5 GB
    for activations and the libraries. Disk: the float32 checkpoint and the GGUF written from it.
    """
    weights = parameters * 4
    memory = weights * (1.3 if settings.lora else 4) + 1.5 * _GB
    return {"memory": memory, "disk": weights * 1.6 + 0.2 * _GB}


def check_resources(
    needed: dict[str, float],
    folder: Path,
    max_memory_gb: float | None = None,
    available: dict[str, float] | None = None,
) -> None:
    """Raise :class:`ResourceError` when free memory or disk (``available``, default: measured now) is short."""
    available = available or {"memory": _free_memory(), "disk": _free_disk(folder)}
    if max_memory_gb is not None:
        available = {**available, "memory": min(available["memory"], max_memory_gb * _GB)}
    for kind, advice in (
        ("memory", "close other programs, use mode='lora' (it needs far less than 'full'), or raise max_memory_gb"),
        ("disk", f"free space where models are written ({folder}) or pass data_dir=... on a larger disk"),
    ):
        if needed[kind] > available[kind]:
            raise ResourceError(
                f"not enough free {kind} to train: about {needed[kind] / _GB:.1f} GB needed, "
                f"{available[kind] / _GB:.1f} GB available. Nothing was trained; {advice}."
            )


def _free_memory() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def _free_disk(folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    return float(shutil.disk_usage(folder).free)


def training_threads() -> int:
    """Threads for torch: ``$WORKBENCH_TRAIN_THREADS`` if set, else the cores other work does not keep busy
    now (:func:`~workbench.models.local.free_cores`, as for the embedded server), at least one.

    On a shared 2-core machine under load, two contending threads trained five times slower than one.
    """
    return threads_from_env("WORKBENCH_TRAIN_THREADS", ConfigError) or free_cores()
