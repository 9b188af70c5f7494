"""The checks a run passes before it is created: credentials, keys, prices."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.providers import resolve
from harness.providers.pricing import price_of, set_prices
from harness.runner.config import RunConfig
from harness.runner.plan import preflight


def config(**fields: object) -> RunConfig:
    return RunConfig(data="qa", model="openai:/gpt-4o-mini", **fields)  # type: ignore[arg-type]


def test_preflight_refuses_credentials_in_params() -> None:
    with pytest.raises(ConfigError, match="--param api_key=... would store a credential"):
        preflight(config(params={"api_key": "sk-x"}), {}, [])


def test_preflight_needs_keys_except_for_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = resolve("openai:/gpt-4o-mini")
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        preflight(config(), {}, [provider, None])
    preflight(config(cache="replay"), {}, [provider])  # replay sends nothing: no key needed
    preflight(config(), {}, [provider], check_credentials=False)


def test_preflight_needs_a_price_for_max_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    unknown = resolve("openai:/my-finetune")
    with pytest.raises(ConfigError, match=r'\[prices\] "openai:/my-finetune"'):
        preflight(config(max_cost=1.0), {}, [unknown])
    try:
        preflight(config(max_cost=1.0), {"prices": {"openai:/my-finetune": [1, 2]}}, [unknown])
        assert price_of("openai:/my-finetune") == (1.0, 2.0)
    finally:
        set_prices({})
    preflight(config(max_cost=1.0), {}, [resolve("echo")])  # local models cost nothing
