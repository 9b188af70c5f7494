"""MLflow 3 scorers (``mlflow.genai.scorers``) as harness metrics.

A function decorated with ``@scorer`` (or a ``Scorer`` subclass of your own) is your code:
it becomes a metric called once per row with what ``mlflow.genai.evaluate`` would pass it
(``inputs``, ``outputs``, ``expectations``; see ``scorer_arguments``), and a ``Feedback`` it
returns keeps its rationale. Its ``aggregations`` are reported under MLflow's names.

MLflow's own LLM scorers (``Correctness()``, ``Guidelines``, ``make_judge`` judges,
third-party scorers) ask their judge model through MLflow's LLM client, not through
harness's call path, so their calls could be neither cached nor replayed: they are refused
with the harness judge that does the same job.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from harness.errors import MetricError
from harness.metrics import Metric
from harness.scoring.functions import scorer_metric

__all__ = ["adapt_scorer", "is_scorer"]

_REFUSED = {
    "builtin": "is one of MLflow's LLM judges, which call their model outside harness's cache; "
    "use a harness judge (judges=['correctness'], see `harness judges list`)",
    "guidelines": "calls its judge model outside harness's cache; use harness's guidelines "
    "judge: judges=['guidelines'], guidelines=[...]",
    "instructions": "(mlflow.genai.judges.make_judge) calls its judge model outside harness's "
    "cache; build it with harness.judges.make_judge, or a [judges.NAME] table",
    "third_party": "calls a third-party library's own LLM client, outside harness's cache",
}


def is_scorer(obj: Any) -> bool:
    """Whether ``obj`` is an MLflow 3 Scorer (without importing MLflow)."""
    module = sys.modules.get("mlflow.genai.scorers.base")
    return module is not None and isinstance(obj, module.Scorer)


def adapt_scorer(obj: Any) -> Metric:
    """The metric an MLflow scorer is; MetricError for one harness cannot run as code."""
    kind = str(getattr(getattr(obj, "kind", None), "value", "class"))
    name = str(obj.name)
    if kind not in ("decorator", "class"):
        reason = _REFUSED.get(kind, f"is a {kind} scorer, which harness cannot run as code")
        raise MetricError(f"MLflow scorer {name!r} {reason}")
    # The decorated function itself: what the scorer calls, and what travels to a Spark
    # executor as plain code rather than as MLflow's dynamically built class.
    fn = getattr(obj, "_original_func", None) or obj
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise MetricError(f"MLflow scorer {name!r}: cannot read its signature") from None
    parameters = [p for p in parameters if p.name != "self"]
    aggregations = tuple(a for a in (obj.aggregations or ()) if a not in ("mean", "p90"))
    return scorer_metric(
        fn,
        name=name,
        direction=1,
        parameters=parameters,
        description=(obj.description or "").strip().splitlines()[0][:100]
        if obj.description
        else None,
        aggregations=aggregations,
        origin="mlflow",
    )
