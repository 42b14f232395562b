"""Reports that stand alone: a run card says what was run and what it showed, parameters in papermill's convention,
a failing notebook still reported, and an index of every run.

The notebooks here are small ones written by the tests; their kernel talks to the fake server over loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import SECRET, Faults
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import workbench as wb
from workbench.models import usage
from workbench.views.report import parse_parameters

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def write_notebook(path: Path, *cells) -> Path:
    nbformat.write(new_notebook(cells=list(cells), metadata={"kernelspec": KERNELSPEC}), path)
    return path


def asking_notebook(folder: Path) -> Path:
    """A notebook that asks the fake server two batches of questions; the second repeats one of the first."""
    return write_notebook(
        folder / "asking.ipynb",
        new_markdown_cell("# Asking twice: the `cache` at work\n\nTwo batches; the second repeats a question."),
        new_code_cell(
            'BASE_URL = None\nMODEL = "fake-model"\nN = 2  # questions in the second batch\nSEED = 7',
            metadata={"tags": ["parameters"]},
        ),
        new_code_cell(
            "import workbench as wb\n"
            'llm = wb.connect(base_url=BASE_URL, model=MODEL, price_per_million=(1.0, 2.0), data_dir="data")\n'
            'first = llm.chat_many(["one", "two"], progress=False)\n'
            'second = llm.chat_many(["two", "three", "four"][:N], progress=False)'
        ),
        new_code_cell(
            "print(f\"{second['cached'].sum()} of {second.height} answers of the second batch came from the cache\")",
            metadata={"tags": ["result"]},
        ),
    )


def failing_notebook(folder: Path) -> Path:
    return write_notebook(
        folder / "failing.ipynb",
        new_markdown_cell("# A notebook that fails"),
        new_code_cell("BASE_URL = None", metadata={"tags": ["parameters"]}),
        new_code_cell('print("before the failure")'),
        new_code_cell('raise ValueError("the planted failure")'),
        new_code_cell('print("never printed")', metadata={"tags": ["result"]}),
    )


def report(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m workbench.views.report ARGS`` from ``folder``; the kernel imports this checkout's workbench,
    and finds OPENAI_API_KEY set to the secret that no report may show."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": SECRET}
    command = [sys.executable, "-m", "workbench.views.report", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def card_of(page: Path) -> dict:
    return json.loads(page.with_suffix(".json").read_text())


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_a_report_opens_with_its_title_and_a_run_card_of_what_ran(tmp_path, fake_server):
    server = fake_server()
    notebook = asking_notebook(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "asking.ipynb")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "the notebook")
    notebook.write_text(notebook.read_text().replace("Two batches", "Two batches of questions"))  # not committed

    done = report(tmp_path, "asking.ipynb", "-p", "BASE_URL", server.base_url)

    assert done.returncode == 0, done.stderr
    [page] = (tmp_path / "reports").glob("asking*.html")
    assert page.name == "asking--fake-model.html"  # the model in the name; BASE_URL is not
    html = page.read_text()
    assert "<title>Asking twice: the cache at work</title>" in html
    card = card_of(page)
    assert card["title"] == "Asking twice: the cache at work" and card["status"] == "ok" and card["failure"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", card["started"])
    assert 0 < card["wall_s"] < 600
    assert len(card["commit"]) == 12 and card["dirty"] is True
    assert card["workbench"] == wb.__version__
    assert card["parameters"] == {"BASE_URL": repr(server.base_url), "MODEL": '"fake-model"', "N": "2", "SEED": "7"}
    assert card["changed"] == ["BASE_URL"] and card["seed"] == "7"
    [connection] = card["usage"]["connections"]
    assert connection["backend"] == "compatible" and connection["model"] == "fake-model"
    assert connection["base_url"] == server.base_url
    total = card["usage"]["total"]
    assert (total["calls"], total["cached"], total["failed"]) == (3, 1, 0)
    assert total["calls"] == server.stats.answered  # what the server saw
    assert total["tokens_out"] > 0 and total["cost_usd"] > 0
    assert card["result"]["text"] == "1 of 2 answers of the second batch came from the cache"
    assert "3 sent, 1 from the cache" in html and card["result"]["text"] in html.split("Run</th>")[0]
    assert SECRET not in html and SECRET not in page.with_suffix(".json").read_text()
    assert page.name in (tmp_path / "reports" / "index.html").read_text()


def test_a_parameter_the_notebook_does_not_have_is_refused_before_anything_runs(tmp_path, fake_server):
    server = fake_server()
    asking_notebook(tmp_path)

    done = report(tmp_path, "asking.ipynb", "-p", "BASE_URL", server.base_url, "-p", "MODLE", "gpt-4.1-mini")

    assert done.returncode != 0
    assert "has no parameter MODLE" in done.stderr
    assert "Its parameters: BASE_URL, MODEL, N, SEED" in done.stderr
    assert not (tmp_path / "reports").exists() and server.stats.received == 0


def test_a_failing_notebook_still_writes_its_report_and_the_others_still_run(tmp_path, fake_server):
    server = fake_server()
    failing_notebook(tmp_path)
    asking_notebook(tmp_path)

    done = report(tmp_path, "failing.ipynb", "asking.ipynb", "-p", "BASE_URL", server.base_url)

    assert done.returncode == 1
    # In [4]: the parameters, the injected parameters, a print, the failing cell
    assert "1 of 2 notebooks failed: failing.ipynb (In [4]: ValueError: the planted failure)" in done.stderr
    assert re.search(r"failing\.ipynb\s+\d+ s\s+failed at In \[4\]", done.stdout)  # each notebook's wall time
    assert re.search(r"asking\.ipynb\s+\d+ s\s+ok", done.stdout)
    failed_page = tmp_path / "reports" / "failing.html"  # no model: it connected to none
    html = failed_page.read_text()
    assert "before the failure" in html and "ValueError" in html and "the planted failure" in html
    assert "never printed" in html.split("the planted failure")[-1]  # the cell after it is shown, not run:
    assert html.count("never printed") == 1  # its source only
    card = card_of(failed_page)
    assert card["status"] == "failed" and card["failure"]["where"] == "In [4]" and card["result"] is None
    assert card_of(tmp_path / "reports" / "asking--fake-model.html")["status"] == "ok"
    index = (tmp_path / "reports" / "index.html").read_text()
    entries = re.findall(r'<div class="wb-entry( failed)?"><h2><a href="([^"]+)"', index)
    assert sorted(entries) == [("", "asking--fake-model.html"), (" failed", "failing.html")]
    assert 'href="failing.html#cell-id=' in index and "the planted failure" in index  # a link to the failing cell
    assert card["usage"]["total"]["calls"] == 0  # it never imported the workbench


def test_two_parameterised_runs_of_one_notebook_give_two_reports_both_in_the_index(tmp_path, fake_server):
    server = fake_server()
    asking_notebook(tmp_path)

    for n in ("1", "3"):
        done = report(tmp_path, "asking.ipynb", "-p", "BASE_URL", server.base_url, "-p", "N", n)
        assert done.returncode == 0, done.stderr

    one, three = (
        tmp_path / "reports" / "asking--fake-model--N=1.html",
        tmp_path / "reports" / "asking--fake-model--N=3.html",
    )
    assert card_of(one)["parameters"]["N"] == "1" and card_of(three)["parameters"]["N"] == "3"
    assert card_of(one)["changed"] == card_of(three)["changed"] == ["BASE_URL", "N"]
    assert card_of(one)["result"]["text"] == "1 of 1 answers of the second batch came from the cache"
    assert card_of(three)["result"]["text"] == "1 of 3 answers of the second batch came from the cache"
    assert card_of(three)["usage"]["total"]["cached"] == 3  # "one", "two", and "two" again came from the first run
    assert "<b><code>N = 3</code></b>" in three.read_text()  # set for this run
    index = (tmp_path / "reports" / "index.html").read_text()
    assert index.index(three.name) < index.index(one.name)  # newest first
    assert "<code>N = 1</code>" in index and "<code>N = 3</code>" in index


def test_the_usage_record_counts_calls_sent_answers_from_the_cache_and_failures(fake_server, connect_to):
    server = fake_server(faults=Faults(scripted={"broken": ("500",)}))
    usage.reset()
    llm = connect_to(server, max_retries=0, price_per_million=(1.0, 2.0))
    llm.chat_many(["one", "broken"], progress=False)
    llm.chat_many(["one", "two"], progress=False)

    [connection] = usage.snapshot()["connections"]
    assert connection["backend"] == "compatible" and connection["base_url"] == server.base_url
    assert (connection["calls"], connection["failed"], connection["cached"]) == (3, 1, 1)
    assert connection["tokens_out"] > 0 and connection["cost_usd"] > 0 and connection["cached_cost_usd"] > 0
    assert SECRET not in json.dumps(usage.snapshot())


def test_parameter_values_read_as_python_literals_or_else_as_text():
    given = [["MODEL", "gpt-4.1-mini"], ["N", "200"], ["SEEDS", "[0, 1, 2]"], ["BASE_URL", "None"], ["T", "0.5"]]
    assert parse_parameters(given) == {
        "MODEL": "gpt-4.1-mini",
        "N": 200,
        "SEEDS": [0, 1, 2],
        "BASE_URL": None,
        "T": 0.5,
    }
