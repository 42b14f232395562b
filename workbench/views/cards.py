"""HTML for the explorer: one card per sample, a sample's lineage, a pairwise verdict side by side.

Pure functions of rows (dicts), so the live widget and its static snapshot in a report show the same
thing. Every field is read defensively: a card shows the columns its row has, and nothing else.
Texts are escaped; JSON is pretty-printed, fenced code is shown as code, and a text longer than
``max_chars`` is cut with a note saying how much is hidden and how to see it all.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from .lineage import diff_html, word_diff

__all__ = ["card_html", "lineage_html", "pair_html", "text_html"]

VERIFIER_MESSAGES = ("verified_error", "verified_message", "verifier_message", "verify_message")
_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_BOX = "border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;margin:6px 0;background:#fff"
_PRE = "white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;border-radius:4px;margin:4px 0"
_WRAP = "white-space:pre-wrap;word-break:break-word"
_MUTED = "color:#57606a;font-size:12px"


def text_html(text: Any, max_chars: int | None = 2000) -> str:
    """A text as readable HTML: JSON pretty-printed, fenced code as code, prose wrapped; cut past ``max_chars``."""
    if text is None:
        return "<i style='color:#8c8c8c'>(none)</i>"
    text = str(text)
    note = ""
    if max_chars is not None and len(text) > max_chars:
        note = (
            f"<div style='{_MUTED}'>… cut: {max_chars:,} of {len(text):,} characters shown. "
            "Open the sample (or <code>explorer.text(sample_id)</code>) to see all.</div>"
        )
        text = text[:max_chars]
    return _formatted(text) + note


def _formatted(text: str) -> str:
    pretty = _pretty_json(text)
    if pretty is not None:
        return f"<pre style='{_PRE}'>{html.escape(pretty)}</pre>"
    parts, last = [], 0
    for match in _FENCE.finditer(text):
        parts.append(_prose(text[last : match.start()]))
        parts.append(f"<pre style='{_PRE}'><code>{html.escape(match.group(1))}</code></pre>")
        last = match.end()
    parts.append(_prose(text[last:]))
    return "".join(part for part in parts if part)


def _prose(text: str) -> str:
    return f"<div style='{_WRAP}'>{html.escape(text.strip(chr(10)))}</div>" if text.strip() else ""


def _pretty_json(text: str) -> str | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
    except ValueError:
        return None


def _number(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value == value else "nan"
    return str(value)


def _facts(row: dict[str, Any], mark: str | None) -> list[str]:
    """The short facts of a row, in reading order: where it is, how it scored, what it cost."""
    facts = []
    if row.get("round") is not None:
        facts.append(f"round {row['round']}")
    facts.extend(_judge_facts(row))
    facts.extend(_cost_facts(row))
    for name, label in (("dup_of", "duplicate of"), ("stop_reason", "stopped:")):
        if row.get(name) is not None:
            facts.append(f"{label} {html.escape(str(row[name]))}")
    if mark:
        colour = "#1a7f37" if mark == "keep" else "#cf222e"
        facts.append(f"<b style='color:{colour}'>marked {mark}</b>")
    return facts


def _judge_facts(row: dict[str, Any]) -> list[str]:
    facts = []
    if "score" in row:
        score = row["score"]
        unscored = row.get("unscored_reason")
        facts.append(
            f"score <b>{_number(score)}</b>"
            if score is not None
            else f"<b style='color:#9a6700'>unscored</b>{': ' + html.escape(str(unscored)) if unscored else ''}"
        )
    if row.get("votes") is not None and len(row["votes"]) > 1:
        spread = row.get("vote_spread")
        facts.append(f"votes {list(row['votes'])}" + ("" if spread is None else f" (spread {_number(spread)})"))
    if row.get("judge") is not None:
        facts.append(f"judge {html.escape(str(row['judge']))}")
    if row.get("verified") is not None:
        ok = bool(row["verified"])
        tick = "<b style='color:#1a7f37'>✓ verified</b>" if ok else "<b style='color:#cf222e'>✗ failed</b>"
        message = next((row[name] for name in VERIFIER_MESSAGES if row.get(name)), None)
        facts.append(tick + ("" if message is None else f": {html.escape(str(message))}"))
    if row.get("error") is not None:
        facts.append(f"<b style='color:#cf222e'>error</b>: {html.escape(str(row['error']))}")
    return facts


def _cost_facts(row: dict[str, Any]) -> list[str]:
    facts = []
    if row.get("tokens_in") is not None or row.get("tokens_out") is not None:
        facts.append(f"tokens {row.get('tokens_in') or 0}→{row.get('tokens_out') or 0}")
    if row.get("cost_usd") is not None:
        facts.append(f"${row['cost_usd']:.5f}")
    if row.get("latency_s") is not None:
        facts.append(f"{row['latency_s']:.2f}s")
    return facts


def card_html(
    row: dict[str, Any], *, column: str, id_value: str, mark: str | None = None, max_chars: int = 2000
) -> str:
    """One sample as a card: its id and facts, its text, the judge's reason and the critique behind it."""
    if "response_a" in row and "response_b" in row and column not in row:
        return pair_html(row, id_value=id_value, mark=mark, max_chars=max_chars)
    facts = " · ".join(_facts(row, mark))
    parts = [
        f"<div style='{_MUTED}'><code>{html.escape(id_value)}</code> · {facts}</div>",
        text_html(row.get(column), max_chars),
    ]
    if row.get("reason"):
        parts.append(f"<div style='{_MUTED}'><b>judge's reason:</b> {html.escape(str(row['reason']))}</div>")
    if row.get("critique"):
        parts.append(f"<div style='{_MUTED}'><b>critique that led here:</b> {html.escape(str(row['critique']))}</div>")
    return f"<div style='{_BOX}'>{''.join(parts)}</div>"


