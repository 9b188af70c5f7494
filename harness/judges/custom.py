"""Custom judges: ``[judges.NAME]`` tables in ``harness.toml`` or a ``--judges`` file, and Python.

TOML shape (every key but ``prompt`` is optional)::

    [judges.cites_evidence]
    prompt = \"\"\"Question: {input}
    Answer: {output}
    Does the answer cite evidence from the study?\"\"\"   # also {expected} and {context}
    output = "yes/no"           # or "1-5" (any integer range), or a list of labels, worst first
    definition = "..."          # what the judge decides, shown before the rubric
    rubric = "..."              # a string, or a table {"5" = "...", "1" = "..."}
    description = "..."         # one line for `harness judges list`
    system = "..."              # extra system text
    params = {max_tokens = 400} # judge generation parameters
    [[judges.cites_evidence.examples]]
    input = "..."
    output = "..."
    answer = "yes"              # a valid answer for `output`
    rationale = "..."

In Python: ``register_judge(make_judge("cites_evidence", prompt=..., output="yes/no"))``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.config import param_problem
from harness.errors import JudgeParseError, MetricError
from harness.judges.judge import FIELDS, Judge
from harness.judges.output import OutputSpec
from harness.wording import unknown_names

__all__ = [
    "load_judges_file",
    "make_judge",
    "register_judge",
    "registered_judges",
    "settings_judges",
]

_KEYS = frozenset(
    {"prompt", "output", "definition", "rubric", "examples", "system", "params", "description"}
)
_EXAMPLE_KEYS = frozenset({*FIELDS, "answer", "rationale"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_registry: dict[str, Judge] = {}


def make_judge(
    name: str,
    prompt: str,
    *,
    output: str | Sequence[str] = "yes/no",
    definition: str | None = None,
    rubric: str | Mapping[str, str] | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
    system: str | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
    origin: str = "python",
) -> Judge:
    """A custom judge; raises MetricError for a bad name, prompt, output type or example.

    A yes/no judge stores 1.0/0.0 and aggregates as a rate in [0, 1]; a scale judge stores
    its integer score and aggregates as its mean; a label judge stores the label's position
    over ``n - 1`` (labels listed worst first).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise MetricError(f"invalid judge name {name!r}: use letters, digits, _ . -")
    if not isinstance(prompt, str):
        raise MetricError(f"judge {name!r}: prompt must be text, not {prompt!r}")
    if not prompt.strip():
        raise MetricError(f"judge {name!r} needs a prompt")
    spec = OutputSpec.parse(output)
    if isinstance(rubric, Mapping):
        rubric = "\n".join(f"{k}: {v}" for k, v in rubric.items())
    for text, what in (
        (definition, "definition"),
        (rubric, "rubric"),
        (system, "system"),
        (description, "description"),
    ):
        if text is not None and not isinstance(text, str):
            raise MetricError(f"judge {name!r}: {what} must be text")
    if isinstance(examples, str | Mapping) or not isinstance(examples, Sequence):
        raise MetricError(
            f"judge {name!r}: examples must be a list of examples (tables of fields), "
            f"not {examples!r}"
        )
    checked = tuple(_check_example(name, i, e, spec) for i, e in enumerate(examples, start=1))
    if params is not None and not isinstance(params, Mapping):
        raise MetricError(f"judge {name!r}: params must be a table of generation parameters")
    for key, value in (params or {}).items():
        problem = param_problem(key, value)
        if problem:
            raise MetricError(f"judge {name!r}: params {problem}")
    return Judge(
        name=name,
        template=prompt,
        output=spec,
        definition=definition or None,
        rubric=rubric or None,
        examples=checked,
        system=system or None,
        params=dict(params or {}),
        description=description or "",
        origin=origin,
    )


def _check_example(name: str, number: int, example: Any, spec: OutputSpec) -> dict[str, Any]:
    where = f"judge {name!r}, example {number}"
    if not isinstance(example, Mapping):
        raise MetricError(f"{where}: an example is a table of fields")
    unknown = sorted(set(example) - _EXAMPLE_KEYS)
    if unknown:
        raise MetricError(
            f"{where}: {unknown_names('key', unknown)}; use {', '.join(sorted(_EXAMPLE_KEYS))}"
        )
    if "answer" not in example:
        raise MetricError(f"{where}: needs an answer ({spec.describe()})")
    try:
        label = spec.coerce(example["answer"])
    except JudgeParseError as e:
        raise MetricError(f"{where}: {e}") from None
    if label is None:
        raise MetricError(
            f"{where}: answer {example['answer']!r} is not a valid {spec.describe()} answer"
        )
    return {k: str(v) for k, v in example.items()}


def _taken(name: str) -> str | None:
    """Why ``name`` cannot name a custom judge: scores of one run are keyed by name."""
    from harness.judges.builtin import BUILTIN_NAMES
    from harness.metrics import metric_names

    if name in BUILTIN_NAMES:
        return f"{name!r} is a built-in judge; choose another name"
    if name in metric_names():
        return f"{name!r} is a metric; choose another name"
    return None


def register_judge(judge: Judge, *, replace: bool = False) -> Judge:
    """Make a Python-built judge available by name to ``harness run --judge`` and evaluate."""
    reason = _taken(judge.name)
    if reason is not None:
        raise MetricError(f"judge name {reason}")
    if judge.name in _registry and _registry[judge.name] != judge and not replace:
        raise MetricError(f"a judge named {judge.name!r} is already registered")
    _registry[judge.name] = judge
    return judge


def registered_judges() -> dict[str, Judge]:
    """Judges registered from Python, by name."""
    return dict(_registry)


def judges_from_table(table: Any, source: str) -> dict[str, Judge]:
    """Judges from a ``[judges]`` table; ``source`` names the file in error messages."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise MetricError(f"{source}: [judges] must be a table of [judges.NAME] tables")
    judges: dict[str, Judge] = {}
    for name, body in table.items():
        where = f"{source}: [judges.{name}]"
        reason = _taken(name)
        if reason is not None:
            raise MetricError(f"{where}: {reason}")
        if not isinstance(body, Mapping):
            raise MetricError(f"{where} must be a table")
        unknown = sorted(set(body) - _KEYS)
        if unknown:
            raise MetricError(
                f"{where}: {unknown_names('key', unknown)}; use {', '.join(sorted(_KEYS))}"
            )
        if "prompt" not in body:
            raise MetricError(f"{where} needs a prompt")
        try:
            judges[name] = make_judge(
                name,
                body["prompt"],
                output=body.get("output", "yes/no"),
                definition=body.get("definition"),
                rubric=body.get("rubric"),
                examples=body.get("examples", ()),
                system=body.get("system"),
                params=body.get("params"),
                description=body.get("description", ""),
                origin="custom",
            )
        except MetricError as e:
            raise MetricError(f"{where}: {e}") from None
    return judges


def settings_judges(settings: Mapping[str, Any], source: str) -> dict[str, Judge]:
    """The ``[judges.NAME]`` tables of a parsed harness.toml."""
    return judges_from_table(settings.get("judges"), source)


def load_judges_file(path: str | Path) -> dict[str, Judge]:
    """The judges of a ``--judges FILE`` (same shape as harness.toml)."""
    from harness.config import load_toml

    file = Path(path).expanduser()
    settings = load_toml(file)
    if "judges" not in settings:
        raise MetricError(f"{file}: no [judges.NAME] table")
    return judges_from_table(settings["judges"], str(file))
