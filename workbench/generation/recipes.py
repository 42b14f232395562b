"""Recipes for the classic synthetic-data techniques, each a short function over the pieces.

- :func:`self_instruct` — Wang et al. 2022, "Self-Instruct: Aligning Language Models with
  Self-Generated Instructions": seed tasks in the prompt, new instructions out, and those too close
  to the pool (ROUGE-L > 0.7, as in the paper) or unsuitable (too short or long, asking for images
  or files, starting with punctuation) filtered away.
- :func:`evol_instruct` — Xu et al. 2023, "WizardLM: Empowering Large Language Models to Follow
  Complex Instructions": in-depth evolution (add constraints, deepen, concretise, add reasoning
  steps, complicate the input) and in-breadth evolution (a new, rarer instruction of the same
  domain), then elimination of failed evolutions by the paper's four rules.
- :func:`persona_generate` — Ge et al. 2024, "Scaling Synthetic Data Creation with 1,000,000,000
  Personas": the same task prompt seen through many personas, for diversity.

Every recipe returns a polars frame of *all* candidates with ``kept`` and the ``reason`` a rejected
one was dropped for, so that the filtering itself can be inspected and charted. ``seed`` picks the
examples, methods or personas *and* is sent with every request, which the client turns into each
request's own sampling seed: the same call gives the same candidates, and no two share a stream.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import polars as pl

from ..curation.similarity import most_similar, rouge_l, words
from ..errors import InputError, check_counts, check_numbers, check_type
from ..models.client import LLM
from ..models.requests import MAX_BATCH_REQUESTS
from ..models.routes import Answer, refuse_via
from .generate import generate
from .grids import personas, shipped_data_dir
from .prompts import Prompt

__all__ = ["EVOLUTIONS", "evol_instruct", "load_seed_tasks", "persona_generate", "self_instruct"]

# --- Self-Instruct ---------------------------------------------------------------------------------
SELF_INSTRUCT_PROMPT = Prompt(
    "Come up with a series of tasks:\n\n{% for task in tasks %}Task {{ loop.index }}: {{ task }}\n{% endfor %}"
    "Task {{ tasks | length + 1 }}:"
)
UNSUITABLE_WORDS = {
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "video",
    "audio",
    "flowchart",
    "diagram",
}
ROUGE_THRESHOLD = 0.7


def load_seed_tasks(path: str | Path | None = None) -> pl.DataFrame:
    """The shipped seed tasks (``workbench/shipped/seeds/seed_tasks.jsonl``): id, instruction, input, output and
    category."""
    path = Path(path) if path else shipped_data_dir() / "seeds" / "seed_tasks.jsonl"
    if not path.is_file():
        raise InputError(f"no seed-task file at {path}.")
    return pl.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def self_instruct(
    llm: LLM,
    seeds: pl.DataFrame | list[str] | None = None,
    *,
    rounds: int = 1,
    prompts_per_round: int = 8,
    examples: int = 6,
    threshold: float = ROUGE_THRESHOLD,
    seed: int = 0,
    **params: Any,
) -> pl.DataFrame:
    """Grow a pool of instructions from seed tasks; returns every candidate with ``kept`` and ``reason``."""
    refuse_via(params, "wb.self_instruct")
    check_type(llm, LLM, "self_instruct's first argument", "a connection from wb.connect()")
    pool = _instructions(seeds if seeds is not None else load_seed_tasks(), "Self-Instruct", "seeds")
    check_counts(rounds=rounds, prompts_per_round=prompts_per_round, examples=examples)
    check_counts(at_most=MAX_BATCH_REQUESTS, prompts_per_round=prompts_per_round)
    check_numbers(threshold=threshold)
    if not 1 <= examples <= len(pool):
        raise InputError(f"need rounds >= 1, prompts_per_round >= 1 and 1 <= examples <= {len(pool)} (the seeds).")
    rng = random.Random(seed)
    params = {"temperature": 0.9, "max_tokens": 200, "seed": seed, **params}
    candidates = []
    for round_number in range(1, rounds + 1):
        shown = [{"tasks": rng.sample(pool, examples)} for _ in range(prompts_per_round)]
        replies = generate(llm, SELF_INSTRUCT_PROMPT, shown, **params)
        for reply, sample_id in zip(replies["response"], replies["sample_id"], strict=True):
            for instruction in _split_tasks(reply or ""):
                row = _screen(instruction, pool, threshold)
                candidates.append({"instruction": instruction, "round": round_number, "source_id": sample_id, **row})
                if row["kept"]:
                    pool.append(instruction)
    return pl.DataFrame(candidates, schema=_SELF_INSTRUCT_SCHEMA)


_SELF_INSTRUCT_SCHEMA = {
    "instruction": pl.String,
    "round": pl.Int64,
    "source_id": pl.String,
    "kept": pl.Boolean,
    "reason": pl.String,
    "max_rouge_l": pl.Float64,
    "most_similar": pl.String,
}


def _instructions(seeds: pl.DataFrame | list[str], recipe: str, argument: str) -> list[str]:
    """The non-empty instruction texts of ``seeds`` (a frame with ``instruction``, or a list of texts)."""
    if isinstance(seeds, pl.DataFrame):
        if "instruction" not in seeds.columns:
            raise InputError(f"the {argument} frame needs an 'instruction' column.")
        seeds = seeds["instruction"].to_list()
    if isinstance(seeds, str) or not isinstance(seeds, (list, tuple, pl.Series)):
        raise InputError(f"{argument} is a list of instruction texts (or a frame with 'instruction'); got {seeds!r}.")
    pool = [text for text in seeds if isinstance(text, str) and text.strip()]
    if not pool:
        raise InputError(
            f"{recipe} needs at least one instruction to start from: {argument}= is empty. Leave it out to use the "
            "shipped seed tasks (wb.load_seed_tasks())."
        )
    return pool


def _split_tasks(reply: str) -> list[str]:
    """The instructions in a continuation of "Task k:" lines (the first piece continues Task k+1)."""
    pieces = re.split(r"(?:^|\n)\s*Task\s*\d+\s*[:.]", reply)
    return [" ".join(piece.split()) for piece in pieces if piece.strip()]


def _screen(instruction: str, pool: list[str], threshold: float) -> dict[str, Any]:
    """Self-Instruct's filters; the first that applies is the reason."""
    tokens = words(instruction)
    score, match = most_similar(instruction, pool)
    reason = None
    if not 3 <= len(tokens) <= 150:
        reason = f"length: {len(tokens)} words (keep 3 to 150)"
    elif UNSUITABLE_WORDS & set(tokens):
        reason = f"asks for something a language model cannot do ({', '.join(sorted(UNSUITABLE_WORDS & set(tokens)))})"
    elif not instruction[0].isalnum():
        reason = "starts with punctuation"
    elif score > threshold:
        reason = f"too similar to the pool (ROUGE-L {score:.2f} > {threshold})"
    return {"kept": reason is None, "reason": reason, "max_rouge_l": score, "most_similar": match}


