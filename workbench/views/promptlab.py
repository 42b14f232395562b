"""``wb.PromptLab``: edit a template, preview it, generate a handful, compare two variants.

    lab = wb.PromptLab(llm, "Write a {{level}} word problem about {{topic}}.")
    lab                                   # shows the widget in a notebook

Everything the widget shows is widget state a test can set and read: ``lab.template.value``,
``lab.inputs["topic"].value``, ``lab.preview.value``, ``lab.generate_button.click()``,
``lab.results`` (the run table), ``lab.status.value``. Errors — a bad template, a server that is
down — appear in ``lab.status``, never as a traceback.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from ..errors import WorkbenchError, check_type
from ..generation.generate import generate
from ..generation.prompts import Prompt
from ..models.client import LLM
from .snapshot import SnapshotBox

__all__ = ["PromptLab"]

_AREA = widgets.Layout(width="100%", height="90px")


class PromptLab(SnapshotBox):
    """An ipywidgets prompt editor with preview, generation, A/B comparison and saving."""

    def __init__(
        self,
        llm: LLM,
        template: str = "Write a short poem about {{topic}}.",
        *,
        variant_b: str = "",
        prompts_dir: str | Path | None = None,
        **params: Any,
    ) -> None:
        check_type(llm, LLM, "the PromptLab's first argument", "a connection: wb.PromptLab(wb.connect())")
        self.llm = llm
        self.params = {"temperature": 0.8, "max_tokens": 200, **params}
        self.prompts_dir = Path(prompts_dir) if prompts_dir else llm.settings.data_dir / "prompts"
        self.results: pl.DataFrame | None = None
        self.comparison: pl.DataFrame | None = None
        self.inputs: dict[str, widgets.Text] = {}
        self._build(template, variant_b)
        super().__init__(
            [
                self.template,
                self.system,
                self.variant_b,
                self.inputs_box,
                self.preview,
                widgets.HBox([self.n, self.generate_button, self.compare_button]),
                widgets.HBox([self.save_name, self.save_button]),
                self.status,
                self.output,
            ]
        )
        self._refresh()

    def _build(self, template: str, variant_b: str) -> None:
        self.template = widgets.Textarea(value=template, description="Template", layout=_AREA)
        self.system = widgets.Textarea(value="", description="System", layout=_AREA)
        self.variant_b = widgets.Textarea(
            value=variant_b,
            description="Variant B",
            layout=_AREA,
            placeholder="a second template to compare on the same variables",
        )
        self.inputs_box = widgets.VBox()
        self.preview = widgets.Textarea(description="Preview", disabled=True, layout=_AREA)
        self.n = widgets.BoundedIntText(value=3, min=1, max=50, description="N")
        self.generate_button = widgets.Button(description="Generate N", button_style="primary")
        self.compare_button = widgets.Button(description="Compare A | B")
        self.save_name = widgets.Text(description="Save as", placeholder="name (saved under data/prompts/)")
        self.save_button = widgets.Button(description="Save template")
        self.status = widgets.HTML()
        self.output = widgets.HTML()
        for area in (self.template, self.system):
            area.observe(lambda _: self._refresh(), names="value")
        self.generate_button.on_click(lambda _: self.generate())
        self.compare_button.on_click(lambda _: self.compare())
        self.save_button.on_click(lambda _: self.save())

    def snapshot_html(self) -> str:
        """What the lab shows now, as static HTML."""
        inputs = ", ".join(f"{html.escape(name)} = {html.escape(value)!r}" for name, value in self.variables.items())
        return (
            "<div style='border:1px solid #ccc;padding:8px;border-radius:4px'><b>PromptLab</b> (static view)"
            f"<pre style='white-space:pre-wrap'>{html.escape(self.template.value)}</pre>"
            f"<div>variables: {inputs or 'none'}</div><div><i>preview</i><pre style='white-space:pre-wrap'>"
            f"{html.escape(self.preview.value)}</pre></div>{self.status.value}{self.output.value}</div>"
        )

    # --- state -----------------------------------------------------------------------------------
    @property
    def variables(self) -> dict[str, str]:
        """The values typed into the variable inputs."""
        return {name: box.value for name, box in self.inputs.items()}

    def prompt(self, template: str | None = None) -> Prompt:
        return Prompt(template if template is not None else self.template.value, system=self.system.value or None)

    def _refresh(self) -> None:
        try:
            prompt = self.prompt()
        except WorkbenchError as exc:
            self._error(exc)
            return
        self._sync_inputs(prompt.variables)
        try:
            self.preview.value = prompt.preview(self.variables)
            self.status.value = ""
        except WorkbenchError as exc:
            self._error(exc)

    def _sync_inputs(self, names: list[str]) -> None:
        if list(self.inputs) == names:
            return
        kept = {name: self.inputs.get(name) or self._input(name) for name in names}
        self.inputs = kept
        self.inputs_box.children = list(kept.values())

    def _input(self, name: str) -> widgets.Text:
        box = widgets.Text(description=name, placeholder=f"value of {{{{{name}}}}}")
        box.observe(lambda _: self._refresh(), names="value")
        return box

    def _error(self, exc: Exception) -> None:
        self.status.value = f'<pre style="color:#b00020;white-space:pre-wrap">{html.escape(str(exc))}</pre>'

    # --- actions ---------------------------------------------------------------------------------
    def generate(self) -> pl.DataFrame | None:
        """Generate N samples of the template on the current variables; shown as a table."""
        try:
            self.results = self._run(self.prompt())
        except Exception as exc:  # shown in the widget, never a traceback
            self._error(exc)
            return None
        self.output.value = _table_html(self.results)
        self.status.value = _summary(self.results)
        return self.results

    def compare(self) -> pl.DataFrame | None:
        """Generate N samples of the template (A) and of variant B on the same variables, side by side."""
        try:
            if not self.variant_b.value.strip():
                raise WorkbenchError("write a second template in 'Variant B' to compare.")
            a, b = self._run(self.prompt()), self._run(self.prompt(self.variant_b.value))
        except Exception as exc:
            self._error(exc)
            return None
        self.comparison = pl.concat(
            [a.with_columns(variant=pl.lit("A")), b.with_columns(variant=pl.lit("B"))], how="diagonal"
        )
        self.output.value = _side_by_side(a, b)
        self.status.value = f"A: {_summary(a)}<br>B: {_summary(b)}"
        return self.comparison

    def save(self) -> Path | None:
        """Save the template (and system message) as ``data/prompts/<name>.json``."""
        name = self.save_name.value.strip()
        try:
            if not name:
                raise WorkbenchError("type a name in 'Save as' first.")
            path = self.prompt().save(self.prompts_dir / f"{Path(name).stem}.json")
        except Exception as exc:
            self._error(exc)
            return None
        self.status.value = f"saved to {html.escape(str(path))}"
        return path

    def _run(self, prompt: Prompt) -> pl.DataFrame:
        table = generate(self.llm, prompt, [self.variables], n=self.n.value, progress=False, **self.params)
        failed = table.filter(pl.col("error").is_not_null())
        if failed.height == table.height:
            raise WorkbenchError(f"every request failed: {failed['error'][0]}")
        return table


def _summary(table: pl.DataFrame) -> str:
    cost = table["cost_usd"].sum() if table["cost_usd"].null_count() < table.height else None
    spent = "cost unknown" if cost is None else f"${cost:.4f}"
    tokens_in, tokens_out = int(table["tokens_in"].sum() or 0), int(table["tokens_out"].sum() or 0)
    return (
        f"{table.height} samples, {table['error'].null_count()} ok, {tokens_in} tokens in, {tokens_out} out, "
        f"{spent}, {int(table['cached'].sum())} from cache"
    )


def _table_html(table: pl.DataFrame) -> str:
    rows = "".join(
        f"<tr><td>{row['sample_index']}</td><td style='white-space:pre-wrap;text-align:left'>"
        f"{html.escape(row['response'] or row['error'] or '')}</td><td>{row['tokens_out'] or ''}</td>"
        f"<td>{_money(row['cost_usd'])}</td></tr>"
        for row in table.iter_rows(named=True)
    )
    return f"<table><tr><th>#</th><th>response</th><th>tokens out</th><th>cost</th></tr>{rows}</table>"


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:.5f}"


def _side_by_side(a: pl.DataFrame, b: pl.DataFrame) -> str:
    return (
        f"<div style='display:flex;gap:1em'><div style='flex:1'><b>A</b>{_table_html(a)}</div>"
        f"<div style='flex:1'><b>B</b>{_table_html(b)}</div></div>"
    )
