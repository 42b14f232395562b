"""The real OpenAI API: opt-in, since it costs money and needs a key and the network."""

from __future__ import annotations

import os

import pytest

import workbench as wb

pytestmark = [
    pytest.mark.openai,
    pytest.mark.skipif(
        not (os.environ.get("WORKBENCH_TEST_OPENAI") == "1" and os.environ.get("OPENAI_API_KEY")),
        reason="calls the paid OpenAI API: set OPENAI_API_KEY and WORKBENCH_TEST_OPENAI=1 to run it",
    ),
]


def test_generate_and_grade_on_openai_with_structured_output(tmp_path):
    llm = wb.connect("openai", model=os.environ.get("WORKBENCH_MODEL", "gpt-4.1-nano"), data_dir=tmp_path)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}  # fmt: skip
    samples = wb.generate(llm, "Name the capital of {{country}}.", wb.grid(country=["France", "Peru"]), schema=schema,
                          max_tokens=30, progress=False)  # fmt: skip
    assert samples["city"].to_list() == ["Paris", "Lima"] and samples["cost_usd"].min() > 0
    graded = wb.grade(llm, samples, wb.Rubric("Is the capital right?", scale=(1, 5)), progress=False)
    assert graded["scored"].all() and graded["score"].min() >= 4
    assert wb.generate(llm, "Name the capital of {{country}}.", wb.grid(country=["France", "Peru"]), schema=schema,
                       max_tokens=30, progress=False)["cached"].all()  # fmt: skip
