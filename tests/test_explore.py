"""Reading the data: the explorer driven through its widget state, as a user would click it (no browser)."""

from __future__ import annotations

import json
import random
import re

import ipywidgets
import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

import workbench as wb
from workbench.views.explore import Explorer
from workbench.views.explorer_state import ExplorerState
from workbench.views.lineage import word_diff
from workbench.views.report import to_html

RUBRIC = wb.Rubric("Is the draft polished?", scale=(1, 5))
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "apples",
    "fell",
    "from",
    "trains",
    "and",
    "dogs",
    "barked",
    "at",
    "the",
    "moon",
]


def big_frame(rows: int = 100_000) -> pl.DataFrame:
    """A graded run table of ``rows`` samples over four rounds, some failed, some unscored."""
    pick = random.Random(7)
    return pl.DataFrame(
        {
            "sample_id": [f"s{i:07d}" for i in range(rows)],
            "round": [i % 4 for i in range(rows)],
            "response": [" ".join(pick.choices(WORDS, k=40)) for _ in range(rows)],
            "score": [None if i % 17 == 0 else float(pick.randint(1, 5)) for i in range(rows)],
            "reason": ["fine"] * rows,
            "tokens_in": [pick.randint(10, 100) for _ in range(rows)],
            "tokens_out": [pick.randint(10, 400) for _ in range(rows)],
            "cost_usd": [pick.random() / 1000 for _ in range(rows)],
            "latency_s": [pick.random() for _ in range(rows)],
            "error": [None if i % 50 else "APIError: boom" for i in range(rows)],
        }
    )


@pytest.fixture(scope="module")
def large() -> pl.DataFrame:
    return big_frame()


@pytest.fixture
def widgets_built():
    """Every ipywidgets widget constructed during the test (ipywidgets' own construction hook)."""
    built: list = []
    ipywidgets.Widget.on_widget_constructed(built.append)
    yield built
    ipywidgets.Widget.on_widget_constructed(None)


def shown_ids(explorer) -> list[str]:
    return [slot.sample_id for slot in explorer.slots if slot.sample_id is not None]


def test_filters_from_the_controls_and_pages_through_100000_rows(large, tmp_path):
    ex = wb.explore(large, marks_dir=tmp_path)
    assert ex.matches == 100_000 and "rows 1–10 of 100,000" in ex.status.value

    ex.round_filter.value = 2
    ex.score_filter.value = (4.0, 5.0)
    expected = large.filter((pl.col("round") == 2) & (pl.col("score") >= 4))
    assert ex.matches == expected.height
    assert shown_ids(ex) == expected["sample_id"][:10].to_list()

    ex.next_button.click()
    assert ex.page_number == 1 and shown_ids(ex) == expected["sample_id"][10:20].to_list()
    ex.previous_button.click()
    assert shown_ids(ex) == expected["sample_id"][:10].to_list()

    ex.show_filter.value = "errors"
    errors = expected.filter(pl.col("error").is_not_null())
    assert ex.matches == errors.height and all(r is not None for r in ex.page_frame["error"])

    ex.show_filter.value = "all"
    ex.search_box.value = "APPLES FELL"
    found = expected.filter(pl.col("response").str.contains("apples fell", literal=True))
    assert ex.matches == found.height > 0
    assert "apples fell" in ex.slots[0].html.value


def test_filters_and_sorting_from_code(large, tmp_path):
    ex = wb.explore(large, marks_dir=tmp_path, pass_at=4)

    ex.filter(round=[0, 3], show="unscored")
    assert ex.matches == large.filter(pl.col("round").is_in([0, 3]) & pl.col("score").is_null()).height
    assert ex.show_filter.value == "unscored"  # the controls follow a filter set from code

    ex.filter(show="judge pass", score=(None, 4))
    assert set(ex.selected()["score"].to_list()) == {4.0}

    ex.filter(error=None, round=1)
    ex.show_filter.value = "judge pass"  # a control changes its own condition and keeps those set from code
    expected = large.filter(pl.col("error").is_null() & (pl.col("round") == 1) & (pl.col("score") >= 4))
    assert ex.matches == expected.height and ex.conditions["error"] is None

    ex.filter()
    ex.sort("tokens")
    totals = [row["tokens_in"] + row["tokens_out"] for row in ex.page_frame.iter_rows(named=True)]
    assert totals == sorted(totals, reverse=True) and totals[0] == (large["tokens_in"] + large["tokens_out"]).max()
    ex.sort("latency", descending=False)
    assert ex.page_frame["latency_s"][0] == large["latency_s"].min()
    assert (ex.sort_by.value, ex.descending.value) == ("latency", False)  # the controls follow a sort from code
    ex.sort_by.value = "cost"  # in the order the checkbox shows: lowest first
    assert ex.page_frame["cost_usd"][0] == large["cost_usd"].min()
    ex.descending.value = True
    assert ex.page_frame["cost_usd"][0] == large["cost_usd"].max()
    ex.sort("round")  # any column sorts, and the menu learns it
    assert ex.sort_by.value == "round" and ex.page_frame["round"][0] == 3
    ex.sort("score")
    assert ex.page_frame["score"][0] == 5.0


