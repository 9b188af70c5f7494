"""``--metric`` values and ``[metrics.NAME]`` tables: one grammar, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_toml
from harness.errors import MetricError
from harness.metrics import BatchMetric, Metric, ScoringRow
from harness.scoring import resolve_scoring, resolve_spec
from harness.scoring.specs import MetricSpec, parse_spec


def row(output: str, *expected: str) -> ScoringRow:
    return ScoringRow(input="q", output=output, expected=expected, context=None, latency_s=0.2)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("exact_match", (None, None, None)),
        ("regex:\\d+", (None, "regex", "\\d+")),
        ("regex:a=b", (None, "regex", "a=b")),  # '=' after the kind is the pattern's
        ("cites=regex:\\[\\d+\\]", ("cites", "regex", "\\[\\d+\\]")),
        ("python:pkg.mod:fn", (None, "python", "pkg.mod:fn")),
        ("mine=python:pkg.mod:fn", ("mine", "python", "pkg.mod:fn")),
        ("json=is-json", ("json", "is-json", None)),
        ("length:..200", (None, "length", "..200")),
    ],
)
def test_the_grammar(text: str, parsed: tuple[str | None, str | None, str | None]) -> None:
    assert parse_spec(text) == MetricSpec(text, *parsed)


def test_names_kinds_and_python_targets_resolve() -> None:
    assert resolve_spec("token_f1").name == "token_f1"
    cites = resolve_spec("cites=regex:\\[\\d+\\]")
    assert isinstance(cites, Metric) and cites.name == "cites"
    assert cites.score(row("see [3]")) == 1.0
    bare = resolve_spec("is-json")  # a kind without parameters needs no value
    assert bare.name == "is_json" and bare.score(row("{}")) == 1.0
    function = resolve_spec("python:harness_test_metrics:has_citation")
    assert isinstance(function, Metric) and function.name == "has_citation"
    assert function.description == "1 if the output cites a source like [1]."
    assert function.score(row("x [1]")) == 1.0 and function.score(row("x")) == 0.0
    assert resolve_spec("mine=python:harness_test_metrics:has_citation").name == "mine"


def test_a_function_says_its_direction_and_needs() -> None:
    longer = resolve_spec("python:harness_test_metrics:longer_than_expected")
    assert isinstance(longer, Metric)
    assert longer.direction == -1 and longer.needs_expected
    assert longer.score(row("a long answer", "short")) == 1.0  # a bool is 1.0 / 0.0
    assert longer.score(row("a long answer")) is None


def test_the_three_function_signatures() -> None:
    scorer_style = resolve_spec("python:harness_test_metrics:answer_matches")
    assert isinstance(scorer_style, Metric) and scorer_style.needs_expected
    assert scorer_style.score(row(" 4 ", "4")) == 1.0
    batch = resolve_spec("python:harness_test_metrics:exact_eval_fn")
    assert isinstance(batch, BatchMetric) and batch.name == "exact_eval_fn"


def write(home: Path, text: str) -> dict:
    (home / "harness.toml").write_text(text)
    return load_toml(home / "harness.toml")


def test_tables_define_kinds_and_python_metrics(home: Path) -> None:
    settings = write(
        home,
        """
[metrics.cites]
kind = "regex"
pattern = '\\[\\d+\\]'
description = "cites a numbered source"

[metrics.refusal]
kind = "icontains"
value = "I cannot"
greater_is_better = false

[metrics.shape]
kind = "json-schema"
schema = "@schema.json"

[metrics.matches]
python = "harness_test_metrics:has_citation"
greater_is_better = false
needs_expected = true
""",
    )
    (home / "schema.json").write_text('{"type": "object"}')
    found = resolve_scoring(
        ["cites", "refusal", "shape", "matches"], settings=settings, home=home
    ).metrics
    cites, refusal, shape, matches = found
    assert cites.description == "cites a numbered source" and cites.score(row("[1]")) == 1.0
    assert refusal.direction == -1 and refusal.score(row("i CANNOT")) == 1.0
    assert shape.score(row("{}")) == 1.0 and shape.score(row("[]")) == 0.0  # read from the home
    assert (matches.name, matches.direction, matches.needs_expected) == ("matches", -1, True)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[metrics.x]\nkind = "regex"\npatern = "a"',
            "[metrics.x]: (regex): unknown key patern",
        ),
        ('[metrics.x]\nkind = "regex"', "[metrics.x]: (regex) needs 'pattern'"),
        ('[metrics.x]\ndescription = "d"', '[metrics.x] needs kind = "..." or python = '),
        ('[metrics.x]\nkind = "is-json"\npython = "m:f"', '[metrics.x] needs kind = "..." or'),
        ('[metrics.x]\npython = "m:f"\nneeds = true', "[metrics.x]: unknown key needs; use "),
        ('[metrics.x]\nkind = "nope"', "[metrics.x]: unknown metric kind 'nope'"),
        ('[metrics.rougeL]\nkind = "is-json"', "'rougeL' is a built-in metric"),
        (
            '[metrics.x]\npython = "harness_test_metrics:has_citation"\ngreater_is_better = 1',
            "greater_is_better must be true or false, not 1",
        ),
        ('[metrics.x]\npython = "no_such_module:f"', "no module named 'no_such_module'"),
    ],
)
def test_bad_tables_fail_in_one_line(home: Path, table: str, message: str) -> None:
    settings = write(home, table)
    name = table.split("]")[0].split(".")[1]
    with pytest.raises(MetricError) as caught:
        resolve_spec(name, settings=settings, home=home)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(home / "harness.toml"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bleu", "unknown metric 'bleu'; known: ari_grade_level, "),
        ("nope:x", "unknown metric kind 'nope'; known: python, contains, "),
        ("python:no_such_module:f", "python metric 'no_such_module:f': no module named"),
        ("python:harness_test_metrics", "must look like python:MODULE:FUNCTION"),
        ("python:harness_test_metrics:missing", "harness_test_metrics has no 'missing'"),
        ("python:harness_test_metrics:NOT_A_METRIC", "cannot use int 42 as a metric"),
        ("python:harness_test_metrics:takes_three", "takes (a, b, c); a metric function takes"),
        ("x=exact_match", "LABEL= names a kind or a python: function"),
        ("regex", "needs 'pattern'"),
    ],
)
def test_bad_specs_fail_in_one_line(text: str, message: str) -> None:
    with pytest.raises(MetricError) as caught:
        resolve_spec(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_two_metrics_with_one_name_are_refused() -> None:
    with pytest.raises(MetricError, match="two metrics are named 'regex'; name one with LABEL="):
        resolve_scoring(["regex:a", "regex:b"])
    both = resolve_scoring(["regex:a", "b=regex:b"]).metrics
    assert [m.name for m in both] == ["regex", "b"]
