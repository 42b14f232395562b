"""generation — prompts in, a run table of samples out.

    prompts.py     ``wb.Prompt``: Jinja2 templates with strict variables, system message, few-shot
    grids.py       ``wb.grid``, ``wb.sample_grid``, ``wb.personas``: the variables to fill in
    structured.py  structured output (pydantic / JSON schema) sent as ``response_format`` and validated
    generate.py    ``wb.generate``: prompt x variables x n samples -> run table with lineage
    recipes.py     Self-Instruct, Evol-Instruct, persona-driven generation
    estimate.py    ``wb.estimate``: tokens and dollars before running

Uses ``models`` (and ``curation.similarity`` for ROUGE-L in the recipes).
"""
