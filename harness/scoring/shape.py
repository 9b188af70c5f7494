"""Where a metric's named argument comes from: MLflow's column rules over a harness row.

MLflow hands an ``eval_fn`` or a GenAI metric its arguments by parameter name: the
predictions, the targets, a column of the data (renamed through
``evaluator_config={"col_mapping": {...}}``), a value of ``evaluator_config``, or another
metric. :class:`DataShape` answers the same question for a harness dataset, where the
input, expected answer and context have fixed places and every other column is an extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTPUT_NAMES", "DataShape", "Source"]

# Names that mean the model's output, as MLflow's eval_fn and prompt templates use them.
OUTPUT_NAMES = frozenset({"predictions", "prediction", "outputs", "output"})
_FIELD_NAMES = {
    "expected": frozenset({"targets", "target", "expected", "expected_response"}),
    "input": frozenset({"inputs", "input"}),
    "context": frozenset({"context"}),
}


@dataclass(frozen=True)
class Source:
    """One argument's origin: a row field, an extra column, or a fixed value."""

    kind: str  # "output" | "input" | "expected" | "context" | "extra" | "value"
    column: str | None = None  # for "extra": the column's name
    value: Any = None  # for "value"


@dataclass(frozen=True)
class DataShape:
    """A dataset's columns as a metric sees them.

    ``fields`` maps harness's fields (``input``, ``expected``, ``context``, ``id``) to the
    columns they were read from (``{"input": "question", "expected": "ground_truth"}``);
    ``extra`` lists the other columns; ``col_mapping`` and ``config`` are MLflow's
    ``evaluator_config`` (the column mapping, and the rest of it).
    """

    fields: Mapping[str, str | None] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    col_mapping: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    def source(self, name: str) -> Source | None:
        """Where the argument ``name`` comes from, or None when nothing provides it."""
        column = self.col_mapping.get(name, name)
        if not isinstance(column, str):  # MLflow: a col_mapping value may be the data itself
            return Source("value", value=column)
        if column in OUTPUT_NAMES:
            return Source("output")
        for field_name, names in _FIELD_NAMES.items():
            if column in names or (column and column == self.fields.get(field_name)):
                return Source(field_name)
        if column in self.extra:
            return Source("extra", column=column)
        if name in self.config:
            return Source("value", value=self.config[name])
        return None

    def describe(self) -> str:
        """The columns available, for an error message."""
        named = [c for c in self.fields.values() if c]
        return ", ".join([*named, *self.extra]) or "none"
