"""Estimating tokens and cost before a run."""

from __future__ import annotations

import pytest

import workbench as wb


def test_openai_models_are_counted_exactly_offline():
    # "hello world" is 2 tokens in o200k_base; the chat format adds 3 a message and 3 for the reply
    estimate = wb.estimate("hello {{w}}", [{"w": "world"}], n=10, model="gpt-4.1-mini", max_tokens=100)
    assert estimate.method == "exact (o200k_base)"
    assert (estimate.requests, estimate.tokens_in, estimate.tokens_out) == (10, 80, 1000)
    assert estimate.cost_usd == pytest.approx((80 * 0.40 + 1000 * 1.60) / 1e6)


def test_other_models_are_approximated_and_say_so():
    estimate = wb.estimate("x" * 400, n=2, model="mistral-7b")
    assert estimate.method == "approximate (4 characters a token)"
    assert estimate.tokens_in == 2 * (100 + 3 + 3) and estimate.tokens_out == 2 * 256
    assert estimate.cost_usd is None and "cost unknown" in repr(estimate)


@pytest.mark.local_model
def test_the_embedded_model_counts_with_its_own_tokenizer(tmp_path):
    llm = wb.connect(data_dir=tmp_path)
    estimate = wb.estimate("What is the capital of {{country}}?", wb.grid(country=["France", "Peru"]), model=llm)
    assert estimate.method == "exact (the embedded model's tokenizer)" and estimate.cost_usd == 0.0
    assert 2 * (5 + 6) <= estimate.tokens_in <= 2 * (20 + 6)
