"""grading — judges, verifiers, refinement rounds and trust in the judge.

    rubrics.py     ``wb.Rubric``: criteria, scale, level descriptions, graded examples
    grade.py       ``wb.grade``/``wb.verify``: LLM judge (votes) or a Python verifier, same columns
    pairwise.py    ``wb.compare``: pairwise judge, both orders
    refine.py      ``wb.refine``: critique -> revise -> re-grade, stop rules, lineage; ``best``, ``per_round``
    trust.py       ``wb.agreement``, ``self_agreement``, ``position_bias``: may the judge be trusted?
    arithmetic.py  a verifiable task: arithmetic word problems a program can check

Uses ``generation`` and ``models``.
"""
