"""What a response cost: list prices from ``genai-prices``, or the ones you give, in US dollars.

    price_for("gpt-4.1-mini", provider="openai")   # Price(input=0.4, output=1.6, cached_input=0.1, ...)
    price.cost(tokens_in=1_000, tokens_out=200, tokens_cached=800)

The prices come from `genai-prices <https://github.com/pydantic/genai-prices>`_ (MIT, kept by the
Pydantic team): a maintained table of the providers' published prices that ships inside the package,
so pricing never uses the network (the library's live updates are never turned on). A dated
snapshot (``gpt-4o-2024-08-06``) finds its model; a price that steps up past a prompt length (a
long-context tier) keeps its steps, and a per-request fee is added. The provider is OpenAI for the
``openai`` backend; for any other it is found from the base URL (Groq, OpenRouter, Together, ...). A
server on this machine, or a model the library does not know, has no price: its cost is None
(unknown), never a guess — pass ``price_per_million=(input, output)``, or ``(input, output,
cached_input)``, to ``wb.connect`` to price it. The embedded model costs 0. The library is asked once
per model; a response's cost is then plain arithmetic (about a microsecond).

Cached prompt tokens (OpenAI's ``usage.prompt_tokens_details.cached_tokens``) are part of
``tokens_in`` and are charged at the cached-input price where the model has one, so a provider's
prompt caching is not billed at the full input price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import ConfigError

__all__ = ["Price", "cached_tokens", "cost_usd", "given_price", "price_for"]


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens: prompt, completion, and cached prompt (None: charged as prompt).

    ``tiers``: (which, prompt tokens above which it applies, price) steps of a long-context price, where
    ``which`` is "input", "output" or "cached_input" (a prompt past the step pays the step's price for
    every token, as the providers bill); ``per_request``: a fee per request, in dollars.
    """

    input: float
    output: float
    cached_input: float | None = None
    source: str = "price_per_million"
    tiers: tuple[tuple[str, int, float], ...] = ()
    per_request: float = 0.0

    def cost(self, tokens_in: int | None, tokens_out: int | None, tokens_cached: int | None = None) -> float | None:
        """Dollars for one response, or None when its token counts are unknown."""
        if tokens_in is None or tokens_out is None:
            return None
        cached = min(tokens_cached or 0, tokens_in)
        full, out = self._rate("input", tokens_in), self._rate("output", tokens_in)
        reused = full if self.cached_input is None else self._rate("cached_input", tokens_in)
        return ((tokens_in - cached) * full + cached * reused + tokens_out * out) / 1_000_000 + self.per_request

    def _rate(self, which: str, tokens_in: int) -> float:
        rate = getattr(self, which)
        for name, start, price in self.tiers:  # in increasing order of start
            if name == which and tokens_in > start:
                rate = price
        return rate


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
    keys = {"input": prices.input_mtok, "output": prices.output_mtok, "cached_input": prices.cache_read_mtok}
    tiers = sorted(
        (which, tier.start, float(tier.price))
        for which, price in keys.items()
        for tier in getattr(price, "tiers", None) or []
    )
    return Price(
        _base(prices.input_mtok),
        _base(prices.output_mtok),
        _base(prices.cache_read_mtok) if prices.cache_read_mtok is not None else None,
        source=f"genai-prices {genai_prices.__version__}: {found_provider.id} {found.id}",
        tiers=tuple(sorted(tiers, key=lambda step: step[1])),
        per_request=float(prices.requests_kcount or 0) / 1000,
    )


def _base(price: Any) -> float:
    """A price of the library as a float (a tiered one by its first step)."""
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