def pair_html(row: dict[str, Any], *, id_value: str, mark: str | None = None, max_chars: int | None = 2000) -> str:
    """A pairwise verdict: both responses side by side, and the judge's verdict in each order."""
    winner = row.get("winner")
    head = [f"<code>{html.escape(id_value)}</code>", f"winner <b>{html.escape(str(winner))}</b>"]
    if row.get("consistent") is not None:
        head.append("consistent in both orders" if row["consistent"] else "<b>the two orders disagree</b>")
    if row.get("error") is not None:
        head.append(f"<b style='color:#cf222e'>error</b>: {html.escape(str(row['error']))}")
    if mark:
        head.append(f"<b>marked {mark}</b>")
    task = f"<div style='{_MUTED}'><b>task:</b> {html.escape(str(row['task']))}</div>" if row.get("task") else ""
    columns = "".join(
        f"<div style='flex:1;min-width:0'><b>{label}</b>{text_html(row.get(name), max_chars)}"
        f"<div style='{_MUTED}'><b>{order}:</b> verdict {html.escape(str(row.get(verdict)))} — "
        f"{html.escape(str(row.get(reason) or ''))}</div></div>"
        for label, name, order, verdict, reason in (
            ("A", "response_a", "A shown first", "verdict_ab", "reason_ab"),
            ("B", "response_b", "B shown first", "verdict_ba", "reason_ba"),
        )
    )
    return (
        f"<div style='{_BOX}'><div style='{_MUTED}'>{' · '.join(head)}</div>{task}"
        f"<div style='display:flex;gap:12px'>{columns}</div></div>"
    )


def lineage_html(versions: list[dict[str, Any]], *, column: str, id_column: str, max_chars: int | None = None) -> str:
    """Every version of one sample, round 0 first: the critique behind each revision, its score, and the diff."""
    if not versions:
        return ""
    blocks = [f"<div><b>Lineage</b> · {len(versions)} version{'s' if len(versions) != 1 else ''}</div>"]
    previous = None
    for row in versions:
        facts = " · ".join(_facts(row, None))
        block = [f"<div style='{_MUTED}'><code>{html.escape(str(row.get(id_column)))}</code> · {facts}</div>"]
        if row.get("critique"):
            block.append(f"<div style='{_MUTED}'><b>critique:</b> {html.escape(str(row['critique']))}</div>")
        if previous is None or previous.get(column) is None or row.get(column) is None:
            block.append(text_html(row.get(column), max_chars))
        else:
            ops = word_diff(previous.get(column), row.get(column))
            changed = any(op != "=" for op, _ in ops)
            note = "changes from" if changed else "no change from"
            block.append(f"<div style='{_MUTED}'>{note} round {previous.get('round')}:</div>")
            block.append(diff_html(ops))
        if row.get("reason"):
            block.append(f"<div style='{_MUTED}'><b>judge's reason:</b> {html.escape(str(row['reason']))}</div>")
        blocks.append(f"<div style='{_BOX};border-left:4px solid #3b6ea8'>{''.join(block)}</div>")
        previous = row
    return "".join(blocks)
