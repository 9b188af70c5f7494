"""Reading a verdict out of what a real judge wrote.

Judges are asked for one JSON object, and most comply; the rest wrap it in a code fence,
follow it with prose, write Python dicts, add trailing commas, think aloud in ``<think>``
blocks, or answer in prose: ``Score: 4/5``, ``**Rating:** [[3]]``, ``Yes, the candidate is
correct.`` :func:`parse_verdict` accepts all of these, in this order:

1. every JSON (or Python-literal) object in the text, nested objects (and lists of them)
   included, whose keys name a verdict (the judge's own key first, then common synonyms);
   objects that give different verdicts (a draft, then a final answer; one object per
   criterion or claim, with no overall verdict) are no verdict, and are repaired;
2. labelled lines (``score: N``, ``verdict: yes``), the last one winning, since judges
   reason first and conclude last;
3. a bare answer: the whole text, its first word (``Yes, ...``; not a numbered list's
   ``1.``), its last line, or ``[[N]]``;
4. for scales only, ``a score of N`` in a sentence, when every such mention agrees.

An answer of the right kind that is not allowed (a score of 7 on a 1-5 scale, ``8/10`` on a
1-5 scale, a label not in the list) is rejected rather than read some other way, as is a
range of scores (``Score: 3-4``) or two answers on a labelled line (``Winner: 1 or 2``), of
which either would be a guess. Bump
``PARSER_VERSION`` whenever the accepted shapes change: it is part of every judge's version.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness import fastjson
from harness.errors import JudgeParseError
from harness.judges.output import OutputSpec

__all__ = ["PARSER_VERSION", "Verdict", "parse_verdict"]

# 2: an answer cut off at its token limit is not read; 3: JSON objects that disagree are
# no verdict (the first of them was read); 4: a minus sign before a number is kept ("-2"
# was read as 2); 5: a range of scores ("3-4", "4 or 5") is no verdict (its first score was read);
# 6: nested objects that disagree are no verdict (the first of them was read); 7: objects in
# a list inside the answer's object are read (the first "score" on a line was); 8: "Verdict:
# N/A" is no verdict (it was read as "N", no); 9: "1. ..." (a numbered list) is no answer "1";
# 10: a labelled line naming two answers ("Winner: 1 or 2") is no verdict (the first was read)
PARSER_VERSION = 10

_VERDICT_KEYS = {
    "scale": ("score", "rating", "grade", "final_score", "overall_score", "value", "result"),
    "yes/no": (
        "verdict",
        "answer",
        "judgment",
        "judgement",
        "decision",
        "result",
        "label",
        "passed",
        "pass",
        "correct",
        "is_correct",
        "value",
        "score",
    ),
    "labels": (
        "label",
        "verdict",
        "winner",
        "choice",
        "answer",
        "decision",
        "category",
        "result",
        "value",
    ),
}
_RATIONALE_KEYS = (
    "rationale",
    "reason",
    "reasoning",
    "explanation",
    "justification",
    "comment",
    "comments",
    "feedback",
    "analysis",
    "critique",
)
_LINE_WORDS = {
    "scale": r"(?:final\s+|overall\s+)?(?:score|rating|grade)",
    "yes/no": r"(?:final\s+)?(?:verdict|answer|judge?ment|decision|result|conclusion|label)",
    "labels": r"(?:final\s+)?(?:label|verdict|winner|choice|answer|decision|category|result)",
}
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_DOUBLE_BRACKETS = re.compile(r"\[\[\s*([^\[\]\n]{1,40}?)\s*\]\]")
_SCORE_IN_PROSE = re.compile(
    r"\b(?:score|rating|rate\s+(?:it|this(?:\s+answer|\s+response)?)|grade)\s+(?:of\s+|as\s+|an?\s+)?"
    r"(-?\d+(?:\.\d+)?(?:\s*(?:/|out\s+of)\s*\d+)?)",
    re.I,
)
# What follows a score to make it a range: "3-4", "3 – 4", "3 to 4", "4 or 5".
_RANGE_END = re.compile(r"\s*(?:-{1,2}|–|—|\bto\b|\bor\b)\s*(-?\d+(?:\.\d+)?)\b", re.I)
_DENOMINATOR = re.compile(r"/|out\s+of", re.I)
_FENCE = re.compile(r"```[\w+-]*")
_ENUMERATOR = re.compile(r"[\s\"'`*_#>]*\d+[.)]\s+\S")
_MARKUP = "\"'`*_#>-[]() \t"
_NEGATIVE = re.compile(r"-\d")
# A second answer joined to the first on its line: "1 or 2", "yes and no", "Response 1 and
# Response 2"; what follows a comma ("1, because Response 2 ...") is the reason.
_SECOND_ANSWER = re.compile(
    r"\s*(?:or|and|vs\.?|versus|&)\s+(?:response\s+|option\s+)?([A-Za-z0-9]+)\b", re.I
)


@dataclass(frozen=True)
class Verdict:
    """One parsed judge answer: the stored value, its canonical label, and the why."""

    value: float
    label: str
    rationale: str | None


def parse_verdict(text: str, output: OutputSpec) -> Verdict:
    """Read ``output``'s verdict from a judge's ``text``.

    Raises JudgeParseError (with ``raw`` set to ``text``) when there is no verdict, or
    when the verdict given is not allowed (a score outside the scale, an unknown label).
    """
    try:
        return _parse(text, output)
    except JudgeParseError as e:
        raise JudgeParseError(e.message, raw=text) from None


def _parse(text: str, output: OutputSpec) -> Verdict:
    text = text or ""
    cleaned = (_THINK.sub("", text) if "<" in text else text).strip()  # no <think>, no regex
    if not cleaned:
        raise JudgeParseError("the judge's answer is empty")
    in_objects = [
        (found, snippet)
        for obj, snippet in _json_objects(cleaned)
        if (found := _from_mapping(obj, output)) is not None
    ]
    if in_objects:
        # A draft verdict, then the final one: reading either would be a guess.
        labels = [found.label for found, _ in in_objects]
        if len(labels) > 1 and len(set(labels)) > 1:
            several = ", ".join(dict.fromkeys(labels))
            raise JudgeParseError(f"the judge's answer gives several verdicts ({several})")
        found, snippet = in_objects[0]
        if found.rationale is None:  # {"score": 4} after some reasoning: keep the reasoning
            found = _verdict(output, found.label, cleaned, snippet)
        return found
    found = _from_lines(cleaned, output) or _from_bare(cleaned, output)
    if found is None and output.kind == "scale":
        found = _from_sentences(cleaned, output)
    if found is None:
        raise JudgeParseError(f"no verdict ({output.expectation()}) found in the answer")
    return found


# -- JSON and Python-literal objects ---------------------------------------------------


def _json_objects(text: str, limit: int = 20) -> Iterator[tuple[dict[str, Any], str]]:
    """Every top-level ``{...}`` in ``text`` that parses, with its text, in order."""
    if text[:1] == "{" and text[-1:] == "}":
        # The common answer in JSON mode: one object and nothing else. When it parses, the
        # brace scan below (a loop over every character) would find exactly it.
        try:
            whole = fastjson.loads_text(text)
        except ValueError:
            whole = None
        if isinstance(whole, dict):
            yield whole, text
            return
    start, tried = text.find("{"), 0
    while start != -1 and tried < limit:
        tried += 1
        end = _matching_brace(text, start)
        if end is None:
            return
        snippet = text[start : end + 1]
        obj = _load_object(snippet)
        if obj is not None:
            yield obj, snippet
            start = text.find("{", end + 1)
        else:  # not an object: look inside it, it may hold one
            start = text.find("{", start + 1)


def _matching_brace(text: str, start: int) -> int | None:
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            # An apostrophe inside prose ("don't") is no quote; only one after {, :, [ or ,
            if char == '"' or text[:i].rstrip()[-1:] in ("{", ":", "[", ","):
                quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _load_object(snippet: str) -> dict[str, Any] | None:
    for candidate in (snippet, _TRAILING_COMMA.sub(r"\1", snippet)):
        try:
            obj = json.loads(candidate)
        except ValueError:
            try:  # a Python dict: {'score': 4} (literal_eval runs no code)
                obj = ast.literal_eval(candidate)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        if isinstance(obj, dict):
            return obj
    return None


def _from_mapping(obj: Mapping[str, Any], output: OutputSpec, depth: int = 0) -> Verdict | None:
    keys = {str(k).strip().lower(): v for k, v in obj.items()}
    rationale = _rationale(keys)
    for key in _verdict_keys(output.key, output.kind):
        if key in keys:
            # A label judge's other keys may hold free text ("answer": "..."): not a verdict.
            strict = output.kind != "labels" or key == output.key
            label = output.coerce(keys[key]) if strict else _soft(keys[key], output)
            if label is not None:
                return Verdict(output.value_of(label), label, rationale)
    if depth < 2:  # {"evaluation": {"score": 4, ...}}, {"claims": [{"verdict": ...}, ...]}
        nested = [
            found
            for value in keys.values()
            for child in (value if isinstance(value, list) else (value,))
            if isinstance(child, Mapping)
            and (found := _from_mapping(child, output, depth + 1)) is not None
        ]
        labels = list(dict.fromkeys(found.label for found in nested))
        if len(labels) > 1:  # {"accuracy": {"score": 2}, "clarity": {"score": 5}}: no overall
            several = ", ".join(labels)
            raise JudgeParseError(f"the judge's answer gives several verdicts ({several})")
        if nested:
            found = nested[0]
            return (
                found
                if found.rationale or not rationale
                else Verdict(found.value, found.label, rationale)
            )
    return None


@functools.lru_cache(maxsize=64)  # a run has a few judges, and each reads many answers
def _verdict_keys(key: str, kind: str) -> tuple[str, ...]:
    """The keys that may hold a verdict: the judge's own first, then the kind's synonyms."""
    return tuple(dict.fromkeys((key, *_VERDICT_KEYS[kind])))


def _rationale(keys: Mapping[str, Any]) -> str | None:
    for key in _RATIONALE_KEYS:
        value = keys.get(key)
        if value is None or value == "":
            continue
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


# -- prose -----------------------------------------------------------------------------


def _from_lines(text: str, output: OutputSpec) -> Verdict | None:
    """``Score: 4/5``, ``**Verdict:** yes``, ``"score" = 3``: the last such line wins."""
    pattern = re.compile(
        rf"(?<![\w])[\"']?{_LINE_WORDS[output.kind]}[\"']?\s*[*_]*\s*(?:\([^)\n]*\))?\s*"
        r"[:=]\s*[*_\"'`]*\s*([^\n]*)",
        re.I,
    )
    matches = list(pattern.finditer(text))
    for match in reversed(matches):
        value = _first_value(match.group(1), output)
        if not value:
            continue
        label = _soft(value, output) if output.kind == "labels" else output.coerce(value)
        if label is not None:
            # The line up to its answer: "Score: 4 - it misses the dose" keeps its reason.
            at = match.group(1).lower().find(value.lower())
            end = match.end() if at < 0 else match.start(1) + at + len(value)
            while end < match.end() and text[end] in "]*_`\"'":  # "[[4]]", "**4**"
                end += 1
            return _verdict(output, label, text, text[match.start() : end], last=True)
    return None


def _first_value(rest: str, output: OutputSpec) -> str:
    """The answer at the start of what follows ``score:``, e.g. ``4/5`` or ``yes``."""
    rest = _unmark(rest)
    if output.kind == "scale":
        match = re.match(r"\[*\s*(-?\d+(?:\.\d+)?(?:\s*(?:/|out\s+of)\s*\d+)?)", rest, re.I)
        if not match:
            return ""
        end = _range_end(rest, match)
        if end is not None:  # reading either end would be a guess
            raise JudgeParseError(
                f"the judge's answer gives a range of scores ({match.group(1)} to {end}), "
                "not one score"
            )
        return match.group(1)
    if output.kind == "yes/no":
        # A word before "/" is no answer: "N/A" is not "N", "Yes/No" echoes the format.
        match = re.match(r"[A-Za-z]+(?![A-Za-z/])", rest)
        if not match:
            return ""
        _one_answer(match.group(0), rest[match.end() :], output)
        return match.group(0)
    for label in sorted(output.labels, key=len, reverse=True):  # longest first: "no" vs "none"
        found = re.match(rf"(?:response\s+|option\s+)?{re.escape(label)}(?![\w])", rest, re.I)
        if found:
            _one_answer(label, rest[found.end() :], output)
            return label
    return rest.split(",")[0].split(".")[0]


def _one_answer(first: str, after: str, output: OutputSpec) -> None:
    """Refuse a line that names a second answer after ``first``: "Winner: 1 or 2", "Verdict:
    yes and no", "Response 1 and Response 2 are tied" were read as their first answer."""
    match = _SECOND_ANSWER.match(after)
    if match is None:
        return
    second = _soft(match.group(1), output)
    if second is not None and second != _soft(first, output):
        raise JudgeParseError(f"the judge's answer gives two answers ({first}, {second})")


