"""Parameterized checks: contains, equals, starts-with, regex, is-json, json-schema, length,
levenshtein. Built from harness.toml-style parameters and from command-line values alike;
scored offline (the conftest refuses any connection); references computed independently."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness.errors import MetricError
from harness.metrics import ScoringRow, build_metric, kind_names
from harness.metrics import kind_parameters as from_cli


def row(output: str, *expected: str) -> ScoringRow:
    return ScoringRow(input="q", output=output, expected=expected, context=None, latency_s=None)


def score(kind: str, output: str, *expected: str, **params: object) -> float | None:
    return build_metric(kind, None, params).score(row(output, *expected))


def test_the_kinds_are_the_ones_documented() -> None:
    assert kind_names() == [
        "contains",
        "contains-all",
        "contains-any",
        "equals",
        "icontains",
        "icontains-all",
        "icontains-any",
        "iequals",
        "is-json",
        "istarts-with",
        "json-schema",
        "length",
        "levenshtein",
        "regex",
        "starts-with",
    ]


@pytest.mark.parametrize(
    ("kind", "params", "output", "expected"),
    [
        ("contains", {"value": "Paris"}, "It is Paris.", 1.0),
        ("contains", {"value": "paris"}, "It is Paris.", 0.0),
        ("icontains", {"value": "paris"}, "It is PARIS.", 1.0),
        ("contains", {"value": "paris", "case_sensitive": False}, "It is PARIS.", 1.0),
        ("contains-any", {"value": ["Rome", "Paris"]}, "Paris!", 1.0),
        ("contains-any", {"value": "Rome, Oslo"}, "Paris!", 0.0),  # comma-separated text
        ("contains-all", {"value": ["a", "b"]}, "a then b", 1.0),
        ("contains-all", {"value": ["a", "z"]}, "a then b", 0.0),
        ("icontains-all", {"value": ["A", "B"]}, "a then b", 1.0),
        ("equals", {"value": "yes"}, " yes\n", 1.0),  # whitespace around the output aside
        ("equals", {"value": "yes"}, "yes.", 0.0),
        ("iequals", {"value": "YES"}, "yes", 1.0),
        ("starts-with", {"value": "Answer:"}, "  Answer: 4", 1.0),
        ("starts-with", {"value": "Answer:"}, "The Answer: 4", 0.0),
        ("istarts-with", {"value": "answer:"}, "ANSWER: 4", 1.0),
        ("regex", {"pattern": r"\[\d+\]"}, "as shown [12].", 1.0),
        ("regex", {"pattern": r"\[\d+\]"}, "as shown (12).", 0.0),
        ("regex", {"pattern": "^yes", "case_sensitive": False}, "Yes, it is", 1.0),
        ("is-json", {}, ' {"a": [1, 2]}\n', 1.0),
        ("is-json", {}, "```json\n{}\n```", 0.0),
        ("length", {"max": 5}, "four", 1.0),
        ("length", {"min": 5}, "four", 0.0),
        ("length", {"min": 2, "max": 3, "unit": "words"}, "one two three", 1.0),
        ("length", {"max": 2, "unit": "words"}, "one two three", 0.0),
    ],
)
def test_checks_pass_and_fail(kind: str, params: dict, output: str, expected: float) -> None:
    assert score(kind, output, **params) == expected


def test_without_a_value_the_text_checks_use_the_expected_answers() -> None:
    assert build_metric("contains", None, {}).needs_expected
    assert score("contains", "I think it is Paris.", "Rome", "Paris") == 1.0  # any answer
    assert score("contains", "I think it is Paris.", "Rome") == 0.0
    assert score("contains-all", "Paris and Rome", "Rome", "Paris") == 1.0
    assert score("contains-all", "Paris", "Rome", "Paris") == 0.0
    assert score("equals", "paris", "Paris") == 0.0
    assert score("iequals", "paris", "Paris") == 1.0
    assert score("contains", "Paris") is None  # no expected answer: not scored, not 0


def _edit_distance(a: str, b: str) -> int:
    """Wagner-Fischer, written here as the reference for rapidfuzz's distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@pytest.mark.parametrize(
    ("output", "answers"),
    [
        ("kitten", ("sitting",)),
        ("Paris", ("Paris",)),
        ("", ("",)),
        ("flaw", ("lawn", "flaws")),  # the best answer counts
        ("Über", ("uber",)),
    ],
)
def test_levenshtein_is_one_minus_the_normalized_edit_distance(
    output: str, answers: tuple[str, ...]
) -> None:
    expected = max(
        1 - _edit_distance(output, a) / max(len(output), len(a)) if output or a else 1.0
        for a in answers
    )
    assert score("levenshtein", output, *answers) == pytest.approx(expected)


