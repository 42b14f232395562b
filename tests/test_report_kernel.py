"""Headless kernels (make demo, make report) start without the "running over TCP without encryption" warning,
and stop when their notebook is done instead of outliving it ("Parent appears to have exited")."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_the_kernel_stops_when_its_notebook_is_done(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.getpid())")])
    path = tmp_path / "pid.ipynb"
    nbformat.write(notebook, path)
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from workbench.views.report import execute
        pid = int(execute({str(path)!r}).cells[0].outputs[0].text)
        stat = Path(f"/proc/{{pid}}/stat")
        alive = stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped
        print("alive" if alive else "stopped")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped", "the kernel outlived execute()"
    assert "Parent appears to have exited" not in done.stderr, done.stderr
