"""The judge: a prompt, an output type and a parser, called through the one call path.

A :class:`Judge` renders its messages from a scoring row, asks the judge model through
``Caller.call(kind="judge")`` (so judge calls share the cache, the retries and the
accounting of model calls, and are counted apart), parses the answer, and re-asks with a
repair message when the answer has no usable verdict. Everything that defines the judge
(system text, definition, rubric, examples, prompt, output type) is in its messages, so a
change to any of them changes the request and so its cache key; the parser is not, so a
better parser re-reads cached answers for free. ``version`` hashes all of it, parser
version included.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import JudgeParseError, MetricError, ProviderError
from harness.judges.output import OutputSpec
from harness.judges.parse import PARSER_VERSION, Verdict, parse_verdict
from harness.store.rows import ScoreRow
from harness.wording import unknown_names

if TYPE_CHECKING:
    from harness.calls import Caller, CallResult
    from harness.metrics import ScoringRow
    from harness.providers.base import Provider

__all__ = ["FIELDS", "MAX_REPAIRS", "STRUCTURED_OUTPUT_PARAMS", "Judge"]

FIELDS = ("input", "output", "expected", "context")  # the placeholders a judge prompt may use
MAX_REPAIRS = 2  # re-asks after an answer with no usable verdict
UNREADABLE = "no usable verdict"  # how the error of such a judge answer starts
SAMPLE_TEMPERATURE = 1.0  # when asked N > 1 times and no temperature is set: let answers vary
REPAIR_SEPARATOR = "\n\n--- repair ---\n\n"  # between attempts in a ScoreRow's raw text

# Structured output, per provider scheme: only where the provider module passes it on.
STRUCTURED_OUTPUT_PARAMS: dict[str, dict[str, Any]] = {
    "openai": {"response_format": {"type": "json_object"}},
    "databricks": {"response_format": {"type": "json_object"}},
}

SYSTEM_PROMPT = (
    "You are a careful, impartial judge of the outputs of an AI system. Judge only what you "
    "are asked to judge, using only the information given to you."
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# What reads as a placeholder but is not one, so the judge would see it as written, without
# the row's text: MLflow's and Jinja's {{ outputs }}, { output } with spaces, {output.text}.
_LOOSE_PLACEHOLDER = re.compile(r"\{+\s*[A-Za-z_][\w.]*\s*\}+")
# A placeholder opened and never closed ("Answer: {output"): the judge would see it as written.
# Closed means a '}' comes before any other '{': "{context_used: yes or no}" (JSON written
# loosely in a prompt) is closed, and kept as written as other braces are.
_UNCLOSED = re.compile(r"\{\s*(?:" + "|".join(FIELDS) + r")(?=[^{}]*(?:\{|\Z))")
_FIELD_TITLES = {
    "input": "Input",
    "output": "Output",
    "expected": "Expected answer",
    "context": "Context",
}


@dataclass(frozen=True)
class Judge:
    """An LLM judge. Build custom ones with ``harness.judges.make_judge``.

    ``template`` is the user message's data part, with ``{input}``, ``{output}``,
    ``{expected}`` and ``{context}`` placeholders (other braces are kept as written).
    ``examples`` are dicts of those fields plus ``answer`` (a label valid for ``output``)
    and an optional ``rationale``.
    """

    name: str
    template: str
    output: OutputSpec
    definition: str | None = None
    rubric: str | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    origin: str = "custom"  # builtin | custom (harness.toml / --judges) | python | mlflow
    json_mode: bool = True  # ask for structured output where the provider supports it
    model: str | None = None  # the judge's own model URI; None: the run's --judge-model
    direction: int = 1  # +1: a higher verdict is better (-1 for a judge of faults)
    aggregations: tuple[str, ...] = ()  # reported besides mean, p50, p90 (MLflow's variance)

    def __post_init__(self) -> None:
        unclosed = _UNCLOSED.search(self.template)
        if unclosed:
            raise MetricError(
                f"judge {self.name!r}: prompt template is not valid: {unclosed.group(0)} "
                "has no closing '}'"
            )
        used = _PLACEHOLDER.findall(self.template)
        loose = sorted(
            {
                found
                for found in _LOOSE_PLACEHOLDER.findall(self.template)
                if _PLACEHOLDER.fullmatch(found) is None
            }
        )
        unknown = [
            "{" + name + "}"
            for name in sorted(set(used) - set(FIELDS))
            if not any("{" + name + "}" in found for found in loose)
        ] + loose
        allowed = ", ".join("{" + f + "}" for f in FIELDS)
        if unknown:
            raise MetricError(
                f"judge {self.name!r}: {unknown_names('placeholder', unknown)}; "
                f"a judge prompt can use {allowed}"
            )
        if not used:
            raise MetricError(f"judge {self.name!r}: its prompt uses no placeholder; use {allowed}")

    # -- identity ------------------------------------------------------------------------

    @functools.cached_property  # asked for every row; the template never changes
    def fields(self) -> frozenset[str]:
        """The row fields the prompt uses."""
        return frozenset(_PLACEHOLDER.findall(self.template)) & frozenset(FIELDS)

    @property
    def needs(self) -> frozenset[str]:
        """The optional row fields this judge cannot do without (``expected``, ``context``)."""
        return self.fields & {"expected", "context"}

    @property
    def version(self) -> str:
        """12 hex digits over everything that defines the judge, parser version included."""
        identity = {
            "system": self.system,
            "template": self.template,
            "definition": self.definition,
            "rubric": self.rubric,
            "examples": [dict(e) for e in self.examples],
            "output": self.output.as_key(),
            "params": dict(self.params),
            "parser": PARSER_VERSION,
        }
        text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    # -- messages ------------------------------------------------------------------------

    def answer_instructions(self) -> str:
        return (
            "Reply with one JSON object and nothing else, in exactly this form:\n"
            + self.output.answer_format()
        )

    def messages(self, row: ScoringRow) -> list[dict[str, str]]:
        """The system and user messages for one row."""
        system, preamble = self._fixed_text
        user = self.render(self.template, _values(row)).strip()
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": preamble + user},
        ]

    @functools.cached_property  # the same for every row: made once, not once per row
    def _fixed_text(self) -> tuple[str, str]:
        """The system message, and what the user message says before the row's own part
        (the definition, the rubric and the examples, each followed by a blank line)."""
        system = "\n\n".join(
            p for p in (SYSTEM_PROMPT, self.system, self.answer_instructions()) if p
        )
        parts = [self.definition] if self.definition else []
        if self.rubric:
            parts.append("Rubric:\n" + self.rubric.strip())
        if self.examples:
            parts.append(
                "Examples:\n\n"
                + "\n\n".join(self._example(i, e) for i, e in enumerate(self.examples, start=1))
            )
        return system, "".join(p.strip() + "\n\n" for p in parts)

    @staticmethod
    def render(template: str, values: Mapping[str, str]) -> str:
        """Replace the known placeholders only, so JSON braces in a prompt stay as written."""
        parts = _template_parts(template)
        if len(parts) == 1:
            return template
        filled = list(parts)
        for at in range(1, len(parts), 2):  # what _PLACEHOLDER.sub would put there
            filled[at] = values.get(parts[at], "{" + parts[at] + "}")
        return "".join(filled)

    def _example(self, number: int, example: Mapping[str, Any]) -> str:
        lines = [f"Example {number}:"]
        lines += [f"{_FIELD_TITLES[f]}: {example[f]}" for f in FIELDS if example.get(f)]
        reply: dict[str, Any] = {}
        if example.get("rationale"):
            reply["rationale"] = str(example["rationale"])
        label = self.output.coerce(example["answer"])
        reply[self.output.key] = int(label) if self.output.kind == "scale" and label else label
        lines.append("Reply: " + json.dumps(reply, ensure_ascii=False))
        return "\n".join(lines)

    def read(self, text: str) -> Verdict:
        """The verdict in one answer (raises JudgeParseError when there is none)."""
        return parse_verdict(text, self.output)

    def read_whole(self, text: str, stopped_early: str | None) -> Verdict:
        """``read``, for an answer that is whole: one cut off at its token limit (or
        stopped by a filter) is not read, since the verdict it shows may be one the judge
        was about to revise ("Initial score: 2. However, ..."); it is repaired instead."""
        if stopped_early is not None:
            if "token limit" in stopped_early:
                stopped_early += "; raise max_tokens in the judge's params"
            raise JudgeParseError(stopped_early, raw=text)
        return self.read(text)

    def repair_message(self, error: JudgeParseError) -> dict[str, str]:
        return {
            "role": "user",
            "content": f"Your reply could not be used: {error}. " + self.answer_instructions(),
        }

    def request_params(self, provider: Provider, samples: int) -> dict[str, Any]:
        """Structured output where supported, the judge's params, and a default temperature:
        0 for one sample (the judge's best answer), 1.0 for several (so they may differ)."""
        params: dict[str, Any] = {}
        if self.json_mode:
            params.update(STRUCTURED_OUTPUT_PARAMS.get(provider.scheme, {}))
        params.update(self.params)
        params.setdefault("temperature", 0.0 if samples == 1 else SAMPLE_TEMPERATURE)
        return params

    # -- evaluation ----------------------------------------------------------------------

    def missing(self, row: ScoringRow) -> str | None:
        """The field this row lacks for this judge, if any."""
        if "expected" in self.fields and not row.expected:
            return "expected answer"
        if "context" in self.fields and not row.context:
            return "context"
        return None

    async def evaluate(
        self,
        row: ScoringRow,
        *,
        example_id: str,
        caller: Caller,
        provider: Provider,
        samples: int = 1,
    ) -> list[ScoreRow]:
        """One ScoreRow per sample (``sample`` 0..n-1), each from its own cache entry.

        A row without a field the judge needs is not judged (value None, no call). An
        answer that stays unparseable after ``MAX_REPAIRS`` re-asks, or a failed judge
        call, is a ScoreRow with value None and ``error`` set; the run goes on.
        """
        if samples < 1:
            raise MetricError(f"judge samples must be at least 1, got {samples}")
        lacking = self.missing(row)
        if lacking is not None:
            return [
                ScoreRow(
                    example_id,
                    self.name,
                    None,
                    source="llm_judge",
                    sample=i,
                    rationale=f"not judged: the row has no {lacking}",
                )
                for i in range(samples)
            ]
        messages = self.messages(row)
        params = self.request_params(provider, samples)
        if samples == 1:  # the common case: no task to schedule, a cache hit stays synchronous
            return [
                await self.ask(
                    messages,
                    params,
                    example_id=example_id,
                    caller=caller,
                    provider=provider,
                    sample=0,
                )
            ]
        return list(
            await asyncio.gather(
                *(
                    self.ask(
                        messages,
                        params,
                        example_id=example_id,
                        caller=caller,
                        provider=provider,
                        sample=i,
                    )
                    for i in range(samples)
                )
            )
        )

    async def ask(
        self,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        *,
        example_id: str,
        caller: Caller,
        provider: Provider,
        sample: int = 0,
    ) -> ScoreRow:
        """Ask once (plus repairs) and turn the answer into a ScoreRow."""
        conversation: list[Mapping[str, Any]] = list(map(dict, messages))
        raws: list[str] = []
        result: CallResult | None = None
        error: JudgeParseError | None = None
        # Cached answers that could not be read would be read the same way again: a resume
        # asks again (the answer a judge gives a second time may well be readable).
        again = (example_id, self.name) in caller.ask_judges_again
        for _attempt in range(MAX_REPAIRS + 1):
            request = provider.request(conversation, params, sample_index=sample)
            try:
                result = await caller.call(
                    provider, request, kind="judge", row_id=example_id, ask_again=again
                )
            except ProviderError as e:
                return self._row(
                    example_id, sample, None, raws, result, error=f"judge call failed: {e}"
                )
            raws.append(result.text)
            try:
                verdict = self.read_whole(result.text, provider.stopped_early(result.raw))
            except JudgeParseError as e:
                error = e
                conversation += [
                    {"role": "assistant", "content": result.text},
                    self.repair_message(e),
                ]
                continue
            return self._row(example_id, sample, verdict, raws, result)
        return self._row(
            example_id,
            sample,
            None,
            raws,
            result,
            error=f"{UNREADABLE} after {MAX_REPAIRS} repair(s): {error}",
        )

    def _row(
        self,
        example_id: str,
        sample: int,
        verdict: Verdict | None,
        raws: list[str],
        result: CallResult | None,
        *,
        error: str | None = None,
    ) -> ScoreRow:
        return ScoreRow(
            example_id,
            self.name,
            verdict.value if verdict else None,
            source="llm_judge",
            sample=sample,
            label=verdict.label if verdict else None,
            rationale=verdict.rationale if verdict else None,
            raw=REPAIR_SEPARATOR.join(raws) if raws else None,
            error=error,
            request_key=result.request_key if result else None,
            cached=result.cached if result else None,
        )


@functools.lru_cache(maxsize=64)  # a run has a few judges, each rendered once per row
def _template_parts(template: str) -> tuple[str, ...]:
    """The text around each placeholder and, between, the placeholders' names: text, name,
    text, ..., text (split once, not matched again per row, with a call back per field)."""
    return tuple(_PLACEHOLDER.split(template))


def _values(row: ScoringRow) -> dict[str, str]:
    expected = row.expected
    if len(expected) > 1:  # several acceptable answers: list them all
        shown = "any of these:\n" + "\n".join(f"- {a}" for a in expected)
    else:
        shown = expected[0] if expected else ""
    return {
        "input": row.input,
        "output": row.output or "",
        "expected": shown,
        "context": row.context or "",
    }