# --- Evol-Instruct ---------------------------------------------------------------------------------
_DEPTH = (
    "I want you to act as a Prompt Rewriter. Rewrite the given prompt into a more complex version that a "
    "person can still understand and answer. {method} Do not make the rewritten prompt verbose: it may add "
    "at most 10 to 20 words. Reply with the rewritten prompt only.\n\nGiven prompt: {instruction}"
)
EVOLUTIONS: dict[str, str] = {
    "add_constraints": _DEPTH.replace("{method}", "Add one more constraint or requirement to it."),
    "deepen": _DEPTH.replace("{method}", "If it asks about a certain issue, increase the depth and breadth of it."),
    "concretize": _DEPTH.replace("{method}", "Replace general concepts with more specific ones."),
    "increase_reasoning": _DEPTH.replace(
        "{method}",
        "If it can be solved with a few simple thinking steps, rewrite it to explicitly ask for "
        "multiple-step reasoning.",
    ),
    "complicate_input": _DEPTH.replace("{method}", "Add a concrete input (data, a table or code) to work on."),
    "breadth": (
        "I want you to act as a Prompt Creator. Draw inspiration from the given prompt to create a brand new "
        "prompt. It should belong to the same domain but be rarer, with a similar length and difficulty. Reply "
        "with the created prompt only.\n\nGiven prompt: {instruction}"
    ),
}
_LEAKED_WORDS = ("given prompt", "rewritten prompt", "created prompt", "#rewritten", "#given", "#created")
_STOP_WORDS = {"the", "a", "an", "and", "or", "of", "to", "in", "is", "it", "i", "you", "this", "that", "for"}


