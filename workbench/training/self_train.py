"""``wb.self_train``: self-training over generations on the embedded model, with the controls that make the effect
attributable and the measures that show collapse.

    result = wb.self_train("arithmetic", iterations=1, k=4)                 # STaR, one generation
    result = wb.self_train("arithmetic", method="dpo")                      # preference pairs: RS-DPO, Self-Rewarding
    result = wb.self_train("arithmetic", iterations=5, data="accumulate")   # many generations: does it collapse?
    result.table      # per generation and arm: held-out rate (95% CI), paired tests, collapse measures, cost

One generation (Zelikman et al. 2022, STaR): the current model answers every training item ``k`` times; each arm
keeps its rows from those answers (``arms.py``: the verifier's, a judge's, all of them, ... — or, for
``method="dpo"``, pairs of a chosen and a rejected answer); the *base* model is fine-tuned on them, and the model
so trained answers the next generation. ``data="replace"`` trains each generation on the last generation's
rows alone; ``"accumulate"`` on every generation's rows so far (Gerstgrasser et al. 2024 found that accumulating
avoids collapse where replacing does not).

    generation 0    the base: measured, and its samples drawn
    generation g    per arm: rows from generation g-1's samples (budget: as many as the verifier arm's),
                    [+ every earlier generation's rows, when accumulating] -> fine-tune the base -> measure:
                    held-out rate, paired tests, then its own samples (what generation g+1 learns from)
                    and their collapse measures (``collapse.py``)

Every model is measured on held-out items that no generation trains on: another split of the task, asked in
another phrasing, greedily; a check (reusing ``wb.contamination``) refuses any training row or pair that repeats a
held-out item. ``p_vs_base`` is the exact McNemar test over those items against the base, ``p_vs_sft`` (dpo) the
same against the supervised arm of the same generation, trained on the chosen halves of the same pairs.

Nothing finished is done twice: every answer is in the response cache and every model is keyed by its rows and
settings, so the same call again samples and trains nothing, and a stopped run resumes at the generation it was
in. After the first generation an estimate of the rest is printed.

    python -m workbench.training --iterations 5 --data accumulate      # the command line (__main__.py)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..curation.contamination import contamination
from ..curation.dedup import normalise
from ..errors import InputError, check_counts, check_numbers, check_type
from ..grading.stats import mcnemar, wilson
from ..models.client import LLM
from ..models.connect import connect
from ..models.local import local_server
from .arms import ARMS, DPO_ARMS, JUDGE_RUBRIC, budgeted, check_arms, training_rows
from .collapse import PROBE_TOP_LOGPROBS, answer_entropy, collapse_measures
from .finetune import finetune

__all__ = [
    "ARMS",
    "DATA",
    "DPO_ARMS",
    "JUDGE_RUBRIC",
    "SelfTraining",
    "check_heldout",
    "self_train",
    "split_items",
]

DATA = {
    "replace": "each generation trains on the previous generation's rows only",
    "accumulate": "each generation trains on the rows of every generation so far",
}
DEFAULT_DPO_ARMS = ("verifier", "judge", "random", "sft")
SERVED_CONTEXT = 1024  # tokens per slot for a tuned model's server: these tasks' prompts and answers are short


@dataclass
class SelfTraining:
    """What :func:`self_train` returns: the per-generation table; every sample (``round``: the generation of the
    model that wrote it, ``arm``: its arm, ``"base"`` in generation 0); each held-out verdict (``heldout``); the
    models by (generation, arm) — an arm that found nothing to train on carries the one before (or None, the base)."""

    table: pl.DataFrame
    samples: pl.DataFrame
    models: dict[tuple[int, str], Any]
    seconds: float
    heldout: pl.DataFrame = field(default_factory=pl.DataFrame)  # iteration, arm, item_id, correct


def _task(task: Any) -> Any:
    if isinstance(task, str):
        from ..grading import tasks

        return tasks.get(task)
    return task


def split_items(task: Any, train: int = 60, heldout: int = 40, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train items, held-out items): the held-out ones in the task's held-out phrasing; training items
    whose variables repeat a held-out item's are dropped, so that no iteration can train on one.

    Asking for more training items than the task has beside the held-out ones is an error that says how
    many there are."""
    check_counts(train=train, heldout=heldout)
    task = _task(task)
    held = task.items(heldout, split="heldout", seed=seed)
    capacity = task.capacity("train")
    drawn = task.items(train * 3 if capacity is None else min(train * 3, capacity), split="train", seed=seed)
    kept = drawn.filter(~pl.col("variables").is_in(held["variables"].implode())).head(train)
    if kept.height < train:
        available = "" if capacity is None or drawn.height < capacity else f" (all {capacity:,} of them drawn)"
        raise InputError(
            f"task {task.name!r} has {kept.height:,} training items{available} that repeat none of the {heldout:,} "
            f"held-out ones; {train:,} were asked for. Ask for train={kept.height:,} or fewer, fewer held-out items, "
            "or a task with more items."
        )
    return kept, held


