"""The public interface of harness.metrics: names, lookup, errors, the None rule."""

from __future__ import annotations

import pytest

import harness.metrics as metrics
from harness.errors import HarnessError, MetricError
from harness.metrics import (
    DEFAULT_METRICS,
    Metric,
    Score,
    ScoringRow,
    get_metric,
    metric_names,
    register_metric,
)

BUILTIN = [
    "ari_grade_level",
    "exact_match",
    "flesch_kincaid_grade_level",
    "latency",
    "rouge1",
    "rouge2",
    "rougeL",
    "token_f1",
    "word_count",
]


def row(output: str, *expected: str, latency_s: float | None = 0.5) -> ScoringRow:
    return ScoringRow(
        input="q", output=output, expected=expected, context=None, latency_s=latency_s
    )


def test_exported_names_are_the_contract() -> None:
    assert sorted(metrics.__all__) == [
        "AGGREGATE_KEYS",
        "BatchMetric",
        "BatchResult",
        "Columns",
        "DEFAULT_METRICS",
        "EXTRA_AGGREGATIONS",
        "Metric",
        "Score",
        "ScoringRow",
        "aggregate",
        "aggregate_scores",
        "build_metric",
        "extra_aggregates",
        "get_kind",
        "get_metric",
        "kind_names",
        "kind_parameters",
        "metric_direction",
        "metric_names",
        "register_metric",
    ]


def test_each_metric_says_which_way_is_better() -> None:
    from harness.metrics import metric_direction

    lower, neither = {"latency"}, {"word_count", "ari_grade_level", "flesch_kincaid_grade_level"}
    for name in BUILTIN:
        expected = -1 if name in lower else 0 if name in neither else 1
        assert get_metric(name).direction == metric_direction(name) == expected, name
    assert metric_direction("faithfulness") == 1  # a judge's name: higher is better


def test_builtin_metrics_are_registered_and_sorted() -> None:
    assert [name for name in metric_names() if name in BUILTIN] == BUILTIN
    assert set(BUILTIN) <= set(metric_names())


def test_every_builtin_has_a_one_line_description() -> None:
    for name in BUILTIN:
        metric = get_metric(name)
        assert metric.name == name
        assert metric.description and "\n" not in metric.description
        assert len(metric.description) <= 100


def test_needs_expected_marks_the_reference_metrics() -> None:
    needing = {name for name in BUILTIN if get_metric(name).needs_expected}
    assert needing == {"exact_match", "token_f1", "rouge1", "rouge2", "rougeL"}


def test_a_runs_own_directions_answer_for_its_metrics() -> None:
    from harness.metrics import metric_direction

    # A python: metric or a kind is known to the run that used it: it stores its direction.
    assert metric_direction("refusals", {"refusals": -1}) == -1
    assert metric_direction("refusals") == 1  # unknown here: read as a judge's score
    assert metric_direction("latency", {"cites": 1}) == -1


def test_a_metric_that_raises_is_an_error_on_its_row_not_a_crash() -> None:
    broken = Metric("test_broken", "raises", False, lambda scoring_row: 1 / 0)
    [stored] = broken.evaluate(row("x"), "7")
    assert (stored.example_id, stored.metric, stored.value) == ("7", "test_broken", None)
    assert stored.error == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_value_is_an_error_on_its_row(value: float) -> None:
    from harness.scoring.functions import to_score

    endless = Metric("test_endless", "inf", False, lambda scoring_row: value)
    [stored] = endless.evaluate(row("x"), "7")
    assert stored.value is None
    assert (
        stored.error == f"MetricError: metric 'test_endless' returned {value}, not a finite number"
    )
    with pytest.raises(MetricError, match="returned -?inf, not a finite number"):
        endless.score(row("x"))
    as_score = Metric("test_endless", "inf", False, lambda scoring_row: Score(value))
    with pytest.raises(MetricError, match="returned -?inf, not a finite number"):
        as_score.score(row("x"))  # a Score holding the value
    with pytest.raises(MetricError, match="returned -?inf, not a finite number"):
        to_score(value, "scorer")  # an MLflow-style scorer's answer
    [nan] = Metric("test_nan", "nan", False, lambda scoring_row: float("nan")).evaluate(
        row("x"), "7"
    )
    assert nan.error is None  # NaN stays "no score", as before