def _from_bare(text: str, output: OutputSpec) -> Verdict | None:
    """The whole answer, its first word (``Yes, ...``), ``[[N]]``, or its last line."""
    label = _bare(text, output)
    if label is not None:
        return _verdict(output, label, text, text)
    for match in _DOUBLE_BRACKETS.finditer(text):
        label = _bare(match.group(1), output)
        if label is not None:
            return _verdict(output, label, text, match.group(0))
    lines = [line for line in text.splitlines() if line.strip(_MARKUP + ".:")]
    if not lines:
        return None
    first = re.match(r"[\s\"'`*_#>]*([A-Za-z0-9]+)(?=\s*[.,;:!)—–-]|\s*$)", lines[0])
    # "1. Response 2 is ..." starts a numbered list: its "1" is no answer, not even when
    # the labels are numbers (the pairwise judge's "1", "2").
    if first and output.kind != "scale" and not _ENUMERATOR.match(lines[0]):
        label = _soft(first.group(1), output)
        if label is not None:
            return _verdict(output, label, text, first.group(0))
    label = _bare(lines[-1], output)
    if label is not None:
        return _verdict(output, label, text, lines[-1], last=True)
    return None


def _bare(text: str, output: OutputSpec) -> str | None:
    """``text`` as a whole answer (``4``, ``4/5``, ``No.``, ``**yes**``), else None."""
    stripped = _unmark(_unmark(text).rstrip(".!"))
    if not stripped or len(stripped) > 40:
        return None
    return output.coerce(stripped) if output.kind == "scale" else _soft(stripped, output)


