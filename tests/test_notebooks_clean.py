"""The notebooks are stored clean: no outputs but the expected ones of checked cells, a parameters cell, no key."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def test_the_numbered_tutorials_are_the_ones_listed():
    assert [path.stem for path in NOTEBOOKS] == [
        "01_quickstart", "02_prompt_lab", "03_techniques", "04_self_grading_rounds", "05_trust_the_judge",
        "06_does_self_improvement_work", "07_curation", "08_self_training", "09_learning_forever", "10_scale",
    ]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_is_stored_without_outputs_except_the_checked_cells(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if not cell.source.startswith(CHECK_MARK):
            assert cell.outputs == [], f"{path.name}: a cell stores outputs:\n{cell.source[:80]}"
            assert cell.execution_count is None, f"{path.name}: an execution count is stored"
        for output in cell.outputs:
            assert output.output_type in {"stream", "execute_result"} and "image/svg+xml" not in output.get("data", {})
    assert "widgets" not in notebook.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_opens_with_a_parameters_cell_and_holds_no_key(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []) and "BACKEND = None" in code[0].source
    assert any(CHECK_MARK in cell.source for cell in code), "no cell's output is checked"
    assert re.search(r"sk-[A-Za-z0-9_\-]{16,}", path.read_text()) is None, "something like an API key is stored"


SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda path: path.stem)
def test_no_run_metadata_is_stored(path):
    notebook = nbformat.read(path, as_version=4)
    assert all("execution" not in cell.metadata for cell in notebook.cells), "nbclient's execution timestamps"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_is_a_lesson_with_goals_a_result_and_exercises_whose_solutions_exist(path):
    notebook = nbformat.read(path, as_version=4)
    opening = notebook.cells[0].source
    for row in ("**You will learn**", "**Builds on**", "**Time**"):
        assert row in opening, f"{path.name}: the opening table has no {row} row"
    assert not re.search(r"\{\{[A-Z][A-Z_0-9]*\}\}", path.read_text()), f"{path.name}: a placeholder was left in"
    assert any("result" in cell.metadata.get("tags", []) for cell in notebook.cells), "no cell tagged result"
    exercises = next(cell.source for cell in notebook.cells if "## Exercises" in cell.source)
    assert len(re.findall(r"^\d\. \*\*", exercises, flags=re.M)) >= 3, "fewer than three exercises"
    assert "*Look for:*" in exercises and ("stronger endpoint" in exercises)
    solution = path.parent / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solution.exists() and f"solutions/{solution.name}" in exercises


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda path: path.stem)
def test_a_solution_is_stored_clean_with_a_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
