"""Prices per model, in USD per million tokens (input, output).

Built in for common hosted models (list prices, standard tier, no batch discount);
``[prices]`` in harness.toml overrides or adds, per model URI::

    [prices]
    "openai:/gpt-4o-mini" = [0.15, 0.60]
    "openai:/my-vllm-model" = { input = 0, output = 0 }
    "databricks:/my-endpoint" = [0.50, 1.50]

A dated or ``-latest`` model name is priced as its base name (``gpt-4o-2024-08-06`` as
``gpt-4o``, ``claude-3-5-haiku-20241022`` as ``claude-3-5-haiku``). Local models (ollama,
python, echo) cost 0. A model with no known price has cost ``None``: reported as unknown,
never guessed. ``--max-cost`` refuses to start with such a model until it is given a price.

Prompt caching: Anthropic reports cache tokens apart from ``input_tokens``; writes are priced
at 1.25x the input price (2x for the 1-hour cache) and reads at 0.1x, as Anthropic bills
them. OpenAI's ``prompt_tokens`` include ``prompt_tokens_details.cached_tokens``, priced here
at the full input price (OpenAI bills them at a discount): an OpenAI cost is an upper bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from harness.config import SETTINGS_FILE
from harness.errors import ConfigError
from harness.wording import unknown_names

BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "openai:/gpt-4o": (2.50, 10.00),
    "openai:/gpt-4o-mini": (0.15, 0.60),
    "openai:/gpt-4.1": (2.00, 8.00),
    "openai:/gpt-4.1-mini": (0.40, 1.60),
    "openai:/gpt-4.1-nano": (0.10, 0.40),
    "openai:/gpt-5": (1.25, 10.00),
    "openai:/gpt-5-mini": (0.25, 2.00),
    "openai:/gpt-5-nano": (0.05, 0.40),
    "openai:/gpt-4-turbo": (10.00, 30.00),
    "openai:/gpt-3.5-turbo": (0.50, 1.50),
    "openai:/o1": (15.00, 60.00),
    "openai:/o1-mini": (1.10, 4.40),
    "openai:/o3": (2.00, 8.00),
    "openai:/o3-mini": (1.10, 4.40),
    "openai:/o4-mini": (1.10, 4.40),
    "anthropic:/claude-3-haiku": (0.25, 1.25),
    "anthropic:/claude-3-5-haiku": (0.80, 4.00),
    "anthropic:/claude-haiku-4-5": (1.00, 5.00),
    "anthropic:/claude-3-5-sonnet": (3.00, 15.00),
    "anthropic:/claude-3-7-sonnet": (3.00, 15.00),
    "anthropic:/claude-sonnet-4": (3.00, 15.00),
    "anthropic:/claude-sonnet-4-0": (3.00, 15.00),
    "anthropic:/claude-sonnet-4-5": (3.00, 15.00),
    "anthropic:/claude-3-opus": (15.00, 75.00),
    "anthropic:/claude-opus-4": (15.00, 75.00),
    "anthropic:/claude-opus-4-0": (15.00, 75.00),
    "anthropic:/claude-opus-4-1": (15.00, 75.00),
    "anthropic:/claude-opus-4-5": (5.00, 25.00),
}
FREE_SCHEMES = ("ollama:", "python:", "echo")

# "-2024-08-06", "-20241022" and "-latest" name a snapshot of the same priced model.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")

_overrides: dict[str, tuple[float, float]] = {}
# price_of runs on every call (cache hits price the cost they saved): remember answers.
_known: dict[str, tuple[float, float] | None] = {}


def _pair(uri: str, value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, Mapping):
        extra = sorted(str(k) for k in set(value) - {"input", "output"})
        if extra:  # { ..., cached = 2 } was taken, the key ignored
            raise ConfigError(
                f"{where}: [prices] {uri!r}: {unknown_names('key', extra)}; known: input, output"
            )
        value = (value.get("input"), value.get("output"))
    try:
        inp, out = value
        if isinstance(inp, bool) or isinstance(out, bool):  # true was a price of 1
            raise TypeError
        price = (float(inp), float(out))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: [prices] {uri!r} must be [input, output] or {{ input = ..., output = ... }} "
            f"in USD per million tokens"
        ) from None
    if not all(math.isfinite(p) and p >= 0 for p in price):  # nan was "cannot be negative"
        raise ConfigError(
            f"{where}: [prices] {uri!r}: a price is a number of USD >= 0, got {value!r}"
        )
    return price


def set_prices(prices: Mapping[str, Any], where: str = SETTINGS_FILE) -> None:
    """Install prices from harness.toml (replacing earlier overrides); ``where`` names the
    file in messages (``harness.config.settings_file``)."""
    parsed = {str(uri): _pair(str(uri), value, where) for uri, value in prices.items()}
    _overrides.clear()
    _overrides.update(parsed)
    _known.clear()


def base_name(uri: str) -> str:
    """The URI with a trailing date or ``-latest`` removed."""
    return _SNAPSHOT.sub("", uri)


def price_of(uri: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when unknown."""
    if uri not in _known:
        _known[uri] = _look_up_price(uri)
    return _known[uri]


def _look_up_price(uri: str) -> tuple[float, float] | None:
    for name in dict.fromkeys((uri, base_name(uri))):
        if name in _overrides:
            return _overrides[name]
    if uri.startswith(FREE_SCHEMES):
        return (0.0, 0.0)
    for name in dict.fromkeys((uri, base_name(uri))):
        if name in BUILTIN_PRICES:
            return BUILTIN_PRICES[name]
    return None


def cost_usd(uri: str, input_tokens: float | None, output_tokens: int | None) -> float | None:
    """The cost of one call, or None when the model has no known price (``input_tokens``:
    as billed, in tokens at the input price: ``Provider.priced_input_tokens``)."""
    price = price_of(uri)
    if price is None:
        return None
    return ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1_000_000
