"""The registry: URI schemes map to provider modules, imported only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.errors import ModelURIError
from harness.providers import PROVIDERS, resolve


def test_importing_the_registry_imports_no_provider_and_no_httpx() -> None:
    code = (
        "import sys, harness.providers; "
        "print(sorted(m for m in sys.modules if m.startswith('harness.providers.') "
        "or m in ('httpx', 'aiohttp')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "['harness.providers.base']"


@pytest.mark.parametrize("scheme", sorted(PROVIDERS))
def test_every_scheme_resolves(scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = {"python": "python:harness.baselines:context_overlap", "echo": "echo"}.get(
        scheme, f"{scheme}:/some-model"
    )
    provider = resolve(uri)
    assert provider.scheme == scheme
    assert provider.uri == uri


def test_unknown_and_empty_uris() -> None:
    with pytest.raises(ModelURIError, match="unknown model URI"):
        resolve("gemini:/pro")
    with pytest.raises(ModelURIError, match="names no model"):
        resolve("openai:/")
