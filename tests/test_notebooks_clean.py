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
