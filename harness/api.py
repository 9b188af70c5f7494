"""``harness.evaluate``: the Python entry point, shaped like ``mlflow.evaluate``.

Differences from ``mlflow.evaluate`` (see docs/python-api.md):
- ``model`` is a model URI (``openai:/gpt-4o-mini``, ``python:pkg.mod:fn``, ...) or a plain
  Python callable taking the row dict; not an MLflow model.
- ``targets`` names the expected-answer column, as in MLflow; ``inputs``, ``context`` and
  ``id`` name the other columns when they are not the defaults.
- ``metrics`` takes harness metric names; ``judges`` takes judge names (LLM-as-a-judge).
- every model and judge call is cached; ``cache="replay"`` reruns with no network.
- results are also stored in DuckDB (``result.run_id``) and logged to the local MLflow store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import DEFAULT_CONCURRENCY, DEFAULT_EXPERIMENT, resolve_home
from harness.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from harness.runner.config import RunResult

MODEL_TYPE_METRICS: dict[str, tuple[str, ...]] = {
    "question-answering": ("exact_match", "token_f1", "rougeL", "word_count", "latency"),
    "text-summarization": (
        "rouge1",
        "rouge2",
        "rougeL",
        "flesch_kincaid_grade_level",
        "ari_grade_level",
        "word_count",
        "latency",
    ),
    "text": ("flesch_kincaid_grade_level", "ari_grade_level", "word_count", "latency"),
}


@dataclass
class EvaluationResult:
    """What ``evaluate`` returns: ``.metrics`` and ``.tables`` as in MLflow, plus ids."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    run_id: str
    mlflow_run_id: str | None
    result: RunResult = field(repr=False)


def evaluate(
    model: str | Callable[[dict[str, Any]], str] | None = None,
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    model_type: str = "question-answering",
    targets: str | None = None,
    predictions: str | None = None,
    inputs: str | None = None,
    context: str | None = None,
    id: str | None = None,
    metrics: Sequence[str] | None = None,
    extra_metrics: Sequence[str] = (),
    judges: Sequence[str] = (),
    judge_model: str | None = None,
    judge_samples: int = 1,
    guidelines: Sequence[str] = (),
    judges_file: str | os.PathLike[str] | None = None,
    prompt: str | None = None,
    system: str | None = None,
    params: dict[str, Any] | None = None,
    cache: str = "use",
    concurrency: int = DEFAULT_CONCURRENCY,
    max_cost: float | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    data_name: str | None = None,
    log_to_mlflow: bool = True,
    home: str | os.PathLike[str] | None = None,
    spark: Any = False,
    by: str | Sequence[str] = (),
    sample: int | float | None = None,
    seed: int = 0,
    stratify: str | None = None,
    max_slices: int | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on ``data`` and return metrics and the per-row table.

    ``data`` is a DataFrame (imported as dataset ``data_name``, default ``"dataframe"``;
    identical content is stored once), a path to a CSV/JSONL/JSON/Parquet file, or the
    name of a stored dataset (``NAME`` or ``NAME@VERSION``). ``metrics`` replaces the
    defaults of ``model_type``; ``extra_metrics`` adds to them.

    ``predictions="COLUMN"`` scores outputs already in ``data`` instead of calling a model
    (the model URI ``column:COLUMN``; give ``model`` or ``predictions``, not both).

    ``spark=True`` (or a ``SparkSession``) sends the rows the cache cannot answer to Spark
    executors (see ``harness.runner.spark``); ``data`` may then also be a Spark DataFrame.

    ``by="COLUMN"`` (or several) also reports every metric per value of a data column:
    ``tables["slices_table"]`` (column, value, metric, mean, ci_low, ci_high, rows, count)
    and ``metrics["NAME/mean/by/COLUMN/VALUE"]``, at most ``max_slices`` values per column.
    ``sample=N`` (or a fraction such as 0.1) evaluates a reproducible random subset chosen
    by ``seed``, keeping each value's share of the ``stratify`` column.
    """
    from harness import data as data_module
    from harness.runner.config import RunConfig
    from harness.runner.run import run_eval
    from harness.sampling import parse_size
    from harness.store.runs import load_outputs, load_scores

    project = resolve_home(home)
    if data is None:
        raise ConfigError("evaluate needs data=: a DataFrame, a file or a stored dataset name")
    if model is not None and predictions is not None:
        raise ConfigError("evaluate takes model= or predictions=, not both")
    if model is None and predictions is None:
        raise ConfigError(
            "evaluate needs model= (a URI or a function) or predictions= (a column of data)"
        )
    if predictions is not None:
        model = f"column:{predictions}"
    if model_type not in MODEL_TYPE_METRICS:
        raise ConfigError(
            f"unknown model_type {model_type!r}; use one of {', '.join(MODEL_TYPE_METRICS)}"
        )
    mapping = {"input": inputs, "expected": targets, "context": context, "id": id}
    if isinstance(data, (str, os.PathLike)) and Path(data).suffix.lower() in data_module.FORMATS:
        imported = data_module.import_file(
            data, name=data_name or Path(data).stem, home=project.path, **mapping
        )
        ref = imported.dataset.ref
    elif isinstance(data, (str, os.PathLike)):
        ref = str(data)
    else:
        imported = data_module.import_dataframe(
            data, name=data_name or "dataframe", home=project.path, **mapping
        )
        ref = imported.dataset.ref
    provider = None
    model_uri = model
    if callable(model):
        from harness.providers.python import PythonProvider

        provider = PythonProvider.from_function(model)
        model_uri = provider.uri
    chosen = list(metrics) if metrics is not None else list(MODEL_TYPE_METRICS[model_type])
    config = RunConfig(
        data=ref,
        model=str(model_uri),
        prompt=prompt,
        system=system,
        params=dict(params or {}),
        metrics=list(dict.fromkeys([*chosen, *extra_metrics])),
        judges=list(judges),
        judge_model=judge_model,
        judge_samples=judge_samples,
        guidelines=list(guidelines),
        judges_file=str(judges_file) if judges_file is not None else None,
        cache=cache,
        concurrency=concurrency,
        experiment=experiment,
        run_name=run_name,
        max_cost=max_cost,
        sample=parse_size(sample, "sample=") if sample is not None else None,
        sample_seed=seed,
        stratify=stratify,
        by=[by] if isinstance(by, str) else list(by),
        max_slices=max_slices,
        mlflow=log_to_mlflow,
        spark=spark is not False and spark is not None,
    )
    session = None if isinstance(spark, bool) or spark is None else spark
    result = run_eval(config, home=project, provider=provider, spark_session=session)
    from harness.runner.summary import results_table

    table = results_table(
        load_outputs(project.db_path, result.run_id), load_scores(project.db_path, result.run_id)
    )
    tables = {"eval_results_table": table}
    if result.slices:
        from harness.slices import slices_frame

        tables["slices_table"] = slices_frame(result.slices)
    return EvaluationResult(
        metrics={**result.flat_metrics(), **result.slice_metrics()},
        tables=tables,
        run_id=result.run_id,
        mlflow_run_id=result.mlflow_run_id,
        result=result,
    )
