"""What a stored answer of an intercepted call says: its text, its token usage, and why it
ended, read from the stored form ``harness.intercept.wire`` keeps (``{"status",
"content_type"}`` plus ``"json"``, ``"text"`` or ``"base64"``): a JSON body (chat
completions, Anthropic messages, the Responses API, Ollama), a server-sent event stream, or
Ollama's NDJSON stream. ``summary`` fills the cache entry and the run's counters,
``answer_usage`` prices an Anthropic answer's prompt-cache tokens, ``answer_end`` tells a
cut-off or filtered answer (``AppProvider.stopped_early``), ``stream_ended`` /
``ndjson_ended`` tell a stream cut before its end and ``stream_garbled`` /
``ndjson_garbled`` one with an event the client cannot parse (``wire.broken``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from harness.fastjson import loads_text

__all__ = [
    "answer_end",
    "answer_usage",
    "ndjson_ended",
    "ndjson_garbled",
    "sse_data",
    "stream_ended",
    "stream_garbled",
    "summary",
]


def summary(raw: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    """(text, input tokens, output tokens) of a stored answer, as far as its shape tells."""
    if isinstance(raw.get("json"), dict):
        return _json_summary(raw["json"])
    text = raw.get("text")
    if isinstance(text, str) and "event-stream" in str(raw.get("content_type")):
        return _stream_summary(text)
    if isinstance(text, str) and "ndjson" in str(raw.get("content_type")):
        return _ndjson_summary(text)
    return "", None, None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, Mapping):
        return None, None
    given = _int(usage.get("input_tokens", usage.get("prompt_tokens")))
    if given is not None:  # Anthropic counts its prompt cache's tokens apart: all were read
        given += sum(_int(usage.get(k)) or 0 for k in _CACHE_TOKENS)
    produced = _int(usage.get("output_tokens", usage.get("completion_tokens")))
    return given, produced


_CACHE_TOKENS = ("cache_creation_input_tokens", "cache_read_input_tokens")


def answer_usage(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``usage`` of a stored answer: a JSON body's, or an Anthropic stream's
    (``message_start``'s, with ``message_delta``'s over it), else None. It prices an
    Anthropic answer's prompt-cache tokens (``AppProvider.priced_input_tokens``)."""
    data = raw.get("json")
    if isinstance(data, Mapping):
        usage = data.get("usage")
        return usage if isinstance(usage, Mapping) else None
    text = raw.get("text")
    if not isinstance(text, str) or "event-stream" not in str(raw.get("content_type")):
        return None
    merged: dict[str, Any] = {}
    for event in sse_data(text):
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == "message_start" and isinstance(event.get("message"), Mapping):
            usage = event["message"].get("usage")
        elif event.get("type") == "message_delta":
            usage = event.get("usage")
        else:
            continue
        if isinstance(usage, Mapping):
            merged.update((k, v) for k, v in usage.items() if v is not None)
    return merged or None


