"""Test helpers that are real things: a local fake LLM HTTP server for tests and benchmarks,
and a local Spark Connect server.

Both are imported on first use, so that ``python -m harness.testing.fake_llm`` does not
import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.testing.fake_llm import FakeLLMConfig, FakeLLMServer
    from harness.testing.spark_connect import SparkConnectServer

__all__ = ["FakeLLMConfig", "FakeLLMServer", "SparkConnectServer"]

_MODULES = {
    "FakeLLMConfig": "harness.testing.fake_llm",
    "FakeLLMServer": "harness.testing.fake_llm",
    "SparkConnectServer": "harness.testing.spark_connect",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
