"""Plain Python functions as metrics, told apart by their signature.

- ``def has_citation(row) -> float | None``: one row as a dict (``input``, ``output``,
  ``expected``, ``expected_all``, ``context``, ``id``, ``latency_s`` and every extra
  column); a :class:`~harness.metrics.Metric`.
- ``def exact(outputs, expectations)``: MLflow 3's scorer signature (any of ``inputs``,
  ``outputs``, ``expectations``); also a Metric, called once per row.
- ``def eval_fn(predictions, targets, metrics, ...)``: MLflow's ``make_metric`` signature
  (or the legacy ``(eval_df, builtin_metrics)``); a
  :class:`~harness.metrics.BatchMetric` called once with whole columns, as MLflow does.

A function's ``greater_is_better`` (False: lower is better) and ``needs_expected``
attributes, when set, give its direction and whether it needs expected answers.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import MetricError
from harness.metrics import BatchMetric, BatchResult, Columns, Metric, Score, ScoringRow
from harness.metrics.registry import as_number
from harness.scoring.shape import OUTPUT_NAMES, DataShape, Source

__all__ = ["adapt_function", "direction_of", "eval_fn_metric", "scorer_arguments", "to_score"]

SCORER_PARAMS = frozenset({"inputs", "outputs", "expectations", "trace", "session"})
_EVAL_FN_PARAMS = frozenset({"predictions", "targets", "metrics"})
_YES, _NO = frozenset({"yes", "true", "pass"}), frozenset({"no", "false", "fail"})


def direction_of(greater_is_better: bool | None) -> int:
    """MLflow's ``greater_is_better`` as a direction: +1, -1, or 0 for None."""
    return 0 if greater_is_better is None else 1 if greater_is_better else -1


def _parameters(fn: Callable[..., Any], what: str) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise MetricError(f"{what}: cannot read the function's signature") from None


def _required(parameter: inspect.Parameter) -> bool:
    return parameter.default is inspect.Parameter.empty and parameter.kind not in (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    )


def adapt_function(
    fn: Callable[..., Any], *, name: str | None = None, shape: DataShape | None = None
) -> Metric | BatchMetric:
    """The metric a plain function is, judged by its parameters (see the module)."""
    name = name or getattr(fn, "__name__", None) or type(fn).__name__
    what = f"metric {name!r}"
    parameters = _parameters(fn, what)
    names = [p.name for p in parameters]
    direction = direction_of(getattr(fn, "greater_is_better", True))
    if _EVAL_FN_PARAMS & set(names) or (
        len([p for p in parameters if _required(p)]) == 2 and not set(names) & SCORER_PARAMS
    ):
        return eval_fn_metric(fn, name=name, direction=direction, shape=shape)
    if names and set(names) <= SCORER_PARAMS:
        return scorer_metric(fn, name=name, direction=direction, parameters=parameters)
    required = [p for p in parameters if _required(p)]
    if len(required) != 1 and not (len(parameters) >= 1 and not required):
        shown = ", ".join(names) or "nothing"
        raise MetricError(
            f"{what} takes ({shown}); a metric function takes one row dict, MLflow's "
            "scorer arguments (inputs, outputs, expectations) or its eval_fn arguments "
            "(predictions, targets, ...)"
        )

    def on_row(row: ScoringRow) -> Any:
        return to_score(fn(row.as_dict()), name)

    return Metric(
        name=name,
        description=_doc_line(fn) or f"the Python function {_qualname(fn)}",
        needs_expected=bool(getattr(fn, "needs_expected", False)),
        fn=on_row,
        direction=direction,
        origin="python",
    )


def scorer_arguments(row: ScoringRow) -> dict[str, Any]:
    """What MLflow 3 passes a scorer, from a harness row.

    ``inputs`` is the input, read as a JSON object when it is one (MLflow datasets hold
    ``{"question": ...}`` there); ``outputs`` the output text; ``expectations``
    ``{"expected_response": ...}`` (all answers under ``expected_responses`` when there are
    several), or None for a row without one.
    """
    inputs: Any = row.input
    if inputs[:1] == "{":
        try:
            parsed = json.loads(inputs)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            inputs = parsed
    expectations: dict[str, Any] | None = None
    if row.expected:
        expectations = {"expected_response": row.expected[0]}
        if len(row.expected) > 1:
            expectations["expected_responses"] = list(row.expected)
    return {"inputs": inputs, "outputs": row.output, "expectations": expectations, "trace": None}


