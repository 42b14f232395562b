"""A widget box that also leaves a static HTML snapshot, for places where widgets cannot run (HTML reports)."""

from __future__ import annotations

import ipywidgets as widgets

__all__ = ["SnapshotBox"]


class SnapshotBox(widgets.VBox):
    """A ``VBox`` whose display carries ``snapshot_html()`` as ``text/html`` beside the live widget view."""

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, plus a static HTML snapshot for places where widgets cannot run (HTML reports)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.snapshot_html()
        return bundle

    def snapshot_html(self) -> str:
        """What the view shows now, as static HTML (each view says what)."""
        raise NotImplementedError