def check_heldout(rows: pl.DataFrame, heldout: pl.DataFrame, task: Any, column: str = "prompt") -> None:
    """Raise InputError naming the training rows (or pairs) that repeat a held-out item (in any phrasing)."""
    task = _task(task)
    reference = _rendered(heldout, task)
    shortest = min(len(normalise(text).split()) for text in reference["text"])
    flagged = contamination(rows, reference, column=column, n=max(shortest, 1)).filter(pl.col("contaminated"))
    if "variables" in rows.columns:
        same = rows.filter(pl.col("variables").is_in(heldout["variables"].implode()))
        flagged = pl.concat([flagged.select(rows.columns), same], how="vertical_relaxed")
    if flagged.height:
        names = _row_names(flagged)
        raise InputError(
            f"{len(names)} training row(s) repeat held-out items: {', '.join(names[:10])}"
            f"{' ...' if len(names) > 10 else ''}. Held-out items must never be trained on: drop those rows "
            "or take the split from split_items()."
        )


def _rendered(heldout: pl.DataFrame, task: Any) -> pl.DataFrame:
    ids, texts = [], []
    for item in heldout.iter_rows(named=True):
        variables = json.loads(item["variables"])
        for phrasing in [*task.phrasings["train"], *task.phrasings["heldout"]]:
            ids.append(item["item_id"])
            texts.append(phrasing.format(**variables))
    return pl.DataFrame({"ref_id": ids, "text": texts})


def _row_names(frame: pl.DataFrame) -> list[str]:
    column = next((c for c in ("pair_id", "sample_id", "item_id") if c in frame.columns), None)
    names = frame[column].cast(pl.String).to_list() if column else [f"row {i}" for i in range(frame.height)]
    return list(dict.fromkeys(names))


def sample(
    llm: LLM, items: pl.DataFrame, task: Any, *, k: int, iteration: int, progress: bool, **params
) -> pl.DataFrame:
    """``k`` answers per item from ``llm``, each checked by the task's verifier (``verified``)."""
    requests = [{"messages": task.messages(prompt)} for prompt in items["prompt"] for _ in range(k)]
    answers = llm.chat_many(requests, progress=progress, max_tokens=task.max_tokens, **params)
    repeated = items.select(pl.all().repeat_by(k).explode())
    frame = pl.concat([repeated, answers.drop(["model"]).with_columns(answers["model"])], how="horizontal")
    verdicts = [
        task.verify(r, v).passed if r is not None else False
        for r, v in zip(frame["response"], frame["variables"], strict=True)
    ]
    return frame.with_columns(
        pl.col("request_id").str.slice(0, 16).alias("sample_id"),
        pl.lit(iteration).alias("round"),
        pl.Series("verified", verdicts, dtype=pl.Boolean),
    )


def evaluate(llm: LLM, heldout: pl.DataFrame, task: Any, progress: bool = False) -> dict[str, Any]:
    """Held-out verified rate at temperature 0, with its Wilson 95% interval, each item's verdict (``correct``)
    and the model's next-token entropy along those answers (``entropy``, the fixed probe set)."""
    answered = sample(
        llm,
        heldout,
        task,
        k=1,
        iteration=0,
        progress=progress,
        temperature=0.0,
        logprobs=True,
        top_logprobs=PROBE_TOP_LOGPROBS,
    )
    correct, n = int(answered["verified"].sum()), answered.height
    low, high = wilson(correct, n)
    return {
        "heldout_correct": correct,
        "heldout_n": n,
        "heldout_rate": correct / n,
        "ci_low": low,
        "ci_high": high,
        "entropy": answer_entropy(answered),
        "correct": answered["verified"].to_list(),
    }