def scorer_metric(
    fn: Callable[..., Any],
    *,
    name: str,
    direction: int,
    parameters: Sequence[inspect.Parameter],
    description: str | None = None,
    aggregations: tuple[Any, ...] = (),
    origin: str = "python",
) -> Metric:
    """A function of ``inputs``/``outputs``/``expectations``, called once per row."""
    names = {p.name for p in parameters}
    required = {p.name for p in parameters if _required(p)}
    if "session" in names:
        raise MetricError(f"metric {name!r} is a session-level scorer; harness scores single rows")
    if "trace" in required:
        raise MetricError(
            f"metric {name!r} needs an MLflow trace; harness rows have none to give it "
            "(give trace a default, or score outputs)"
        )

    def on_row(row: ScoringRow) -> Any:
        arguments = scorer_arguments(row)
        return to_score(fn(**{k: v for k, v in arguments.items() if k in names}), name)

    return Metric(
        name=name,
        description=description or _doc_line(fn) or f"the scorer {_qualname(fn)}",
        needs_expected="expectations" in required,
        fn=on_row,
        direction=direction,
        origin=origin,
        aggregations=aggregations,
    )


def to_score(value: Any, name: str) -> float | Score | list[Score] | None:
    """A user's answer for one row as harness stores it.

    Numbers and bools are values (True is 1.0); ``"yes"``/``"no"`` (MLflow's
    ``CategoricalRating``) are 1.0/0.0 and other text is kept as a label with no value;
    an MLflow ``Feedback`` keeps its rationale, and its error; a list of Feedback is one
    score per Feedback, under its own name.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_feedback(item, name, own_name=True) for item in value]
    if _is_feedback(value):
        return _feedback(value, name, own_name=False)
    if isinstance(value, str):
        return _text_score(value)
    try:
        return as_number(name, value)
    except MetricError:
        if isinstance(value, (int, float)) or hasattr(value, "__float__"):
            raise  # a number, but not a finite one: as_number says so
        raise MetricError(
            f"metric {name!r} returned {type(value).__name__}; return a number, a bool, "
            "yes/no, None or an MLflow Feedback"
        ) from None


def _is_feedback(value: Any) -> bool:
    return hasattr(value, "rationale") and hasattr(value, "value")


def _text_score(text: str) -> Score:
    word = str(getattr(text, "value", text)).strip().lower()  # CategoricalRating is an Enum
    if word in _YES:
        return Score(1.0, label=word)
    if word in _NO:
        return Score(0.0, label=word)
    return Score(None, label=str(text))


def _feedback(feedback: Any, name: str, *, own_name: bool) -> Score:
    if not _is_feedback(feedback):
        raise MetricError(f"metric {name!r} returned a list of {type(feedback).__name__}")
    error = getattr(feedback, "error", None)
    message = getattr(error, "error_message", None) or (str(error) if error else None)
    inner = to_score(feedback.value, name) if feedback.value is not None else None
    if isinstance(inner, list):
        raise MetricError(f"metric {name!r}: a Feedback's value cannot be a list")
    score = inner if isinstance(inner, Score) else Score(inner)
    own = getattr(feedback, "name", None) if own_name else None
    return Score(score.value, feedback.rationale or None, score.label, message, own)


def eval_fn_metric(
    fn: Callable[..., Any],
    *,
    name: str,
    direction: int,
    shape: DataShape | None,
    description: str | None = None,
    origin: str = "python",
    id_lists: bool = False,
) -> BatchMetric:
    """MLflow's ``eval_fn`` as a batch metric: called once, with the arguments MLflow gives.

    ``predictions`` is the outputs, ``targets`` the expected answers, ``metrics`` the
    metrics computed so far (as MLflow ``MetricValue``), and any other parameter a column
    (through ``col_mapping``), a value of ``evaluator_config``, or another metric's values.
    A parameter nothing provides fails before the run, unless it has a default.

    ``id_lists`` (MLflow's retriever metrics): each output is the list of document ids its
    JSON text holds, and each row's targets the list of its expected answers (one answer is
    a list of one, none an empty list), as MLflow holds a retriever's columns.
    """
    shape = shape or DataShape()
    parameters = _parameters(fn, f"metric {name!r}")
    legacy = (
        len(parameters) == 2
        and parameters[0].name != "predictions"
        and parameters[1].name != "targets"
    )
    plan: list[tuple[str, Source | str | None, Any]] = []  # (param, source, default)
    optional = {p.name for p in parameters if p.default is not inspect.Parameter.empty}
    needs_expected, columns = False, []
    for parameter in [] if legacy else parameters:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        column = shape.col_mapping.get(parameter.name, parameter.name)
        if parameter.name == "metrics" or column == "metrics":
            plan.append((parameter.name, "metrics", default))
            continue
        source = shape.source(parameter.name)
        if source is not None and source.kind == "expected":
            needs_expected = needs_expected or _required(parameter)
            plan.append((parameter.name, source, default))
        elif source is not None:
            if source.kind == "extra" and source.column:
                columns.append(source.column)
            plan.append((parameter.name, source, default))
        elif parameter.name in OUTPUT_NAMES:
            plan.append((parameter.name, Source("output"), default))
        else:  # perhaps another metric's name; checked once every name is known
            plan.append((parameter.name, "metric:" + str(column), default))

    def compute(data: Columns) -> BatchResult | None:
        if legacy:
            return _legacy_call(fn, name, data)
        ids_of = name if id_lists else None
        arguments = [_argument(data, source, default, ids_of) for _, source, default in plan]
        return batch_result(fn(*arguments), name, len(data.ids))

    return BatchMetric(
        name=name,
        description=description or _doc_line(fn) or f"the eval_fn {_qualname(fn)}",
        needs_expected=needs_expected,
        fn=compute,
        direction=direction,
        origin=origin,
        columns=tuple(columns),
        wanted=tuple(
            (param, source[len("metric:") :], param in optional)
            for param, source, _ in plan
            if isinstance(source, str) and source.startswith("metric:")
        ),
    )


def _argument(
    data: Columns, source: Source | str | None, default: Any, ids_of: str | None = None
) -> Any:
    """One argument of an eval_fn; ``ids_of``: the retriever metric reading id lists."""
    import pandas as pd

    if ids_of and isinstance(source, Source) and source.kind in ("output", "expected"):
        if source.kind == "expected":
            return pd.Series(
                [
                    _relevant_ids(a, row, ids_of)
                    for row, a in zip(data.ids, data.expected, strict=True)
                ],
                dtype=object,
            )
        return pd.Series(
            [_id_list(text, row, ids_of) for row, text in zip(data.ids, data.outputs, strict=True)],
            dtype=object,
        )
    if source == "metrics":
        return _metric_values(data)
    if isinstance(source, str):  # "metric:NAME": another metric's values, else the default
        wanted = source[len("metric:") :]
        # As MLflow matches it: the metric's name, or its name without the version.
        values = _metric_values(data)
        found = [n for n in values if wanted in (n, n.split("/")[0])]
        return values[found[0]] if found else default
    assert source is not None
    if source.kind == "value":
        return source.value
    if source.kind == "output":
        return pd.Series(data.outputs)
    if source.kind == "input":
        return pd.Series(data.inputs)
    if source.kind == "context":
        return pd.Series(data.contexts)
    if source.kind == "expected":
        if not any(data.expected):
            return default
        return pd.Series([_mlflow_target(answers) for answers in data.expected])
    return pd.Series(data.extra[str(source.column)])


def _id_list(text: str | None, row: str, metric: str) -> list[str]:
    """A retriever's output, stored as the JSON text of its list of document ids."""
    try:
        ids = json.loads(text or "")
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(
        isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids
    ):
        shown = text if text is None or len(text) <= 60 else text[:57] + "..."
        raise MetricError(
            f"metric {metric!r} reads each output as a list of document ids (a JSON list of "
            f"strings or integers); row {row!r} has {shown!r}"
        )
    # Expected answers are stored as text (7 as "7"), so the ids are compared as text.
    return [i if isinstance(i, str) else str(i) for i in ids]


