"""The run card of a report: what was run and what it showed, saved as JSON beside the report; and the index.

A run card is a plain dict (JSON), written as ``reports/<name>.json`` beside ``reports/<name>.html``::

    format      "workbench-run-card/1"
    notebook    the notebook's path, as given          title     its first heading
    report      the HTML file's name                   started   ISO date and time, with its UTC offset
    wall_s      seconds, kernel start to stop          status    "ok" or "failed"
    failure     {"cell": n, "where": "In [4]", "cell_id", "error": "Name: message"} or None (n counts cells from 1)
    commit      the repository's commit, or None       dirty     True when tracked files differ from it
    workbench   the kernel's workbench version         seed      the SEED or SEEDS parameter as run, or None
    parameters  every parameter as run, as Python source, e.g. {"MODEL": "'gpt-4.1-mini'", "N": "10"}
    changed     the names given with -p whose value differs from the notebook's default
    usage       workbench.models.usage.snapshot() read from the kernel at the end of the run, or None
    result      {"text", "markdown"} printed by the cells tagged "result", or None; likewise summary

:func:`card_html` draws one card at the top of its report; :func:`write_index` lists every card of a folder.
"""

from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path
from typing import Any

from nbconvert.filters.markdown import markdown2html

from ..files import atomic_path

__all__ = ["FORMAT", "card_html", "git_state", "load_cards", "save_card", "write_index"]

FORMAT = "workbench-run-card/1"