def test_levenshtein_can_ignore_case_and_compare_to_a_value() -> None:
    assert score("levenshtein", "PARIS", "paris", case_sensitive=False) == 1.0
    assert score("levenshtein", "PARIS", "paris") == 0.0
    assert score("levenshtein", "abcd", value="abce") == 0.75


def test_json_schema_agrees_with_the_jsonschema_reference_and_says_why() -> None:
    schema = {
        "type": "object",
        "required": ["answer", "sources"],
        "properties": {"answer": {"type": "string"}, "sources": {"type": "array"}},
    }
    metric = build_metric("json-schema", "answer_shape", {"schema": schema})
    documents = [
        {"answer": "4", "sources": []},
        {"answer": 4, "sources": []},
        {"answer": "4"},
        [1, 2],
    ]
    for document in documents:
        reference = jsonschema.Draft202012Validator(schema).is_valid(document)
        [stored] = metric.evaluate(row(json.dumps(document)), "1")
        assert stored.value == (1.0 if reference else 0.0)
        assert (stored.rationale is None) == reference
    [wrong_type] = metric.evaluate(row('{"answer": 4, "sources": []}'), "1")
    assert wrong_type.rationale == "answer: 4 is not of type 'string'"
    [not_json] = metric.evaluate(row("not json"), "1")
    assert (not_json.value, not_json.rationale) == (0.0, "the output is not JSON")


def test_a_schema_can_come_from_json_text_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"type": "array"}')
    from_file = build_metric("json-schema", None, {"schema": "@schema.json"}, base_dir=tmp_path)
    from_text = build_metric("json-schema", None, from_cli("json-schema", '{"type": "array"}'))
    for metric in (from_file, from_text):
        assert metric.score(row("[1]")) == 1.0
        assert metric.score(row("{}")) == 0.0


def test_length_explains_a_failure() -> None:
    [stored] = build_metric("length", None, {"min": 10, "max": 20}).evaluate(row("short"), "1")
    assert (stored.value, stored.rationale) == (0.0, "5 characters, not 10..20")


@pytest.mark.parametrize(
    ("kind", "value", "params"),
    [
        ("regex", r"\d+", {"pattern": r"\d+"}),
        ("contains", "a,b", {"value": "a,b"}),  # one text: commas are kept
        ("contains-any", "a, b", {"value": ["a", "b"]}),
        ("contains-any", '["a,b", "c"]', {"value": ["a,b", "c"]}),
        ("length", "10..200", {"min": 10, "max": 200}),
        ("length", "..200", {"max": 200}),
        ("length", "3..", {"min": 3}),
        ("json-schema", "@s.json", {"schema": "@s.json"}),
    ],
)
def test_command_line_values_give_the_same_parameters(kind: str, value: str, params: dict) -> None:
    assert from_cli(kind, value) == params


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("regex", {}, "metric 'regex' (regex) needs 'pattern': a Python regular expression"),
        ("regex", {"pattern": "["}, "metric 'regex': bad regular expression '[': "),
        ("contains", {"valeu": "x"}, "metric 'contains' (contains): unknown key valeu; use "),
        ("length", {"max": "5"}, "metric 'length' (length): max must be a whole number, not '5'"),
        ("length", {"max": True}, "max must be a whole number, not True"),
        ("length", {}, "metric 'length' (length) needs min, max or both"),
        ("length", {"min": 5, "max": 2}, "metric 'length': bounds 5..2 are not a range"),
        ("length", {"max": 5, "unit": "lines"}, 'unit must be "chars" or "words"'),
        ("json-schema", {"schema": {"type": 7}}, "metric 'json_schema': invalid JSON schema: "),
        ("json-schema", {"schema": "{nope"}, "metric 'json_schema': the schema is not JSON"),
        ("contains", {"greater_is_better": "no"}, "greater_is_better must be true or false"),
        ("nope", {}, "unknown metric kind 'nope'; known: contains, "),
    ],
)
def test_bad_parameters_fail_in_one_line(kind: str, params: dict, message: str) -> None:
    with pytest.raises(MetricError) as caught:
        build_metric(kind, None, params)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_command_line_values_fail_in_one_line() -> None:
    for kind, value, message in [
        ("is-json", "x", "metric kind 'is-json' takes no value (got 'x')"),
        ("length", "200", "length bounds '200' must look like MIN..MAX"),
        ("contains-any", "[1, 2]", "must be a JSON list of texts"),
    ]:
        with pytest.raises(MetricError, match=message.replace("(", r"\(").replace(")", r"\)")):
            from_cli(kind, value)


