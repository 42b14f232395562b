"""What responses cost: list prices from genai-prices (bundled, offline), or the price you give."""

import fakeserver
import pytest

import workbench as wb
from workbench.models.pricing import Price, cost_usd, given_price, price_for


def test_openai_models_and_their_dated_snapshots_have_list_prices_from_the_bundled_library():
    mini = price_for("gpt-4o-mini", provider="openai")
    assert (mini.input, mini.output) == (0.15, 0.60) and mini.source.startswith("genai-prices")
    assert price_for("gpt-4o-mini-2024-07-18", provider="openai") == mini
    assert (price_for("gpt-4o-2024-08-06", provider="openai").input, price_for("gpt-4o", provider="openai").output) == (
        2.50,
        10.00,
    )


def test_cached_prompt_tokens_are_charged_at_the_cached_price_not_the_full_one():
    price = price_for("gpt-4.1-mini", provider="openai")
    assert (price.input, price.cached_input, price.output) == (0.40, 0.10, 1.60)
    # 1,000 prompt tokens of which 800 came from the provider's cache, and 200 completion tokens
    assert price.cost(1_000, 200, tokens_cached=800) == pytest.approx((200 * 0.40 + 800 * 0.10 + 200 * 1.60) / 1e6)
    assert price.cost(1_000, 200) == pytest.approx((1_000 * 0.40 + 200 * 1.60) / 1e6)


def test_an_unknown_model_or_a_server_on_this_machine_has_no_price_and_no_cost():
    assert price_for("llama3.2", provider="openai") is None
    assert price_for("gpt-4o-mini", base_url="http://127.0.0.1:8000/v1") is None  # self-hosted: not OpenAI's price
    assert cost_usd(None, 100, 100) is None


def test_a_price_you_give_is_per_million_tokens_with_an_optional_cached_price():
    assert cost_usd(given_price((0.15, 0.60)), 1_000_000, 500_000) == pytest.approx(0.45)
    assert cost_usd(given_price([0, 0]), 1234, 567) == 0.0
    assert given_price((1, 2, 0.5)) == Price(1.0, 2.0, 0.5)
    assert given_price((1, 2, 0.5)).cost(1_000_000, 0, tokens_cached=1_000_000) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [(1,), (1, 2, 3, 4), ("1", "2"), (1, float("nan")), (-1, 2), 3.0, "0.4,1.6"])
def test_connect_refuses_a_price_that_is_not_two_or_three_numbers(bad, fake_server, connect_to):
    with pytest.raises(wb.ConfigError, match=r"price_per_million is \(input, output\) or \(input, output, cached"):
        connect_to(fake_server(), price_per_million=bad)


def test_a_batch_charges_the_tokens_the_server_served_from_its_cache_at_the_cached_price(
    fake_server, connect_to, monkeypatch
):
    plain = fakeserver._completion

    def with_cached_tokens(body, reply):  # the server reports that 4 of the prompt tokens came from its cache
        completion = plain(body, reply)
        completion["usage"]["prompt_tokens_details"] = {"cached_tokens": 4}
        return completion

    monkeypatch.setattr(fakeserver, "_completion", with_cached_tokens)
    llm = connect_to(fake_server(), price_per_million=(1.0, 2.0, 0.25))
    row = llm.chat_many(["one two three four five six"], progress=False).row(0, named=True)
    assert (row["tokens_in"], row["tokens_out"]) == (6, 7)  # the echo: "echo:" and the six words
    assert row["cost_usd"] == pytest.approx((2 * 1.0 + 4 * 0.25 + 7 * 2.0) / 1e6)
    again = llm.chat_many(["one two three four five six"], progress=False).row(0, named=True)
    assert again["cached"] and again["cost_usd"] == pytest.approx(row["cost_usd"])  # the cache kept the split


def test_costs_match_genai_prices_own_calculation_also_past_a_long_context_step():
    from genai_prices import Usage, calc_price
    from genai_prices.data_snapshot import get_snapshot

    openai = get_snapshot().find_provider(None, "openai", None)
    priced = {model.id: price_for(model.id, provider="openai") for model in openai.models}
    tiered = [name for name, price in priced.items() if price is not None and price.tiers]
    assert tiered, "genai-prices lists OpenAI models whose price steps up past a prompt length"
    for name in [tiered[0], "gpt-4.1-mini", "gpt-4o"]:
        for tokens_in, cached, tokens_out in [(1_000, 800, 200), (400_000, 100_000, 5_000)]:
            usage = Usage(input_tokens=tokens_in, cache_read_tokens=cached, output_tokens=tokens_out)
            expected = float(calc_price(usage, name, provider_id="openai").total_price)
            assert priced[name].cost(tokens_in, tokens_out, cached) == pytest.approx(expected, rel=1e-12)
