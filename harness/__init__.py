"""harness: an offline-first local harness for evaluating LLM applications.

The public API is small and imported lazily, so ``import harness`` (and ``harness
--help``) never pays for pandas, DuckDB or MLflow::

    import harness
    result = harness.evaluate(model="python:harness.baselines:context_overlap",
                              data="pubmedqa", metrics=["exact_match", "rougeL"])
    result.metrics["rougeL/mean"]
    result.tables["eval_results_table"]

    with harness.replay("tests/cassettes/rag.jsonl"):   # the app's own LLM calls, replayed
        my_app.answer("What is RAG?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness._version import __version__

__all__ = [
    "EvaluationResult",
    "HarnessError",
    "Recorder",
    "RunConfig",
    "__version__",
    "evaluate",
    "replay",
]

if TYPE_CHECKING:
    from harness.api import EvaluationResult, evaluate
    from harness.errors import HarnessError
    from harness.recorder import Recorder, replay
    from harness.runner.config import RunConfig

_LAZY = {
    "evaluate": "harness.api",
    "EvaluationResult": "harness.api",
    "HarnessError": "harness.errors",
    "RunConfig": "harness.runner.config",
    "replay": "harness.recorder",
    "Recorder": "harness.recorder",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
