"""What a response cost, from a small table of list prices (US dollars per million tokens).

Local models cost 0. A model missing from the table costs ``None`` (unknown), never a guess: pass
``price_per_million=(input, output)`` to ``wb.connect`` to price it. The table holds OpenAI's
published standard-tier prices for common models; check them against the provider's page before
quoting a bill.
"""

from __future__ import annotations

__all__ = ["PRICES_PER_MILLION", "cost_usd", "price_for"]

# model: (input, output), US dollars per 1M tokens, standard tier.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def price_for(model: str) -> tuple[float, float] | None:
    """The (input, output) price of ``model``, also for dated snapshots like ``gpt-4o-2024-08-06``."""
    if model in PRICES_PER_MILLION:
        return PRICES_PER_MILLION[model]
    prefixes = sorted((name for name in PRICES_PER_MILLION if model.startswith(name + "-")), key=len)
    return PRICES_PER_MILLION[prefixes[-1]] if prefixes else None


def cost_usd(price: tuple[float, float] | None, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """Dollars for one response, or None when the price or the token counts are unknown."""
    if price is None or tokens_in is None or tokens_out is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
