"""Execute notebooks headlessly and write self-contained HTML reports.

    python -m workbench.views.report                               # every notebook in notebooks/ -> reports/
    python -m workbench.views.report notebooks/01_quickstart.ipynb # one; prints its summary cell

A report opens with no network: charts are inline SVG (see ``workbench.charts``); live widgets
cannot run in a static page, so their views are dropped: the workbench's widgets leave a static HTML
snapshot (PromptLab, Labeler, the explorer), and bare widgets are left out; the workbench's progress
bars are plain outputs updated in place, so a report shows their final count;
links to external scripts are removed. Anything that looks like an API key — ``sk-...`` tokens and the
like, and the value of any variable such as ``OPENAI_API_KEY`` — is replaced by ``[redacted]`` before
writing (``workbench.errors.redact``, the one function that knows what a key looks like).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
import zmq
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from ..errors import redact
from ..files import atomic_path

__all__ = ["execute", "redact", "to_html", "write_report"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]+\"[^>]*>\s*</script>", re.IGNORECASE)
_EXTERNAL_STYLE = re.compile(r"<link[^>]+href=\"https?://[^\"]+\"[^>]*>", re.IGNORECASE)


def execute(path: str | Path, timeout: int = 1800) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel (working folder: the notebook's own), then stop it."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, km=kernel_manager(), timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
    )
    # nbclient leaves a kernel it was handed running; each would live until this process exits (then say
    # "Parent appears to have exited"), and `make report` would hold one per notebook.
    client.execute(cleanup_kc=True)
    return notebook


def kernel_manager(kernel_name: str = "python3") -> AsyncKernelManager:
    """A kernel manager whose kernel talks over CurveZMQ-encrypted sockets where the kernel supports it.

    A kernel on plain TCP warns "Kernel is running over TCP without encryption"; jupyter_client can hand
    the kernel CurveZMQ keys (``transport_encryption="auto"``: only when its kernelspec declares support, as
    ipykernel's does), which encrypts the loopback traffic and so does not raise the warning.
    """
    if zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names():
        return AsyncKernelManager(kernel_name=kernel_name, transport_encryption="auto")
    return AsyncKernelManager(kernel_name=kernel_name)


def to_html(notebook: nbformat.NotebookNode) -> str:
    """A self-contained HTML page of an executed notebook."""
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = [_static(output) for output in cell.outputs if not _bare_widget(output)]
    notebook.metadata.pop("widgets", None)
    html, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(notebook)
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_STYLE.sub("", html)
    return redact(html)


def _bare_widget(output: dict) -> bool:
    """A widget with no static view (e.g. a tqdm.auto bar of another library): only its initial text would show."""
    data = output.get("data") or {}
    return WIDGET_VIEW in data and set(data) <= {WIDGET_VIEW, "text/plain"}


def _static(output: dict) -> dict:
    data = output.get("data")
    if data and WIDGET_VIEW in data:
        del data[WIDGET_VIEW]
    return output


def write_report(path: str | Path, out_dir: str | Path = "reports") -> tuple[Path, float, str]:
    """Execute ``path``, write ``out_dir/<name>.html``; returns (report path, seconds, summary text)."""
    started = time.perf_counter()
    notebook = execute(path)
    seconds = time.perf_counter() - started
    target = Path(out_dir) / f"{Path(path).stem}.html"
    with atomic_path(target, hint="Pass --out a folder you can write to.") as temporary:
        temporary.write_text(to_html(notebook), encoding="utf-8")
    return target, seconds, _summary(notebook)


def _summary(notebook: nbformat.NotebookNode) -> str:
    """The text printed by the cells tagged ``summary``."""
    texts = []
    for cell in notebook.cells:
        if "summary" in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                texts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return redact("".join(texts).strip())


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def store_expected(path: str | Path) -> None:
    """Execute a notebook and save it with outputs only on the cells nbval checks (their expected output)."""
    notebook = execute(path)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        checked = cell.source.startswith(CHECK_MARK)
        cell.execution_count = cell.execution_count if checked else None  # nbval skips "unrun" cells
        cell.outputs = [_plain(output) for output in cell.outputs if checked and output.output_type != "display_data"]
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)


def _plain(output: dict) -> dict:
    if output.get("output_type") == "execute_result":
        output["execution_count"] = None
        output["data"] = {"text/plain": output["data"].get("text/plain", "")}
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every notebooks/*.ipynb")
    parser.add_argument("--out", default="reports")
    parser.add_argument(
        "--store-expected",
        action="store_true",
        help="for maintainers: re-run and save the expected outputs of the checked cells",
    )
    args = parser.parse_args()
    paths = args.notebooks or sorted(str(p) for p in Path("notebooks").glob("[0-9]*.ipynb"))
    if not paths:
        sys.exit("no notebooks found: run from the repository root, or name them.")
    if args.store_expected:
        for path in paths:
            store_expected(path)
            print(f"stored expected outputs in {path}")
        return
    for path in paths:
        target, seconds, summary = write_report(path, args.out)
        print(f"{path}: {seconds:.0f}s -> {target.resolve()}")
        if summary:
            print("  " + summary.replace("\n", "\n  "))


if __name__ == "__main__":
    main()
