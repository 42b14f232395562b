"""One sample's revisions, round by round, and a word-level diff between consecutive versions.

    versions = lineage(history, "3f2a9c0d1e4b5a6c")      # every version of that sample, round 0 first
    word_diff("the cat sat", "the dog sat")              # [("=", "the "), ("-", "cat"), ("+", "dog"), ("=", " sat")]

The explorer (``wb.explore``) shows these; they are plain functions so that a notebook or a test can
read the same thing. A lineage is found by ``lineage_id`` when the frame has it (``wb.refine``
writes it), else by following ``parent_id`` up to round 0 and down through every revision.
"""

from __future__ import annotations

import difflib
import html
import re

import polars as pl

from ..errors import InputError

__all__ = ["MAX_DIFF_WORDS", "diff_html", "lineage", "word_diff"]

MAX_DIFF_WORDS = 20_000  # longer texts are shown whole: a word diff of them is slow and unreadable
_TOKEN = re.compile(r"\s+|[^\s]+")


def lineage(frame: pl.DataFrame, sample_id: str, *, id_column: str = "sample_id") -> pl.DataFrame:
    """Every version of the sample ``sample_id`` belongs to, ordered by ``round`` (one row per version)."""
    found = frame.filter(pl.col(id_column) == sample_id)
    if found.height == 0:
        raise InputError(f"no sample with {id_column} {sample_id!r} in this frame.")
    if "lineage_id" in frame.columns and found["lineage_id"][0] is not None:
        versions = frame.filter(pl.col("lineage_id") == found["lineage_id"][0])
    elif "parent_id" in frame.columns:
        up, down = _ancestors(frame, found.head(1), id_column), _descendants(frame, found[id_column][0], id_column)
        versions = pl.concat([up, down], how="diagonal_relaxed")
    else:
        versions = found.head(1)
    return versions.sort("round", maintain_order=True) if "round" in versions.columns else versions


def _ancestors(frame: pl.DataFrame, row: pl.DataFrame, id_column: str) -> pl.DataFrame:
    """``row`` and its parents up to the first version (a cycle or a missing parent ends the walk)."""
    chain, seen = [row], {row[id_column][0]}
    while (parent := chain[-1]["parent_id"][0]) is not None and parent not in seen:
        found = frame.filter(pl.col(id_column) == parent).head(1)
        if found.height == 0:
            break
        chain.append(found)
        seen.add(parent)
    return pl.concat(chain[::-1], how="diagonal_relaxed")


def _descendants(frame: pl.DataFrame, sample_id: str, id_column: str) -> pl.DataFrame:
    """Every revision made from ``sample_id``, its revisions, and so on."""
    found, frontier, seen = [], [sample_id], {sample_id}
    while frontier:
        children = frame.filter(pl.col("parent_id").is_in(frontier))
        children = children.filter(~pl.col(id_column).is_in(list(seen)))
        if children.height == 0:
            break
        found.append(children)
        frontier = children[id_column].to_list()
        seen.update(frontier)
    return pl.concat(found, how="diagonal_relaxed") if found else frame.clear()


def word_diff(before: str | None, after: str | None) -> list[tuple[str, str]]:
    """The changes from ``before`` to ``after`` word by word: ``("=", kept)``, ``("-", removed)``, ``("+", added)``.

    White space is kept, so joining the ``=`` and ``+`` parts gives ``after`` back exactly (and the
    ``=`` and ``-`` parts give ``before``).
    """
    old, new = _TOKEN.findall(before or ""), _TOKEN.findall(after or "")
    if max(len(old), len(new)) > MAX_DIFF_WORDS:
        return [("-", before or ""), ("+", after or "")]
    ops: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(("=", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            ops.append(("-", "".join(old[i1:i2])))
        if j2 > j1:
            ops.append(("+", "".join(new[j1:j2])))
    return ops


def diff_html(ops: list[tuple[str, str]]) -> str:
    """A word diff as HTML: removed words struck through in red, added words in green."""
    styles = {
        "=": "<span>{}</span>",
        "-": "<del style='background:#fbe3e4;color:#8a1f11'>{}</del>",
        "+": "<ins style='background:#e6ffec;color:#1a5d2a;text-decoration:none'>{}</ins>",
    }
    body = "".join(styles[op].format(html.escape(text)) for op, text in ops)
    return f"<div style='white-space:pre-wrap;font-family:inherit'>{body}</div>"
