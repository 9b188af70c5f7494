"""harness: an offline-first local harness for evaluating LLM applications.

The public API is small and imported lazily, so ``import harness`` (and ``harness
--help``) never pays for pandas, DuckDB or MLflow::

    import harness
    result = harness.evaluate(model="python:harness.baselines:context_overlap",
                              data="pubmedqa", metrics=["exact_match", "rougeL"])
    result.metrics["rougeL/mean"]
    result.tables["eval_results_table"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness._version import __version__

__all__ = [
    "EvaluationResult",
    "HarnessError",
    "RunConfig",
    "__version__",
    "evaluate",
]

if TYPE_CHECKING:
    from harness.api import EvaluationResult, evaluate
    from harness.errors import HarnessError
    from harness.runner.config import RunConfig

_LAZY = {
    "evaluate": "harness.api",
    "EvaluationResult": "harness.api",
    "HarnessError": "harness.errors",
    "RunConfig": "harness.runner.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
