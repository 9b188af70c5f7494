"""What a judge answers: a yes/no verdict, an integer on a scale, or one of a list of labels.

An :class:`OutputSpec` knows the JSON it asks the judge for, how to read one answer value
(``coerce``), and the float that value stores: yes/no as 1.0/0.0 (so its mean is a rate), a
scale as the integer itself (so its mean is on the scale), and labels, listed from worst to
best, as their position over ``n - 1`` (so the mean lies in [0, 1]).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import JudgeParseError, MetricError

__all__ = ["NO_WORDS", "YES_WORDS", "OutputSpec"]

# Words a judge uses for a verdict. "correct"/"pass" read as yes: a grader that answers
# "Correct." to "Is the answer correct?" means yes.
YES_WORDS = frozenset({"yes", "y", "true", "pass", "passed", "correct"})
NO_WORDS = frozenset({"no", "n", "false", "fail", "failed", "incorrect"})

_SCALE = re.compile(r"^\s*(-?\d+)\s*(?:-|–|to|\.\.)\s*(-?\d+)\s*$")
_NUMBER = re.compile(
    r"^\s*\[*\s*(-?\d+(?:\.\d+)?)\s*\]*\s*(?:(?:/|out\s+of|of)\s*(\d+))?\s*[.!]?\s*$", re.I
)
_LABEL_NOISE = re.compile(
    r"^[\s\[\]\"'`*_(]*(?:response|option|output|answer)?\s*|[\s\]\"'`*_).!]*$", re.I
)

Kind = Literal["yes/no", "scale", "labels"]


@dataclass(frozen=True)
class OutputSpec:
    """The answer a judge gives; build one with :meth:`parse` (``"yes/no"``, ``"1-5"``, a list)."""

    kind: Kind
    low: int = 0
    high: int = 0
    labels: tuple[str, ...] = ()
    key: str = "verdict"  # the JSON key the judge is asked to put its answer under

    @classmethod
    def parse(cls, value: Any, *, key: str | None = None) -> OutputSpec:
        """``"yes/no"``, ``"LOW-HIGH"`` (any integer range) or a list of at least two labels."""
        if isinstance(value, (list, tuple)):
            labels = tuple(str(v).strip() for v in value)
            if len(labels) < 2 or any(not label for label in labels):
                raise MetricError("a judge's output labels must be at least two non-empty labels")
            if len({label.lower() for label in labels}) != len(labels):
                raise MetricError(f"a judge's output labels repeat: {list(labels)}")
            return cls("labels", labels=labels, key=key or "label")
        text = str(value).strip().lower()
        if text in ("yes/no", "yes-no", "yes or no", "bool", "boolean"):
            return cls("yes/no", labels=("yes", "no"), key=key or "verdict")
        match = _SCALE.match(text)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if low >= high:
                raise MetricError(f"a judge's output scale {value!r} must go from low to high")
            if high - low > 100:
                raise MetricError(f"a judge's output scale {value!r} has more than 101 points")
            labels = tuple(str(i) for i in range(low, high + 1))
            return cls("scale", low=low, high=high, labels=labels, key=key or "score")
        raise MetricError(
            f'unknown judge output {value!r}: use "yes/no", an integer range '
            'such as "1-5", or a list of labels'
        )

    def describe(self) -> str:
        """``yes/no``, ``1-5`` or ``labels: a, b, c``: how `harness judges list` shows it."""
        if self.kind == "scale":
            return f"{self.low}-{self.high}"
        if self.kind == "labels":
            return "labels: " + ", ".join(self.labels)
        return "yes/no"

    def expectation(self) -> str:
        """What a valid answer is, in words: for error and repair messages."""
        if self.kind == "scale":
            return f'"{self.key}": an integer from {self.low} to {self.high}'
        return f'"{self.key}": ' + " or ".join(f'"{label}"' for label in self.labels)

    def as_key(self) -> dict[str, Any]:
        """What identifies this output type in a judge's version hash."""
        return {
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "labels": list(self.labels),
            "key": self.key,
        }

    def answer_format(self) -> str:
        """The one-line JSON shape the judge is told to reply with."""
        rationale = '"rationale": "<your reasoning, in one to three sentences>"'
        if self.kind == "scale":
            return f'{{{rationale}, "{self.key}": <an integer from {self.low} to {self.high}>}}'
        if self.kind == "yes/no":
            return f'{{{rationale}, "{self.key}": "yes" or "no"}}'
        choices = " or ".join(f'"{label}"' for label in self.labels)
        return f'{{{rationale}, "{self.key}": {choices}}}'

    @property
    def binary(self) -> bool:
        """Whether every answer is stored as 0 or 1: yes/no, two labels, a 0-1 scale."""
        return {self.value_of(label) for label in self.labels} == {0.0, 1.0}

    @property
    def bounds(self) -> tuple[float, float]:
        """The range every stored score (and the mean of several samples) lies in: a
        scale's ends, else 0 to 1."""
        if self.kind == "scale":
            return float(self.low), float(self.high)
        return 0.0, 1.0

    def value_of(self, label: str) -> float:
        """The float stored for a canonical label."""
        if self.kind == "yes/no":
            return 1.0 if label == "yes" else 0.0
        if self.kind == "scale":
            return float(int(label))
        return self.labels.index(label) / (len(self.labels) - 1)

    def coerce(self, raw: Any) -> str | None:
        """The canonical label for one answer value, None when it is no answer at all.

        Raises JudgeParseError for an answer of the right kind that is not allowed, such as
        a score outside the scale: that answer must not be read as something else.
        """
        if self.kind == "scale":
            return self._coerce_score(raw)
        if self.kind == "yes/no":
            return self._coerce_yes_no(raw)
        return self._coerce_label(raw)

    def _coerce_score(self, raw: Any) -> str | None:
        if isinstance(raw, bool) or raw is None:
            return None
        denominator = None
        if isinstance(raw, (int, float)):
            number = float(raw)
        else:
            match = _NUMBER.match(str(raw))
            if not match:
                return None
            number = float(match.group(1))
            denominator = int(match.group(2)) if match.group(2) else None
        if denominator is not None and denominator != self.high:
            raise JudgeParseError(
                f"score {match_text(number)}/{denominator} is not on the "
                f"{self.low}-{self.high} scale"
            )
        if not number.is_integer():
            raise JudgeParseError(
                f"score {number} is not an integer on the {self.low}-{self.high} scale"
            )
        if not self.low <= number <= self.high:
            raise JudgeParseError(
                f"score {match_text(number)} is outside the {self.low}-{self.high} scale"
            )
        return str(int(number))

    def _coerce_yes_no(self, raw: Any) -> str | None:
        if isinstance(raw, bool):
            return "yes" if raw else "no"
        if isinstance(raw, (int, float)):
            return {1.0: "yes", 0.0: "no"}.get(float(raw))
        if not isinstance(raw, str):
            return None
        word = raw.strip().strip("\"'`*_[]().!").strip().lower()
        if word in YES_WORDS:
            return "yes"
        if word in NO_WORDS:
            return "no"
        return None

    def _coerce_label(self, raw: Any) -> str | None:
        if raw is None or isinstance(raw, (dict, list)):
            return None
        text = str(raw).strip()
        wanted = _LABEL_NOISE.sub("", text).lower() if text else ""
        for label in self.labels:
            if label.lower() in (text.lower(), wanted):
                return label
        if wanted:
            known = ", ".join(self.labels)
            raise JudgeParseError(f"{text!r} is not one of the labels ({known})")
        return None


def match_text(number: float) -> str:
    """A number as a judge would write it: ``4`` rather than ``4.0``."""
    return str(int(number)) if number.is_integer() else str(number)
