"""Task family ``ifeval``: instruction following checked by IFEval's own checkers (Zhou et al. 2023).

Each item asks for a short piece of writing about a topic plus constraints, each an IFEval
instruction worded by its own ``build_description`` and checked by its own ``check_following``
(from EleutherAI's ``lm-eval``, ``lm_eval.tasks.ifeval.instructions_registry``), so a pass here
means what it means in the paper ("strict" accuracy, all instructions of the item followed).
Difficulty = how many instructions an item carries (1 or 2; three scored 1/40 on the embedded
model, outside the 10-80% window, so that setting is not shipped).

Instructions used (the IFEval ids): ``keywords:existence``, ``length_constraints:number_words``,
``change_case:english_lowercase``, ``startend:end_checker``, ``detectable_format:json_format``
(plus our own check that the JSON object has the asked keys), ``punctuation:no_comma``,
``detectable_format:title``. The checkers that need nltk's ``punkt_tab`` data (sentence counts)
are left out: that data cannot be downloaded offline, and importing lm-eval here never tries to.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
from functools import cache
from typing import Any

from ...errors import ConfigError
from .base import Task, register

__all__ = ["INSTRUCTIONS", "TASK", "checkers"]

TOPICS = [
    "the ocean", "a rainy day", "coffee", "a city park", "the moon", "trains", "a library", "winter",
    "bicycles", "a garden", "music", "mountains", "a market", "friendship", "the desert", "a river",
    "breakfast", "a school", "robots", "the forest", "a lighthouse", "summer holidays", "cats", "a bakery",
]  # fmt: skip
KEYWORDS = ["blue", "quiet", "bright", "history", "simple", "window", "morning", "green", "light", "home"]
ENDINGS = ["Is there anything else I can help with?", "That is all.", "Thank you for reading."]
WORD_LIMITS = [15, 20, 25]
JSON_KEYS = [("name", "age"), ("title", "year"), ("city", "country"), ("color", "size")]
INSTRUCTIONS = [
    "keywords:existence",
    "length_constraints:number_words",
    "change_case:english_lowercase",
    "startend:end_checker",
    "detectable_format:json_format",
    "punctuation:no_comma",
    "detectable_format:title",
]
_FAILURES = {
    "keywords:existence": "the word(s) {keywords} are missing",
    "length_constraints:number_words": "the reply has {words} words; it must have less than {num_words}",
    "change_case:english_lowercase": "the reply has capital letters; it must be all lowercase",
    "startend:end_checker": "the reply does not end with the exact phrase {end_phrase!r}",
    "detectable_format:json_format": "the reply is not a single valid JSON object",
    "punctuation:no_comma": "the reply contains a comma",
    "detectable_format:title": "the reply has no title in double angular brackets, like <<title>>",
}


# The `ifeval` extra of pyproject.toml, the one place lm-eval is required (tests/test_install.py keeps them equal).
LM_EVAL_REQUIREMENT = "lm-eval[ifeval]>=0.4.10,<0.5"
MISSING_HINT = (
    "the ifeval task needs IFEval's checkers from lm-eval, which is not installed here: "
    f"pip install '{LM_EVAL_REQUIREMENT}' (the workbench's 'ifeval' extra; make lab, make report and make test "
    "install it). The other task families work without it."
)


@cache
def checkers() -> dict[str, type]:
    """IFEval's instruction classes by id, imported without nltk trying to download data."""
    try:
        import nltk
    except ImportError:
        raise ConfigError(MISSING_HINT) from None
    download, nltk.download = nltk.download, lambda *args, **kwargs: False
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from lm_eval.tasks.ifeval import instructions_registry
    except ImportError as exc:
        if exc.name == "lm_eval":
            raise ConfigError(MISSING_HINT) from None
        raise ConfigError(
            f"lm-eval is installed but cannot be imported: {exc}. Fix the package it names, or reinstall the "
            f"ifeval extra: pip install '{LM_EVAL_REQUIREMENT}'"
        ) from None
    finally:
        nltk.download = download
    return {name: instructions_registry.INSTRUCTION_DICT[name] for name in INSTRUCTIONS}


def _arguments(rng: random.Random, instruction: str) -> dict[str, Any]:
    if instruction == "keywords:existence":
        return {"keywords": [rng.choice(KEYWORDS)]}
    if instruction == "length_constraints:number_words":
        return {"num_words": rng.choice(WORD_LIMITS), "relation": "less than"}
    if instruction == "startend:end_checker":
        return {"end_phrase": rng.choice(ENDINGS)}
    return {}


def _describe(instruction: str, arguments: dict[str, Any]) -> str:
    checker = checkers()[instruction](instruction)
    return checker.build_description(**arguments)


def _sample(rng: random.Random, difficulty: int) -> dict[str, Any]:
    chosen = rng.sample([i for i in INSTRUCTIONS if i != "detectable_format:json_format"], difficulty)
    if difficulty == 1 and rng.random() < 0.2:
        chosen = ["detectable_format:json_format"]
    arguments = [_arguments(rng, instruction) for instruction in chosen]
    keys = list(rng.choice(JSON_KEYS)) if chosen == ["detectable_format:json_format"] else []
    texts = [_describe(i, a) for i, a in zip(chosen, arguments, strict=True)]
    if keys:
        texts.append(f"The JSON object must have the keys {keys[0]!r} and {keys[1]!r}.")
    return {
        "topic": rng.choice(TOPICS),
        "instruction_ids": chosen,
        "arguments": arguments,
        "json_keys": keys,
        "instructions": " ".join(texts),
    }


def _count(difficulty: int) -> int:
    """How many distinct items ``_sample`` draws: topics × instructions with their arguments (in order)."""
    choices = {
        "keywords:existence": len(KEYWORDS),
        "length_constraints:number_words": len(WORD_LIMITS),
        "startend:end_checker": len(ENDINGS),
    }
    weights = [choices.get(i, 1) for i in INSTRUCTIONS if i != "detectable_format:json_format"]
    if difficulty == 1:
        return len(TOPICS) * (sum(weights) + len(JSON_KEYS))
    return len(TOPICS) * (sum(weights) ** 2 - sum(w * w for w in weights))  # ordered pairs of two instructions


def _check(response: str, variables: dict[str, Any]) -> tuple[bool, str]:
    failures = []
    for instruction, arguments in zip(variables["instruction_ids"], variables["arguments"], strict=True):
        checker = checkers()[instruction](instruction)
        checker.build_description(**arguments)
        if not response.strip() or not checker.check_following(response):
            words = len(re.findall(r"\w+", response))
            failures.append(_FAILURES[instruction].format(words=words, **arguments))
    if variables.get("json_keys") and not failures:
        missing = [key for key in variables["json_keys"] if key not in _json_object(response)]
        if missing:
            failures.append(f"the JSON object lacks the key(s) {missing}")
    return not failures, "; ".join(failures)


def _json_object(response: str) -> dict[str, Any]:
    text = response.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


TASK = register(
    Task(
        name="ifeval",
        phrasings={
            "train": ["Write a short text about {topic}. {instructions}"],
            "heldout": ["Tell me about {topic} in a few lines. {instructions}"],
        },
        sample=_sample,
        count=_count,
        check=_check,
        difficulties=(1, 2),
        default_difficulty=1,
        max_tokens=96,
        description="a short text about a topic under IFEval constraints, checked by IFEval's own checkers",
    )
)
