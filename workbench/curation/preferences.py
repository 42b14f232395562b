"""Preference pairs — a better and a worse answer to the same prompt — from what the workbench already knows,
and their exports for preference fine-tuning.

    pairs = wb.preference_pairs(samples, by="verifier")          # a passing and a failing answer of one item
    pairs = wb.preference_pairs(graded, by="judge", margin=2)    # the judge's scores two or more apart
    pairs = wb.preference_pairs(verdicts, by="compare", a=frame_a, b=frame_b)   # wb.compare, both orders agree
    pairs = wb.preference_pairs(labeler.labelled(), by="human")  # human scores (or the explorer's keep/drop marks)
    wb.export.trl_preferences(pairs, "data/runs/pairs.trl.jsonl")        # TRL's conversational preference rows
    wb.export.openai_preferences(pairs, "data/runs/pairs.openai.jsonl")  # OpenAI's preference fine-tuning file
    wb.export.preference_card(pairs, "data/runs/pairs.md")               # how the pairs were chosen

One row per pair (:data:`PAIR_COLUMNS`): the prompt, the chosen and the rejected answer, ``why`` the one was
preferred, the source, and the lineage of both answers (``chosen_sample_id``, ``rejected_sample_id``, and their
``parent_id``, ``round``, ``model``, ``prompt_hash`` where the frame has them). Answers are paired only within one
item (``item_id`` where the frame has it, else the same prompt text), and never with an answer of the same text
(compared as ``wb.dedup`` compares: case, punctuation and spacing aside).

    source     the frame needs                     chosen / rejected
    verifier   verified (bool)                     an answer the verifier passed / one it failed
    judge      score (or score=...)                a higher score / one at least ``margin`` lower
    compare    wb.compare's verdicts               the winner in both orders / the other (ties and
                                                   order-dependent verdicts make no pair)
    human      human_score (wb.Labeler), or        a higher human score / one ``margin`` lower; or a
               mark (wb.explore's keep/drop)       "keep" / a "drop"
    random     two answers per item                one of two different answers at random: the control

At most ``per_item`` pairs per item (default 1): for scores, the widest gaps first; otherwise drawn with ``seed``.

The exports write to a temporary file in the same folder, validate it (OpenAI's file against the documented
schema of a preference example, :data:`OPENAI_PREFERENCE_SCHEMA`), and only then rename it into place: a file at
``path`` is always whole and valid, and a failed export leaves the one before it untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import task_texts
from ..errors import InputError
from .dedup import normalise

__all__ = [
    "OPENAI_PREFERENCE_SCHEMA",
    "PAIR_COLUMNS",
    "SOURCES",
    "TRL_PREFERENCE_SCHEMA",
    "openai_preferences",
    "preference_card",
    "preference_pairs",
    "trl_preferences",
    "validate_openai_preferences",
    "validate_trl_preferences",
]

SOURCES = {
    "verifier": "a passing and a failing answer of the same item, as the task's program verifier judged them",
    "judge": "two answers of the same item whose LLM-judge scores differ by at least the margin",
    "compare": "the pairwise judge's winner when it chose the same answer in both orders (wb.compare)",
    "human": "two answers of the same item whose human scores differ by at least the margin, or a kept and a "
    "dropped one (the explorer's marks)",
    "random": "two different answers of the same item in random order (a control: no preference signal)",
}
LINEAGE = ("sample_id", "parent_id", "round", "model", "prompt_hash")
PAIR_COLUMNS: dict[str, pl.DataType] = {
    "pair_id": pl.String(),  # first 16 hex digits of SHA-256 of prompt, chosen and rejected
    "item": pl.String(),  # what the two answers share: the item_id, or the prompt text
    "prompt": pl.String(),  # the task both answer (the user turn)
    "chosen": pl.String(),
    "rejected": pl.String(),
    "why": pl.String(),  # e.g. "verifier: passed / failed (7 + 5 is not 13)", "judge: 5 vs 2"
    "source": pl.String(),  # one of SOURCES
    **{f"{side}_{name}": pl.String() for side in ("chosen", "rejected") for name in LINEAGE},
}
ITEM_FIELDS = ("item_id", "variables", "split", "gold")  # kept from the item when the frame has them

Candidate = dict[str, Any]  # one answer: text, its row's fields, and what its source says of it


def preference_pairs(
    frame: pl.DataFrame,
    by: str,
    *,
    margin: float = 1.0,
    score: str | None = None,
    per_item: int = 1,
    item: str | None = None,
    task_column: str | None = None,
    response: str = "response",
    a: pl.DataFrame | None = None,
    b: pl.DataFrame | None = None,
    labels: pl.DataFrame | str | Path | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """Pairs of a chosen and a rejected answer to the same prompt, by ``by`` (one of :data:`SOURCES`).

    ``margin``: the least score gap of a pair (judge and human scores). ``score``: the score column (default
    ``score`` for the judge, ``human_score`` for humans). ``per_item``: pairs per item at most. ``item``: the
    column that says which answers share a prompt (default ``item_id``, else the prompt text). ``task_column``:
    the prompt's column (default: ``prompt``, as task items and ``wb.self_train``'s samples hold it, else
    ``task``, else the last user message of ``messages``). For ``by="compare"``,
    ``a`` and ``b`` are the frames compared, to carry their lineage. For ``by="human"``, ``labels`` may name the
    saved choices to join by ``sample_id``: a ``wb.Labeler`` file (``data/labels/<name>.parquet``), the
    explorer's (``data/marks/<name>.parquet``), or such a frame. Returns :data:`PAIR_COLUMNS` plus the item's
    ``item_id``, ``variables``, ``split`` and ``gold`` where the frame has them.
    """
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"preference_pairs expects a polars DataFrame, got {type(frame).__name__}.")
    if by not in SOURCES:
        raise InputError(f"by must be one of {', '.join(SOURCES)}; got {by!r}.")
    if not isinstance(per_item, int) or isinstance(per_item, bool) or per_item < 1:
        raise InputError(f"per_item must be a positive whole number, got {per_item!r}.")
    if frame.height == 0:
        raise InputError("the frame is empty: there are no answers to pair.")
    if labels is not None:
        frame = _with_labels(frame, labels)
    if by == "compare":
        groups = _compare_groups(frame, a, b)
    else:
        groups = _answer_groups(frame, by, score, item, task_column, response)
    rule = _RULES[by]
    rng = random.Random(seed)
    rows = [
        _pair_row(prompt, chosen, rejected, why, by)
        for prompt, answers in groups
        for chosen, rejected, why in rule(answers, margin, rng, by)[:per_item]
    ]
    if not rows:
        raise InputError(_no_pair_message(by, groups, margin))
    extra = [name for name in ITEM_FIELDS if name in rows[0]]
    return pl.DataFrame(rows, schema={**PAIR_COLUMNS, **{name: pl.String() for name in extra}})


# --- which answers belong together ------------------------------------------------------------------------------
def _answer_groups(
    frame: pl.DataFrame, by: str, score: str | None, item: str | None, task_column: str | None, response: str
) -> list[tuple[str, list[Candidate]]]:
    """(prompt, its distinct answers with what the source says of each), per item, in first-seen order."""
    judged = _judged_column(frame, by, score)
    prompts = task_texts(frame, task_column or ("prompt" if "prompt" in frame.columns else None))
    needed = [response, *([judged] if judged else []), *([item] if item else [])]
    missing = [name for name in needed if name not in frame.columns]
    if all(prompt is None for prompt in prompts):
        missing.append("a task (a 'task' column, task_column=..., or 'messages')")
    if missing:
        raise InputError(
            f"pairs by={by!r} need the columns {', '.join(needed)} and the task each answer answers; the frame "
            f"lacks {', '.join(missing)} (its columns: {', '.join(frame.columns)})."
        )
    keys = frame[item].cast(pl.String).to_list() if item else _item_keys(frame, prompts)
    groups: dict[str, tuple[str, dict[str, Candidate]]] = {}
    for key, prompt, row in zip(keys, prompts, frame.iter_rows(named=True), strict=True):
        text, verdict = row[response], row[judged] if judged else None
        if prompt is None or not isinstance(text, str) or not text.strip() or (judged and verdict is None):
            continue
        answers = groups.setdefault(key, (prompt, {}))[1]
        answers.setdefault(normalise(text), {"text": text, "verdict": verdict, "row": row})
    return [(prompt, list(answers.values())) for prompt, answers in groups.values()]


def _with_labels(frame: pl.DataFrame, labels: pl.DataFrame | str | Path) -> pl.DataFrame:
    """The frame with the saved human choices (``human_score`` or ``mark``) joined on ``sample_id``."""
    if not isinstance(labels, pl.DataFrame):
        if not Path(labels).is_file():
            raise InputError(f"no labels file at {labels}: name a wb.Labeler or explorer file, or pass the frame.")
        labels = pl.read_parquet(labels)
    chosen = [name for name in ("human_score", "mark") if name in labels.columns]
    if "sample_id" not in labels.columns or not chosen or "sample_id" not in frame.columns:
        raise InputError(
            "labels join on sample_id and give human_score (wb.Labeler) or mark (wb.explore); labels have "
            f"{', '.join(labels.columns)}, the frame {'has' if 'sample_id' in frame.columns else 'lacks'} sample_id."
        )
    return frame.drop(chosen, strict=False).join(
        labels.select("sample_id", *chosen), on="sample_id", how="left", maintain_order="left"
    )


def _judged_column(frame: pl.DataFrame, by: str, score: str | None) -> str | None:
    if by == "verifier":
        return "verified"
    if by == "judge":
        return score or "score"
    if by == "human":
        return score or ("human_score" if "human_score" in frame.columns or "mark" not in frame.columns else "mark")
    return None


def _item_keys(frame: pl.DataFrame, prompts: list[str | None]) -> list[str]:
    if "item_id" in frame.columns:
        return frame["item_id"].cast(pl.String).to_list()
    return [prompt or "" for prompt in prompts]


def _compare_groups(
    verdicts: pl.DataFrame, a: pl.DataFrame | None, b: pl.DataFrame | None
) -> list[tuple[str, list[Candidate]]]:
    """Each verdict of ``wb.compare`` as a group of its two answers, the winner marked (only consistent ones)."""
    needed = ["task", "response_a", "response_b", "winner", "consistent"]
    missing = [name for name in needed if name not in verdicts.columns]
    if missing:
        raise InputError(
            f"pairs by='compare' read wb.compare's verdicts ({', '.join(needed)}); the frame lacks "
            f"{', '.join(missing)}. Pass the frame wb.compare returned."
        )
    for label, frame in (("a", a), ("b", b)):
        if frame is not None and frame.height != verdicts.height:
            raise InputError(
                f"{label}= has {frame.height} rows but the verdicts {verdicts.height}: pass the frames compared."
            )
    groups = []
    for index, verdict in enumerate(verdicts.iter_rows(named=True)):
        sides = {"A": (verdict["response_a"], a), "B": (verdict["response_b"], b)}
        answers = [
            {
                "text": text,
                "verdict": verdict["winner"] == side,
                "row": _row(frame, index),
                "reason": verdict["reason_ab"],
            }
            for side, (text, frame) in sides.items()
        ]
        if verdict["consistent"] and verdict["winner"] in sides:
            groups.append((verdict["task"] or "", answers))
    return groups


def _row(frame: pl.DataFrame | None, index: int) -> dict[str, Any]:
    return frame.row(index, named=True) if frame is not None else {}


# --- which two answers make a pair --------------------------------------------------------------------------------
Rule = Callable[[list[Candidate], float, random.Random, str], list[tuple[Candidate, Candidate, str]]]


def _by_verifier(answers: list[Candidate], margin: float, rng: random.Random, by: str) -> list[tuple]:
    passed = [answer for answer in answers if answer["verdict"]]
    failed = [answer for answer in answers if not answer["verdict"]]
    pairs = [(good, bad, _verifier_why(bad)) for good, bad in product(passed, failed)]
    rng.shuffle(pairs)
    return pairs


def _verifier_why(bad: Candidate) -> str:
    message = bad["row"].get("verify_message")
    return f"verifier: passed / failed ({message})" if message else "verifier: passed / failed"


def _by_score(answers: list[Candidate], margin: float, rng: random.Random, by: str) -> list[tuple]:
    if answers and isinstance(answers[0]["verdict"], str):  # the explorer's marks
        kept = [answer for answer in answers if answer["verdict"] == "keep"]
        dropped = [answer for answer in answers if answer["verdict"] == "drop"]
        pairs = [(good, bad, "human: keep / drop") for good, bad in product(kept, dropped)]
        rng.shuffle(pairs)
        return pairs
    order = sorted(answers, key=lambda answer: -float(answer["verdict"]))
    pairs = [
        (high, low, f"{by}: {_number(high['verdict'])} vs {_number(low['verdict'])}")
        for i, high in enumerate(order)
        for low in order[i + 1 :]
        if float(high["verdict"]) - float(low["verdict"]) >= margin
    ]
    rng.shuffle(pairs)  # ties in the gap in random order; the sort below is stable
    return sorted(pairs, key=lambda pair: float(pair[1]["verdict"]) - float(pair[0]["verdict"]))


def _number(value: Any) -> str:
    return f"{float(value):g}"


def _by_compare(answers: list[Candidate], margin: float, rng: random.Random, by: str) -> list[tuple]:
    winner, loser = sorted(answers, key=lambda answer: not answer["verdict"])
    if normalise(winner["text"]) == normalise(loser["text"]):
        return []
    return [(winner, loser, f"compare: preferred in both orders ({winner.get('reason') or 'no reason given'})")]


def _by_chance(answers: list[Candidate], margin: float, rng: random.Random, by: str) -> list[tuple]:
    pairs = [(first, second) for i, first in enumerate(answers) for second in answers[i + 1 :]]
    rng.shuffle(pairs)
    return [
        (x, y, "random: no preference") if rng.random() < 0.5 else (y, x, "random: no preference") for x, y in pairs
    ]


_RULES: dict[str, Rule] = {
    "verifier": _by_verifier,
    "judge": _by_score,
    "human": _by_score,
    "compare": _by_compare,
    "random": _by_chance,
}


def _pair_row(prompt: str, chosen: Candidate, rejected: Candidate, why: str, by: str) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps([prompt, chosen["text"], rejected["text"]]).encode()).hexdigest()[:16]
    row = {
        "pair_id": digest,
        "item": str(chosen["row"].get("item_id") or prompt),
        "prompt": prompt,
        "chosen": chosen["text"],
        "rejected": rejected["text"],
        "why": why,
        "source": by,
    }
    for side, answer in (("chosen", chosen), ("rejected", rejected)):
        for name in LINEAGE:
            value = answer["row"].get(name)
            row[f"{side}_{name}"] = None if value is None else str(value)
    for name in ITEM_FIELDS:
        if name in chosen["row"]:
            row[name] = None if chosen["row"][name] is None else str(chosen["row"][name])
    return row


def _no_pair_message(by: str, groups: list[tuple[str, list[Candidate]]], margin: float) -> str:
    several = [answers for _, answers in groups if len(answers) >= 2]
    if by == "compare":
        return (
            f"no pair: none of the verdicts chose the same answer in both orders with two different answers "
            f"({len(groups)} consistent). Compare more pairs, or use a stronger judge (wb.position_bias shows why)."
        )
    if not several:
        return (
            f"no pair: none of the {len(groups)} items has two different answers. Sample k >= 2 answers per item "
            "(at a temperature above 0) so that there is something to prefer."
        )
    if by == "verifier":
        return (
            f"no pair: none of the {len(several)} items with two or more answers has both a passing and a failing "
            "one. Sample more answers per item, or items nearer the model's reach."
        )
    if by == "random":
        return "no pair could be drawn."
    values = [sorted({a["verdict"] for a in answers}, key=str) for answers in several]
    if any(isinstance(v, str) for vs in values for v in vs):
        return "no pair: no item has both a 'keep' and a 'drop' mark. Mark both kinds of answers of the same items."
    differing = [vs for vs in values if len(vs) > 1]
    widest = max((float(max(vs)) - float(min(vs)) for vs in differing), default=0.0)
    return (
        f"no pair has a score gap of at least {margin:g}: of {len(several)} items with two or more answers, "
        f"{len(differing)} had two different scores (the widest gap {widest:g}). Lower margin=, or score more "
        "answers per item."
    )


# --- exports ---------------------------------------------------------------------------------------------------
CHAT_MESSAGE = {
    "type": "object",
    "properties": {"role": {"enum": ["system", "developer", "user", "assistant"]}, "content": {"type": "string"}},
    "required": ["role", "content"],
}
ASSISTANT_OUTPUT = {
    "type": "array",
    "minItems": 1,
    "maxItems": 1,
    "items": {
        "type": "object",
        "properties": {"role": {"const": "assistant"}, "content": {"type": "string", "minLength": 1}},
        "required": ["role", "content"],
    },
}
# One line of an OpenAI preference (DPO) fine-tuning file, as documented (guides/direct-preference-optimization;
# API reference: fine-tuning/preference-input): ``input.messages`` (optional ``tools``, ``parallel_tool_calls``),
# and one assistant message each in ``preferred_output`` and ``non_preferred_output`` — "we only train on one-turn
# conversations for each example, where the preferred and non-preferred messages need to be the last assistant
# message", so the input ends with the user's turn.
OPENAI_PREFERENCE_SCHEMA = {
    "type": "object",
    "properties": {
        "input": {
            "type": "object",
            "properties": {
                "messages": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE},
                "tools": {"type": "array"},
                "parallel_tool_calls": {"type": "boolean"},
            },
            "required": ["messages"],
        },
        "preferred_output": ASSISTANT_OUTPUT,
        "non_preferred_output": ASSISTANT_OUTPUT,
    },
    "required": ["input", "preferred_output", "non_preferred_output"],
}


# TRL's conversational preference format with an explicit prompt (trl docs, "Dataset formats": preference).
TRL_PREFERENCE_SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE},
        "chosen": ASSISTANT_OUTPUT,
        "rejected": ASSISTANT_OUTPUT,
    },
    "required": ["prompt", "chosen", "rejected"],
}


def trl_preferences(pairs: pl.DataFrame, path: str | Path, *, system: str | None = None) -> Path:
    """Write TRL's conversational preference rows (explicit prompt): ``{"prompt": [system?, user], "chosen":
    [assistant], "rejected": [assistant]}`` per pair, validated (:func:`validate_trl_preferences`)."""
    lines = (
        {
            "prompt": _prompt(row["prompt"], system),
            "chosen": [_said(row["chosen"])],
            "rejected": [_said(row["rejected"])],
        }
        for row in _pair_rows(pairs)
    )
    return _write_validated(lines, path, validate_trl_preferences, "TRL preference data")


def openai_preferences(pairs: pl.DataFrame, path: str | Path, *, system: str | None = None) -> Path:
    """Write OpenAI's preference fine-tuning JSONL: ``{"input": {"messages": [system?, user]}, "preferred_output":
    [assistant], "non_preferred_output": [assistant]}`` per pair, validated against the documented schema."""
    lines = (
        {
            "input": {"messages": _prompt(row["prompt"], system)},
            "preferred_output": [_said(row["chosen"])],
            "non_preferred_output": [_said(row["rejected"])],
        }
        for row in _pair_rows(pairs)
    )
    return _write_validated(lines, path, validate_openai_preferences, "OpenAI preference fine-tuning data")


def validate_openai_preferences(path: str | Path) -> list[str]:
    """Problems in an OpenAI preference fine-tuning file (empty when valid), each naming its line: the schema
    (:data:`OPENAI_PREFERENCE_SCHEMA`), an input that does not end with the user's turn, two equal outputs."""
    return _problems(path, OPENAI_PREFERENCE_SCHEMA, ("input", "messages"), "preferred_output", "non_preferred_output")


