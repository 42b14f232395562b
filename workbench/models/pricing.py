"""What a response cost: list prices from ``genai-prices``, or the ones you give, in US dollars.

    price_for("gpt-4.1-mini", provider="openai")   # Price(input=0.4, output=1.6, cached_input=0.1, ...)
    price.cost(tokens_in=1_000, tokens_out=200, tokens_cached=800)

The prices come from `genai-prices <https://github.com/pydantic/genai-prices>`_ (MIT, kept by the
Pydantic team): a maintained table of the providers' published prices that ships inside the package,
so pricing never uses the network (the library's live updates are never turned on). A dated
snapshot (``gpt-4o-2024-08-06``) finds its model; prices that depend on the prompt's length or the
date are the library's to apply. The provider is OpenAI for the ``openai`` backend; for any other it
is found from the base URL (Groq, OpenRouter, Together, ...). A server on this machine, or a model the
library does not know, has no price: its cost is None (unknown), never a guess — pass
``price_per_million=(input, output)``, or ``(input, output, cached_input)``, to ``wb.connect`` to
price it. The embedded model costs 0.

Cached prompt tokens (OpenAI's ``usage.prompt_tokens_details.cached_tokens``) are part of
``tokens_in`` and are charged at the cached-input price where the model has one, so a provider's
prompt caching is not billed at the full input price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import ConfigError

__all__ = ["Price", "cached_tokens", "cost_usd", "given_price", "price_for"]


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens: prompt, completion, and cached prompt (None: charged as prompt)."""

    input: float
    output: float
    cached_input: float | None = None
    source: str = "price_per_million"
    library: Any = field(default=None, repr=False, compare=False)  # genai-prices' model price (its tiers too)

    def cost(self, tokens_in: int | None, tokens_out: int | None, tokens_cached: int | None = None) -> float | None:
        """Dollars for one response, or None when its token counts are unknown."""
        if tokens_in is None or tokens_out is None:
            return None
        cached = min(tokens_cached or 0, tokens_in)
        if self.library is not None:
            from genai_prices import Usage

            usage = Usage(input_tokens=tokens_in, cache_read_tokens=cached, output_tokens=tokens_out)
            return float(self.library.calc_price(usage)["total_price"])
        cached_price = self.input if self.cached_input is None else self.cached_input
        return ((tokens_in - cached) * self.input + cached * cached_price + tokens_out * self.output) / 1_000_000


FREE = Price(0.0, 0.0, 0.0, source="the embedded model")


def given_price(value: Any) -> Price | None:
    """The ``price_per_million=`` setting as a :class:`Price`: (input, output) or (input, output, cached_input)."""
    if value is None:
        return None
    numbers = list(value) if isinstance(value, (tuple, list)) else None
    valid = (
        numbers is not None
        and len(numbers) in (2, 3)
        and all(
            isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) and n >= 0 for n in numbers
        )
    )
    if not valid:
        raise ConfigError(
            "price_per_million is (input, output) or (input, output, cached_input): US dollars per million tokens, "
            f"each a number of 0 or more, e.g. (0.40, 1.60); got {value!r}."
        )
    return Price(*(float(n) for n in numbers))


def price_for(model: str, *, provider: str | None = None, base_url: str | None = None) -> Price | None:
    """The list price of ``model`` from genai-prices (``provider`` an id such as "openai", or else found from
    ``base_url``), or None when the library does not know it."""
    return _library_price(model.lower(), provider, None if provider else base_url)


@cache
def _library_price(model: str, provider: str | None, base_url: str | None) -> Price | None:
    if provider is None and (base_url is None or _on_this_machine(base_url)):
        return None
    import genai_prices
    from genai_prices.data_snapshot import get_snapshot

    try:
        found_provider, found = get_snapshot().find_provider_model(model, None, provider, base_url)
    except LookupError:
        return None
    prices = found.calc_price(genai_prices.Usage(input_tokens=0, output_tokens=0), found_provider).model_price
    return Price(
        _per_million(prices.input_mtok),
        _per_million(prices.output_mtok),
        _per_million(prices.cache_read_mtok) if prices.cache_read_mtok is not None else None,
        source=f"genai-prices {genai_prices.__version__}: {found_provider.id} {found.id}",
        library=prices,
    )


def _per_million(price: Any) -> float:
    """A price of the library as a float (a tiered price by its base tier)."""
    if price is None:
        return 0.0
    return float(getattr(price, "base", price))


def _on_this_machine(base_url: str) -> bool:
    return any(host in base_url for host in ("://127.", "://localhost", "://[::1]", "://0.0.0.0"))


def cached_tokens(usage: Any) -> int | None:
    """The cached prompt tokens of an OpenAI ``usage`` (``prompt_tokens_details.cached_tokens``), or None."""
    details = getattr(usage, "prompt_tokens_details", None)
    value = getattr(details, "cached_tokens", None) if details is not None else None
    return value if isinstance(value, int) else None


def cost_usd(
    price: Price | None, tokens_in: int | None, tokens_out: int | None, tokens_cached: int | None = None
) -> float | None:
    """Dollars for one response (or an estimate), or None when the price or the token counts are unknown."""
    return None if price is None else price.cost(tokens_in, tokens_out, tokens_cached)
