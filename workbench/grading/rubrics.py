"""``wb.Rubric``: what a judge is told — criteria, a score scale, level descriptions, graded examples.

rubric = wb.Rubric("Is the problem solvable and the answer correct?", scale=(1, 5),
                   levels={1: "unsolvable or wrong", 5: "clear, solvable, correct"})
wb.Rubric.load("math_word_problem")      # one of the rubrics shipped in workbench/shipped/rubrics/
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import atomic_path
from ..generation.grids import shipped_data_dir

__all__ = ["JUDGE_REASON", "MAX_SCALE_POINTS", "REASON_MAX_CHARS", "Rubric", "check_scale"]

MAX_SCALE_POINTS = 101
"""A judge scores on at most 101 points (0 to 100): the output schema lists every score, and a judge cannot
tell a million points apart anyway."""
REASON_MAX_CHARS = 200
"""The judge's reason is cut here by the grammar, so a judge that starts repeating its input (the embedded
model does, on a degenerate response) still closes its JSON and gives a score instead of running out of
tokens. A run of digits costs about a token a character, so this fits the judge's 256 tokens."""
JUDGE_REASON = {"type": "string", "maxLength": REASON_MAX_CHARS}
"""The ``reason`` field of every judge's output schema (graded and pairwise verdicts alike); copy it into a schema."""


class Rubric:
    """The judge's instructions and the integer scale its scores live on."""

    def __init__(
        self,
        criteria: str,
        scale: tuple[int, int] = (1, 5),
        levels: Mapping[int, str] | None = None,
        examples: Sequence[Mapping[str, Any]] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(criteria, str) or not criteria.strip():
            raise InputError("a rubric needs criteria: a sentence saying what a good answer is.")
        low, high = check_scale(scale)
        self.criteria = criteria.strip()
        self.scale = (low, high)
        self.levels = _levels(levels, low, high)
        self.examples = _graded_examples(examples, low, high)
        self.name = str(name) if name else "rubric"

    def __repr__(self) -> str:
        return f"Rubric({self.criteria!r}, scale={self.scale})"

    @property
    def values(self) -> list[int]:
        return list(range(self.scale[0], self.scale[1] + 1))

    def instructions(self) -> str:
        """The judge's system message."""
        low, high = self.scale
        lines = [
            "You are a strict, fair grader. Grade the response to the task below.",
            f"Criteria: {self.criteria}",
            f"Give an integer score from {low} (worst) to {high} (best).",
        ]
        if self.levels:
            lines.append("Score levels:")
            lines += [f"- {level}: {text}" for level, text in sorted(self.levels.items())]
        for example in self.examples:
            lines.append(f"Example response: {example['response']}\nIts score: {example['score']}")
            if example.get("reason"):
                lines.append(f"Why: {example['reason']}")
        lines.append(
            'Reply with a JSON object with two keys: "reason", one or two sentences in your own words on what is '
            f'right or wrong in this response, then "score", an integer from {low} to {high}.'
        )
        return "\n".join(lines)

    def json_schema(self) -> dict[str, Any]:
        """The judge's output schema: a short reason, then the score (reason first, so it is thought out)."""
        return {
            "type": "object",
            "properties": {"reason": dict(JUDGE_REASON), "score": {"type": "integer", "enum": self.values}},
            "required": ["reason", "score"],
            "additionalProperties": False,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "criteria": self.criteria,
            "scale": list(self.scale),
            "levels": {str(k): v for k, v in self.levels.items()},
            "examples": self.examples,
        }

    def save(self, path: str | Path) -> Path:
        """Write the rubric as JSON (read it back with :meth:`load`)."""
        path = Path(path)
        with atomic_path(path, hint="Save it in a folder you can write to.") as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, name_or_path: str | Path) -> Rubric:
        """A rubric from a JSON file, or by the name of one shipped in ``workbench/shipped/rubrics/``."""
        path = Path(name_or_path)
        if not path.is_file():
            path = shipped_data_dir() / "rubrics" / f"{name_or_path}.json"
        if not path.is_file():
            shipped = sorted(p.stem for p in (shipped_data_dir() / "rubrics").glob("*.json"))
            raise InputError(f"no rubric {str(name_or_path)!r}. Shipped rubrics: {', '.join(shipped)}.")
        try:
            data = json.loads(path.read_text())
            criteria = data["criteria"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path} is not a rubric: a JSON object with 'criteria' (see Rubric.save).") from None
        scale = data.get("scale", (1, 5))
        return cls(criteria, scale, data.get("levels"), data.get("examples"), data.get("name"))


def check_scale(scale: Any) -> tuple[int, int]:
    """(min, max): two whole numbers, min < max, at most MAX_SCALE_POINTS points; 1.0 is read as 1, 1.7 refused."""
    values = list(scale) if isinstance(scale, (tuple, list)) else None
    if values is None or len(values) != 2 or not all(_whole(value) for value in values):
        raise InputError(f"a score scale is two whole numbers (min, max), e.g. (1, 5); got {scale!r}.")
    low, high = (int(value) for value in values)
    if low >= high:
        raise InputError(f"a score scale needs min < max; got ({low}, {high}).")
    if high - low + 1 > MAX_SCALE_POINTS:
        raise InputError(
            f"a score scale has at most {MAX_SCALE_POINTS} points (e.g. (0, 100)); ({low}, {high}) has "
            f"{high - low + 1:,}. A judge's output schema lists every score: use a coarser scale."
        )
    return low, high


def _whole(value: Any) -> bool:
    """An int, or a float (or numeric text, as in a JSON file) that holds one: 5, 5.0, "5"."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        value = value.strip()
        return value.lstrip("-").isdigit()
    return isinstance(value, (int, float)) and math.isfinite(value) and value == int(value)


def _levels(levels: Any, low: int, high: int) -> dict[int, str]:
    if levels is None:
        return {}
    if not isinstance(levels, Mapping):
        raise InputError(
            f"levels is a dict from score to description, e.g. {{1: 'wrong', 5: 'right'}}; got {levels!r}."
        )
    wrong = [level for level in levels if not _whole(level)]
    if wrong:
        raise InputError(
            f"rubric levels are keyed by score, e.g. levels={{{low}: 'poor', {high}: 'excellent'}}; {wrong[0]!r} is "
            f"not a score on the scale {low}..{high}."
        )
    found = {int(level): str(text) for level, text in levels.items()}
    outside = sorted(level for level in found if not low <= level <= high)
    if outside:
        raise InputError(f"rubric levels {outside} lie outside the scale {low}..{high}.")
    return found


def _graded_examples(examples: Any, low: int, high: int) -> list[dict[str, Any]]:
    found = []
    for example in examples or []:
        if not isinstance(example, Mapping) or not {"response", "score"} <= set(example):
            raise InputError(f"a graded example is a dict with 'response' and 'score'; got {example!r}.")
        score = example["score"]
        if not _whole(score) or not low <= int(score) <= high:
            raise InputError(f"a graded example needs a whole-number 'score' in {low}..{high}; got {score!r}.")
        found.append(dict(example))
    return found
