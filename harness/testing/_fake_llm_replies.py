"""What the fake LLM server says: deterministic reply text and token counts.

The reply is a pure function of the conversation (plus, in the temperature-aware mode, a
sample number), so the same request always gets the same text. See the docstring of
``harness.testing.fake_llm`` for the rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ANSWER_CHARS = 80  # the first sentence of the question is cut to this many characters
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# A judge's answer format naming its labels: "winner": "1" or "2" or "tie".
_LABELS = re.compile(r'"([A-Za-z_][\w-]*)": ("[^"\n]*"(?: or "[^"\n]*")+)')
_RANGE = re.compile(r"\b(\d{1,3})\s*(?:-|–|to)\s*(\d{1,3})\b")
_SCALE_AFTER_SCORE = 40  # characters from "score" to its scale, at most


@dataclass(frozen=True)
class Conversation:
    """The parts of a chat request that decide the reply, whatever the wire format."""

    system: str
    messages: tuple[tuple[str, str], ...]  # (role, text)
    wants_json: bool = False  # response_format json_object/json_schema, or Ollama "format"
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    stream: bool = False  # answer as server-sent events (decides the shape, not the text)
    stream_usage: bool = False  # OpenAI ``stream_options.include_usage``: a last usage chunk
    # Anthropic's prompt cache: the prompt's text up to the last block with ``cache_control``
    cached_text: str = ""

    @property
    def prompt_text(self) -> str:
        """The system prompt and every message, joined: what ``replies`` keys are matched in."""
        parts = [self.system] if self.system else []
        parts.extend(text for _, text in self.messages)
        return "\n\n".join(parts)

    @property
    def last_user_text(self) -> str:
        for role, text in reversed(self.messages):
            if role == "user":
                return text
        return self.messages[-1][1] if self.messages else ""

    def digest(self, sample: int = 0) -> str:
        """A stable hash of the conversation (and sample number) that the reply derives from."""
        canonical = json.dumps(
            [self.system, list(self.messages), sample], ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of OpenAI/Anthropic parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return "\n".join(texts)
    return "" if content is None else str(content)


def count_tokens(text: str) -> int:
    """The fake tokenizer: whitespace-separated words."""
    return len(text.split())


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector for ``text``: each lower-cased word adds +1 or -1 to the dimension its
    hash picks, so texts that share words point the same way (retrieval by cosine works)."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    norm = sum(v * v for v in vector) ** 0.5
    if not norm:  # no words: a fixed direction, still of length 1
        return [1.0] + [0.0] * (dimensions - 1)
    return [round(v / norm, 6) for v in vector]


def default_reply(conversation: Conversation, sample: int = 0) -> str:
    """The built-in answer: a judge's answer as JSON (a score, a verdict, or one of the labels
    its answer format names), or ``Answer: <first sentence>``."""
    digest = conversation.digest(sample)
    prompt = conversation.prompt_text.lower()
    asks_json = conversation.wants_json or "json" in prompt
    labels = _asked_labels(conversation.prompt_text) if asks_json else None
    if labels is not None:  # a judge of labels (pairwise: "winner": "1" or "2" or "tie")
        key, choices = labels
        chosen = choices[int(digest[:8], 16) % len(choices)]
        return json.dumps({key: chosen, "rationale": f"Fake judge rationale {digest[:8]}."})
    if asks_json and ("verdict" in prompt or "score" in prompt):
        return json.dumps(_judge_answer(prompt, digest))
    first = _first_sentence(conversation.last_user_text)
    if conversation.wants_json:
        return json.dumps({"answer": first})
    return f"Answer: {first}" if first else "Answer:"


def _asked_labels(prompt: str) -> tuple[str, list[str]] | None:
    """The key and labels of a ``"KEY": "A" or "B" ...`` answer format in a judge's prompt,
    unless it is a yes/no (or pass/fail) verdict, which ``_judge_answer`` gives."""
    match = _LABELS.search(prompt)
    if match is None:
        return None
    key, choices = match.group(1), re.findall(r'"([^"\n]*)"', match.group(2))
    if key == "verdict" and {c.lower() for c in choices} in ({"yes", "no"}, {"pass", "fail"}):
        return None
    return key, choices


def _first_sentence(text: str) -> str:
    for piece in _SENTENCE_END.split(text.strip()):
        piece = piece.strip()
        if piece:
            return piece[:ANSWER_CHARS].rstrip()
    return ""


def _judge_answer(prompt: str, digest: str) -> dict[str, Any]:
    number = int(digest[:8], 16)
    answer: dict[str, Any] = {}
    if "score" in prompt:
        low, high = _score_range(prompt)
        answer["score"] = low + number % (high - low + 1)
    if "verdict" in prompt:
        choices = ("pass", "fail") if "pass" in prompt and "fail" in prompt else ("yes", "no")
        answer["verdict"] = choices[(number >> 8) % 2]
    answer["rationale"] = f"Fake judge rationale {digest[:8]}."
    return answer


def _score_range(prompt: str) -> tuple[int, int]:
    """The first ``LOW-HIGH`` / ``LOW to HIGH`` scale close after the word "score" ("a score
    from 1-5", ``"score": an integer from 1 to 5``), else 1-5. Only close after: a judge may
    say "score" before the row, whose own ranges ("at 11-14 weeks") are no scale."""
    for mention in re.finditer("score", prompt):
        match = _RANGE.search(prompt, mention.end())
        if match and match.start() - mention.end() <= _SCALE_AFTER_SCORE:
            low, high = int(match.group(1)), int(match.group(2))
            if low < high <= 100:
                return low, high
    return 1, 5


@dataclass
class Reply:
    """The answer to one request: its text, whether ``max_tokens`` cut it, and token counts."""

    text: str
    truncated: bool
    input_tokens: int  # less the cached prefix's tokens (Anthropic's ``input_tokens``)
    output_tokens: int
    filtered: bool = False  # stopped by the content filter (the script step "filtered")
    cache_written: int = 0  # tokens of a cached prefix seen for the first time
    cache_read: int = 0  # tokens of a cached prefix seen before (since the last restart)


class ReplyBook:
    """Chooses replies: canned ``replies`` first, else ``default_reply``.

    Holds the only state a reply depends on: the position in a list of canned replies and,
    in the temperature-aware mode, how many answers each distinct body has received.
    """

    def __init__(self, replies: list[str] | dict[str, str] | None, vary: bool) -> None:
        self._samples: dict[str, int] = {}
        self._cached: set[str] = set()  # digests of the prompt-cache prefixes written
        self.restart(replies, vary)

    def restart(self, replies: list[str] | dict[str, str] | None, vary: bool) -> None:
        """Use these settings; canned replies start over and sample counts are forgotten."""
        self.replies = replies
        self.vary = vary
        self._next_canned = 0
        self._samples.clear()
        self._cached.clear()

    def reply(self, conversation: Conversation, body_id: str) -> Reply:
        """The next reply to ``conversation`` (whose raw body hashes to ``body_id``)."""
        sample = 0
        if self.vary and conversation.temperature > 0:
            if conversation.seed is not None:
                sample = conversation.seed
            else:
                sample = self._samples.get(body_id, 0)
                self._samples[body_id] = sample + 1
        text = self._canned(conversation)
        if text is None:
            text = default_reply(conversation, sample)
            if sample and not text.startswith("{"):
                text = f"{text} (sample {sample})"
        truncated = False
        limit = conversation.max_tokens
        if limit is not None and count_tokens(text) > limit:
            text, truncated = " ".join(text.split()[:limit]), True
        cached = count_tokens(conversation.cached_text)
        written = read = 0
        if cached:  # written the first time the server sees the prefix, read after
            prefix = hashlib.sha256(conversation.cached_text.encode()).hexdigest()
            read, written = (cached, 0) if prefix in self._cached else (0, cached)
            self._cached.add(prefix)
        return Reply(
            text=text,
            truncated=truncated,
            input_tokens=max(0, count_tokens(conversation.prompt_text) - cached),
            output_tokens=count_tokens(text),
            cache_written=written,
            cache_read=read,
        )

    def _canned(self, conversation: Conversation) -> str | None:
        if isinstance(self.replies, list):
            text = self.replies[self._next_canned % len(self.replies)]
            self._next_canned += 1
            return text
        if isinstance(self.replies, dict):
            prompt = conversation.prompt_text
            for needle, text in self.replies.items():
                if needle in prompt:
                    return text
        return None
