"""``harness.evaluate``: the Python entry point, shaped like ``mlflow.evaluate``.

A script written for ``mlflow.evaluate`` runs with ``harness.evaluate`` (docs/python-api.md
has the porting guide); what differs:
- ``model`` is a model URI (``openai:/gpt-4o-mini``, ``python:pkg.mod:fn``, ...) or a plain
  Python callable taking the row dict; not an MLflow model.
- ``metrics`` and ``extra_metrics`` take metric names and specs (``"regex:\\d+"``) and
  objects: MLflow's ``EvaluationMetric``s (GenAI ones become judges asking MLflow's own
  prompt), ``@scorer`` functions, plain functions, harness Metrics and Judges.
- every model and judge call is cached; ``cache="replay"`` reruns with no network.
- results are also stored in DuckDB (``result.run_id``); inside ``mlflow.start_run()`` the
  run is logged into the active MLflow run, else into the project's local MLflow store.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_EXPERIMENT,
    HOME_ENV,
    MAX_JUDGE_SAMPLES,
    resolve_home,
)
from harness.errors import ConfigError, HarnessError
from harness.evaluate_arguments import (
    check_named_columns,
    check_types,
    integer,
    listed,
    mapped,
    no_column,
    not_a_model,
    split_names,
    wrong_type,
)
from harness.evaluate_data import check_columns, forget_version, import_data, read_file
from harness.evaluate_messages import in_python_words, row_dict_hint
from harness.evaluate_mlflow import (
    check_mlflow_arguments,
    default_evaluator_config,
    harness_uri,
    linked_model,
    stored_evaluator_config,
)
from harness.evaluate_retriever import RETRIEVER, retriever_metrics, retriever_provider
from harness.slices.labels import check_by

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Home
    from harness.providers import Provider
    from harness.runner.config import RunConfig, RunResult

# model_type's default: "question-answering" when the call names no metrics; when it names
# metrics= or extra_metrics= (as an mlflow.evaluate script without model_type does), MLflow's
# own default, None, so that the script computes what it did under MLflow and nothing that
# its data cannot feed (exact_match without targets, say).
_UNSET: Any = object()
DEFAULT_MODEL_TYPE = "question-answering"

_homes_said: set[Path] = set()


def _say_home_once(path: Path, mlruns: bool) -> None:
    """The CLI's home is a flag away; a notebook's is wherever it runs: say where, once.
    ``mlruns``: the run logs to the home's own MLflow store (not to the caller's active
    MLflow run, nor nowhere with ``log_to_mlflow=False``), so mlruns/ is written there too."""
    if path not in _homes_said:
        _homes_said.add(path)
        logging.getLogger("harness").warning(
            "harness: writing %s under %s (pass home= or set HARNESS_HOME to choose the "
            "project home)",
            "harness.duckdb, cache/ and mlruns/" if mlruns else "harness.duckdb and cache/",
            path,
        )


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
    data: Any = None,
    *,
    model_type: str | None = _UNSET,
    targets: Any = None,
    predictions: str | None = None,
    inputs: str | None = None,
    context: str | None = None,
    id: str | None = None,
    metrics: Sequence[Any] | None = None,
    extra_metrics: Sequence[Any] = (),
    judges: Sequence[Any] = (),
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
    spark_remote: str | None = None,
    spark_profile: str | None = None,
    evaluator_config: dict[str, Any] | None = None,
    feature_names: Sequence[str] | None = None,
    evaluators: str | Sequence[str] | None = None,
    inference_params: dict[str, Any] | None = None,
    custom_artifacts: Sequence[Any] | None = None,
    env_manager: str = "local",
    model_config: dict[str, Any] | None = None,
    model_id: str | None = None,
    dataset_path: str | None = None,
    by: str | Sequence[str] = (),
    sample: int | float | None = None,
    seed: int | None = None,
    stratify: str | None = None,
    max_slices: int | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on ``data`` and return metrics and the per-row table.

    ``data`` is a pandas or Spark DataFrame, a list of dicts or of input strings, a numpy
    array, an ``mlflow.data`` dataset, a path to a CSV/JSONL/JSON/Parquet file, or the name
    of a stored dataset (``NAME`` or ``NAME@VERSION``). Data given in Python is stored as
    dataset ``data_name`` (default: the mlflow dataset's name, else ``"dataframe"``);
    identical content is stored once. ``metrics`` replaces the defaults of ``model_type``
    (None: no defaults); ``extra_metrics`` adds to them. Without ``model_type``, a call that
    names ``metrics`` or ``extra_metrics`` has no defaults (MLflow's ``model_type=None``),
    and one that names neither has question-answering's. ``judges`` takes judge names and
    harness Judges.

    ``model_type="retriever"``: the model (or ``predictions=`` column) gives each row a list
    of document ids, ``targets=`` its relevant ids, scored by MLflow's ``precision_at_k``,
    ``recall_at_k`` and ``ndcg_at_k`` at ``evaluator_config["retriever_k"]`` (default 3).

    ``predictions="COLUMN"`` scores outputs already in ``data`` instead of calling a model
    (the model URI ``column:COLUMN``; give ``model`` or ``predictions``, not both).
    ``evaluator_config={"col_mapping": {...}}`` maps MLflow's argument names to columns, as
    in MLflow (``inputs``, ``context`` and ``targets`` pick those columns too).

    ``spark=True`` (or a ``SparkSession``) sends the rows the cache cannot answer to Spark
    executors (see ``harness.runner.spark``); ``data`` may then also be a Spark DataFrame.
    Without a session (and none active), ``spark_remote="sc://HOST:PORT"`` names a Spark
    Connect server, and ``spark="databricks"`` a Databricks cluster through Databricks
    Connect, with the ``~/.databrickscfg`` profile ``spark_profile``: the CLI's
    ``--spark-remote``, ``--spark databricks`` and ``--profile``.

    ``evaluators`` (``"default"``), ``env_manager`` (``"local"``) and ``dataset_path`` are
    accepted so MLflow scripts run unchanged; ``inference_params`` are generation
    parameters, like ``params``. ``model_id`` (else MLflow's active model, as in MLflow 3)
    names an existing LoggedModel that the run's MLflow metrics, model input and traces link
    to, in place of harness's own model of the configuration; it must be in the store the
    run logs to. ``custom_artifacts``, and a ``model_config`` other than None (config for
    loading a logged model), are not supported.

    ``by="COLUMN"`` (or several) also reports every metric per value of a data column:
    ``tables["slices_table"]`` (column, value, metric, mean, ci_low, ci_high, rows, count,
    ci_note) and ``metrics["NAME/mean/by/COLUMN/VALUE"]``, at most ``max_slices`` per column.
    ``sample=N`` (or a fraction such as 0.1) evaluates a reproducible random subset chosen
    by ``seed``, keeping each value's share of the ``stratify`` column.
    """
    from harness.frames import to_frame

    if not isinstance(log_to_mlflow, bool):  # "no" was true: the run was logged
        raise wrong_type("log_to_mlflow", log_to_mlflow, "True or False")
    project = resolve_home(home)
    if home is None and not os.environ.get(HOME_ENV):
        _say_home_once(project.path, mlruns=bool(log_to_mlflow) and _active_mlflow_run() is None)
    if data is None:
        raise ConfigError("evaluate needs data=: a DataFrame, a file or a stored dataset name")
    check_mlflow_arguments(
        evaluators, env_manager, custom_artifacts, evaluator_config, model_config
    )
    if model is not None and not isinstance(model, str) and not callable(model):
        raise not_a_model(model)
    if isinstance(model, str):
        model = harness_uri(model)
    check_types(
        dicts={
            "params": params,
            "inference_params": inference_params,
            "evaluator_config": evaluator_config,
        },
        texts={"cache": cache, "experiment": experiment},
        optional_texts={
            "run_name": run_name,
            "data_name": data_name,
            "prompt": prompt,
            "system": system,
            "judge_model": judge_model,
            "inputs": inputs,
            "context": context,
            "id": id,
            "predictions": predictions,
            "stratify": stratify,
            "model_id": model_id,
            "spark_remote": spark_remote,  # 5 was an AttributeError traceback
            "spark_profile": spark_profile,
        },
    )
    if not experiment.strip():  # in Python's words, not the CLI's --experiment
        raise ConfigError(f"experiment= is empty ({experiment!r}): give an experiment's name")
    if run_name is not None and not run_name.strip():
        raise ConfigError(f"run_name= is empty ({run_name!r}): give the run a name, or None")
    linked = linked_model(model_id, log_to_mlflow)
    concurrency = integer("concurrency", concurrency)
    judge_samples = integer("judge_samples", judge_samples)
    if seed is not None and sample is None:  # refused as the CLI's --seed without --sample
        raise ConfigError("seed= picks which sample=; give sample=N (or a fraction) too")
    seed = integer("seed", 0 if seed is None else seed)  # 0: sampling.DEFAULT_SEED
    for name, count in (("concurrency", concurrency), ("judge_samples", judge_samples)):
        if count < 1:  # said here in Python's words, not the CLI's --concurrency
            raise ConfigError(f"{name}= must be at least 1, got {count}")
    if judge_samples > MAX_JUDGE_SAMPLES:
        raise ConfigError(
            f"judge_samples= must be at most {MAX_JUDGE_SAMPLES} (each sample is a judge call "
            f"per row), got {judge_samples}"
        )
    max_slices = None if max_slices is None else integer("max_slices", max_slices)
    if max_cost is not None:
        if isinstance(max_cost, bool) or not isinstance(max_cost, numbers.Real):
            raise wrong_type("max_cost", max_cost, "a number (USD)")
        max_cost = float(max_cost)
        if not max_cost >= 0:  # nan too: a budget no cost ever reaches
            raise ConfigError(f"max_cost= must be positive, got {max_cost}")
    # A single name or object where a list is expected is taken as a list of one, as by=
    # and evaluators= are: a str is iterable, and would be read one character at a time.
    metrics = None if metrics is None else listed(metrics, "metrics")
    extra_metrics = listed(extra_metrics, "extra_metrics")
    judges = listed(judges, "judges")
    guidelines = listed(guidelines, "guidelines")
    by = listed(by, "by")
    if not all(isinstance(column, str) for column in by):
        raise wrong_type("by", by, "a column name or a list of them")
    if feature_names is not None:
        feature_names = listed(feature_names, "feature_names")
    config_map = default_evaluator_config(evaluator_config, evaluators)
    col_mapping = config_map.get("col_mapping") or {}
    if not isinstance(col_mapping, dict):
        raise ConfigError("evaluator_config['col_mapping'] must be a dict of name -> column")
    if isinstance(targets, str):
        targets = col_mapping.get(targets, targets)  # MLflow maps targets= through col_mapping
    if isinstance(predictions, str):
        predictions = col_mapping.get(predictions, predictions)
    project = resolve_home(home)
    is_ref = isinstance(data, (str, os.PathLike))
    frame = None if is_ref else to_frame(data, targets=targets, feature_names=feature_names)
    # A file's rows, read once, before they are stored: a message names its own columns.
    table = read_file(data) if is_ref else None
    rows = frame.df if frame is not None else table  # None for a stored dataset's name
    if frame is not None:
        targets = frame.targets
        if model is None and predictions is None:
            predictions = frame.predictions
    if model is not None and predictions is not None:
        raise ConfigError("evaluate takes model= or predictions=, not both")
    if model is None and predictions is None:
        raise ConfigError(
            "evaluate needs model= (a URI or a function) or predictions= (a column of data)"
        )
    if predictions is not None:
        if rows is not None and predictions not in rows.columns:
            raise no_column("predictions", predictions, rows.columns)
        model = f"column:{predictions}"
    if model_type is _UNSET:
        named = metrics is not None or bool(extra_metrics)
        model_type = None if named else DEFAULT_MODEL_TYPE
    if model_type is not None and model_type not in [*MODEL_TYPE_METRICS, RETRIEVER]:
        raise ConfigError(
            f"unknown model_type {model_type!r}; use one of "
            f"{', '.join([*MODEL_TYPE_METRICS, RETRIEVER])}"
        )
    inputs_said = "inputs" if inputs is not None else "evaluator_config['col_mapping']['inputs']"
    if feature_names is not None and len(feature_names) == 1 and inputs is None:
        # MLflow's model reads only the feature columns: one feature is the input, whatever
        # its name and whatever other column is named like an input.
        inputs = mapped(col_mapping, "inputs", "input") or str(feature_names[0])
        inputs_said = "feature_names" if inputs == str(feature_names[0]) else inputs_said
    mapping = {
        "input": inputs or mapped(col_mapping, "inputs", "input"),
        "expected": targets,
        "context": context or mapped(col_mapping, "context"),
        "id": id,
        # The column of outputs is not the expected answer, whatever its name (`answer`).
        "skip": () if predictions is None else (predictions,),
        # With the outputs in the data, metrics of outputs and targets need no input (as in
        # mlflow.evaluate): data with no input column gives rows with an empty input.
        "require_input": predictions is None,
    }
    provider = None
    model_uri = model
    if model_type == RETRIEVER and model is not None:  # its list of ids: stored as JSON
        provider = retriever_provider(model, cache)
        model_uri = provider.uri if provider is not None else model
    elif callable(model):
        from harness.providers.python import PythonProvider

        provider = PythonProvider.from_function(model)
        model_uri = provider.uri
    if rows is not None:
        columns = [str(c) for c in rows.columns]
        try:  # an empty or repeated name is said as such, not as a column the data lacks
            check_by(by)
        except ConfigError as e:
            in_python_words(e)
            raise
        context_said = "context" if context else "evaluator_config['col_mapping']['context']"
        check_named_columns(
            columns,
            {inputs_said: mapping["input"], "targets": targets, context_said: mapping["context"]},
        )
        try:  # no input column: `name one with --input` said in evaluate's words
            check_columns("by", by, columns, mapping)
            check_columns("stratify", [stratify] if stratify else [], columns, mapping)
        except HarnessError as e:
            in_python_words(e)
            raise
    defaults: Sequence[Any] = ()
    if model_type == RETRIEVER:  # MLflow's metric objects, at evaluator_config's retriever_k
        defaults = retriever_metrics(config_map, extra_metrics) if metrics is None else ()
    elif model_type is not None:
        defaults = MODEL_TYPE_METRICS[model_type]
    chosen = list(metrics) if metrics is not None else list(defaults)
    if not chosen and not extra_metrics and not judges:
        raise ConfigError(  # as mlflow.evaluate: with no model_type, say what to compute
            "nothing to compute: give model_type=, metrics=, extra_metrics= or judges="
        )
    metric_specs, objects = split_names([*chosen, *extra_metrics])
    stored_config, left_out = stored_evaluator_config(config_map)  # for `run --resume`
    judge_names, judge_objects = split_names(judges)
    from harness.runner.config import RunConfig
    from harness.sampling import parse_size

    config = RunConfig(
        data="",  # the stored version's ref, once the data is imported (the last step)
        model=str(model_uri),
        prompt=prompt,
        system=system,
        params={**(params or {}), **(inference_params or {})},
        metrics=metric_specs,
        judges=judge_names,
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
        by=list(by),
        max_slices=max_slices,
        mlflow=log_to_mlflow,
        model_id=linked[0] if linked else None,
        retriever=model_type == RETRIEVER,
        evaluator_config=stored_config or None,
        evaluator_config_left_out=left_out,
    )
    ref, created = import_data(data, frame, table, data_name, project.path, mapping)
    config = dataclasses.replace(config, data=ref)
    try:
        return _run(
            config,
            project,
            provider,
            (spark, spark_remote, spark_profile),
            [*objects, *judge_objects],
            config_map,
            linked[1] if linked else "",
        )
    except BaseException as e:
        # The run's checks need the stored rows, so the data is imported first; a call they
        # refuse leaves nothing behind: the version it created goes unless a run uses it.
        if created is not None:
            forget_version(project, created)
        if isinstance(e, HarnessError):
            in_python_words(e)
        raise


