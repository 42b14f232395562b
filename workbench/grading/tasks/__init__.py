"""Verifiable tasks: a prompt, its variables, a program verifier and (where there is one) the right answer.

    from workbench.grading import tasks
    tasks.names()                                     # ['arithmetic', 'comparison', 'ifeval']
    task = tasks.get("arithmetic")
    items = task.items(200, split="train", seed=0)    # polars: item_id, task, split, difficulty, prompt, ...
    task.check("The answer is 12.", items.row(0, named=True))   # Verdict(passed=..., message=...)

A task is a :class:`Task`: ``sample(rng, difficulty) -> variables`` draws one item, ``phrasings``
maps each split (``train``, ``heldout``) to the prompt templates of that split — ``str.format``
templates over the variables, so the held-out split asks the same thing in other words —
``check(response, variables) -> (passed, message)`` is the program verifier (the message says
what is wrong when it fails), ``answer(variables)`` the one right answer where a task has one and
``extract(response)`` reads a reply's answer (both needed for majority vote). ``difficulty`` picks
how hard the items are; ``default_difficulty`` is the setting calibrated on the embedded model.

Register your own in a few lines::

    tasks.register(tasks.Task(
        name="echo_word",
        phrasings={"train": ["Reply with the word {word} and nothing else."],
                   "heldout": ["Say only this word: {word}"]},
        sample=lambda rng, difficulty: {"word": rng.choice(["apple", "river", "cloud"])},
        check=lambda response, v: (response.strip().lower() == v["word"], f"the reply is not just {v['word']!r}"),
    ))

Modules: ``base.py`` (``Task``, ``Verdict``, the registry, ``last_integer``), then one module per family
shipped: ``arithmetic`` (small-number sums, answer checked directly),
``ifeval`` (instruction following checked by IFEval's own checkers from ``lm-eval``) and
``comparison`` (which of two numbers is larger).
"""

from __future__ import annotations

from . import arithmetic, comparison, ifeval  # noqa: F401  (each shipped family registers its task)
from .base import ITEM_COLUMNS, SPLITS, Task, Verdict, get, items, last_integer, names, register

__all__ = ["ITEM_COLUMNS", "SPLITS", "Task", "Verdict", "get", "items", "last_integer", "names", "register"]