def _relevant_ids(answers: tuple[str, ...], row: str, metric: str) -> list[str]:
    """A row's relevant ids: its expected answers, one id each. One answer that is a JSON
    list written as text is refused, not read as the id ``'["d1"]'`` that no output holds
    (MLflow logs nothing for a text target): data given in Python keeps a text whole, and
    ``pd.read_csv`` gives the text of a CSV's lists."""
    if len(answers) == 1 and answers[0].startswith("[") and answers[0].endswith("]"):
        try:
            parsed = json.loads(answers[0])
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            shown = answers[0] if len(answers[0]) <= 60 else answers[0][:57] + "..."
            raise MetricError(
                f"metric {metric!r} reads each row's targets as a list of relevant ids; row "
                f"{row!r} has the text {shown!r}: give a list (a DataFrame from pd.read_csv: "
                f"df[COLUMN].map(json.loads)) or the CSV file's path"
            )
    return list(answers)


def _mlflow_target(answers: tuple[str, ...]) -> Any:
    """A target as MLflow would hold it: the answer, a list of them, or None."""
    if not answers:
        return None
    return answers[0] if len(answers) == 1 else list(answers)


def _metric_values(data: Columns) -> dict[str, Any]:
    """Every metric so far as MLflow's ``MetricValue``: one with aggregates only (MLflow's
    ``exact_match()``, an ``eval_fn`` returning a number) has no scores, as in MLflow."""
    from mlflow.metrics.base import MetricValue

    names = [*data.scores, *(n for n in data.aggregates if n not in data.scores)]
    return {
        name: MetricValue(
            # a row not scored is None
            scores=list(data.scores[name]) if name in data.scores else None,  # type: ignore[arg-type]
            aggregate_results=dict(data.aggregates.get(name, {})),
        )
        for name in names
    }


