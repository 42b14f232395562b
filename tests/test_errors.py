"""One error tree: every error the workbench raises on purpose is drawn in ``workbench/errors.py``."""

from __future__ import annotations

import importlib
import pkgutil

import workbench
from workbench import errors


def _every_module() -> None:
    """Import every module, so that a subclass defined anywhere is seen (optional extras may be missing)."""
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_the_drawing_names_every_error_and_every_error_lives_in_errors_py():
    _every_module()
    drawing = errors.__doc__
    every = _subclasses(errors.WorkbenchError)
    assert len(every) >= 16
    undrawn = sorted(cls.__name__ for cls in every if f" {cls.__name__} " not in drawing)
    assert not undrawn, f"errors.py's drawing does not name: {undrawn}"
    elsewhere = sorted(f"{cls.__module__}.{cls.__name__}" for cls in every if cls.__module__ != "workbench.errors")
    assert not elsewhere, f"errors defined outside errors.py: {elsewhere}"
    assert set(errors.__all__) >= {cls.__name__ for cls in every}


def test_errors_stay_importable_from_where_they_are_raised():
    from workbench.scale import BatchJobNotFoundError, RayUnavailableError
    from workbench.training.convert import TrainingDependencyError
    from workbench.training.finetune import ResourceError

    assert RayUnavailableError is errors.RayUnavailableError
    assert BatchJobNotFoundError is errors.BatchJobNotFoundError
    assert issubclass(TrainingDependencyError, ImportError)
    assert ResourceError is errors.ResourceError
    assert workbench.RequestFailedError is errors.RequestFailedError
