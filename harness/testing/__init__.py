"""Test helpers that are real things: a local fake LLM HTTP server for tests and benchmarks.

``FakeLLMServer`` is imported on first use, so that ``python -m harness.testing.fake_llm``
does not import its own module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.testing.fake_llm import FakeLLMConfig, FakeLLMServer

__all__ = ["FakeLLMConfig", "FakeLLMServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.testing import fake_llm

        return getattr(fake_llm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
