"""What responses cost."""

import pytest

from workbench.models.pricing import cost_usd, price_for


def test_known_models_and_their_dated_snapshots_have_prices():
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)


def test_an_unknown_model_has_no_price_and_no_cost():
    assert price_for("llama3.2") is None
    assert cost_usd(None, 100, 100) is None


def test_cost_is_per_million_tokens():
    assert cost_usd((0.15, 0.60), 1_000_000, 500_000) == pytest.approx(0.45)
    assert cost_usd((0.0, 0.0), 1234, 567) == 0.0
