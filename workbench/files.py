"""Writing files: all at once or not at all, and a clear error when the place cannot be written.

    with atomic_path("data/runs/math-v1.jsonl", hint="pass another path") as temporary:
        frame.write_ndjson(temporary)       # written beside the target under a temporary name
        check(temporary)                    # an error here leaves the earlier file as it was
    # only now is the target replaced, by one rename

A reader never sees half a file, a failed export never destroys the good one it would have
replaced, and a read-only folder, a full disk or a file where a folder should be is a
:class:`~workbench.errors.StorageError` that names the place and says what to do, never a raw
``OSError`` from deep inside a writer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .errors import StorageError

__all__ = ["atomic_path", "storage_error"]


def storage_error(place: str | Path, exc: OSError, hint: str) -> StorageError:
    """The error for ``place`` that could not be written (``exc`` says why), with what to do next."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StorageError(f"cannot write {place}: {reason}. {hint}")


@contextlib.contextmanager
def atomic_path(path: str | Path, *, hint: str = "Write somewhere you may write to.") -> Iterator[Path]:
    """A temporary path beside ``path``; renamed over ``path`` when the block ends without an error.

    The temporary file is removed whatever happens; an ``OSError`` while making the folder, writing or
    renaming becomes a :class:`StorageError` with ``hint``.
    """
    target = Path(path)
    if "\x00" in str(target) or target.name in ("", ".", ".."):
        raise StorageError(f"cannot write {str(target)!r}: it is not a file name. {hint}")
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.touch()  # fails now, before any work, where the folder cannot be written
    except (OSError, ValueError) as exc:  # ValueError: a name the file system cannot take (a lone surrogate)
        raise storage_error(target.parent, exc if isinstance(exc, OSError) else OSError(str(exc)), hint) from exc
    try:
        yield temporary
        os.replace(temporary, target)
    except StorageError:
        raise
    except OSError as exc:
        raise storage_error(target, exc, hint) from exc
    finally:
        temporary.unlink(missing_ok=True)
