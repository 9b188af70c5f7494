"""``harness.evaluate(model_type="retriever")``, as ``mlflow.evaluate`` evaluates a retriever.

The model (a function of the row dict, a ``python:`` URI, or the static
``predictions=`` column) gives each row a list of retrieved document ids, and ``targets=``
holds each row's list of relevant ids. The default metrics are MLflow's own
``precision_at_k(k)``, ``recall_at_k(k)`` and ``ndcg_at_k(k)``, with
``k = evaluator_config["retriever_k"]`` (3 by default), so their names and values are
MLflow's (``precision_at_3/mean``, ``/variance``, ``/p90``). A list of ids is stored (in
DuckDB, the tables, ``runs show``, the report and MLflow's per-row table) as its JSON text,
``["d1", "d2"]``. The relevant ids are stored as text, as every expected answer is (``[1, 5]``
as ``"1"``, ``"5"``, where MLflow's table keeps the integers), so ids are compared as text:
``7`` matches ``"7"``, which MLflow's metrics do not match.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.providers.python import PythonProvider

__all__ = ["DEFAULT_RETRIEVER_K", "RETRIEVER", "retriever_metrics", "retriever_provider"]

RETRIEVER = "retriever"
DEFAULT_RETRIEVER_K = 3  # MLflow's default evaluator's


def retriever_metrics(evaluator_config: Mapping[str, Any], given: Sequence[Any] = ()) -> list[Any]:
    """MLflow's three retriever metrics at ``retriever_k`` (an int of at least 1: MLflow
    logs nothing for another ``k``, with a warning; harness refuses it), but for one that an
    MLflow metric of ``given`` (the call's extra_metrics) names: the usual script adds
    ``precision_at_k(k)`` for k = 1, 3, 5, and MLflow computes precision_at_3 once (a name's
    last metric is the one it keeps), where harness would refuse two metrics of one name."""
    k = evaluator_config.get("retriever_k", DEFAULT_RETRIEVER_K)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ConfigError(
            f"evaluator_config['retriever_k'] is how many retrieved documents the metrics "
            f"read: a whole number of at least 1, not {k!r}"
        )
    from mlflow.metrics import ndcg_at_k, precision_at_k, recall_at_k

    with warnings.catch_warnings():  # MLflow warns that they are deprecated: not the user's call
        warnings.simplefilter("ignore", FutureWarning)
        defaults = [make(int(k)) for make in (precision_at_k, recall_at_k, ndcg_at_k)]
    from mlflow.models import EvaluationMetric

    named = {(m.name, m.version) for m in given if isinstance(m, EvaluationMetric)}
    return [m for m in defaults if (m.name, m.version) not in named]


def retriever_provider(model: str | Callable[..., Any], cache: str) -> PythonProvider | None:
    """The provider of a retriever's function (a callable or a ``python:`` URI), whose list
    of ids is stored as its JSON text; None for any other model URI (a ``column:`` of lists
    is stored so by its provider, and a text model's answer is its text)."""
    from harness.providers.python import PythonProvider

    if callable(model):
        return PythonProvider.from_function(model, ids=True)
    scheme, _, target = model.partition(":")
    if scheme == "python":
        from harness.intercept.credentials import keys_for_replay

        with keys_for_replay(cache):  # as the run loads it: its module may build a client
            return PythonProvider(target, ids=True)
    return None
