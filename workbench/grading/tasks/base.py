"""The core of the task families: :class:`Task`, its :class:`Verdict`, the registry, and helpers the families share.

Every family module (``arithmetic``, ``comparison``, ``ifeval``) imports from here and registers its task;
``workbench.grading.tasks`` re-exports these names and imports the shipped families, so they are registered
before anyone asks (nothing here imports a family: the registry knows them only by what registered itself).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import polars as pl

from ...errors import InputError, check_counts

__all__ = ["ITEM_COLUMNS", "SPLITS", "Task", "Verdict", "get", "items", "last_integer", "names", "register"]

SPLITS = ("train", "heldout")
ITEM_COLUMNS: dict[str, pl.DataType] = {
    "item_id": pl.String(),  # stable: task, split, difficulty, seed and index hashed
    "task": pl.String(),
    "split": pl.String(),
    "difficulty": pl.Int64(),
    "prompt": pl.String(),  # the text the model is asked
    "variables": pl.String(),  # JSON of the item's variables (what the verifier reads)
    "gold": pl.String(),  # the one right answer; null when a task has many
}


class Verdict(NamedTuple):
    """A verifier's answer: pass or fail, and on failure a short message saying what is wrong."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Task:
    """One verifiable task family (see the module docstring for what each field does)."""

    name: str
    phrasings: Mapping[str, Sequence[str]]
    sample: Callable[[random.Random, int], dict[str, Any]]
    check: Callable[[str, dict[str, Any]], tuple[bool, str]]
    answer: Callable[[dict[str, Any]], str] | None = None
    extract: Callable[[str], str | None] | None = None
    difficulties: Sequence[int] = (1,)
    default_difficulty: int = 1
    max_tokens: int = 64
    description: str = ""
    system: str | None = field(default=None)
    count: Callable[[int], int] | None = None  # how many distinct variable sets ``sample`` draws at a difficulty

    def __post_init__(self) -> None:
        missing = [split for split in SPLITS if not self.phrasings.get(split)]
        if missing:
            raise InputError(f"task {self.name!r} needs at least one phrasing for the split(s) {missing}.")
        if self.default_difficulty not in self.difficulties:
            raise InputError(f"task {self.name!r}: default_difficulty must be one of {list(self.difficulties)}.")

    @property
    def has_answer(self) -> bool:
        """True when every item has one right answer that can be read from a reply (majority vote applies)."""
        return self.answer is not None and self.extract is not None

    def items(self, n: int, *, split: str = "train", seed: int = 0, difficulty: int | None = None) -> pl.DataFrame:
        """``n`` distinct items of this task (same seed, same items) as a frame with :data:`ITEM_COLUMNS`.

        An item is a distinct prompt: a set of variables in one of the split's phrasings. Asking for more
        items than the task has is an error that says how many there are (:meth:`capacity`).
        """
        check_counts(n=n)
        if split not in SPLITS:
            raise InputError(f"split is one of {', '.join(SPLITS)}; got {split!r}.")
        level = self.default_difficulty if difficulty is None else difficulty
        if level not in self.difficulties:
            raise InputError(f"task {self.name!r} has difficulties {list(self.difficulties)}; got {level!r}.")
        capacity = self.capacity(split, level)
        if capacity is not None and n > capacity:
            raise InputError(
                f"{self._described(split, level, capacity)}; {n:,} were asked for. Ask for at most {capacity:,}."
            )
        rng = random.Random(f"{self.name}/{split}/{level}/{seed}")
        templates = list(self.phrasings[split])
        rows, seen = [], set()
        for index in range(n):
            row = self._item(rng, templates, split, level, seed, index)
            tries = 1
            while row["prompt"] in seen:  # draw again while the prompt repeats (a small space runs out)
                if capacity is None and tries >= _DRAWS_BEFORE_GIVING_UP:
                    raise InputError(
                        f"task {self.name!r} ({split}, difficulty {level}) gave {len(seen)} distinct items, then "
                        f"{tries} repeats in a row: it seems to have no more, and {n:,} were asked for. Ask for fewer, "
                        "or give the task a count= (how many distinct items it has)."
                    )
                row = self._item(rng, templates, split, level, seed, index)
                tries += 1
            seen.add(row["prompt"])
            rows.append(row)
        return pl.DataFrame(rows, schema=ITEM_COLUMNS)

    def capacity(self, split: str = "train", difficulty: int | None = None) -> int | None:
        """How many distinct items the split has at ``difficulty``: variable sets × phrasings (None: unknown)."""
        level = self.default_difficulty if difficulty is None else difficulty
        if self.count is None:
            return None
        return self.count(level) * len(set(self.phrasings[split]))

    def _described(self, split: str, level: int, capacity: int) -> str:
        phrasings = len(set(self.phrasings[split]))
        return (
            f"task {self.name!r} has {capacity:,} distinct {split} items at difficulty {level} "
            f"({self.count(level):,} sets of variables in {phrasings} phrasing{'s' * (phrasings != 1)})"
        )

    def _item(self, rng: random.Random, templates: list[str], split: str, level: int, seed: int, index: int):
        variables = self.sample(rng, level)
        prompt = rng.choice(templates).format(**variables)
        key = f"{self.name}/{split}/{level}/{seed}/{index}"
        return {
            "item_id": hashlib.sha256(key.encode()).hexdigest()[:12],
            "task": self.name,
            "split": split,
            "difficulty": level,
            "prompt": prompt,
            "variables": json.dumps(variables, sort_keys=True),
            "gold": None if self.answer is None else str(self.answer(variables)),
        }

    def verify(self, response: str | None, variables: Mapping[str, Any] | str) -> Verdict:
        """The verifier on one reply; ``variables`` is the item's dict or its JSON. May raise if the check does."""
        if isinstance(variables, str):
            variables = json.loads(variables)
        if response is None:
            return Verdict(False, "no reply (the request failed)")
        passed, message = self.check(response, dict(variables))
        return Verdict(bool(passed), "" if passed else str(message))

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat messages that ask ``prompt`` (with the task's system message, if it has one)."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": prompt}]


_DRAWS_BEFORE_GIVING_UP = 50  # for a task without a count: this many repeats in a row means it has run out

_INTEGER = re.compile(r"-?\d[\d,]*")


def last_integer(response: str | None) -> str | None:
    """The last integer written in ``response`` (thousands commas dropped), or None."""
    found = _INTEGER.findall(response or "")
    return found[-1].replace(",", "") if found else None


_REGISTRY: dict[str, Task] = {}


def register(task: Task, *, replace: bool = False) -> Task:
    """Add ``task`` to the registry (``replace=True`` to redefine a name); returns it."""
    if not isinstance(task, Task):
        raise InputError(f"register a tasks.Task, got {type(task).__name__}.")
    if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
        raise InputError(f"a task named {task.name!r} is already registered; pass replace=True to redefine it.")
    _REGISTRY[task.name] = task
    return task


def get(name: str | Task) -> Task:
    """The registered task called ``name`` (a Task is returned as is)."""
    if isinstance(name, Task):
        return name
    if name not in _REGISTRY:
        raise InputError(f"no task {name!r}. Known tasks: {', '.join(names())}.")
    return _REGISTRY[name]


def names() -> list[str]:
    """The names of every registered task, shipped ones first loaded."""
    return sorted(_REGISTRY)


def items(name: str | Task, n: int, **options: Any) -> pl.DataFrame:
    """Shorthand for ``get(name).items(n, **options)``."""
    return get(name).items(n, **options)