def test_default_metrics_exist() -> None:
    assert DEFAULT_METRICS
    for name in DEFAULT_METRICS:
        assert get_metric(name).name == name


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(MetricError) as caught:
        get_metric("bleu")
    message = str(caught.value)
    assert message.startswith("unknown metric 'bleu'; known: ")
    assert message == "unknown metric 'bleu'; known: " + ", ".join(metric_names())
    assert isinstance(caught.value, HarnessError)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["exact_match", "token_f1", "rouge1", "rouge2", "rougeL"])
def test_reference_metrics_return_none_without_expected(name: str) -> None:
    assert get_metric(name).score(row("Paris")) is None
    assert get_metric(name).score(row("Paris, France", "paris france")) == 1.0


@pytest.mark.parametrize(
    "name", ["word_count", "ari_grade_level", "flesch_kincaid_grade_level", "latency"]
)
def test_other_metrics_score_rows_without_expected(name: str) -> None:
    assert get_metric(name).score(row("The cat sat on the mat.")) is not None


def test_register_a_custom_metric_and_refuse_a_duplicate() -> None:
    shouting = Metric(
        name="test_shouting",
        description="1 if the output is all capitals",
        needs_expected=False,
        fn=lambda scoring_row: float(scoring_row.output.isupper()),
    )
    try:
        assert register_metric(shouting) is shouting
        assert get_metric("test_shouting").score(row("HELLO")) == 1.0
        assert "test_shouting" in metric_names()
        register_metric(shouting)  # the same object again is harmless
        impostor = Metric("test_shouting", "other", False, lambda scoring_row: 0.0)
        with pytest.raises(MetricError, match="already registered"):
            register_metric(impostor)
        assert register_metric(impostor, replace=True) is impostor
        assert get_metric("test_shouting").score(row("HELLO")) == 0.0
    finally:
        metrics.registry.registered().pop("test_shouting", None)


def test_builtin_name_cannot_be_taken_silently() -> None:
    fake = Metric("exact_match", "fake", True, lambda scoring_row: 0.5)
    with pytest.raises(MetricError, match="'exact_match' is already registered"):
        register_metric(fake)
    assert get_metric("exact_match").score(row("a", "a")) == 1.0


def test_rows_and_metrics_are_immutable() -> None:
    scoring_row = row("x", "y")
    with pytest.raises(AttributeError):
        scoring_row.output = "z"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        get_metric("rouge1").name = "rouge9"  # type: ignore[misc]


def test_every_metric_scores_odd_rows_without_raising() -> None:
    odd_outputs = [
        "",
        " ",
        "...",
        "?!",
        "42",
        "日本語のテキスト。",
        "Ünïcödé — “quoted” text…",
        "a\n\nb",
    ]
    for output in odd_outputs:
        for name in BUILTIN:
            value = get_metric(name).score(
                ScoringRow(
                    input="", output=output, expected=("x", ""), context=None, latency_s=None
                )
            )
            assert value is None or isinstance(value, float), (name, output, value)


def test_a_metric_looked_up_while_another_thread_loads_the_builtins_is_found() -> None:
    # Two harness.evaluate calls started in two threads of a fresh process: the second
    # looked up 'exact_match' while the first was still importing the built-in metrics, and
    # got "unknown metric 'exact_match'; known: " (nothing yet). The import is slowed here
    # (a finder that waits in front of one built-in family) so the second lookup lands in it.
    import subprocess
    import sys

    code = """
import importlib.abc, sys, threading, time
inside = threading.Event()
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "harness.metrics.basic":  # the first family imported
            inside.set()
            time.sleep(0.5)
        return None
sys.meta_path.insert(0, Slow())
from harness.metrics import get_metric
found = {}
def look(who):
    try:
        found[who] = get_metric("exact_match").name
    except Exception as e:
        found[who] = f"{type(e).__name__}: {e}"
first = threading.Thread(target=look, args=("first",))
first.start()
inside.wait(30)
look("second")
first.join()
print(found["first"], "|", found["second"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "exact_match | exact_match"
