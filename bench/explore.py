"""How fast the explorer answers on a large run table: each action a user takes, timed on 100,000 rows.

A refine-like history (four rounds with lineage, about 120 words per response, scores, some
errors) is built in memory. Each action is timed twice, side by side in the same run: on an
``ExplorerState`` alone (filter, sort, page, lineage, marks: no widgets), and on ``wb.explore``'s
widget driven as a click drives it (the same conditions through its controls, then one page drawn).
Prints the median and worst of several runs of each (target: a filter and a page change each under
200 ms on 2 cores), and what drawing every matching row (no paging) costs, which is what paging saves.
A page change on the state alone only moves the page number; the widget's also reads and draws the page.

    python bench/explore.py [--rows 100000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from itertools import cycle
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from workbench.views.explorer_state import ExplorerState  # noqa: E402

TARGET_MS = 200.0


def history(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(5_000)] + ["apples", "trains", "answer"]
    return pl.DataFrame(
        {
            "sample_id": [f"s{i:07d}" for i in range(rows)],
            "lineage_id": [f"s{(i // 4) * 4:07d}" for i in range(rows)],
            "parent_id": [None if i % 4 == 0 else f"s{i - 1:07d}" for i in range(rows)],
            "round": [i % 4 for i in range(rows)],
            "response": [" ".join(rng.choices(vocabulary, k=120)) for _ in range(rows)],
            "critique": [None if i % 4 == 0 else "Add more detail." for i in range(rows)],
            "score": [None if rng.random() < 0.05 else float(rng.randint(1, 5)) for _ in range(rows)],
            "reason": ["a reason"] * rows,
            "tokens_in": [rng.randint(20, 200) for _ in range(rows)],
            "tokens_out": [rng.randint(20, 400) for _ in range(rows)],
            "cost_usd": [rng.random() / 1000 for _ in range(rows)],
            "latency_s": [rng.random() * 3 for _ in range(rows)],
            "error": [None if rng.random() > 0.02 else "APIError: boom" for _ in range(rows)],
        }
    )


def timed(action, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


# action: (the control a click sets, the condition it holds, the values it goes through)
FILTERS = {
    "filter: round (dropdown)": ("round_filter", "round", [1, 2, 3, None]),
    "filter: score range (slider)": ("score_filter", "score", [(3.0, 5.0), (1.0, 2.0)]),
    "filter: show (dropdown)": ("show_filter", "show", ["errors", "unscored", "judge pass", "all"]),
    "filter: text search": ("search_box", "search", ["apples", "trains", "w42 w7", ""]),
}
SORTS = ["score", "tokens", "cost", "latency"]


def filter_actions(state: ExplorerState, ex) -> dict[str, tuple]:
    """Each filter on the state (the conditions the controls would hold, from code) and on the widget's control."""
    held: dict = {}  # the controls' conditions so far: a click changes one and keeps the others

    def on_state(condition: str, value) -> None:
        held[condition] = value
        state.filter(**{name: value for name, value in held.items() if value is not None})

    actions = {}
    for name, (control, condition, values) in FILTERS.items():
        on_values, click_values = cycle(values), cycle(values)
        actions[name] = (
            lambda condition=condition, on_values=on_values: on_state(condition, next(on_values)),
            lambda control=control, click_values=click_values: setattr(
                getattr(ex, control), "value", next(click_values)
            ),
        )
    return actions


def other_actions(state: ExplorerState, ex) -> dict[str, tuple]:
    """Sorting, paging, opening a lineage and marking, the same call on the state and on the widget."""
    orders = {"state": cycle(SORTS), "widget": cycle(SORTS)}
    return {
        "sort": (lambda: state.sort(next(orders["state"])), lambda: ex.sort(next(orders["widget"]))),
        "page change (next)": (lambda: state.page(state.page_number + 1), lambda: ex.page(ex.page_number + 1)),
        "page jump (last page)": (
            lambda: state.page(state.pages - 1 if state.page_number == 0 else 0),
            lambda: ex.page(ex.pages - 1 if ex.page_number == 0 else 0),
        ),
        "open a lineage (4 versions)": (lambda: state.lineage("s0050002"), lambda: ex.lineage("s0050002")),
        "mark keep (saved to Parquet)": (lambda: state.mark("s0000004", "keep"), lambda: ex.mark("s0000004", "keep")),
    }


def draw_page(state: ExplorerState) -> str:
    """The cards of the page shown, as the widget draws them."""
    return "".join(state.card(row) for row in state.page_rows().iter_rows(named=True))


def built(frame: pl.DataFrame, marks: str) -> tuple[ExplorerState, object]:
    """A state alone and a widget over the same frame (their marks in two files), each timed as it is built."""
    started = time.perf_counter()
    state = ExplorerState(frame, name="state", marks_dir=marks)
    state_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    ex = wb.explore(frame, name="widget", marks_dir=marks)
    widget_ms = (time.perf_counter() - started) * 1000
    print(f"{frame.height:,} rows; ExplorerState(frame) built in {state_ms:.0f} ms, ", end="")
    print(f"wb.explore(frame) in {widget_ms:.0f} ms\n")
    return state, ex


def time_actions(state: ExplorerState, ex, repeats: int) -> None:
    """Each action on the state alone, then on the widget, side by side: median and worst of ``repeats``."""
    print(f"{'action':<32}{'state alone':>24}{'widget (a click)':>24}  under {TARGET_MS:.0f} ms?")
    print(f"{'':<32}{'median ms':>12}{'worst ms':>12}{'median ms':>12}{'worst ms':>12}")
    for name, (on_state, on_widget) in {**filter_actions(state, ex), **other_actions(state, ex)}.items():
        if name.startswith("page"):
            for target in (state, ex):
                target.filter()
                target.sort(None)
        alone, clicked = timed(on_state, repeats), timed(on_widget, repeats)
        figures = "".join(f"{statistics.median(t):>12.1f}{max(t):>12.1f}" for t in (alone, clicked))
        print(f"{name:<32}{figures}  {'yes' if max(alone + clicked) < TARGET_MS else 'NO'}")


def what_paging_saves(state: ExplorerState, repeats: int) -> None:
    """One page of cards against every card of round 2 drawn at once."""
    state.filter(round=2)
    page_ms = statistics.median(timed(lambda: (state.page(state.page_number + 1), draw_page(state)), repeats))
    every = state.frame[state.rows.to_list()]
    started = time.perf_counter()
    drawn = "".join(state.card(row) for row in every.iter_rows(named=True))
    all_ms = (time.perf_counter() - started) * 1000
    print(
        f"\nside by side, round 2 ({state.matches:,} rows): one page of {state.page_size} cards {page_ms:.1f} ms; "
        f"every card at once {all_ms:,.0f} ms ({len(drawn) / 1e6:.0f} MB of HTML) -> paging is "
        f"{all_ms / page_ms:,.0f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    frame = history(args.rows)
    with tempfile.TemporaryDirectory() as marks:
        state, ex = built(frame, marks)
        time_actions(state, ex, args.repeats)
        what_paging_saves(state, args.repeats)


if __name__ == "__main__":
    main()