def _run(
    config: RunConfig,
    project: Home,
    provider: Provider | None,
    spark_flags: tuple[Any, str | None, str | None],
    objects: list[Any],
    evaluator_config: dict[str, Any],
    model_named: str,
) -> EvaluationResult:
    from harness.runner.run import run_eval
    from harness.runner.spark_session import SparkTarget
    from harness.runner.summary import labelled_judges, results_table
    from harness.store.runs import get_run, load_outputs_and_scores

    spark, spark_remote, spark_profile = spark_flags
    session = None if isinstance(spark, (bool, str)) or spark is None else spark
    target = None
    if session is None:
        target = SparkTarget.from_flags(
            project.settings,
            spark="on" if spark is True else spark or None,
            remote=spark_remote,
            profile=spark_profile,
        )
    config.spark = session is not None or target is not None
    mlflow_run = _active_mlflow_run() if config.mlflow else None
    if config.model_id is not None:  # before the run: in the store the run logs to
        from harness.tracking.model_link import check_logged_model

        uri = mlflow_run[0] if mlflow_run else project.tracking_uri
        check_logged_model(uri, config.model_id, named=model_named, own_store=not mlflow_run)
    import warnings

    from harness.errors import UnknownParamWarning
    from harness.runner.plan import param_warnings

    for said in param_warnings(dict.fromkeys(config.params, "params"), config, project, objects):
        warnings.warn(said, UnknownParamWarning, stacklevel=3)
    result = run_eval(
        config,
        home=project,
        provider=provider,
        spark_session=session,
        spark_target=target,
        scoring_objects=objects,
        evaluator_config=evaluator_config,
        mlflow_run=mlflow_run,
    )
    outputs, scores = load_outputs_and_scores(project.db_path, result.run_id)
    labelled = labelled_judges(get_run(project.db_path, result.run_id).config)
    table = results_table(outputs, scores, labelled)
    _warn_failures(result)
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


def _warn_failures(result: RunResult) -> None:
    """Say, as a warning naming the first reasons, that rows failed or metrics raised.

    Without it a notebook shows empty metrics and no reason (a function written for
    mlflow.evaluate takes a DataFrame, say, and fails on every row dict).
    """
    import warnings

    from harness.errors import RowsFailedWarning

    parts = []
    if result.errors:
        reasons = "; ".join(f"{n} x {e}" for e, n in result.error_reasons[:3])
        parts.append(
            f"{result.errors} of {result.rows} rows failed ({reasons}): the rows are in "
            f"the table with their error{row_dict_hint([e for e, _ in result.error_reasons])}"
        )
    if result.metric_errors:
        shown = "; ".join(w for w in result.warnings if w.startswith("metric"))
        parts.append(f"metrics failed ({shown})")
    if parts:
        warnings.warn("; ".join(parts), RowsFailedWarning, stacklevel=4)


def _active_mlflow_run() -> tuple[str, str] | None:
    """``(tracking_uri, run_id)`` of the caller's active MLflow run, if there is one.

    A script that never imported MLflow has no active run, so MLflow is not imported here.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    run = mlflow.active_run()
    if run is None:
        return None
    return str(mlflow.get_tracking_uri()), str(run.info.run_id)
