"""grading — judges, verifiers, refinement rounds and trust in the judge.

    rubrics.py     ``wb.Rubric``: criteria, scale, level descriptions, graded examples
    grade.py       ``wb.grade``/``wb.verify``: LLM judge (votes) or a Python verifier, same columns
    pairwise.py    ``wb.compare``: pairwise judge, both orders
    refine.py      ``wb.refine``: critique -> revise -> re-grade, stop rules, lineage; ``best``, ``per_round``
    trust.py       ``wb.agreement``, ``self_agreement``, ``position_bias``: may the judge be trusted?
    word_problems.py  LLM-written arithmetic word problems, checked by evaluating their expression (notebook 05)
    tasks/         verifiable task families (registry + one module each: arithmetic, comparison, ifeval)
    stats.py       ``wilson`` (a rate's 95% interval) and ``mcnemar`` (the paired test), for every table
    strategies.py  single sample, self-refine, verifier-refine, best-of-k, majority vote at equal budget
    judge_check.py ``wb.judge_check``: a judge's pass against a verifier's, Cohen's kappa with an interval
    experiment.py  ``python -m workbench.grading.experiment``: calibrate tasks, compare strategies, print the table

Uses ``generation`` and ``models``.
"""
