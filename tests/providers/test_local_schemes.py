"""``harness.providers.LOCAL_SCHEMES`` names the providers that answer in this process (no
HTTP client): a run decides from it, before any provider is imported, whether to import the
client beside its planning (``harness.runner.preload.client_preload``)."""

from __future__ import annotations

import importlib

from harness.providers import LOCAL_SCHEMES, PROVIDERS


def test_the_local_schemes_are_those_of_the_providers_that_answer_in_process() -> None:
    for scheme, target in PROVIDERS.items():
        module, _, name = target.partition(":")
        provider = getattr(importlib.import_module(module), name)
        assert provider.local == (scheme in LOCAL_SCHEMES), scheme