def test_the_state_alone_filters_sorts_pages_and_opens_without_building_a_widget(large, tmp_path, widgets_built):
    state = ExplorerState(large, marks_dir=tmp_path)

    state.filter(round=2, score=(4, None))
    state.sort("cost")
    expected = (
        large.filter((pl.col("round") == 2) & (pl.col("score") >= 4))
        .sort("cost_usd", descending=True, maintain_order=True)["sample_id"]
        .to_list()
    )
    assert state.matches == len(expected) and state.pages == -(-len(expected) // 10)
    assert state.page_frame["sample_id"].to_list() == expected[:10]
    state.page(3)
    assert state.page_frame["sample_id"].to_list() == expected[30:40]
    assert f"rows 31–40 of {len(expected):,}" in state.status_html() and "sorted by cost" in state.status_html()
    state.page(10**6)  # past the end: the last page
    assert state.page_number == state.pages - 1 and state.page_frame["sample_id"][-1] == expected[-1]

    versions = state.lineage(expected[0])
    assert versions["sample_id"].to_list() == [expected[0]] and state.opened == expected[0]
    assert "Sample</b> (one version)" in state.opened_html and state.text(expected[0]) in state.opened_html
    assert widgets_built == []


def test_marks_set_on_the_state_are_found_by_a_new_state_on_the_same_data_folder(
    large, data_dir, monkeypatch, widgets_built
):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    frame = large.head(50)
    state = ExplorerState(frame, name="pass-2")
    state.mark("s0000003", "keep")
    state.mark("s0000007", "drop")
    assert (data_dir / "marks" / "pass-2.parquet").is_file()

    again = ExplorerState(frame, name="pass-2")  # a new kernel, the same data folder and name

    assert again.marks == {"s0000003": "keep", "s0000007": "drop"}
    again.filter(show="kept")
    assert again.page_frame["sample_id"].to_list() == ["s0000003"]
    again.mark("s0000003", None)  # taken back: the kept rows follow at once
    assert again.matches == 0 and again.marked()["mark"].drop_nulls().to_list() == ["drop"]
    with pytest.raises(wb.InputError, match="no sample with sample_id 'nope'"):
        again.mark("nope", "keep")
    assert widgets_built == []
    assert wb.explore(frame, name="pass-2").marks == {"s0000007": "drop"}  # the widget reads the same file


def test_the_widget_draws_the_state_it_is_given_and_drives_that_state(large, tmp_path):
    state = ExplorerState(large.head(100), marks_dir=tmp_path)
    state.filter(round=1, show="unscored")
    state.lineage("s0000017")

    ex = Explorer(state)

    assert ex.state is state and ex.round_filter.value == 1 and ex.show_filter.value == "unscored"
    assert shown_ids(ex) == state.page_frame["sample_id"].to_list() == ["s0000017", "s0000085"]
    assert "s0000017" in ex.detail.value
    ex.round_filter.value = None  # every round: s0000000, s0000017, s0000034...
    ex.slots[2].keep.click()
    assert state.conditions == {"show": "unscored", "search": ""} and state.marks == {"s0000034": "keep"}


def test_the_lineage_of_a_three_round_sample_lists_every_version_and_diff(fake_server, connect_to, tmp_path):
    def scripted(body: dict) -> str:
        text = body["messages"][-1]["content"]
        if "Response to grade:" in text:
            level = int(re.search(r"level (\d)", text.split("Response to grade:\n")[1]).group(1))
            return json.dumps({"reason": f"it is at level {level}", "score": level})
        if "Write a short, specific critique" in text:
            level = re.search(r"level (\d)", text.split("Response:\n")[1]).group(1)
            return f"Level {level} is too rough; add detail."
        previous = text.split("Your previous response:\n")[1].split("\n\nCritique:")[0]
        level = int(re.search(r"level (\d)", previous).group(1))
        return previous.replace(f"level {level}", f"level {level + 1}") + " More detail."

    llm = connect_to(fake_server(responder=scripted))
    first = pl.DataFrame({"sample_id": ["essay"], "task": ["Write."], "response": ["A draft at level 1 here."]})
    history = wb.refine(llm, wb.grade(llm, first, RUBRIC, progress=False), RUBRIC, rounds=3, progress=False)
    last = history.filter(pl.col("round") == 3)["sample_id"][0]
    ex = wb.explore(history, marks_dir=tmp_path)

    ex.goto_box.value = last  # open a sample by its id; any version shows the whole lineage
    versions = ex.lineage("essay")

    assert versions["round"].to_list() == [0, 1, 2, 3]
    assert versions["score"].to_list() == [1.0, 2.0, 3.0, 4.0]
    assert versions["critique"].to_list()[1:] == [f"Level {n} is too rough; add detail." for n in (1, 2, 3)]
    assert word_diff(versions["response"][0], versions["response"][1]) == [
        ("=", "A draft at level "),
        ("-", "1"),
        ("+", "2"),
        ("=", " here."),
        ("+", " More detail."),
    ]
    detail = ex.detail.value
    assert "4 versions" in detail and detail.count("critique:") == 3 and "it is at level 4" in detail
    assert "<del style='background:#fbe3e4;color:#8a1f11'>3</del>" in detail
    assert ex.opened == "essay"


def test_word_diff_gives_back_both_texts():
    before, after = "One fish,  two fish.\nRed fish", "One cat, two fish.\nBlue fish and more"
    ops = word_diff(before, after)
    assert "".join(t for op, t in ops if op != "+") == before
    assert "".join(t for op, t in ops if op != "-") == after


def test_marks_are_saved_at_once_survive_a_restart_and_filter(large, tmp_path):
    ex = wb.explore(large.head(50), name="pass-1", marks_dir=tmp_path)
    ex.slots[0].keep.click()
    ex.slots[1].drop.click()
    ex.slots[2].drop.click()
    ex.slots[2].drop.click()  # a second click takes the mark back
    assert (tmp_path / "pass-1.parquet").is_file()

    again = wb.explore(large.head(50), name="pass-1", marks_dir=tmp_path)  # a new kernel, the same name

    assert again.marks == {"s0000000": "keep", "s0000001": "drop"}
    again.show_filter.value = "dropped"
    assert shown_ids(again) == ["s0000001"] and "marked drop" in again.slots[0].html.value
    again.filter(show="unmarked")
    assert again.matches == 48
    marked = again.marked()
    assert marked.height == 50 and marked["mark"].to_list()[:3] == ["keep", "drop", None]
    with pytest.raises(wb.InputError, match="'keep', 'drop' or None"):
        again.mark("s0000003", "maybe")


def test_a_frame_without_sample_id_is_refused_with_the_columns_it_needs():
    with pytest.raises(wb.InputError, match="needs a 'sample_id' column.*'pair', 'response_a'.*has: text, score"):
        wb.explore(pl.DataFrame({"text": ["hi"], "score": [3.0]}))
    with pytest.raises(wb.InputError, match="polars DataFrame"):
        wb.explore([{"sample_id": "a"}])


def test_a_filter_on_a_missing_column_says_so_and_keeps_the_view(large, tmp_path):
    ex = wb.explore(large.head(100), marks_dir=tmp_path)
    ex.filter(round=1)

    with pytest.raises(wb.InputError, match="cannot filter on 'verdict'.*its columns: sample_id, round"):
        ex.filter(verdict="good")
    with pytest.raises(wb.InputError, match="no 'verified' column \\(run wb.verify first\\)"):
        ex.filter(show="verified")
    with pytest.raises(wb.InputError, match="cannot sort by 'speed'"):
        ex.sort("speed")
    assert ex.conditions["round"] == 1 and ex.matches == 25  # the filter in place is kept

    ex.search_box.value = "x"
    ex._safely(ex.filter, nope=1)  # what a control does with a bad filter: a message, not a traceback
    assert "cannot filter on &#x27;nope&#x27;" in ex.status.value


def test_an_empty_frame_shows_an_empty_view_that_says_so(tmp_path):
    for frame in (pl.DataFrame(schema={"sample_id": pl.String, "response": pl.String}), pl.DataFrame()):
        ex = wb.explore(frame, marks_dir=tmp_path)
        assert ex.matches == 0 and ex.pages == 1
        assert "the frame is empty" in ex.status.value
        assert all(slot.box.layout.display == "none" for slot in ex.slots)
        assert "the frame is empty" in ex._repr_mimebundle_()["text/html"]


def test_a_100000_character_text_is_cut_on_its_card_and_shown_whole_when_opened(tmp_path):
    long = "word " * 20_000  # 100,000 characters
    ex = wb.explore(pl.DataFrame({"sample_id": ["long"], "response": [long]}), marks_dir=tmp_path)

    card = ex.slots[0].html.value
    assert len(card) < 5_000 and "cut: 2,000 of 100,000 characters shown" in card
    ex.slots[0].open_button.click()
    assert long.strip() in ex.detail.value and ex.text("long") == long


def test_code_and_json_are_shown_as_such(tmp_path):
    texts = ['{"q": "2+2?", "a": 4}', "Here:\n```python\nprint('hi')\n```\nDone."]
    ex = wb.explore(pl.DataFrame({"sample_id": ["j", "c"], "response": texts}), marks_dir=tmp_path)
    assert "{\n  &quot;q&quot;: &quot;2+2?&quot;,\n  &quot;a&quot;: 4\n}" in ex.slots[0].html.value
    assert "<pre" in ex.slots[1].html.value and "<code>print(&#x27;hi&#x27;)\n</code>" in ex.slots[1].html.value


def test_the_judge_side_votes_spread_and_verifier_message(tmp_path):
    frame = pl.DataFrame(
        {
            "sample_id": ["a", "b"],
            "response": ["4", "5"],
            "score": [4.0, None],
            "reason": ["close enough", None],
            "scored": [True, False],
            "unscored_reason": [None, "unparseable grade: 'hmm'"],
            "votes": [[3, 4, 5], []],
            "vote_spread": [2.0, None],
            "verified": [True, False],
            "verified_error": [None, "expected 4, got 5"],
        }
    )
    ex = wb.explore(frame, marks_dir=tmp_path)
    first, second = ex.slots[0].html.value, ex.slots[1].html.value
    assert "votes [3, 4, 5] (spread 2)" in first and "close enough" in first and "✓ verified" in first
    assert "unscored</b>: unparseable grade" in second and "✗ failed</b>: expected 4, got 5" in second
    ex.show_filter.value = "failed verification"
    assert shown_ids(ex) == ["b"]


def test_pairwise_verdicts_show_both_orders_side_by_side(tmp_path):
    verdicts = pl.DataFrame(
        {
            "pair": [0, 1],
            "task": ["Name a fruit."] * 2,
            "response_a": ["apple", "pear"],
            "response_b": ["a car", "plum"],
            "verdict_ab": ["A", "A"],
            "verdict_ba": ["A", "B"],
            "winner": ["A", "tie"],
            "consistent": [True, False],
            "reason_ab": ["a car is no fruit", "pear is sweeter"],
            "reason_ba": ["apple is a fruit", "plum is juicier"],
            "error": [None, None],
        }
    )
    ex = wb.explore(verdicts, marks_dir=tmp_path)
    card = ex.slots[1].html.value
    assert "the two orders disagree" in card and "pear is sweeter" in card and "plum is juicier" in card
    assert card.index("A shown first") < card.index("B shown first")
    ex.filter(search="plum")
    assert ex.matches == 1
    ex.lineage(1)
    assert "display:flex" in ex.detail.value and "plum" in ex.detail.value


def test_clicking_a_point_in_the_chart_opens_its_sample(large, tmp_path):
    pytest.importorskip("anywidget", reason="interactive charts need anywidget (the 'test' extra installs it)")
    ex = wb.explore(large.head(200), marks_dir=tmp_path)
    live = ex.chart("tokens_out", "score")
    assert "explore_pick" in live.spec["params"][0]["name"]

    # what the browser sends back when a point is clicked: the selection's Vega signal
    live._vl_selections = {"explore_pick": {"value": {"vlPoint": {"or": [{"sample_id": "s0000042"}]}}, "store": []}}

    assert ex.opened == "s0000042" and "s0000042" in ex.detail.value
    with pytest.raises(wb.InputError, match="cannot chart 'nope'"):
        ex.chart("nope")


def test_an_executed_notebook_keeps_a_static_snapshot_and_the_final_progress_count(
    fake_server, connect_to, data_dir, tmp_path
):
    server = fake_server()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import workbench as wb\n"
            f"llm = wb.connect(base_url={server.base_url!r}, model='fake-model', api_key='sk-none', "
            f"data_dir={str(data_dir)!r})\n"
            "table = llm.chat_many([f'Say {i}.' for i in range(12)])"
        ),
        nbformat.v4.new_code_cell(
            "table = table.with_columns(sample_id=table['request_id'].str.slice(0, 16))\n"
            f"ex = wb.explore(table, marks_dir={str(tmp_path)!r})\n"
            "ex.lineage(table['sample_id'][3])\n"
            "ex"
        ),
    ]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()

    progress = notebook.cells[0].outputs[0]["data"]["text/plain"]
    assert "12/12" in progress and "0/12" not in progress
    page = to_html(notebook)
    assert "<b>Explorer</b> (static view)" in page and "rows 1–10 of 12" in page
    assert "echo: Say 3." in page and "Sample</b> (one version)" in page
    assert "12/12" in page and "0/12" not in page