class _Served:
    """The models being measured, served by ``serve``; the embedded server of a model no longer needed is stopped
    (only when this module started it), so that many generations do not hold one llama-server each."""

    def __init__(self, serve: Callable[[Path | None], LLM] | None, options: dict[str, Any]) -> None:
        self.options = options
        self.own = serve is None
        self.serve = serve or (lambda path: connect(local_model=path, local_context=SERVED_CONTEXT, **options))

    def __call__(self, path: Path | None) -> LLM:
        return self.serve(path)

    def release(self, path: Path | None) -> None:
        """Stop the embedded server of the tuned model at ``path`` (never the base's, which others may share)."""
        if not self.own or path is None:
            return
        llm = self.serve(path)  # the running server's address: connecting again starts nothing
        logs = Path(llm.settings.data_dir) / "logs"
        local_server(path, logs, slots=llm.settings.local_slots, context=SERVED_CONTEXT).stop()


def self_train(
    task: Any = "arithmetic",
    *,
    iterations: int = 1,
    k: int = 4,
    train_items: int = 60,
    heldout_items: int = 40,
    arms: tuple[str, ...] | None = None,
    method: str = "sft",
    data: str = "replace",
    temperature: float = 0.8,
    mode: str = "lora",
    epochs: int = 2,
    learning_rate: float | None = None,
    beta: float | None = None,
    dpo_loss: str | None = None,
    nll: float | None = None,
    margin: float = 1.0,
    seed: int = 0,
    item_seed: int = 0,
    base: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    judge: LLM | None = None,
    serve: Callable[[Path | None], LLM] | None = None,
) -> SelfTraining:
    """Run ``iterations`` generations for each arm (see the module docstring); returns a :class:`SelfTraining`.

    ``method``: ``"sft"`` (arms verifier, unfiltered, judge, gold; default all four) or ``"dpo"`` (arms
    verifier, judge, compare, random, sft; default all but compare), ``beta``/``dpo_loss``/``nll`` its loss
    (``wb.finetune``). ``data``: ``"replace"`` or ``"accumulate"``. ``margin``: the judge-score gap of a judge
    pair. ``serve(path)`` returns the ``LLM`` that answers with the GGUF at ``path`` (None: the base); by default
    ``wb.connect(local_model=path)``, the embedded llama.cpp server. ``judge`` grades for the judge and compare
    arms (default: the base model, the same judge every generation). ``seed`` seeds the sampling and the training;
    ``item_seed`` draws the training and held-out items, the same for every ``seed`` (as ``--item-seed`` does in
    the strategy experiment), so that runs over several seeds measure the same items and compare item by item.
    """
    started = time.perf_counter()
    check_counts(iterations=iterations, k=k, train_items=train_items, heldout_items=heldout_items, epochs=epochs)
    check_numbers(at_least=0, temperature=temperature)
    if method not in ("sft", "dpo"):
        raise InputError(f"method must be one of sft, dpo; got {method!r}.")
    if data not in DATA:
        raise InputError(f"data must be one of {', '.join(DATA)}; got {data!r}.")
    if isinstance(arms, str) or not isinstance(arms, (tuple, list, type(None))):
        raise InputError(f"arms is a tuple of arm names, for example ('verifier', 'sft'); got {arms!r}.")
    arms = tuple(arms) if arms is not None else (DEFAULT_DPO_ARMS if method == "dpo" else ARMS)
    check_arms(arms, method)
    task = _task(task)
    check_type(item_seed, int, "item_seed", "a whole number")
    train, heldout = split_items(task, train_items, heldout_items, item_seed)
    options = {"data_dir": data_dir} if data_dir else {}
    served = _Served(serve, options)
    run = _Run(task, train, heldout, arms, method, data, served, progress, seed, iterations)
    training = {
        "mode": mode,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seed": seed,
        "base": base,
        "system": task.system,
        **options,
    }
    preference = {"beta": beta, "dpo_loss": dpo_loss, "nll": nll}
    run.measure_base(served(base), temperature, k)
    for generation in range(1, iterations + 1):
        run.generation(generation, k, temperature, training, preference, judge or run.base_llm, margin)
    return run.result(time.perf_counter() - started)


