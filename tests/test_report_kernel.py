"""Headless kernels (make demo, make report) start without the "running over TCP without encryption" warning."""

from __future__ import annotations

import subprocess
import sys

import nbformat


def test_a_headless_notebook_run_prints_no_unencrypted_kernel_warning(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    code = f"from workbench.views.report import execute; print(execute({str(path)!r}).cells[0].outputs[0].text)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    assert "without encryption" not in done.stderr, done.stderr
