"""Progress bars that end on their final count, also in executed notebooks and HTML reports.

    bar = progress_bar(total=12, desc="smollm2", unit="req")
    bar.update(12); bar.close()          # the output now reads "12/12", wherever it is shown

``tqdm.auto`` draws an ipywidgets bar in a kernel. A widget's later updates live only in the
running frontend: a notebook executed headlessly (nbclient, ``make report``) keeps only the text
the widget was created with, "0/12". In a kernel the bar here is a plain display output instead,
updated in place through its display id (``update_display_data``): JupyterLab redraws it live,
and nbclient rewrites the stored output, so the saved notebook and its report show the last count.
Outside a kernel it is tqdm's ordinary text bar on stderr.
"""

from __future__ import annotations

import html
from typing import Any

from tqdm.std import tqdm

__all__ = ["DisplayBar", "in_kernel", "progress_bar"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where outputs go to a notebook, live or executed headlessly)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(*, total: int, desc: str, unit: str, disable: bool = False) -> tqdm:
    """The right bar for where the code runs: a display-updated bar in a kernel, tqdm's text bar elsewhere."""
    if not disable and in_kernel():
        return DisplayBar(total=total, desc=desc, unit=unit, mininterval=0.5)
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


class _Discard:
    """A file that swallows tqdm's own terminal writes: the bar is drawn by :meth:`DisplayBar.display`."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class DisplayBar(tqdm):
    """A tqdm bar drawn as one notebook output (HTML ``<progress>`` plus its text), updated in place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._handle = None
        super().__init__(*args, file=_Discard(), ncols=80, ascii=False, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Show the bar's current state (tqdm calls this on refresh and on close)."""
        if msg == "":  # tqdm clearing a bar with leave=False: keep the last state visible
            return True
        from IPython.display import display

        text = self.format_meter(**{**self.format_dict, "ncols": 80}) if msg is None else msg
        bundle = {"text/plain": text, "text/html": self._html(text)}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        return True

    def _html(self, text: str) -> str:
        total = self.total or max(self.n, 1)
        return (
            f"<div style='font-family:monospace;font-size:12px'><progress value='{self.n}' max='{total}' "
            f"style='width:240px;vertical-align:middle'></progress> {html.escape(text)}</div>"
        )