class _Run:
    """One call of :func:`self_train`: the state carried from one generation to the next."""

    def __init__(self, task, train, heldout, arms, method, data, served, progress, seed, iterations) -> None:
        self.task, self.train, self.heldout, self.arms = task, train, heldout, arms
        self.method, self.data, self.served, self.progress, self.seed = method, data, served, progress, seed
        self.iterations = iterations
        self.rows: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.everything: list[pl.DataFrame] = []
        self.models: dict[tuple[int, str], Any] = {}
        self.current: dict[str, Any] = {}  # arm -> (path of its model, its samples of the last generation)
        self.kept: dict[str, list[pl.DataFrame]] = {arm: [] for arm in arms}
        self.base_correct: list[bool] = []

    def measure_base(self, llm: LLM, temperature: float, k: int) -> None:
        self.base_llm = llm
        measured = evaluate(llm, self.heldout, self.task)
        self.base_correct = measured["correct"]
        samples = self._sample(llm, 0, k, temperature)
        self._record(0, "base", measured, samples, {})
        self.current = {arm: (None, samples) for arm in self.arms}

    def generation(self, g: int, k: int, temperature: float, training: dict, preference: dict, judge, margin) -> None:
        started = time.perf_counter()
        trained_before = sum(bool(m.trained) for m in self.models.values() if m is not None)
        rows = {arm: self._rows(arm, g, judge, margin) for arm in self.arms}
        budget = rows["verifier"].height
        measured_now: dict[str, dict[str, Any]] = {}
        for arm in self.arms:
            chosen = budgeted(rows[arm], budget, self.seed + g) if rows[arm].height else rows[arm]
            if chosen.height:
                self.kept[arm].append(chosen.with_columns(pl.lit(g).alias("generation")))
            accumulated = self.data == "accumulate" and self.kept[arm]
            trained_on = pl.concat(self.kept[arm], how="diagonal_relaxed") if accumulated else chosen
            path, cost = self._train(g, arm, trained_on, training, preference)
            llm = self.served(path)
            measured = evaluate(llm, self.heldout, self.task)
            measured_now[arm] = measured
            samples = self._sample(llm, g, k, temperature, arm)
            if self.current[arm][0] != path:
                self.served.release(self.current[arm][0])
            self.current[arm] = (path, samples)
            kept = {"items_kept": rows[arm]["item_id"].n_unique() if "item_id" in rows[arm].columns else 0}
            self._record(g, arm, measured, samples, {**kept, "rows_kept": rows[arm].height, **cost})
        self._paired_with_sft(g, measured_now)
        if g == 1 and self.iterations > 1 and self.progress:
            trained = sum(bool(m.trained) for m in self.models.values() if m is not None) - trained_before
            print(self._estimate(time.perf_counter() - started, trained))

    def _rows(self, arm: str, g: int, judge: LLM, margin: float) -> pl.DataFrame:
        """What ``arm`` keeps of its last samples; none (an empty frame) where an arm other than the verifier's
        finds nothing — that arm's model then carries on untrained — and an error naming the cause for it."""
        samples = self.current[arm][1]
        try:
            rows = training_rows(
                arm, self.method, samples, self.train, judge=judge, margin=margin, seed=self.seed + g,
                progress=self.progress,
            )  # fmt: skip
        except InputError as error:
            if arm == "verifier":
                raise InputError(f"generation {g}: the verifier arm has nothing to train on: {error}") from None
            return pl.DataFrame()
        if arm == "verifier" and rows.height == 0:
            raise InputError(
                f"generation {g}: the verifier accepted none of the {samples.height} samples, so there is nothing "
                "to train on. Sample more (a larger k or more train_items) or raise the temperature."
            )
        return rows

    def _train(self, g: int, arm: str, rows: pl.DataFrame, training: dict, preference: dict) -> tuple[Any, dict]:
        """Fine-tune the base on ``rows`` (the path of the model, and what it cost); with no rows, the arm's model
        of the generation before carries on (noted in ``carried``)."""
        if rows.height == 0:
            self.models[(g, arm)] = self.models.get((g - 1, arm))
            return self.current[arm][0], {"rows_trained": 0, "trained_now": False, "carried": True}
        check_heldout(rows, self.heldout, self.task)
        tuned = finetune(
            rows,
            method="sft" if self.method == "sft" or arm == "sft" else "dpo",
            task_column="prompt",
            progress=self.progress,
            **training,
            **(preference if self.method == "dpo" and arm != "sft" else {}),
        )
        self.models[(g, arm)] = tuned
        stats = {name: tuned.stats.get(name) for name in ("chosen_logratio", "pairs_preferred")}
        cost = {"rows_trained": rows.height, "train_seconds": tuned.stats.get("seconds_total")}
        return tuned.path, {**cost, "trained_now": tuned.trained, "carried": False, **stats}

    def _sample(self, llm: LLM, g: int, k: int, temperature: float, arm: str = "base") -> pl.DataFrame:
        drawn = sample(
            llm,
            self.train,
            self.task,
            k=k,
            iteration=g,
            progress=self.progress,
            temperature=temperature,
            seed=self.seed,
        )
        self.everything.append(drawn.with_columns(pl.lit(arm).alias("arm")))
        return drawn

    def _record(self, g: int, arm: str, measured: dict, samples: pl.DataFrame, cost: dict[str, Any]) -> None:
        correct = measured.pop("correct")
        better = sum(now and not before for now, before in zip(correct, self.base_correct, strict=True))
        worse = sum(before and not now for now, before in zip(correct, self.base_correct, strict=True))
        self.verdicts += [
            {"iteration": g, "arm": arm, "item_id": item, "correct": ok}
            for item, ok in zip(self.heldout["item_id"], correct, strict=True)
        ]
        self.rows.append(
            {
                "iteration": g,
                "arm": arm,
                "method": None if arm == "base" else "dpo" if self.method == "dpo" and arm != "sft" else "sft",
                "data": self.data,
                **measured,
                "better_vs_base": better,
                "worse_vs_base": worse,
                "p_vs_base": mcnemar(better, worse) if arm != "base" else None,
                "samples_verified": float(samples["verified"].mean()),
                **collapse_measures(samples),
                "tokens_sampled": int(samples["tokens_out"].sum()),
                **cost,
            }
        )

    def _paired_with_sft(self, g: int, measured: dict[str, dict[str, Any]]) -> None:
        if "sft" not in measured:
            return
        sft = [v["correct"] for v in self.verdicts if v["iteration"] == g and v["arm"] == "sft"]
        for row in self.rows:
            if row["iteration"] != g or row["arm"] in ("sft", "base"):
                continue
            mine = [v["correct"] for v in self.verdicts if v["iteration"] == g and v["arm"] == row["arm"]]
            better = sum(a and not b for a, b in zip(mine, sft, strict=True))
            worse = sum(b and not a for a, b in zip(mine, sft, strict=True))
            row["p_vs_sft"] = mcnemar(better, worse)

    def _estimate(self, seconds: float, trained: int) -> str:
        left = self.iterations - 1
        growth = sum(range(2, self.iterations + 1)) if self.data == "accumulate" else left
        if trained == 0:
            return (
                f"generation 1 of {self.iterations} was already done (every model found, every answer cached): "
                f"{seconds:.0f} s. The {left} to come take as long as they took the first time."
            )
        return (
            f"generation 1 of {self.iterations} took {seconds / 60:.1f} min ({trained} models trained). The {left} "
            f"to come: about {seconds * growth / 60:.0f} min"
            + (" (accumulating, each trains on more rows than the one before)" if self.data == "accumulate" else "")
            + ". Stop any time: a finished generation is never recomputed, and the same call resumes."
        )

    def result(self, seconds: float) -> SelfTraining:
        table = pl.DataFrame(self.rows, infer_schema_length=None)
        samples = pl.concat(self.everything, how="diagonal_relaxed") if self.everything else pl.DataFrame()
        return SelfTraining(table, samples, self.models, seconds, pl.DataFrame(self.verdicts))


if __name__ == "__main__":
    raise SystemExit("The self-training command is now: python -m workbench.training --iterations 2 --k 4")