def evol_instruct(
    llm: LLM,
    instructions: list[str] | pl.DataFrame | None = None,
    *,
    rounds: int = 1,
    methods: list[str] | None = None,
    seed: int = 0,
    **params: Any,
) -> pl.DataFrame:
    """Evolve instructions for ``rounds``; every evolution with ``method``, its answer, ``kept`` and ``reason``."""
    refuse_via(params, "wb.evol_instruct")
    check_type(llm, LLM, "evol_instruct's first argument", "a connection from wb.connect()")
    current = _instructions(
        instructions if instructions is not None else load_seed_tasks(), "Evol-Instruct", "instructions"
    )
    methods = methods or list(EVOLUTIONS)
    unknown = sorted(set(methods) - set(EVOLUTIONS))
    check_counts(rounds=rounds)
    if unknown:
        raise InputError(f"rounds must be >= 1 and methods among {', '.join(EVOLUTIONS)} (unknown: {unknown}).")
    rng = random.Random(seed)
    params = {"temperature": 0.7, "max_tokens": 160, "seed": seed, **params}
    evolved_rows: list[dict[str, Any]] = []
    for round_number in range(1, rounds + 1):
        chosen = [rng.choice(methods) for _ in current]
        rows = [{"instruction": text, "method": method} for text, method in zip(current, chosen, strict=True)]
        rewrites = generate(
            llm,
            "{{ rewrite_prompt }}",
            [{"rewrite_prompt": EVOLUTIONS[r["method"]].format(instruction=r["instruction"])} for r in rows],
            **params,
        )
        evolved = [_clean_rewrite(text or "") for text in rewrites["response"]]
        answers = generate(llm, "{{ instruction }}", [{"instruction": text or "-"} for text in evolved], **params)
        next_pool = []
        for row, text, answer, source in zip(rows, evolved, answers["response"], rewrites["sample_id"], strict=True):
            reason = _failed_evolution(row["instruction"], text, answer or "")
            evolved_rows.append(
                {
                    "round": round_number,
                    "method": row["method"],
                    "parent_instruction": row["instruction"],
                    "instruction": text,
                    "response": answer,
                    "kept": reason is None,
                    "reason": reason,
                    "source_id": source,
                }
            )
            next_pool.append(text if reason is None else row["instruction"])  # a failed evolution keeps its parent
        current = next_pool
    return pl.DataFrame(evolved_rows, schema=_EVOL_SCHEMA)


_EVOL_SCHEMA = {
    "round": pl.Int64,
    "method": pl.String,
    "parent_instruction": pl.String,
    "instruction": pl.String,
    "response": pl.String,
    "kept": pl.Boolean,
    "reason": pl.String,
    "source_id": pl.String,
}


def _clean_rewrite(text: str) -> str:
    text = re.sub(r"^\s*(#?\s*(rewritten|created) prompt#?\s*:?)", "", text.strip(), flags=re.IGNORECASE)
    return " ".join(text.split()).strip('"')


def _failed_evolution(parent: str, evolved: str, answer: str) -> str | None:
    """WizardLM's elimination rules; the first that applies is the reason."""
    if not evolved:
        return "empty evolution"
    if rouge_l(parent, evolved) >= 0.9:
        return f"no information gain over its parent (ROUGE-L {rouge_l(parent, evolved):.2f})"
    if "sorry" in answer.lower() and len(words(answer)) < 80:
        return "the model could not answer it (a short 'sorry')"
    if not set(words(answer)) - _STOP_WORDS:
        return "the answer holds only punctuation and stop words"
    if any(leak in evolved.lower() for leak in _LEAKED_WORDS):
        return "copies words from the evolving prompt"
    return None


# --- Persona-driven generation --------------------------------------------------------------------
PERSONA_PROMPT = Prompt("Create {{ task }} with the following persona:\n{{ persona }}")


def persona_generate(
    llm: LLM,
    prompt: Prompt | str = PERSONA_PROMPT,
    people: pl.DataFrame | list[str] | int | None = None,
    variables: dict[str, Any] | None = None,
    *,
    n: int = 1,
    seed: int = 0,
    **params: Any,
) -> Answer:
    """Run ``prompt`` once per persona (crossed with ``variables``); the run table, one row per sample.

    ``people`` is a frame with a ``persona`` column, a list of persona texts, or a number of shipped
    personas to sample (default: all 52). The template must use ``{{ persona }}``.
    """
    check_type(llm, LLM, "persona_generate's first argument", "a connection from wb.connect()")
    prompt = prompt if isinstance(prompt, Prompt) else Prompt(prompt)
    if "persona" not in prompt.variables:
        raise InputError("a persona-driven prompt must use {{ persona }} in its template.")
    frame = _people(people, seed)
    if variables:
        frame = frame.join(pl.DataFrame([variables]), how="cross")
    return generate(llm, prompt, frame, n=n, **{"temperature": 0.9, "seed": seed, **params})


def _people(people: pl.DataFrame | list[str] | int | None, seed: int) -> pl.DataFrame:
    if people is None or isinstance(people, int):
        if people is not None:
            check_counts(people=people)
        shipped = personas()
        return shipped if people is None else shipped.sample(min(people, shipped.height), seed=seed)
    if isinstance(people, pl.DataFrame):
        if "persona" not in people.columns:
            raise InputError("the personas frame needs a 'persona' column.")
        return people
    return pl.DataFrame({"persona": list(people)})
