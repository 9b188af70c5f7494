"""What scores a run: metrics and judges, from names, ``--metric`` specs and Python objects.

:func:`resolve_scoring` turns what a user gave into harness metrics and judges:

- text (``--metric`` values, ``metrics=["rouge1"]``): names, parameterized kinds,
  ``python:MODULE:FUNCTION`` and ``[metrics.NAME]`` tables (:mod:`harness.scoring.specs`);
- objects (``harness.evaluate(extra_metrics=[...])``): harness ``Metric``, ``BatchMetric``
  and ``Judge`` objects as they are; plain functions by their signature
  (:mod:`~harness.scoring.functions`); MLflow ``EvaluationMetric`` objects, GenAI metrics
  becoming judges that ask MLflow's own prompt (:mod:`~harness.scoring.mlflow_metrics`);
  MLflow 3 ``@scorer`` functions (:mod:`~harness.scoring.mlflow_scorers`).

A ``python:`` target may name any of those objects. :func:`check_scoring` then checks the
lot against the dataset before anything runs: a metric needing expected answers, a column
the data lacks, two metrics with one name, all fail in one line.

This package sits above ``metrics`` and ``judges`` (it builds both), below the runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import MetricError
from harness.judges.judge import Judge
from harness.metrics import (
    BatchMetric,
    Metric,
    build_metric,
    get_metric,
    kind_names,
    kind_parameters,
)
from harness.scoring import versions
from harness.scoring.shape import DataShape, Source
from harness.scoring.specs import (
    from_table,
    kind_metric,
    parse_spec,
    table_names,
    unknown_name,
)

__all__ = [
    "DataShape",
    "Scoring",
    "Source",
    "adapt",
    "check_scoring",
    "resolve_scoring",
    "resolve_spec",
]

Scorer = Metric | BatchMetric | Judge


@dataclass
class Scoring:
    """A run's resolved metrics: per-row ones, batch ones, and judges from objects."""

    metrics: list[Metric] = field(default_factory=list)
    batch: list[BatchMetric] = field(default_factory=list)
    judges: list[Judge] = field(default_factory=list)
    # What defined each metric (not judge: a judge has a version of its own), by name.
    definitions: dict[str, versions.Definition] = field(default_factory=dict)

    def add(self, found: Scorer) -> None:
        if isinstance(found, Judge):
            self.judges.append(found)
        elif isinstance(found, BatchMetric):
            self.batch.append(found)
        else:
            self.metrics.append(found)

    @property
    def names(self) -> list[str]:
        found: list[Scorer] = [*self.metrics, *self.batch, *self.judges]
        return [item.name for item in found]


def adapt(obj: Any, *, shape: DataShape | None = None, name: str | None = None) -> Scorer:
    """The harness metric or judge for one object a user passed (see the module)."""
    from harness.scoring.functions import adapt_function
    from harness.scoring.mlflow_metrics import adapt_evaluation_metric, is_evaluation_metric
    from harness.scoring.mlflow_scorers import adapt_scorer, is_scorer

    found: Scorer
    if isinstance(obj, (Metric, BatchMetric, Judge)):
        found = obj
    elif is_evaluation_metric(obj):
        found = adapt_evaluation_metric(obj, shape=shape)
    elif is_scorer(obj):
        found = adapt_scorer(obj)
    elif isinstance(obj, type) or not callable(obj):
        shown = repr(obj)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise MetricError(
            f"cannot use {type(obj).__name__} {shown} as a metric: give a metric name, a "
            "harness Metric or Judge, a function, an MLflow EvaluationMetric or an MLflow "
            "scorer"
        )
    else:
        found = adapt_function(obj, shape=shape)
    if name and found.name != name:
        found = dataclasses.replace(found, name=name)
    return found


def _load_python_defined(
    target: str, name: str | None, shape: DataShape | None
) -> tuple[Scorer, Any]:
    """The scorer ``target`` names, and the object it was made from."""
    from harness.imports import load_object

    obj = load_object(
        target, what="python metric", error=MetricError, form="python:MODULE:FUNCTION"
    )
    try:
        return adapt(obj, shape=shape, name=name), obj
    except MetricError as e:
        raise MetricError(f"python metric {target!r}: {e}") from None


def resolve_spec(
    text: str,
    *,
    settings: Mapping[str, Any] | None = None,
    home: Path | None = None,
    shape: DataShape | None = None,
) -> Scorer:
    """The metric (or judge) one ``--metric`` value names; see :mod:`harness.scoring.specs`.

    ``settings`` is the parsed harness.toml of ``home`` (where its ``@FILE`` values and
    ``[metrics.NAME]`` tables are read from).
    """
    return _resolve_defined(text, settings=settings, home=home, shape=shape)[0]


