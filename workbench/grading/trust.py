"""Trusting the judge: agreement with a verifier or with people, with itself, and position bias.

    wb.agreement(graded, "score", "human_score")              # accuracy, Cohen's kappa, confusion
    wb.agreement(graded, "passed_by_judge", "verified")       # booleans work too
    wb.self_agreement(graded_with_votes)                      # how often the judge agrees with itself
    wb.position_bias(wb.compare(...))                         # how often order decides the verdict

Cohen's kappa (1960) corrects raw agreement for chance: 1 is perfect, 0 is chance, below 0 worse.
For ordinal scales the weighted kappa (Cohen 1968) gives partial credit for near misses (linear or
quadratic weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import polars as pl

from ..errors import InputError

__all__ = ["Agreement", "agreement", "cohen_kappa", "position_bias", "self_agreement"]


@dataclass(frozen=True)
class Agreement:
    """How far two columns of labels agree, over the rows where both have one."""

    a: str
    b: str
    n: int
    accuracy: float
    kappa: float
    weighted_kappa: float | None
    confusion: pl.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "n": self.n,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "weighted_kappa": self.weighted_kappa,
        }


def agreement(frame: pl.DataFrame, a: str, b: str, *, weights: str | None = "quadratic") -> Agreement:
    """Accuracy, Cohen's kappa, weighted kappa (numeric labels) and the confusion matrix of ``a`` vs ``b``."""
    for name in (a, b):
        if name not in frame.columns:
            raise InputError(f"the frame has no column {name!r} (its columns: {', '.join(frame.columns)}).")
    pairs = frame.select(a, b).drop_nulls()
    if pairs.height == 0:
        raise InputError(f"no row has both {a!r} and {b!r}: nothing to compare.")
    left, right = pairs[a].to_list(), pairs[b].to_list()
    labels = sorted(set(left) | set(right))
    numeric = all(isinstance(label, (int, float)) and not isinstance(label, bool) for label in labels)
    weighted = cohen_kappa(left, right, weights=weights, labels=labels) if numeric and weights else None
    return Agreement(
        a,
        b,
        pairs.height,
        accuracy=sum(x == y for x, y in zip(left, right, strict=True)) / pairs.height,
        kappa=cohen_kappa(left, right, labels=labels),
        weighted_kappa=weighted,
        confusion=_confusion(pairs, a, b, labels),
    )


def cohen_kappa(left: list, right: list, *, weights: str | None = None, labels: list | None = None) -> float:
    """Cohen's kappa of two equally long label lists; ``weights`` None, "linear" or "quadratic".

    Two empty lists have no agreement to measure, so they are an error (not a perfect 1.0).
    """
    left, right = _label_lists(left, right)
    labels = labels or sorted(set(left) | set(right))
    unknown = (set(left) | set(right)) - set(labels)
    if unknown:
        raise InputError(f"labels= must hold every label given; it lacks {sorted(unknown, key=str)[:5]}.")
    index = {label: i for i, label in enumerate(labels)}
    k, n = len(labels), len(left)
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(left, right, strict=True):
        observed[index[x]][index[y]] += 1 / n
    row = [sum(observed[i]) for i in range(k)]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    disagreement = _weights(labels, weights)
    seen = sum(disagreement[i][j] * observed[i][j] for i in range(k) for j in range(k))
    expected = sum(disagreement[i][j] * row[i] * col[j] for i in range(k) for j in range(k))
    if expected == 0:
        return 1.0
    return round(1 - seen / expected, 12) + 0.0  # rounding hides float dust like -2e-16; + 0.0 turns -0.0 into 0.0