STYLE = """
.wb-card { font: 14px/1.45 system-ui, sans-serif; border: 1px solid #c8d1dc; border-radius: 6px;
  background: #f7f9fb; padding: 10px 14px; margin: 12px 0 18px; color: #1f2328; }
.wb-card table { border-collapse: collapse; width: 100%; }
.wb-card th { text-align: left; vertical-align: top; padding: 3px 12px 3px 0; width: 8.5em; color: #57606a;
  font-weight: 600; }
.wb-card td { padding: 3px 0; vertical-align: top; }
.wb-card code { font-size: 12.5px; background: #eef1f4; padding: 0 3px; border-radius: 3px; }
.wb-card .wb-result { font-size: 15px; }
.wb-card .wb-result p { margin: 0 0 4px; }
.wb-card .wb-result pre { white-space: pre-wrap; margin: 0; font: inherit; }
.wb-failed { color: #b42318; font-weight: 600; }
.wb-ok { color: #1a7f37; font-weight: 600; }
.wb-muted { color: #6e7781; }
"""


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """The commit of the repository holding ``folder``, and whether its tracked files differ from it."""
    try:
        commit = _git(folder, "rev-parse", "--short=12", "HEAD")
        dirty = bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def save_card(card: dict[str, Any], path: Path) -> None:
    """Write ``card`` as JSON to ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_cards(folder: Path) -> list[dict[str, Any]]:
    """The run cards in ``folder`` whose report is still there, newest first."""
    cards = []
    for path in folder.glob("*.json"):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("format") == FORMAT and (folder / card["report"]).exists():
            cards.append(card)
    return sorted(cards, key=lambda card: card["started"], reverse=True)


def card_html(card: dict[str, Any]) -> str:
    """The run card as an HTML block (with its own style), for the top of the report."""
    return f"<style>{STYLE}</style>{_card_section(card, page='')}"


def _card_section(card: dict[str, Any], page: str) -> str:
    """The card's table; ``page`` is the report's address from where the card is shown ('' in the report)."""
    rows = [
        ("Result", _result(card)),
        ("Run", f"{_status(card, page)} · {_when(card['started'])} · {_duration(card['wall_s'])} wall time"),
        ("Code", _code(card)),
        ("Models", _models(card)),
        ("Model calls", _calls(card)),
        ("Parameters", _parameters(card)),
        ("Seed", _code_text(card["seed"]) if card["seed"] is not None else _muted("no SEED or SEEDS parameter")),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<section class="wb-card"><table>{body}</table></section>'


def _result(card: dict[str, Any]) -> str:
    for key in ("result", "summary"):
        found = card.get(key)
        if found and found["text"]:
            label = "" if key == "result" else _muted("summary: ")
            text = markdown2html(found["text"]) if found["markdown"] else f"<pre>{html.escape(found['text'])}</pre>"
            return f'<div class="wb-result">{label}{text}</div>'
    if card["status"] == "failed":
        return _muted("none: the run stopped before its result")
    return _muted("none: no cell tagged 'result'")


def _status(card: dict[str, Any], page: str) -> str:
    failure = card.get("failure")
    if not failure:
        return '<span class="wb-ok">ran to the end</span>'
    where = html.escape(failure["where"])
    if failure.get("cell_id"):
        where = f'<a href="{html.escape(page)}#cell-id={html.escape(failure["cell_id"])}">{where}</a>'
    return f'<span class="wb-failed">failed at {where}</span>: {html.escape(failure["error"])}'


def _when(started: str) -> str:
    return html.escape(started.replace("T", " "))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _code(card: dict[str, Any]) -> str:
    commit = card.get("commit")
    version = f"workbench {html.escape(card['workbench'] or 'unknown')}"
    if commit is None:
        return f"{version} · {_muted('not in a git repository')}"
    state = " (tracked files changed since)" if card.get("dirty") else ""
    return f"{version} · commit <code>{html.escape(commit)}</code>{state}"


def _models(card: dict[str, Any]) -> str:
    usage = card.get("usage")
    if not usage or not usage["connections"]:
        return _muted("none connected")
    several = len(usage["connections"]) > 1  # then each says what it answered
    lines = [
        f"{html.escape(row['backend'] or 'per request')} · <code>{html.escape(row['model'])}</code> at "
        f"<code>{html.escape(row['base_url'])}</code>{_tally(row, short=True) if several else ''}"
        for row in usage["connections"]
    ]
    return "<br>".join(lines)


def _calls(card: dict[str, Any]) -> str:
    usage = card.get("usage")
    if usage is None:
        return _muted("not known: the kernel died before they could be read")
    note = _muted(" (in the kernel; not those of batch jobs or Ray workers)")
    return _tally(usage["total"], short=False) + note


def _tally(tally: dict[str, Any], *, short: bool) -> str:
    failed = f", {tally['failed']:,} failed" if tally["failed"] else ""
    text = f"{tally['calls']:,} sent, {tally['cached']:,} from the cache{failed}"
    if short:
        return f" — {text}" if tally["calls"] or tally["cached"] else ""
    tokens = f"{tally['tokens_in']:,} tokens in, {tally['tokens_out']:,} out"
    cold = f"; the cached answers first cost {_money(tally['cached_cost_usd'])}" if tally["cached_cost_usd"] else ""
    return f"{text} · {tokens} · cost {_cost(tally)}{cold}"


def _cost(tally: dict[str, Any]) -> str:
    if tally["unpriced"] and not tally["cost_usd"]:
        return "unknown (no price for the model; wb.connect(..., price_per_million=...) gives one)"
    unpriced = f" (+ {tally['unpriced']:,} calls without a price)" if tally["unpriced"] else ""
    return _money(tally["cost_usd"]) + unpriced


def _money(dollars: float) -> str:
    """Dollars with the digits that matter: $12.30, $0.0123, $0.000020, $0."""
    if not dollars:
        return "$0"
    return f"${dollars:,.2f}" if dollars >= 1 else f"${dollars:.4f}" if dollars >= 0.001 else f"${dollars:.6f}"


def _parameters(card: dict[str, Any]) -> str:
    if not card["parameters"]:
        return _muted("none (no cell tagged 'parameters')")
    items = []
    for name, value in card["parameters"].items():
        item = f"<code>{html.escape(name)} = {html.escape(value)}</code>"
        items.append(f"<b>{item}</b>" if name in card["changed"] else item)
    note = _muted(" (bold: set for this run)") if card["changed"] else _muted(" (the notebook's defaults)")
    return " ".join(items) + note


def _code_text(value: str) -> str:
    return f"<code>{html.escape(value)}</code>"


def _muted(text: str) -> str:
    return f'<span class="wb-muted">{html.escape(text)}</span>'


INDEX_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #1f2328; }
h1 { font-size: 22px; } .count { color: #6e7781; }
.wb-entry { border: 1px solid #c8d1dc; border-radius: 6px; padding: 10px 14px; margin: 0 0 14px; background: #fff; }
.wb-entry.failed { border-color: #e5a0a0; background: #fff7f7; }
.wb-entry h2 { font-size: 16px; margin: 0 0 6px; }
.wb-badge { font-size: 12px; color: #fff; background: #b42318; border-radius: 3px; padding: 1px 6px;
  vertical-align: 2px; margin-left: 6px; }
.wb-entry .meta { color: #57606a; margin-bottom: 6px; }
.wb-entry .wb-card { margin: 6px 0 0; }
"""


def write_index(folder: Path) -> Path:
    """Write ``folder/index.html``: every report of the folder with its run card, newest first."""
    cards = load_cards(folder)
    failed = sum(card["status"] == "failed" for card in cards)
    entries = "".join(_entry(card) for card in cards) or "<p>No reports yet.</p>"
    count = f"{len(cards)} reports" + (f", {failed} failed" if failed else "") + ", newest first"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Reports</title>'
        f"<style>{INDEX_STYLE}{STYLE}</style></head><body><h1>Reports</h1>"
        f'<p class="count">{count}. Each title links to its report.</p>{entries}</body></html>\n'
    )
    target = folder / "index.html"
    with atomic_path(target) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return target


def _entry(card: dict[str, Any]) -> str:
    link = html.escape(card["report"])
    mark = " failed" if card["status"] == "failed" else ""
    badge = ' <span class="wb-badge">failed</span>' if mark else ""
    return (
        f'<div class="wb-entry{mark}"><h2><a href="{link}">{html.escape(card["title"])}</a>{badge}</h2>'
        f'<div class="meta"><code>{link}</code></div>{_card_section(card, page=card["report"])}</div>'
    )
