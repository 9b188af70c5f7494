"""The ``[calls]`` table of harness.toml: timeouts, retries and the HTTP transport.

``caller_options`` checks the table and turns it into the keyword arguments of
``harness.calls.Caller`` (``Caller.from_settings`` is the one user); a key it does not
know, or a value it cannot take, is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.config import DEFAULT_TIMEOUT_S, settings_file, stop_grace
from harness.errors import ConfigError
from harness.wording import unknown_names

__all__ = ["CALLS_KEYS", "caller_options"]

CALLS_KEYS = (
    "timeout_s",
    "max_retries",
    "retry_base_delay_s",
    "retry_max_delay_s",
    "transport",
    "stop_grace_s",  # read by the run (harness.config.stop_grace), checked here with the rest
)


def caller_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``retry``, ``timeout_s``, ``transport`` and ``rate_limits`` as harness.toml sets them
    (``[calls]``, and the rate limits of ``harness.calls.limits``)."""
    from harness.calls.limits import RateLimits
    from harness.providers import TRANSPORTS
    from harness.retry import RetryPolicy

    where = settings_file(settings)  # messages begin with the file, as config's do
    table = settings.get("calls") or {}
    unknown = sorted(set(table) - set(CALLS_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: {unknown_names('setting', unknown)} in [calls]; "
            f"known: {', '.join(CALLS_KEYS)}"
        )

    def number(name: str, default: float, kind: type = float) -> Any:
        value = table.get(name, default)
        if kind is int and not isinstance(value, int):  # 1.5 retries was 1, said nowhere
            raise ConfigError(f"{where}: [calls] {name} must be a whole number >= 0, got {value!r}")
        # nan and inf: a traceback from the HTTP client (inf, or nan with httpx), or a retry
        # that sleeps nan seconds.
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where}: [calls] {name} must be a number >= 0, got {value!r}")
        return kind(value)

    defaults = RetryPolicy()
    retry = RetryPolicy(
        max_retries=number("max_retries", defaults.max_retries, int),
        base_delay_s=number("retry_base_delay_s", defaults.base_delay_s),
        max_delay_s=number("retry_max_delay_s", defaults.max_delay_s),
    )
    stop_grace(settings)
    transport = table.get("transport")
    if transport not in (None, *TRANSPORTS):
        raise ConfigError(f"{where}: [calls] transport must be one of {', '.join(TRANSPORTS)}")
    return {
        "retry": retry,
        "timeout_s": number("timeout_s", DEFAULT_TIMEOUT_S) or DEFAULT_TIMEOUT_S,
        "transport": transport,
        "rate_limits": RateLimits(settings),
    }
