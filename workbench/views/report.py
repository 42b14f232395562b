"""Execute notebooks headlessly and write self-contained HTML reports that say what was run and what it showed.

    python -m workbench.views.report                                  # every notebook in notebooks/ -> reports/
    python -m workbench.views.report notebooks/01_quickstart.ipynb    # one
    python -m workbench.views.report NB -p MODEL gpt-4.1-mini -p N 200   # parameters, in papermill's convention

**Parameters** follow papermill's convention (and use papermill to apply them): the notebook's cell tagged
``parameters`` holds the defaults (``MODEL = None``); each ``-p NAME VALUE`` is written into a new cell tagged
``injected-parameters`` right after it. A VALUE is read as a Python literal (``200``, ``0.5``, ``None``,
``[0, 1, 2]``, ``'text'``), and otherwise taken as text (``gpt-4.1-mini``). A NAME that is not in the parameters
cell is refused before anything runs, with the list of the names it has.

**The report** ``reports/<notebook>--<model>[--NAME=value ...].html``: ``<model>`` is the model of the run's first
``wb.connect()``; each ``-p`` parameter other than MODEL, BACKEND and BASE_URL whose value differs from the
default adds ``--NAME=value``. So runs on two models, or with two values of N, sit side by side. The page's title
is the notebook's first heading; under it, the **run card**: the result, the date, wall time and whether the
run ended or where it failed, the commit (and whether tracked files had changed), the workbench version, each
connection (backend, model, base URL; never a key) with its calls, the model calls sent and served from the
cache, tokens and cost, every parameter as run (the ones set for this run in bold), and the seed (the SEED or
SEEDS parameter). The card is also saved as ``<name>.json`` (fields: ``workbench.views.run_card``), and
``reports/index.html`` lists every report of the folder with its card, newest first, failed ones marked; it is
rewritten after each run. Calls are counted by ``workbench.models.usage`` in the notebook's kernel and read
from it when the run ends; work sent elsewhere (``via="ray"`` workers, provider batch jobs) is not in the count.

**The result** of a run: the text that the cells tagged ``result`` print (``print(...)``, or a Markdown display
such as ``IPython.display.Markdown(...)``, rendered), shown first in the run card and in the index. Write it
from this run's numbers, e.g. ``print(f"mean judge score {a:.1f} -> {b:.1f}; verified rate {v0:.0%} ->
{v1:.0%}")``. A notebook without one shows the text of its cells tagged ``summary`` instead, marked so.

**A failing notebook** still writes its report: its cells run up to the failing one, which shows its error;
the run card says where it failed (with a link to the cell) and the index marks it. The other notebooks still
run, and the command ends with each notebook's wall time and exits non-zero naming the ones that failed.

A report opens with no network: charts are inline SVG (see ``workbench.charts``); live widgets
cannot run in a static page, so their views are dropped: the workbench's widgets leave a static HTML
snapshot (PromptLab, Labeler, the explorer), and bare widgets are left out; the workbench's progress
bars are plain outputs updated in place, so a report shows their final count;
links to external scripts are removed. Anything that looks like an API key — ``sk-...`` tokens and the
like, and the value of any variable such as ``OPENAI_API_KEY`` — is replaced by ``[redacted]`` before
writing, the run card too (``workbench.errors.redact``, the one function that knows what a key looks like).
Every file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from ..errors import InputError, redact
from ..files import atomic_path
from ..models.usage import Tally
from . import run_card
from .notebook_run import Run, check_parameters, execute, output_text, parameterized, parse_parameters, run

__all__ = ["Report", "execute", "redact", "title", "to_html", "write_report"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]+\"[^>]*>\s*</script>", re.IGNORECASE)
_EXTERNAL_STYLE = re.compile(r"<link[^>]+href=\"https?://[^\"]+\"[^>]*>", re.IGNORECASE)
_CARD_MARK = "workbench-run-card-goes-here"
_NO_USAGE = {"connections": [], "total": asdict(Tally())}  # a kernel that never imported the workbench
_NAMED_BY_MODEL = {"MODEL", "BACKEND", "BASE_URL"}


def title(notebook: nbformat.NotebookNode, fallback: str = "Notebook") -> str:
    """The notebook's first Markdown heading, as plain text."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", cell.source, re.MULTILINE)
            if found:
                return re.sub(r"[`*]", "", found.group(1))
    return fallback


