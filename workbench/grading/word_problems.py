"""The verifiable task: arithmetic word problems whose answer a program can check.

The generator writes a problem as structured output — ``question``, the ``expression`` that solves
it, and the ``answer`` — and :func:`check_answer` evaluates the expression *safely* (a tiny AST
walker over numbers and + - * / // % and small powers; no ``eval`` of model text) and compares it
with the stated answer. What it checks is that the answer is the value of the stated expression;
whether the expression fits the question is left to the judge. It is the yardstick for whether
self-grading helps: the verified-correct rate per round, and how far the judge agrees with it.

    python -m workbench.grading.word_problems --rounds 3      # the per-round table on the embedded model
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from ..generation.generate import generate
from ..generation.grids import grid
from ..generation.prompts import Prompt
from ..models.client import LLM
from ..models.routes import refuse_via
from .grade import grade, verify
from .refine import per_round, refine, snapshot
from .rubrics import Rubric
from .trust import agreement

__all__ = ["ArithmeticProblem", "PROMPT", "RUBRIC", "check_answer", "run_rounds", "safe_eval"]


class ArithmeticProblem(BaseModel):
    question: str
    # The pattern keeps the expression to arithmetic; constrained decoding (llama.cpp's grammar, OpenAI's
    # structured outputs) then cannot write prose or equations there.
    expression: str = Field(pattern=r"^[0-9][0-9+\-*/(). ]{0,60}$")
    answer: float


PROMPT = Prompt(
    "Write one short arithmetic word problem about {{topic}}. Give the question, the arithmetic expression "
    "that solves it (numbers and + - * / only), and the numeric answer."
)
RUBRIC = Rubric(
    "Is the question a clear arithmetic word problem, does the expression solve it, and is the answer the "
    "value of the expression?",
    scale=(1, 5),
    levels={
        1: "no real question, or the expression does not fit it",
        3: "fits, but the answer is wrong",
        5: "clear question, fitting expression, correct answer",
    },
    name="arithmetic",
)
TOPICS = ["apples", "a bakery", "trains", "a school trip", "marbles", "a garden", "savings", "a football match"]

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def safe_eval(expression: str) -> float:
    """The value of an arithmetic expression; ``ValueError`` for anything else (names, calls, huge powers)."""
    if not isinstance(expression, str) or not expression.strip() or len(expression) > 200:
        raise ValueError("the expression must be a non-empty string of at most 200 characters")
    cleaned = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace(",", "")
    try:
        tree = ast.parse(cleaned.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    return float(_evaluate(tree.body))


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 10 or abs(left) > 1e6):
            raise ValueError("powers are limited to exponents of at most 10")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
    raise ValueError(f"only numbers and + - * / // % ** are allowed, found {type(node).__name__}")


def check_answer(row: dict[str, Any]) -> bool:
    """True when the row's ``answer`` equals the value of its ``expression`` (to 1e-6, relatively)."""
    if row.get("expression") is None or row.get("answer") is None:
        raise ValueError("the row has no expression or answer (its structured output did not parse)")
    return math.isclose(safe_eval(row["expression"]), float(row["answer"]), rel_tol=1e-6, abs_tol=1e-9)


def run_rounds(
    llm: LLM,
    *,
    topics: list[str] = TOPICS,
    n: int = 2,
    rounds: int = 3,
    stop_at: float = 5,
    pass_at: float = 4,
    judge: LLM | None = None,
    progress: bool = True,
    **params: Any,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate, grade, refine for ``rounds``, verify every row; returns (history, per-round table).

    ``judge`` grades and re-grades (default: ``llm`` itself); ``params`` (``seed``, ``max_tokens``, ...) go to the
    generation and revision requests."""
    refuse_via(params, "word_problems.run_rounds")
    samples = generate(
        llm,
        PROMPT,
        grid(topic=topics),
        n=n,
        schema=ArithmeticProblem,
        progress=progress,
        **{"temperature": 0.8, "max_tokens": 200, **params},
    )
    graded = grade(judge or llm, samples, RUBRIC, progress=progress)
    history = refine(
        llm,
        graded,
        RUBRIC,
        rounds=rounds,
        stop_at=stop_at,
        schema=ArithmeticProblem,
        judge=judge,
        progress=progress,
        **params,
    )
    history = verify(history, check_answer, name="verified")
    history = history.with_columns((pl.col("score") >= pass_at).alias("judge_pass"))
    table = per_round(history, pass_at=pass_at, verified="verified")
    return history, table.join(_agreement_by_round(history), on="round", how="left")


def _agreement_by_round(history: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for round_number in sorted(history["round"].unique()):
        part = snapshot(history, round_number)
        try:
            found = agreement(part, "judge_pass", "verified")
            rows.append(
                {
                    "round": round_number,
                    "judge_vs_verifier_accuracy": found.accuracy,
                    "judge_vs_verifier_kappa": found.kappa,
                }
            )
        except ValueError:
            rows.append({"round": round_number, "judge_vs_verifier_accuracy": None, "judge_vs_verifier_kappa": None})
    return pl.DataFrame(
        rows,
        schema={"round": pl.Int32, "judge_vs_verifier_accuracy": pl.Float64, "judge_vs_verifier_kappa": pl.Float64},
    ).cast({"round": pl.Int64})


def main() -> None:
    from ..models.connect import connect

    parser = argparse.ArgumentParser(description="The verifiable arithmetic task, round by round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2, help="samples per topic")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    llm = connect(args.backend, model=args.model)
    history, table = run_rounds(llm, n=args.n, rounds=args.rounds)
    with pl.Config(tbl_width_chars=160, tbl_cols=20, float_precision=3):
        print(f"{llm.model}: {history.filter(round=0).height} problems, {args.rounds} rounds")
        print("per-round table (the dataset after each round; verified = answer equals the value of its expression)")
        print(table)


if __name__ == "__main__":
    main()
