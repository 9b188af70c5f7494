"""Checks of an output's shape: ``is-json``, ``json-schema`` and ``length`` bounds.

Each scores 1.0 or 0.0. ``json-schema`` validates with the ``jsonschema`` package (the
draft named by the schema's ``$schema``, else the latest), and a failing row keeps the
validator's first complaint as its rationale, so the per-row table says why. ``length``
counts characters of the output without the whitespace around it (``unit = "words"``
counts words, as ``word_count`` does).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import MetricError
from harness.metrics.kinds import Kind, Param, register_kind
from harness.metrics.registry import Metric, Score, ScoringRow
from harness.metrics.text import words

__all__: list[str] = []


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _is_json(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
    def is_json(row: ScoringRow) -> float:
        return 1.0 if _parse_json(row.output)[0] else 0.0

    return Metric(name, "1 if the whole output parses as JSON, else 0", False, is_json, binary=True)


register_kind(
    Kind(
        name="is-json",
        description="1 if the whole output parses as JSON, else 0",
        params=(),
        factory=_is_json,
    )
)


def _schema_text(name: str, schema: Any, base_dir: Path) -> str:
    """The schema as canonical JSON text, from a table, JSON text or ``@FILE``."""
    if isinstance(schema, str):
        text = schema
        if schema.startswith("@"):
            path = (base_dir / schema[1:]).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise MetricError(
                    f"metric {name!r}: cannot read schema {path}: {e.strerror}"
                ) from None
        try:
            schema = json.loads(text)
        except ValueError as e:
            raise MetricError(f"metric {name!r}: the schema is not JSON: {e}") from None
    if not isinstance(schema, (dict, bool)):
        raise MetricError(f"metric {name!r}: a JSON schema is an object, not {schema!r}")
    text = json.dumps(schema, sort_keys=True)
    try:
        _validator(text)  # a bad schema fails here, before the run
    except MetricError as e:
        raise MetricError(f"metric {name!r}: {e}") from None
    return text


@lru_cache(maxsize=64)
def _validator(schema_text: str) -> Any:
    # Built from the text on first use in each process, so a metric crossing to a Spark
    # executor carries a string, not a validator object.
    import jsonschema
    import referencing
    from jsonschema.exceptions import SchemaError

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        raise MetricError(f"invalid JSON schema: {e.message}") from None
    # jsonschema's default registry fetches a $ref's URL with urlopen while validating a
    # row; an empty one (jsonschema adds the drafts' metaschemas, offline) fetches nothing.
    validator = cls(schema, registry=referencing.Registry())
    ref = _unresolvable_ref(cls, schema)
    if ref is not None:
        raise MetricError(
            f"the schema's $ref {ref!r} does not resolve within it, and harness fetches no "
            "schema (metrics run offline); put what it names in the schema, under $defs"
        )
    return validator


def _unresolvable_ref(cls: Any, schema: Any) -> str | None:
    """The first ``$ref`` of ``schema`` that names nothing in it (or in a draft's metaschema).

    Checked before the run, so a ref to a URL or a missing ``#/$defs/x`` fails in one line
    instead of on every row.
    """
    import referencing
    import referencing.jsonschema
    from jsonschema_specifications import REGISTRY
    from referencing.exceptions import Unresolvable

    specification = referencing.jsonschema.specification_with(
        cls.ID_OF(cls.META_SCHEMA) or "urn:unknown-dialect",
        default=referencing.Specification.OPAQUE,
    )
    root = specification.create_resource(schema)
    pending = [(REGISTRY.resolver_with_root(root), root)]
    while pending:
        resolver, resource = pending.pop()
        ref = resource.contents.get("$ref") if isinstance(resource.contents, dict) else None
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                return ref
        pending += [(resolver.in_subresource(sub), sub) for sub in resource.subresources()]
    return None


def _json_schema(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
    schema_text = _schema_text(name, params["schema"], base_dir)

    def valid(row: ScoringRow) -> Score:
        parsed, document = _parse_json(row.output)
        if not parsed:
            return Score(0.0, rationale="the output is not JSON")
        error = next(iter(_validator(schema_text).iter_errors(document)), None)
        if error is None:
            return Score(1.0)
        where = "/".join(str(p) for p in error.absolute_path)
        return Score(0.0, rationale=f"{where + ': ' if where else ''}{error.message}"[:500])

    return Metric(
        name, "1 if the output is JSON valid against the schema, else 0", False, valid, binary=True
    )


register_kind(
    Kind(
        name="json-schema",
        description="1 if the output is JSON that validates against the schema, else 0",
        params=(
            Param(
                "schema",
                (dict, str),
                "the JSON schema: a table, JSON text, or @FILE",
                required=True,
            ),
        ),
        factory=_json_schema,
        main="schema",
    )
)


def _bounds(text: str) -> dict[str, Any]:
    """``MIN..MAX``, ``..MAX`` or ``MIN..`` from the command line."""
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        return {k: int(v) for k, v in (("min", low), ("max", high)) if v.strip()}
    except ValueError:
        raise MetricError(
            f"length bounds {text!r} must look like MIN..MAX, ..MAX or MIN.."
        ) from None


def _length(name: str, params: dict[str, Any], base_dir: Path) -> Metric:
    low, high = params.get("min"), params.get("max")
    unit = params.get("unit", "chars")
    if unit not in ("chars", "words"):
        raise MetricError(f'metric {name!r}: unit must be "chars" or "words", not {unit!r}')
    if low is None and high is None:
        raise MetricError(f"metric {name!r} (length) needs min, max or both")
    if any(b is not None and b < 0 for b in (low, high)) or (
        low is not None and high is not None and low > high
    ):
        raise MetricError(f"metric {name!r}: bounds {low}..{high} are not a range")
    shown = f"{'' if low is None else low}..{'' if high is None else high}"
    unit_name = "characters" if unit == "chars" else "words"

    def within(row: ScoringRow) -> Score:
        n = len(row.output.strip()) if unit == "chars" else len(words(row.output))
        ok = (low is None or n >= low) and (high is None or n <= high)
        return Score(1.0 if ok else 0.0, rationale=None if ok else f"{n} {unit_name}, not {shown}")

    return Metric(
        name, f"1 if the output has {shown} {unit_name}, else 0", False, within, binary=True
    )


register_kind(
    Kind(
        name="length",
        description="1 if the output's length is within bounds (MIN..MAX), else 0",
        params=(
            Param("min", (int,), "the fewest characters (or words) allowed"),
            Param("max", (int,), "the most characters (or words) allowed"),
            Param("unit", (str,), '"chars" (default) or "words"'),
        ),
        factory=_length,
        main="min..max",
        parse_value=_bounds,
    )
)