def validate_trl_preferences(path: str | Path) -> list[str]:
    """Problems in a TRL conversational preference file (empty when valid): ``prompt`` a list of messages ending
    with the user's turn, ``chosen`` and ``rejected`` one non-empty assistant message each, and not equal."""
    return _problems(path, TRL_PREFERENCE_SCHEMA, ("prompt",), "chosen", "rejected")


def _problems(path: str | Path, schema: dict, prompt_at: tuple[str, ...], good: str, bad: str) -> list[str]:
    import jsonschema

    checker = jsonschema.Draft202012Validator(schema)
    problems: list[str] = []
    for number, example in _examples(path, problems):
        errors = sorted(checker.iter_errors(example), key=lambda error: list(error.path))
        problems += [f"line {number}: {_where(error)}{error.message}" for error in errors[:3]]
        if not errors:
            prompt = example
            for key in prompt_at:
                prompt = prompt[key]
            turns = _turn_problems(prompt, example[good][0]["content"], example[bad][0]["content"])
            problems += [f"line {number}: {problem}" for problem in turns]
    return problems


def preference_card(
    pairs: pl.DataFrame, path: str | Path | None = None, *, title: str = "Preference pairs", description: str = ""
) -> str:
    """A Markdown card for a pair set: how the pairs were chosen, from how many items, by which models, the
    answers' lengths (a preference for longer answers is a known bias) and a few examples; written to ``path``."""
    rows = _pair_rows(pairs)
    sources = pairs["source"].unique(maintain_order=True).to_list()
    chosen_words = pairs["chosen"].str.count_matches(r"\S+")
    rejected_words = pairs["rejected"].str.count_matches(r"\S+")
    lines = [f"# {title}", "", description or "Preference pairs made with the Synthetic Data Workbench.", ""]
    lines += [
        "## How the pairs were chosen",
        "",
        *[f"- `{source}`: {SOURCES.get(source, source)}" for source in sources],
    ]
    lines += [
        "- answers are paired only within one item (the same prompt), and never with an answer of the same text",
        "",
        "## Counts",
        "",
        f"- pairs: {pairs.height}, from {pairs['item'].n_unique()} items",
        f"- why (most common): {_commonest(pairs['why'])}",
        f"- words per answer: chosen {chosen_words.mean():.1f}, rejected {rejected_words.mean():.1f} on average; "
        f"the chosen answer is the longer in {(chosen_words > rejected_words).mean():.0%} of pairs",
        "",
        "## Models",
        "",
        *_pair_models(pairs),
        "",
        "## Examples",
        "",
        "| prompt | chosen | rejected | why |",
        "|---|---|---|---|",
        *[
            f"| {_cell(r['prompt'])} | {_cell(r['chosen'])} | {_cell(r['rejected'])} | {_cell(r['why'])} |"
            for r in rows[:5]
        ],
        "",
        f"_Card written {time.strftime('%Y-%m-%d %H:%M')}._",
        "",
    ]
    card = "\n".join(lines)
    if path is not None:
        _write_validated([card], path, lambda _: [], "the card", text=True)
    return card


