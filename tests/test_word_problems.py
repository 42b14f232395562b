"""The verifiable arithmetic task: a safe evaluator and an answer check a user can rely on."""

from __future__ import annotations

import pytest

from workbench.grading.word_problems import check_answer, safe_eval


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("3 + 4 * 2", 11.0),
        ("(3 + 4) * 2", 14.0),
        ("-2 ** 2", -4.0),
        ("7 / 2", 3.5),
        ("7 // 2", 3.0),
        ("1,200 + 5", 1205.0),
        ("6 × 7", 42.0),
        ("2^3", 8.0),
    ],
)
def test_safe_eval_computes_arithmetic(expression, value):
    assert safe_eval(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hi')",
        "x + 1",
        "abs(-3)",
        "(1).__class__",
        "[1, 2][0]",
        "9 ** 99",
        "1 / 0",
        "",
        "2 +",
        "1" * 300,
    ],
)
def test_safe_eval_refuses_everything_else(expression):
    with pytest.raises(ValueError):
        safe_eval(expression)


def test_check_answer_compares_the_stated_answer_with_the_expression():
    assert check_answer({"expression": "12 * 3", "answer": 36})
    assert not check_answer({"expression": "12 * 3", "answer": 35})
    assert check_answer({"expression": "1 / 3", "answer": 0.3333333333})
    with pytest.raises(ValueError, match="no expression or answer"):
        check_answer({"expression": None, "answer": 3})
