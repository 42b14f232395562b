"""Task family ``arithmetic``: small-number sums whose answer a program checks directly.

The answer read from a reply is its last integer (what a person would circle); the verifier
compares it with the true sum. Difficulty: 1 = two one-digit numbers, 2 = a one-digit and a
two-digit number, 3 = two two-digit numbers. (Three two-digit numbers scored 0/40 on the embedded
model, outside the 10-80% window, so that setting is not shipped.)
"""

from __future__ import annotations

import random
from typing import Any

from .base import Task, last_integer, register

__all__ = ["TASK"]


def _sample(rng: random.Random, difficulty: int) -> dict[str, Any]:
    if difficulty == 1:
        numbers = [rng.randint(1, 9), rng.randint(1, 9)]
    elif difficulty == 2:
        numbers = [rng.randint(10, 99), rng.randint(1, 9)]
    else:
        numbers = [rng.randint(10, 99), rng.randint(10, 99)]
    return {"numbers": numbers, "expression": " + ".join(str(n) for n in numbers)}


def _count(difficulty: int) -> int:
    """How many distinct pairs ``_sample`` draws: 9 one-digit and 90 two-digit numbers."""
    return {1: 9 * 9, 2: 90 * 9}.get(difficulty, 90 * 90)


def _answer(variables: dict[str, Any]) -> str:
    return str(sum(variables["numbers"]))


def _check(response: str, variables: dict[str, Any]) -> tuple[bool, str]:
    found, expected = last_integer(response), _answer(variables)
    if found is None:
        return False, "the reply contains no number"
    if found != expected:
        return False, f"{variables['expression']} is not {found}"
    return True, ""


TASK = register(
    Task(
        name="arithmetic",
        phrasings={
            "train": [
                "What is {expression}? Answer with the number only.",
                "Calculate {expression}. Give only the number.",
                "{expression} = ? Reply with the number only.",
            ],
            "heldout": [
                "Compute {expression}. Reply with just the result.",
                "Work out {expression} and write only the result.",
                "How much is {expression}? Just the result, please.",
            ],
        },
        sample=_sample,
        count=_count,
        check=_check,
        answer=_answer,
        extract=last_integer,
        difficulties=(1, 2, 3),
        default_difficulty=1,
        max_tokens=48,
        description="sums of small numbers; the last integer of the reply must equal the sum",
    )
)
