"""views — what a person looks at. Views read run tables; only PromptLab calls a model, through generation.

charts.py     ``wb.charts``: altair charts that render offline (scores by round, agreement, cost...)
promptlab.py  ``wb.PromptLab``: edit a template, preview, generate a handful, compare two variants
labeler.py    ``wb.Labeler``: collect human labels inline, saved as you go
report.py     execute notebooks headlessly into self-contained HTML reports
"""