def answer_end(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What tells why a stored answer ended, in the shape of a whole answer: its JSON body;
    for a stream, the last chat chunk whose first choice has a ``finish_reason`` (as
    ``{"choices": [that choice]}``), the ``delta`` of Anthropic's ``message_delta`` (which
    holds the ``stop_reason``) or the ``response`` of the Responses API's
    ``response.incomplete`` (which holds its ``incomplete_details``); for Ollama's NDJSON
    stream, its last line when that is the chunk with ``"done": true`` (which holds the
    ``done_reason``); else None. ``AppProvider.stopped_early`` reads it, on every cache hit
    too, so a stream is read from its end."""
    data = raw.get("json")
    if isinstance(data, Mapping):
        return data
    text = raw.get("text")
    if not isinstance(text, str):
        return None
    if "ndjson" in str(raw.get("content_type")):
        end = len(text)  # the last line, found from the end: this runs on every cache hit
        while end and text[end - 1] in " \t\r\n":
            end -= 1
        last = _ndjson_chunk(text[text.rfind("\n", 0, end) + 1 : end])
        return last if last is not None and last.get("done") is True else None
    if "event-stream" not in str(raw.get("content_type")):
        return None
    for block in reversed(re.split(r"\r?\n\r?\n", text)):  # the reason comes near the end
        if not any(mark in block for mark in _END_MARKS):
            continue
        for event in sse_data(block):
            if not isinstance(event, Mapping):
                continue
            whole = event.get("response")
            if event.get("type") == "response.incomplete" and isinstance(whole, Mapping):
                return whole
            delta = event.get("delta")
            if event.get("type") == "message_delta" and isinstance(delta, Mapping):
                if delta.get("stop_reason") is not None:
                    return delta
                continue
            for choice in event.get("choices") or ():
                if (
                    isinstance(choice, Mapping)
                    and choice.get("index", 0) == 0
                    and choice.get("finish_reason") is not None
                ):
                    return {"choices": [choice]}
    return None


_END_MARKS = ("finish_reason", "stop_reason", "response.incomplete")


def _json_summary(data: dict[str, Any]) -> tuple[str, int | None, int | None]:
    text = ""
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if content is None:
            content = choices[0].get("text")  # legacy completions
        text = content if isinstance(content, str) else ""
    elif isinstance(data.get("output"), list):  # the Responses API
        text = "".join(
            str(part.get("text", ""))
            for item in data["output"]
            if isinstance(item, Mapping) and item.get("type") == "message"
            for part in item.get("content") or []
            if isinstance(part, Mapping) and part.get("type") == "output_text"
        )
    elif isinstance(data.get("content"), list):  # Anthropic messages
        text = "".join(
            str(part.get("text", ""))
            for part in data["content"]
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    elif "prompt_eval_count" in data or "eval_count" in data:  # Ollama's /api/chat, /generate
        message = data.get("message")
        content = message.get("content") if isinstance(message, Mapping) else data.get("response")
        text = content if isinstance(content, str) else ""
        return text, _int(data.get("prompt_eval_count")), _int(data.get("eval_count"))
    return (text, *_usage(data.get("usage")))


def _ndjson_chunk(line: str) -> Mapping[str, Any] | None:
    try:
        chunk = loads_text(line)
    except ValueError:
        return None
    return chunk if isinstance(chunk, Mapping) else None


def ndjson_ended(stream: str) -> bool:
    """Whether an NDJSON stream reached its end: Ollama's (its chunks say ``done``) when its
    last chunk is the one with ``"done": true``; one with an error line never has (the model
    failed midway, and Ollama says so in the stream, its 200 long sent); a stream of another
    format when it holds a line."""
    chunks = [
        chunk
        for line in stream.split("\n")
        if line.strip() and (chunk := _ndjson_chunk(line)) is not None
    ]
    if any("error" in chunk for chunk in chunks):
        return False
    if any("done" in chunk for chunk in chunks):
        return chunks[-1].get("done") is True
    return bool(chunks)


def ndjson_garbled(stream: str) -> bool:
    """Whether an NDJSON stream holds a line that is not JSON (cut, or garbled): a client
    reading it raises on that line."""
    for line in stream.split("\n"):  # not splitlines: JSON may hold a raw U+2028
        if line.strip():
            try:
                loads_text(line)
            except ValueError:
                return True
    return False


def _ndjson_summary(stream: str) -> tuple[str, int | None, int | None]:
    """Ollama's NDJSON stream (``/api/chat``, ``/api/generate``): the text of every chunk's
    ``message.content`` (or ``response``); the counts of the last, ``"done": true``."""
    pieces: list[str] = []
    given = produced = None
    for line in stream.split("\n"):  # not splitlines: JSON may hold a raw U+2028
        chunk = _ndjson_chunk(line) if line.strip() else None
        if chunk is None:
            continue
        message = chunk.get("message")
        content = message.get("content") if isinstance(message, Mapping) else chunk.get("response")
        if isinstance(content, str):
            pieces.append(content)
        if chunk.get("done") is True:
            given, produced = _int(chunk.get("prompt_eval_count")), _int(chunk.get("eval_count"))
    return "".join(pieces), given, produced


def sse_data(stream: str) -> Iterator[Any]:
    """The JSON ``data`` of each event of a server-sent event stream (``[DONE]`` skipped)."""
    for block in re.split(r"\r?\n\r?\n", stream):
        lines = [line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:")]
        if not lines or lines == ["[DONE]"]:
            continue
        try:
            yield json.loads("\n".join(lines))
        except ValueError:
            continue


_ANSWER_ENDS = frozenset({"response.completed", "response.incomplete"})  # the Responses API


def stream_ended(stream: str) -> bool:
    """Whether a server-sent event stream reached the end its format has: OpenAI chat or text
    completions ``data: [DONE]``, or a chunk with a finish reason (some compatible servers
    never send ``[DONE]``); Anthropic messages ``message_stop``; the Responses API
    ``response.completed`` or ``response.incomplete``. A stream of another format has ended
    when it holds an event; one with an error event never has (the server failed midway)."""
    form = "other"
    ended = False
    events = 0
    for block in re.split(r"\r?\n\r?\n", stream):
        lines = [line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:")]
        if not lines:
            continue
        if lines == ["[DONE]"]:
            return True
        events += 1  # any data counts: a stream of text tokens is an event stream too
        try:
            data = json.loads("\n".join(lines))
        except ValueError:
            continue
        if not isinstance(data, Mapping):
            continue
        kind = data.get("type")
        if kind == "error" or (data.get("error") and "choices" not in data):
            return False
        if isinstance(data.get("choices"), list):
            form = "completions"
            ended = ended or any(
                isinstance(choice, Mapping) and choice.get("finish_reason") is not None
                for choice in data["choices"]
            )
        elif kind == "message_start" or kind == "message_stop":
            form = "messages"
            ended = ended or kind == "message_stop"
        elif isinstance(kind, str) and kind.startswith("response."):
            form = "responses"
            ended = ended or kind in _ANSWER_ENDS
    return ended if form != "other" else events > 0


def stream_garbled(stream: str) -> bool:
    """Whether a server-sent event stream of JSON events holds one whose data is not JSON
    (cut, or garbled): the SDK reading it raises midway. A stream with no JSON event at
    all is one of text (tokens), and the SDK reads it as such."""
    parsed = garbled = False
    for block in re.split(r"\r?\n\r?\n", stream):
        lines = [line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:")]
        if not lines or lines == ["[DONE]"]:
            continue
        try:
            json.loads("\n".join(lines))
        except ValueError:
            garbled = True
        else:
            parsed = True
    return parsed and garbled


def _stream_summary(stream: str) -> tuple[str, int | None, int | None]:
    pieces: list[str] = []
    given = produced = None
    for data in sse_data(stream):
        if not isinstance(data, Mapping):
            continue
        kind = data.get("type")
        if kind == "content_block_delta":  # Anthropic
            delta = data.get("delta")
            if isinstance(delta, Mapping) and isinstance(delta.get("text"), str):
                pieces.append(delta["text"])
        elif kind == "message_start" and isinstance(data.get("message"), Mapping):
            given = _usage(data["message"].get("usage"))[0]
        elif kind == "message_delta":  # its usage, if any, is the whole answer's
            delta_given, delta_produced = _usage(data.get("usage"))
            given, produced = delta_given or given, delta_produced or produced
        elif kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
            pieces.append(data["delta"])  # the Responses API, streamed
        elif kind in _ANSWER_ENDS and isinstance(data.get("response"), Mapping):
            given, produced = _usage(data["response"].get("usage"))
        else:  # OpenAI chat-completion chunks
            for choice in data.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, Mapping) else None
                if isinstance(delta, Mapping) and isinstance(delta.get("content"), str):
                    pieces.append(delta["content"])
            if isinstance(data.get("usage"), Mapping):
                given, produced = _usage(data["usage"])
    return "".join(pieces), given, produced
