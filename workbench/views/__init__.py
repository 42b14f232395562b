"""views — what a person looks at. Views read run tables; only PromptLab calls a model, through generation.

charts.py          ``wb.charts``: altair charts that render offline (scores by round, agreement, cost...)
promptlab.py       ``wb.PromptLab``: edit a template, preview, generate a handful, compare two variants
labeler.py         ``wb.Labeler``: collect human labels inline, saved as you go
explore.py         ``wb.explore``: the explorer's widget; its controls drive an ExplorerState
explorer_state.py  ``ExplorerState``: filter, sort, page a run table, open a lineage, mark keep/drop; no widgets
chart_link.py      the explorer's live charts: click a point (altair JupyterChart) to open its sample
lineage.py         one sample's versions across rounds, and word diffs between them
conditions.py      the explorer's filters as one polars expression
cards.py           the explorer's HTML: sample cards, lineages, pairwise verdicts side by side
saved.py           the Labeler's labels and the explorer's marks, saved atomically at every click
snapshot.py        ``SnapshotBox``: a widget box that leaves a static HTML snapshot in reports
report.py          execute notebooks headlessly into self-contained HTML reports; the command line
notebook_run.py    run a notebook in a fresh kernel: papermill's parameters, stop at a failing cell, read usage
run_card.py        a report's run card (what ran, what it showed), saved as JSON; reports/index.html
"""