def to_html(notebook: nbformat.NotebookNode, card: dict[str, Any] | None = None) -> str:
    """A self-contained HTML page of an executed notebook, titled by its first heading; with ``card``, its run
    card under that heading."""
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = [_static(output) for output in cell.outputs if not _bare_widget(output)]
    notebook.metadata.pop("widgets", None)
    notebook.metadata["title"] = card["title"] if card else title(notebook)
    if card is not None:  # a raw HTML cell is sanitised on export (no <style>): it holds a mark, replaced after
        raw = nbformat.v4.new_raw_cell(_CARD_MARK, metadata={"raw_mimetype": "text/html"})
        notebook.cells.insert(_after_heading(notebook), raw)
    html, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(notebook)
    html = _EXTERNAL_SCRIPT.sub("", html)
    html = _EXTERNAL_STYLE.sub("", html)
    if card is not None:
        html = html.replace(_CARD_MARK, run_card.card_html(card), 1)
    return redact(html)


def _after_heading(notebook: nbformat.NotebookNode) -> int:
    """Where the run card goes: right under the heading that opens the notebook (split from the text after it)."""
    if not notebook.cells or notebook.cells[0].cell_type != "markdown":
        return 0
    first = notebook.cells[0]
    heading, _, rest = first.source.lstrip().partition("\n")
    if heading.startswith("#") and rest.strip():
        first.source = heading
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(rest.strip()))
    return 1


def _bare_widget(output: dict) -> bool:
    """A widget with no static view (e.g. a tqdm.auto bar of another library): only its initial text would show."""
    data = output.get("data") or {}
    return WIDGET_VIEW in data and set(data) <= {WIDGET_VIEW, "text/plain"}


def _static(output: dict) -> dict:
    data = output.get("data")
    if data and WIDGET_VIEW in data:
        del data[WIDGET_VIEW]
    return output


@dataclass
class Report:
    """A written report: its HTML file and its run card."""

    path: Path
    card: dict[str, Any]

    @property
    def failed(self) -> bool:
        """True when the notebook stopped at a failing cell."""
        return self.card["status"] == "failed"


def write_report(path: str | Path, out_dir: str | Path = "reports", parameters: dict[str, Any] | None = None) -> Report:
    """Execute ``path`` with ``parameters``, write its report and run card into ``out_dir``, and rewrite the index.

    A run that fails still writes its report (up to the failing cell); see the module's docstring for the
    file names and the run card.
    """
    path, out_dir, parameters = Path(path), Path(out_dir), parameters or {}
    defaults = check_parameters(path, parameters)
    notebook = parameterized(path, parameters) if parameters else nbformat.read(path, as_version=4)
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    done = run(notebook, path.parent)
    card = _card(path, done, started, defaults, parameters)
    target = out_dir / card["report"]
    with atomic_path(target, hint="Pass --out a folder you can write to.") as temporary:
        temporary.write_text(to_html(done.notebook, card), encoding="utf-8")
    run_card.save_card(card, target.with_suffix(".json"))
    run_card.write_index(out_dir)
    return Report(target, card)


def _card(path: Path, done: Run, started: str, defaults: dict[str, str], parameters: dict[str, Any]) -> dict:
    as_run = {**defaults, **{name: repr(value) for name, value in parameters.items()}}
    changed = [name for name in parameters if _differs(as_run[name], defaults[name])]
    facts = done.facts or {}
    commit, dirty = run_card.git_state(path.parent)
    card = {
        "format": run_card.FORMAT,
        "notebook": str(path),
        "title": title(done.notebook, fallback=path.stem),
        "report": None,
        "started": started,
        "wall_s": round(done.seconds, 1),
        "status": "failed" if done.failed_cell is not None else "ok",
        "failure": _failure(done),
        "commit": commit,
        "dirty": dirty,
        "workbench": facts.get("version") or _installed_version(),
        "seed": as_run.get("SEED", as_run.get("SEEDS")),
        "parameters": as_run,
        "changed": changed,
        "usage": facts.get("usage") or (_NO_USAGE if done.facts else None),
        "result": _tagged_text(done.notebook, "result"),
        "summary": _tagged_text(done.notebook, "summary"),
    }
    card["report"] = _report_name(path.stem, card) + ".html"
    return json.loads(redact(json.dumps(card)))


