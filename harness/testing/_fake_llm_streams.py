"""Streamed answers of the fake LLM server: server-sent events as the real services send them.

``openai_chunks`` is an OpenAI chat-completions stream (``stream: true``): a first chunk with
the assistant role, one chunk per word of the reply, a chunk with the finish reason, with
``stream_options.include_usage`` a last chunk holding only the usage, then ``data: [DONE]``.
``anthropic_events`` is an Anthropic messages stream: ``message_start``,
``content_block_start``, ``ping``, one ``content_block_delta`` per word,
``content_block_stop``, ``message_delta`` (stop reason and output tokens), ``message_stop``.
``responses_events`` is an OpenAI Responses stream: ``response.created``, the output item's
and its text part's ``added`` events, one ``response.output_text.delta`` per word, their
``done`` events, then ``response.completed`` (or ``response.incomplete``, cut off or
filtered) holding the whole response. Each event is the text of one SSE event, ending in
the blank line that closes it. ``ollama_lines`` is not SSE but Ollama's NDJSON: one JSON
object per line, a ``message`` chunk per word (``"done": false``), then a last line with
``"done": true``, the ``done_reason`` and the counts.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from harness.testing._fake_llm_replies import Reply


def _pieces(text: str) -> list[str]:
    """The reply cut into word-sized deltas that join back into exactly ``text``."""
    return re.findall(r"\s*\S+", text) or [text]


def _data(payload: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"{head}data: {body}\n\n"


def openai_chunks(reply: Reply, model: str, seq: int, *, include_usage: bool) -> list[str]:
    """The SSE events of an OpenAI chat-completions stream answering with ``reply``."""
    head = {
        "id": f"chatcmpl-fake{seq:08d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }
    if include_usage:
        head["usage"] = None  # every chunk but the last carries a null usage

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**head, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in _pieces(reply.text)]
    events.append(chunk({}, finish_reason(reply)))
    if include_usage:
        usage = {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }
        events.append(_data({**head, "choices": [], "usage": usage}))
    events.append(_data("[DONE]"))
    return events


def finish_reason(reply: Reply) -> str:
    """OpenAI's ``finish_reason`` for ``reply``."""
    return "content_filter" if reply.filtered else "length" if reply.truncated else "stop"


def stop_reason(reply: Reply) -> str:
    """Anthropic's ``stop_reason`` for ``reply``."""
    return "refusal" if reply.filtered else "max_tokens" if reply.truncated else "end_turn"


def anthropic_usage(reply: Reply) -> dict[str, int]:
    """The input side of an Anthropic ``usage``: the prompt cache's counts only when a block
    asked for it (``cache_control``)."""
    usage = {"input_tokens": reply.input_tokens}
    if reply.cache_written or reply.cache_read:
        usage["cache_creation_input_tokens"] = reply.cache_written
        usage["cache_read_input_tokens"] = reply.cache_read
    return usage


def anthropic_events(reply: Reply, model: str, seq: int) -> list[str]:
    """The SSE events of an Anthropic messages stream answering with ``reply``."""
    message: dict[str, Any] = {
        "id": f"msg_fake{seq:08d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**anthropic_usage(reply), "output_tokens": 1},
    }
    events = [
        _data({"type": "message_start", "message": message}, "message_start"),
        _data(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _data({"type": "ping"}, "ping"),
    ]
    for piece in _pieces(reply.text):
        delta = {"type": "text_delta", "text": piece}
        block = {"type": "content_block_delta", "index": 0, "delta": delta}
        events.append(_data(block, "content_block_delta"))
    events += [
        _data({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _data(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason(reply),
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": reply.output_tokens},
            },
            "message_delta",
        ),
        _data({"type": "message_stop"}, "message_stop"),
    ]
    return events


def responses_events(reply: Reply, response: dict[str, Any]) -> list[str]:
    """The SSE events of an OpenAI Responses stream whose whole answer is ``response`` (the
    answer ``ResponsesDialect.answer`` gives for ``reply``)."""
    item = response["output"][0]
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": 0}
    pending = {**response, "status": "in_progress", "incomplete_details": None, "output": []}
    shapes: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {
            "type": "response.content_part.added",
            **where,
            "content_index": 0,
            "part": {**part, "text": ""},
        },
    ]
    for piece in _pieces(reply.text) if reply.text else []:
        shapes.append(
            {
                "type": "response.output_text.delta",
                **where,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
        )
    shapes += [
        {
            "type": "response.output_text.done",
            **where,
            "content_index": 0,
            "text": reply.text,
            "logprobs": [],
        },
        {"type": "response.content_part.done", **where, "content_index": 0, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": f"response.{response['status']}", "response": response},
    ]
    return [
        _data({**shape, "sequence_number": number}, shape["type"])
        for number, shape in enumerate(shapes)
    ]


def ollama_lines(reply: Reply, answer: dict[str, Any]) -> list[str]:
    """The NDJSON lines of an Ollama ``/api/chat`` stream whose whole answer is ``answer``
    (the answer ``OllamaDialect.answer`` gives for ``reply``): a chunk per word, then the
    last with an empty message, ``done_reason`` and the counts, as Ollama sends them."""
    head = {"model": answer["model"], "created_at": answer["created_at"]}

    def line(payload: dict[str, Any]) -> str:
        return json.dumps(payload, separators=(",", ":")) + "\n"

    lines = [
        line({**head, "message": {"role": "assistant", "content": piece}, "done": False})
        for piece in (_pieces(reply.text) if reply.text else [])
    ]
    lines.append(line({**answer, "message": {"role": "assistant", "content": ""}}))
    return lines