def test_names_and_directions() -> None:
    assert build_metric("contains-any", None, {"value": "a"}).name == "contains_any"
    assert build_metric("regex", "cites", {"pattern": "x"}).name == "cites"
    refusal = build_metric(
        "icontains", "refusals", {"value": "I cannot", "greater_is_better": False}
    )
    assert refusal.direction == -1 and refusal.origin == "kind"
    assert build_metric("is-json", None, {}).direction == 1
    with pytest.raises(MetricError, match="invalid metric name 'a b'"):
        build_metric("is-json", "a b", {})


def test_a_schema_ref_to_anything_outside_it_fails_before_the_run(tmp_path: Path) -> None:
    # jsonschema's default registry fetches a $ref's URL while validating a row (a download
    # on every executor, or a metric error on every row when offline); harness fetches none.
    for ref in ["https://example.com/answer.json", "defs.json", "#/$defs/missing"]:
        with pytest.raises(MetricError) as caught:
            build_metric("json-schema", "shape", {"schema": {"$ref": ref}}, base_dir=tmp_path)
        assert str(caught.value) == (
            f"metric 'shape': the schema's $ref {ref!r} does not resolve within it, and harness "
            "fetches no schema (metrics run offline); put what it names in the schema, under $defs"
        )
    local = {
        "$defs": {"answer": {"type": "string"}},
        "properties": {
            "answer": {"$ref": "#/$defs/answer"},
            "meta": {"$ref": "https://json-schema.org/draft/2020-12/schema"},  # bundled
        },
    }
    metric = build_metric("json-schema", "shape", {"schema": local})
    assert metric.score(row('{"answer": "4", "meta": {}}')) == 1.0
    [wrong] = metric.evaluate(row('{"answer": 4}'), "1")
    assert (wrong.value, wrong.rationale) == (0.0, "answer: 4 is not of type 'string'")


def test_an_empty_value_fails_instead_of_passing_every_row() -> None:
    # `--metric contains:` (an unset shell variable after the colon) once scored 1 on every
    # row: the empty text is in every output, and the empty pattern matches every output.
    for kind in ["contains", "icontains", "starts-with", "equals", "levenshtein"]:
        with pytest.raises(MetricError) as caught:
            build_metric(kind, "check", from_cli(kind, ""))
        assert str(caught.value) == (
            "metric 'check': value is empty; give a text, or leave it out to compare with "
            "the expected answers"
        )
    with pytest.raises(MetricError, match="metric 'check': value is empty"):
        build_metric("contains-any", "check", {"value": ["sorry", ""]})
    with pytest.raises(MetricError) as caught:
        build_metric("regex", "check", from_cli("regex", ""))
    assert str(caught.value) == "metric 'check': the pattern is empty (it matches every output)"
    assert build_metric("contains", None, {"value": " "}).score(row("a b")) == 1.0