def _differs(value: str, default: str) -> bool:
    try:
        return ast.literal_eval(value) != ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return value != default


def _failure(done: Run) -> dict[str, Any] | None:
    if done.failed_cell is None:
        return None
    cell = done.notebook.cells[done.failed_cell]
    where = f"In [{cell.execution_count}]" if cell.get("execution_count") else f"cell {done.failed_cell + 1}"
    return {"cell": done.failed_cell + 1, "where": where, "cell_id": cell.get("id"), "error": done.error}


def _installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workbench")
    except PackageNotFoundError:
        return None


def _report_name(stem: str, card: dict[str, Any]) -> str:
    """``<stem>--<model of the first connection>--NAME=value ...`` (parameters set for this run, see the docstring)."""
    parts = [stem]
    connections = (card["usage"] or {}).get("connections") or []
    if connections:
        parts.append(_slug(connections[0]["model"]))
    elif "MODEL" in card["changed"]:
        parts.append(_slug(str(ast.literal_eval(card["parameters"]["MODEL"]))))
    parts += [f"{name}={_slug(card['parameters'][name])}" for name in card["changed"] if name not in _NAMED_BY_MODEL]
    return "--".join(parts)


def _slug(text: str) -> str:
    """``text`` as a piece of a file name: letters, digits and ``.-_=`` kept, the rest ``_``, at most 60 long."""
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", text.strip("'\"")).strip("_")[:60] or "_"


def _tagged_text(notebook: nbformat.NotebookNode, tag: str) -> dict[str, Any] | None:
    """What the cells tagged ``tag`` show: ``{"text", "markdown"}`` (Markdown displays are kept as Markdown)."""
    texts, markdown = [], False
    for cell in notebook.cells:
        if tag in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                markdown = markdown or "text/markdown" in data
                texts.append(output_text(output))
    text = redact("\n".join(text.strip() for text in texts if text.strip()))
    return {"text": text, "markdown": markdown} if text else None


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


def main(argv: list[str] | None = None) -> None:
    """The command line: see the module's docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every notebooks/*.ipynb")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="set a parameter (repeatable)"
    )
    parser.add_argument("--out", default="reports")
    parser.add_argument(
        "--store-expected",
        action="store_true",
        help="for maintainers: re-run and save the expected outputs of the checked cells",
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(str(p) for p in Path("notebooks").glob("[0-9]*.ipynb"))
    if not paths:
        sys.exit("no notebooks found: run from the repository root, or name them.")
    if args.store_expected:
        for path in paths:
            store_expected(path)
            print(f"stored expected outputs in {path}")
        return
    parameters = parse_parameters(args.parameter)
    try:
        for path in paths:  # every name checked before anything runs
            check_parameters(path, parameters)
    except InputError as exc:
        sys.exit(f"error: {exc}")
    reports = [_report_one(path, args.out, parameters) for path in paths]
    _finish(paths, reports, Path(args.out))


def _report_one(path: str, out_dir: str, parameters: dict[str, Any]) -> Report:
    report = write_report(path, out_dir, parameters)
    state = f"FAILED at {report.card['failure']['where']}" if report.failed else "ok"
    print(f"{path}: {state}, {report.card['wall_s']:.0f}s -> {report.path.resolve()}", flush=True)
    for key in ("result", "summary"):
        if report.card[key]:
            print("  " + report.card[key]["text"].replace("\n", "\n  "), flush=True)
            break
    if report.failed:
        print(f"  {report.card['failure']['error']}", flush=True)
    return report


def _finish(paths: list[str], reports: list[Report], out_dir: Path) -> None:
    if len(reports) > 1:
        print("\nwall time of each notebook:")
        width = max(len(path) for path in paths)
        for path, report in zip(paths, reports, strict=True):
            state = f"failed at {report.card['failure']['where']}" if report.failed else "ok"
            print(f"  {path:<{width}}  {report.card['wall_s']:7.0f} s  {state}")
        print(f"  {'total':<{width}}  {sum(r.card['wall_s'] for r in reports):7.0f} s")
    print(f"index: {(out_dir / 'index.html').resolve()}")
    failed = [
        f"{path} ({r.card['failure']['where']}: {r.card['failure']['error']})"
        for path, r in zip(paths, reports, strict=True)
        if r.failed
    ]
    if failed:
        sys.exit(f"{len(failed)} of {len(reports)} notebooks failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
