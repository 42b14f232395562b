"""Task family ``comparison``: which of two numbers is larger — one right answer, read from the reply.

The answer read from a reply is its last integer; it must be the larger number. Difficulty:
1 = one-digit numbers, 2 = two-digit numbers, 3 = two-digit numbers with the same tens digit,
4 = three-digit numbers that differ only in the last digit.
"""

from __future__ import annotations

import random
from typing import Any

from .base import Task, last_integer, register

__all__ = ["TASK"]


def _sample(rng: random.Random, difficulty: int) -> dict[str, Any]:
    while True:
        if difficulty == 1:
            a, b = rng.randint(1, 9), rng.randint(1, 9)
        elif difficulty == 2:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
        elif difficulty == 3:
            tens = rng.randint(1, 9) * 10
            a, b = tens + rng.randint(0, 9), tens + rng.randint(0, 9)
        else:
            base = rng.randint(10, 99) * 10
            a, b = base + rng.randint(0, 9), base + rng.randint(0, 9)
        if a != b:
            return {"a": a, "b": b}


def _count(difficulty: int) -> int:
    """How many distinct ordered pairs of different numbers ``_sample`` draws."""
    return {1: 9 * 8, 2: 90 * 89, 3: 9 * 10 * 9}.get(difficulty, 90 * 10 * 9)


def _answer(variables: dict[str, Any]) -> str:
    return str(max(variables["a"], variables["b"]))


def _check(response: str, variables: dict[str, Any]) -> tuple[bool, str]:
    found, expected = last_integer(response), _answer(variables)
    if found is None:
        return False, "the reply names no number"
    if found != expected:
        return False, f"{found} is not the larger of {variables['a']} and {variables['b']}"
    return True, ""


TASK = register(
    Task(
        name="comparison",
        phrasings={
            "train": ["Which number is larger, {a} or {b}? Answer with the number only."],
            "heldout": ["Of the two numbers {a} and {b}, which one is bigger? Reply with just that number."],
        },
        sample=_sample,
        count=_count,
        check=_check,
        answer=_answer,
        extract=last_integer,
        difficulties=(1, 2, 3, 4),
        default_difficulty=2,
        max_tokens=32,
        description="which of two numbers is larger; the last integer of the reply must be the larger one",
    )
)