def _label_lists(left: Any, right: Any) -> tuple[list, list]:
    try:
        left, right = list(left), list(right)
    except TypeError:
        raise InputError("cohen_kappa compares two lists of labels, e.g. cohen_kappa([1, 2, 2], [1, 2, 3]).") from None
    if len(left) != len(right):
        raise InputError(
            f"cohen_kappa pairs the labels by position: the lists must be as long as each other ({len(left)} and "
            f"{len(right)}). Keep only the items both have labelled."
        )
    if not left:
        raise InputError("cohen_kappa needs at least one pair of labels; both lists are empty.")
    if any(label is None or (isinstance(label, float) and label != label) for label in left + right):
        raise InputError("cohen_kappa's labels hold a None or NaN: drop the items one side has not labelled.")
    try:
        sorted(set(left) | set(right))
    except TypeError:
        raise InputError(
            "cohen_kappa's labels must be of one kind (all numbers, or all text) to be compared."
        ) from None
    return left, right


def _weights(labels: list, weights: str | None) -> list[list[float]]:
    k = len(labels)
    if weights is None:
        return [[0.0 if i == j else 1.0 for j in range(k)] for i in range(k)]
    if weights not in {"linear", "quadratic"}:
        raise InputError(f"weights must be None, 'linear' or 'quadratic'; got {weights!r}.")
    if not all(isinstance(label, (int, float)) and not isinstance(label, bool) for label in labels):
        raise InputError("weighted kappa needs numeric labels (a score scale); use weights=None for categories.")
    span = (max(labels) - min(labels)) or 1
    power = 1 if weights == "linear" else 2
    return [[(abs(labels[i] - labels[j]) / span) ** power for j in range(k)] for i in range(k)]


def _confusion(pairs: pl.DataFrame, a: str, b: str, labels: list) -> pl.DataFrame:
    # A judge's weighted scores are floats (2.0, 2.5) while a human's are ints: both sides share one label type.
    grid = pl.Series("label", labels, strict=False)
    counts = pairs.cast({a: grid.dtype, b: grid.dtype}).group_by(a, b).len()
    full = grid.to_frame(a).join(grid.to_frame(b), how="cross")
    return full.join(counts, on=[a, b], how="left").with_columns(pl.col("len").fill_null(0).alias("count")).drop("len")


def self_agreement(graded: pl.DataFrame, votes: str = "votes") -> dict[str, float]:
    """How consistent the judge is with itself across its k votes per row.

    ``pairwise_agreement``: share of vote pairs (within a row) that are equal; ``unanimous``: share
    of rows whose votes all agree; ``mean_spread``: mean max - min of the votes.
    """
    if votes not in graded.columns:
        raise InputError(f"the frame has no column {votes!r}: grade with votes=k (k >= 2) first.")
    rows = [v for v in graded[votes].to_list() if v is not None and len(v) >= 2]
    if not rows:
        raise InputError("no row has two or more votes: grade with votes=k (k >= 2) first.")
    pairs = [x == y for v in rows for x, y in combinations(v, 2)]
    return {
        "rows": len(rows),
        "pairwise_agreement": sum(pairs) / len(pairs),
        "unanimous": sum(len(set(v)) == 1 for v in rows) / len(rows),
        "mean_spread": sum(max(v) - min(v) for v in rows) / len(rows),
    }


def position_bias(verdicts: pl.DataFrame) -> dict[str, float]:
    """From ``wb.compare``'s table: how often swapping the order changed the verdict, and which way.

    ``inconsistent``: share of parsed pairs whose two verdicts differ; ``first_slot``/``second_slot``:
    share of pairs where the judge picked whichever response was shown first/second both times.
    """
    needed = {"consistent", "first_slot_both", "second_slot_both"}
    if not needed <= set(verdicts.columns):
        raise InputError("position_bias reads the table that wb.compare returns.")
    parsed = verdicts.filter(pl.col("consistent").is_not_null())
    if parsed.height == 0:
        raise InputError("no pair has two parsed verdicts.")
    return {
        "pairs": parsed.height,
        "inconsistent": 1 - parsed["consistent"].mean(),
        "first_slot": parsed["first_slot_both"].mean(),
        "second_slot": parsed["second_slot_both"].mean(),
    }