def _pair_rows(pairs: pl.DataFrame) -> list[dict[str, Any]]:
    if not isinstance(pairs, pl.DataFrame):
        raise TypeError(f"expected the polars DataFrame of preference_pairs, got {type(pairs).__name__}.")
    missing = [name for name in ("prompt", "chosen", "rejected") if name not in pairs.columns]
    if missing:
        raise InputError(
            f"preference rows need prompt, chosen and rejected; the frame lacks {', '.join(missing)}. "
            "Make them with wb.preference_pairs(...)."
        )
    if pairs.height == 0:
        raise InputError("there are no pairs to export: the frame is empty.")
    return pairs.to_dicts()


def _prompt(task: str, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": task}]


def _said(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _examples(path: str | Path, problems: list[str]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            yield number, json.loads(line)
        except ValueError:
            problems.append(f"line {number} is not JSON")


def _turn_problems(prompt: list[Any], chosen: str, rejected: str) -> list[str]:
    problems = []
    if not prompt or not isinstance(prompt[-1], dict) or prompt[-1].get("role") != "user":
        problems.append("the prompt does not end with a user message (one turn: the answers follow the user)")
    if any(isinstance(m, dict) and not str(m.get("content") or "").strip() for m in prompt):
        problems.append("an empty message in the prompt")
    if chosen.strip() == rejected.strip():
        problems.append("the preferred and the non-preferred answer are the same text")
    return problems


def _where(error: Any) -> str:
    return ".".join(str(part) for part in error.path) + ": " if error.path else ""


def _write_validated(
    lines: Any, path: str | Path, validate: Callable[[Path], list[str]], what: str, *, text: bool = False
) -> Path:
    """Write ``lines`` (JSON objects, or one text with ``text=True``) beside ``path``, validate, rename into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    partial = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(line if text else json.dumps(line, ensure_ascii=False) + "\n")
        problems = validate(partial)
        if problems:
            raise InputError(f"not valid {what}: {'; '.join(problems[:5])}. Nothing was written to {target}.")
        os.chmod(partial, 0o644)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _commonest(column: pl.Series) -> str:
    counts = column.value_counts(sort=True).head(3)
    return "; ".join(f"{_cell(why, 50)} ({count})" for why, count in counts.iter_rows())


def _pair_models(pairs: pl.DataFrame) -> list[str]:
    lines = []
    for side in ("chosen", "rejected"):
        column = f"{side}_model"
        if column in pairs.columns and pairs[column].drop_nulls().len():
            lines.append(f"- {side} answers written by: {', '.join(sorted(set(pairs[column].drop_nulls())))}")
    return lines or ["- not recorded"]


def _cell(value: Any, width: int = 60) -> str:
    text = "" if value is None else " ".join(str(value).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|")
