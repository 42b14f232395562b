"""Running a notebook headlessly: a fresh kernel, parameters in papermill's convention, the kernel's facts.

    check_parameters(path, {"N": 200})   # the notebook's parameters; InputError for a name it does not have
    notebook = parameterized(path, {"N": 200})   # papermill's loader and injector: a cell after "parameters"
    done = run(notebook, path.parent)    # up to the end or the failing cell; then the kernel's usage record

``run`` stops at the first failing cell (as papermill does) and still reads the kernel's facts: one more cell,
not kept in the notebook, prints ``workbench.models.usage.snapshot()`` and the workbench version as JSON. The
kernel stops at the end in every case. ``workbench.views.report`` writes the report of a run.
"""

from __future__ import annotations

import ast
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import zmq
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from ..errors import InputError

__all__ = [
    "Run",
    "check_parameters",
    "execute",
    "kernel_manager",
    "notebook_parameters",
    "output_text",
    "parameterized",
    "parse_parameters",
    "run",
]

_FACTS_MARK = "workbench-run-facts:"
# Run in the kernel after the notebook (and removed from it): the usage record and the version, as one JSON line.
_FACTS_CELL = f"""\
def _workbench_run_facts():
    import json, sys
    usage, package = sys.modules.get("workbench.models.usage"), sys.modules.get("workbench")
    facts = {{"usage": usage.snapshot() if usage else None, "version": getattr(package, "__version__", None)}}
    print({_FACTS_MARK!r} + json.dumps(facts))
_workbench_run_facts(); del _workbench_run_facts
"""


@dataclass
class Run:
    """One execution of a notebook: the executed notebook, its wall time, where it failed, the kernel's facts."""

    notebook: nbformat.NotebookNode
    seconds: float
    failed_cell: int | None = None  # index in notebook.cells
    error: str | None = None  # "Name: message" of the failing cell
    exception: Exception | None = None
    facts: dict[str, Any] | None = None  # {"usage": usage.snapshot(), "version": ...} read from the kernel


def run(notebook: nbformat.NotebookNode, folder: str | Path, timeout: int = 1800) -> Run:
    """Run ``notebook`` in a fresh kernel whose working folder is ``folder``, up to its end or its failing
    cell; then read the usage record from the kernel and stop it. A cell running past ``timeout`` seconds
    is interrupted (and fails)."""
    client = NotebookClient(
        notebook,
        km=kernel_manager(),
        timeout=timeout,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(folder)}},
    )
    started = time.perf_counter()
    outcome = run_sync(_run_cells)(client)
    return Run(notebook, time.perf_counter() - started, *outcome)


async def _run_cells(client: NotebookClient) -> tuple[int | None, str | None, Exception | None, dict | None]:
    client.reset_execution_trackers()
    # The kernel stops at the end, also when a cell fails: nbclient leaves a kernel it was handed running
    # otherwise, and `make report` would hold one per notebook ("Parent appears to have exited").
    async with client.async_setup_kernel(cleanup_kc=True):
        info = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        if info is not None:
            client.nb.metadata["language_info"] = info["content"].get("language_info", {})
        for index, cell in enumerate(client.nb.cells):
            try:
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except CellExecutionError as exc:
                return index, _error_line(cell, exc, client.timeout), exc, await _kernel_facts(client)
            except DeadKernelError as exc:
                return index, f"the kernel died ({exc}); out of memory?", exc, None
        client.set_widgets_metadata()
        return None, None, None, await _kernel_facts(client)


def _error_line(cell: nbformat.NotebookNode, exc: Exception, timeout: int | None) -> str:
    """``Name: message`` of the error; a headless kernel is interrupted only when a cell runs past the timeout."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output["ename"] == "KeyboardInterrupt":
                return f"KeyboardInterrupt: the cell ran past the timeout of {timeout} s and was interrupted"
            return f"{output['ename']}: {output['evalue']}".strip().rstrip(":")
    return str(exc).strip().splitlines()[-1]


async def _kernel_facts(client: NotebookClient) -> dict[str, Any] | None:
    """Run one more cell, not kept in the notebook, that prints the kernel's usage record and version."""
    cell = nbformat.v4.new_code_cell(_FACTS_CELL)
    client.nb.cells.append(cell)
    try:
        await client.async_execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    except (CellExecutionError, DeadKernelError):
        return None
    finally:
        client.nb.cells.pop()
    for line in _cell_text(cell).splitlines():
        if line.startswith(_FACTS_MARK):
            return json.loads(line.removeprefix(_FACTS_MARK))
    return None


def execute(path: str | Path, timeout: int = 1800) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel (working folder: the notebook's own), then stop it.

    Raises the failing cell's ``CellExecutionError``; :func:`write_report` writes a report of a failed run instead.
    """
    path = Path(path)
    done = run(nbformat.read(path, as_version=4), path.parent, timeout)
    if done.exception is not None:
        raise done.exception
    return done.notebook


def kernel_manager(kernel_name: str = "python3") -> AsyncKernelManager:
    """A kernel manager whose kernel talks over CurveZMQ-encrypted sockets where the kernel supports it.

    A kernel on plain TCP warns "Kernel is running over TCP without encryption"; jupyter_client can hand
    the kernel CurveZMQ keys (``transport_encryption="auto"``: only when its kernelspec declares support, as
    ipykernel's does), which encrypts the loopback traffic and so does not raise the warning.
    """
    if zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names():
        return AsyncKernelManager(kernel_name=kernel_name, transport_encryption="auto")
    return AsyncKernelManager(kernel_name=kernel_name)


def notebook_parameters(path: str | Path) -> dict[str, str]:
    """The notebook's parameters and their defaults as Python source, read from its first cell tagged
    ``parameters`` by papermill (as ``papermill --help-notebook`` does); {} when it has none."""
    from papermill.translators import PythonTranslator

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return {found.name: found.default for found in PythonTranslator.inspect(cell)}
    return {}


def parse_parameters(pairs: list[list[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as a dict: a VALUE that reads as a Python literal is that value, otherwise text."""
    parsed = {}
    for name, value in pairs or []:
        try:
            parsed[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[name] = value
    return parsed


def check_parameters(path: str | Path, parameters: dict[str, Any]) -> dict[str, str]:
    """The notebook's parameters (see :func:`notebook_parameters`); InputError if ``parameters`` names another."""
    declared = notebook_parameters(path)
    unknown = [name for name in parameters if name not in declared]
    if unknown:
        has = ", ".join(declared) if declared else "none (it has no cell tagged 'parameters')"
        raise InputError(
            f"{path} has no parameter {', '.join(unknown)}. Its parameters: {has}. "
            "Check the spelling (names are case-sensitive), or add it to the notebook's parameters cell."
        )
    return declared


def parameterized(path: str | Path, parameters: dict[str, Any]) -> nbformat.NotebookNode:
    """The notebook at ``path`` with ``parameters`` in a cell tagged ``injected-parameters`` after its cell tagged
    ``parameters``, by papermill's own loader and injector: what ``papermill -p ...`` would run."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    return parameterize_notebook(load_notebook_node(str(path)), parameters, kernel_name="python3", language="python")


def output_text(output: dict) -> str:
    """The text an output shows: stdout, or Markdown, or plain text."""
    if output.get("output_type") == "stream":
        return output["text"] if output.get("name") == "stdout" else ""
    data = output.get("data", {})
    return data.get("text/markdown") or data.get("text/plain", "")


def _cell_text(cell: nbformat.NotebookNode) -> str:
    return "".join(output_text(output) for output in cell.get("outputs", []))
