"""An MLflow GenAI metric, asked exactly as MLflow asks it, through harness's call path.

``make_genai_metric`` (and MLflow's ``answer_relevance``, ``answer_correctness``, ...)
send the judge one user message: MLflow's grading prompt, with the input, the output and
"Additional information used by the model" (the grading context columns) filled in, and
MLflow's parameters (``temperature 0, max_tokens 200, top_p 1`` by default).
``make_genai_metric_from_prompt`` sends the user's prompt followed by MLflow's formatting
instructions. :class:`MlflowJudge` renders those same messages from a harness row, so the
judge model sees what it would see under ``mlflow.evaluate``; but the call goes through
``Caller`` (cached, replayable, retried, counted), the answer is read by harness's parser
(MLflow's ``score: N / justification: ...`` lines, JSON, and the rest), a bad answer is
repaired, and the verdict is stored and logged like any judge's.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.judges.judge import SAMPLE_TEMPERATURE, Judge
from harness.judges.parse import PARSER_VERSION, Verdict
from harness.scoring.shape import Source

if TYPE_CHECKING:
    from harness.metrics import ScoringRow
    from harness.providers.base import Provider

__all__ = ["MlflowJudge", "template_fields"]

_JUSTIFICATION = re.compile(r"^\W*justification\W*:?\s*", re.I)


def template_fields(template: str) -> list[str]:
    """The ``{names}`` a ``str.format`` template fills, as MLflow's PromptTemplate reads them.

    Raises ValueError for braces ``str.format`` cannot parse.
    """
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True)
class MlflowJudge(Judge):
    """A judge whose messages are MLflow's own (see the module).

    ``style`` is ``"grading"`` (``make_genai_metric``: ``template`` has ``{input}``,
    ``{output}`` and ``{grading_context_columns}``, filled as MLflow fills them) or
    ``"prompt"`` (``make_genai_metric_from_prompt``: every ``{variable}`` of ``template``
    is filled from ``variables``). ``context`` lists the grading context: each key as
    MLflow shows it, and where its value comes from.
    """

    style: str = "grading"
    include_input: bool = True
    context: tuple[tuple[str, Source], ...] = ()
    variables: tuple[tuple[str, Source], ...] = ()

    def __post_init__(self) -> None:  # MLflow's templates are not harness's: no check here
        pass

    # -- identity ------------------------------------------------------------------------

    @property
    def sources(self) -> tuple[Source, ...]:
        base = (Source("output"),) + ((Source("input"),) if self.include_input else ())
        if self.style == "prompt":
            return tuple(source for _, source in self.variables)
        return base + tuple(source for _, source in self.context)

    @property
    def fields(self) -> frozenset[str]:
        kinds = {source.kind for source in self.sources}
        return frozenset(kinds & {"input", "output", "expected", "context"})

    @property
    def needs(self) -> frozenset[str]:
        return self.fields & {"expected", "context"}

    @property
    def columns(self) -> tuple[str, ...]:
        """The dataset's extra columns this judge reads."""
        return tuple(s.column for s in self.sources if s.kind == "extra" and s.column)

    @property
    def version(self) -> str:
        identity = {
            "template": self.template,
            "style": self.style,
            "include_input": self.include_input,
            "context": [[key, source.kind, source.column] for key, source in self.context],
            "variables": [[key, source.kind, source.column] for key, source in self.variables],
            "output": self.output.as_key(),
            "params": dict(self.params),
            "parser": PARSER_VERSION,
        }
        text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    # -- messages ------------------------------------------------------------------------

    def messages(self, row: ScoringRow) -> list[dict[str, str]]:
        """MLflow's one user message for this row."""
        if self.style == "prompt":
            values = {key: _value(row, source) for key, source in self.variables}
            return [{"role": "user", "content": self.template.format(**values)}]
        filled: dict[str, Any] = {
            "output": row.output,
            "grading_context_columns": self._context(row),
        }
        if self.include_input:
            filled["input"] = row.input
        return [{"role": "user", "content": self.template.format(**filled)}]

    def _context(self, row: ScoringRow) -> str:
        # MLflow's _format_args_string, to the character.
        if not self.context:
            return ""
        return "Additional information used by the model:\n" + "\n".join(
            f"key: {key}\nvalue:\n{_value(row, source)}" for key, source in self.context
        )

    def missing(self, row: ScoringRow) -> str | None:
        for source in self.sources:
            if source.kind in ("output", "input"):  # an empty answer is still judged
                continue
            value = _value(row, source)
            if value is None or (isinstance(value, str) and not value):
                return (
                    "expected answer" if source.kind == "expected" else source.column or source.kind
                )
        return None

    def request_params(self, provider: Provider, samples: int) -> dict[str, Any]:
        """MLflow's parameters, as sent; no structured output (MLflow asks for none)."""
        params = dict(self.params)
        if samples > 1:
            params.setdefault("temperature", SAMPLE_TEMPERATURE)
        return params

    def read(self, text: str) -> Verdict:
        """harness's parser, with MLflow's ``justification:`` label taken off the rationale."""
        verdict = super().read(text)
        rationale = verdict.rationale
        if rationale:
            rationale = _JUSTIFICATION.sub("", rationale, count=1).strip() or None
        return Verdict(verdict.value, verdict.label, rationale)


def _value(row: ScoringRow, source: Source) -> Any:
    """A row's value for one source, shaped as MLflow would hold it."""
    if source.kind == "output":
        return row.output
    if source.kind == "input":
        return row.input
    if source.kind == "context":
        return row.context
    if source.kind == "expected":
        if not row.expected:
            return None
        return row.expected[0] if len(row.expected) == 1 else list(row.expected)
    if source.kind == "extra":
        return row.extra.get(source.column or "")
    return source.value