def _legacy_call(fn: Callable[..., Any], name: str, data: Columns) -> BatchResult | None:
    import pandas as pd

    eval_df = pd.DataFrame({"prediction": data.outputs})
    if any(data.expected):
        eval_df["target"] = [_mlflow_target(answers) for answers in data.expected]
    # Named as MLflow logs them: an aggregate named like its metric (exact_match()'s
    # "exact_match") is the metric itself, "exact_match/v1".
    flat = {
        m if k == m.split("/")[0] else f"{m}/{k}": v
        for m, aggs in data.aggregates.items()
        for k, v in aggs.items()
    }
    return batch_result(fn(eval_df, flat), name, len(data.ids))


def batch_result(value: Any, name: str, rows: int) -> BatchResult | None:
    """An ``eval_fn``'s answer as a BatchResult: a ``MetricValue`` or a number.

    A number is the metric's one aggregate (MLflow logs it under the metric's own name);
    None means nothing to report (MLflow skips such a metric with a warning).
    """
    if value is None:
        return None
    if hasattr(value, "aggregate_results") and hasattr(value, "scores"):
        scores = None if value.scores is None else list(value.scores)
        if scores is not None and len(scores) != rows:
            raise MetricError(f"metric {name!r} returned {len(scores)} scores for {rows} rows")
        numbers = None if scores is None else [_number_or_none(s) for s in scores]
        labels = None
        if scores is not None and any(isinstance(s, str) for s in scores):
            labels = [s if isinstance(s, str) else None for s in scores]
        justifications = getattr(value, "justifications", None)
        aggregates = {
            str(k): _finite_aggregate(name, str(k), v)
            for k, v in (value.aggregate_results or {}).items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        return BatchResult(
            scores=numbers,
            rationales=None if justifications is None else [_text(j) for j in justifications],
            labels=labels,
            aggregates=aggregates,
        )
    if isinstance(value, (bool, str)) or not (
        isinstance(value, (int, float)) or hasattr(value, "__float__")
    ):
        raise MetricError(
            f"metric {name!r} returned {type(value).__name__}; an eval_fn returns an MLflow "
            "MetricValue or a number"
        )
    own = name.split("/")[0]
    return BatchResult(aggregates={own: _finite_aggregate(name, own, value)})


def _finite_aggregate(name: str, aggregate: str, value: Any) -> float:
    """An ``eval_fn``'s aggregate as a float; an infinite one is the metric's error, as an
    infinite row score is (it showed as ``inf`` in the summary and ``null`` in --json)."""
    number = float(value)
    if math.isinf(number):
        raise MetricError(
            f"metric {name!r}: its aggregate {aggregate!r} is {number}, not a finite number"
        )
    return number


def _number_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _doc_line(fn: Any) -> str:
    doc = inspect.getdoc(fn) if inspect.isfunction(fn) or inspect.ismethod(fn) else None
    return (doc or "").strip().splitlines()[0][:100] if doc else ""


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