def _unmark(text: str) -> str:
    """``text`` without the markup around it; a ``-`` right before a digit is a minus sign,
    not a bullet: ``**-2**`` is -2."""
    text = text.strip()
    start = len(text) - len(text.lstrip(_MARKUP))
    stripped = text.strip(_MARKUP)
    return "-" + stripped if start and _NEGATIVE.match(text, start - 1) else stripped


def _soft(word: str, output: OutputSpec) -> str | None:
    """Like ``coerce``, but a word that is no label is just not an answer."""
    try:
        return output.coerce(word)
    except JudgeParseError:
        return None


def _from_sentences(text: str, output: OutputSpec) -> Verdict | None:
    """``I would give this a score of 4``: accepted only when every mention agrees."""
    found = set()
    for match in _SCORE_IN_PROSE.finditer(text):
        found.add(output.coerce(match.group(1)))
        end = _range_end(text, match)
        if end is not None:  # "a score of 3-4": both ends are mentioned, so they disagree
            found.add(output.coerce(end))
    labels = sorted(label for label in found if label is not None)
    if len(labels) == 1:
        return _verdict(output, labels[0], text, "")
    if len(labels) > 1:
        raise JudgeParseError(f"the judge's answer gives several scores ({', '.join(labels)})")
    return None


def _range_end(text: str, match: re.Match[str]) -> str | None:
    """The other end when the score ``match`` found is the start of a range (``3-4``)."""
    if _DENOMINATOR.search(match.group(1)):  # "3 out of 5 - ..." is one score
        return None
    end = _RANGE_END.match(text, match.end(1))
    return end.group(1) if end else None


def _verdict(
    output: OutputSpec, label: str, text: str, verdict_part: str, *, last: bool = False
) -> Verdict:
    """The rationale of a prose answer is the text around its verdict, which is the first
    place ``verdict_part`` occurs, or with ``last`` (a last line, the last labelled line)
    the last: "It makes 4 claims; 3 hold.\n\n4" keeps its "4 claims"."""
    if not verdict_part:
        rest = text
    elif last:
        before, _, after = text.rpartition(verdict_part)
        rest = f"{before} {after}"
    else:
        rest = text.replace(verdict_part, " ", 1)
    if "```" in rest:  # the fence around a JSON answer is no reasoning
        rest = _FENCE.sub(" ", rest)
    rationale = " ".join(rest.split()).lstrip(" .,:;-—*_#").rstrip(" ,:;-—*_#") or None
    return Verdict(output.value_of(label), label, rationale)