def _resolve_defined(
    text: str,
    *,
    settings: Mapping[str, Any] | None,
    home: Path | None,
    shape: DataShape | None,
) -> tuple[Scorer, versions.Definition]:
    """``resolve_spec``, with what defined the metric (``harness.scoring.versions``)."""
    settings = settings or {}
    spec = parse_spec(text)
    if spec.kind is None:
        name = spec.text.strip()
        tables = settings.get("metrics") or {}
        if name in table_names(settings):
            base = home or Path.cwd()
            loaded: list[Any] = []

            def load(target: str, label: str) -> Scorer:
                found, obj = _load_python_defined(target, label, shape)
                loaded.append(obj)
                return found

            found = from_table(
                name, tables[name], source=str(base / "harness.toml"), base_dir=base, load=load
            )
            return found, versions.table(name, tables[name], base, loaded[0] if loaded else None)
        try:
            metric = get_metric(name)
        except MetricError:
            if name in kind_names():
                return build_metric(name, None, {}), versions.kind_spec(name, {}, Path.cwd())
            raise unknown_name(name, settings) from None
        return metric, _registered(metric)
    if spec.kind == "python":
        found, obj = _load_python_defined(str(spec.value), spec.label, shape)
        return found, versions.python_object(obj, f"function python:{spec.value}")
    params = kind_parameters(spec.kind, spec.value)
    return kind_metric(spec, Path.cwd()), versions.kind_spec(text, params, Path.cwd())


def _registered(metric: Metric | BatchMetric) -> versions.Definition:
    """A metric registered by name: harness's own (its function in harness), or one a
    user registered from Python (``register_metric``), versioned by its function."""
    if _is_builtin(metric):
        return versions.builtin(metric.name)
    return versions.python_object(metric, f"registered metric {metric.name!r}")


def _is_builtin(metric: Metric | BatchMetric) -> bool:
    return metric.origin == "builtin" and getattr(metric.fn, "__module__", "").startswith(
        "harness."
    )


def _object_definition(obj: Any) -> versions.Definition:
    """An object given in Python: harness's own metric (MLflow's latency is harness's)
    by its name, anything else by its source."""
    if isinstance(obj, (Metric, BatchMetric)) and _is_builtin(obj):
        return versions.builtin(obj.name)
    return versions.python_object(obj, "Python object")


def resolve_scoring(
    specs: Sequence[str],
    objects: Sequence[Any] = (),
    *,
    settings: Mapping[str, Any] | None = None,
    home: Path | None = None,
    shape: DataShape | None = None,
) -> Scoring:
    """Every metric of a run, from ``specs`` (text) and ``objects``, each name once."""
    scoring = Scoring()
    found = [
        _resolve_defined(t, settings=settings, home=home, shape=shape) for t in dict.fromkeys(specs)
    ]
    found += [(adapt(obj, shape=shape), _object_definition(obj)) for obj in _once(objects)]
    seen: dict[str, Scorer] = {}
    for item, definition in found:
        if item.name in seen:
            if seen[item.name] is item:  # MLflow's latency() is harness's latency: once
                continue
            raise MetricError(
                f"two metrics are named {item.name!r}; name one with LABEL=... on the "
                "command line or [metrics.LABEL] in harness.toml"
            )
        seen[item.name] = item
        scoring.add(item)
        if not isinstance(item, Judge):
            scoring.definitions[item.name] = definition
    return scoring


def _once(objects: Sequence[Any]) -> list[Any]:
    """``objects`` with each metric once: an object given twice, or two of MLflow's own
    offline metrics of one name (``exact_match()`` made twice, ``precision_at_k(3)`` beside
    the retriever's default), compute the same thing, and mlflow.evaluate computes it once.
    Any other two metrics of one name are refused, naming it."""
    from harness.scoring.mlflow_metrics import is_evaluation_metric, same_builtin

    kept: list[Any] = []
    for obj in objects:
        if not any(
            obj is other
            or (
                is_evaluation_metric(obj)
                and is_evaluation_metric(other)
                and same_builtin(obj, other)
            )
            for other in kept
        ):
            kept.append(obj)
    return kept


def check_scoring(
    scoring: Scoring,
    *,
    judges: Sequence[Judge] = (),
    dataset: str,
    has_expected: bool,
    has_context: bool,
    columns: Sequence[str] = (),
) -> None:
    """Fail before the run, in one line, for what the data cannot give a metric.

    ``judges`` are the run's judges named with ``--judge`` (``scoring`` has the others).
    """
    names = {*scoring.names, *(j.name for j in judges)}
    taken = {j.name for j in judges} & set(scoring.names)
    if taken:
        raise MetricError(f"{sorted(taken)[0]!r} is both a metric and a judge; rename one")
    code: list[Metric | BatchMetric] = [*scoring.metrics, *scoring.batch]
    for metric in code:
        needs_context = getattr(metric, "needs_context", False)
        for needed, what, present, flag, python in (
            (metric.needs_expected, "expected answers", has_expected, "--expected", "targets="),
            (needs_context, "contexts", has_context, "--context", "context="),
        ):
            if needed and not present:
                raise MetricError(
                    f"metric {metric.name!r} needs {what}, and {dataset} has none "
                    f"(map a column with {flag} at import, {python} in harness.evaluate)"
                )
    for batch in scoring.batch:
        for column in batch.columns:
            if column not in columns:
                raise MetricError(
                    f"metric {batch.name!r} reads column {column!r}, not in {dataset}"
                )
        bases = names | {n.split("/")[0] for n in names}
        for parameter, wanted, optional in batch.wanted:
            if wanted not in bases and not optional:
                raise MetricError(
                    f"metric {batch.name!r} needs {parameter!r}: no column, evaluator_config "
                    f"value or metric of that name (columns of {dataset}: "
                    f"{', '.join(columns) or 'none'})"
                )
