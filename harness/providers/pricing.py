"""Prices per model, in USD per million tokens (input, output).

Built in for common hosted models; ``[prices]`` in harness.toml overrides or adds, e.g.
``"openai:/gpt-4o-mini" = [0.15, 0.60]``. Local models (ollama, python, echo) cost 0.
A model with no known price has cost ``None``: reported as unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "openai:/gpt-4o": (2.50, 10.00),
    "openai:/gpt-4o-mini": (0.15, 0.60),
    "openai:/gpt-4.1": (2.00, 8.00),
    "openai:/gpt-4.1-mini": (0.40, 1.60),
    "openai:/gpt-4.1-nano": (0.10, 0.40),
    "openai:/o3-mini": (1.10, 4.40),
    "anthropic:/claude-3-5-haiku-latest": (0.80, 4.00),
    "anthropic:/claude-3-5-sonnet-latest": (3.00, 15.00),
    "anthropic:/claude-sonnet-4-0": (3.00, 15.00),
    "anthropic:/claude-opus-4-0": (15.00, 75.00),
}
FREE_SCHEMES = ("ollama:", "python:", "echo")

_overrides: dict[str, tuple[float, float]] = {}


def set_prices(prices: Mapping[str, tuple[float, float] | list[float]]) -> None:
    """Install prices from harness.toml (replacing earlier overrides)."""
    _overrides.clear()
    for uri, pair in prices.items():
        inp, out = pair
        _overrides[uri] = (float(inp), float(out))


def price_of(uri: str) -> tuple[float, float] | None:
    if uri in _overrides:
        return _overrides[uri]
    if uri.startswith(FREE_SCHEMES):
        return (0.0, 0.0)
    return BUILTIN_PRICES.get(uri)


def cost_usd(uri: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    price = price_of(uri)
    if price is None:
        return None
    return ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1_000_000
