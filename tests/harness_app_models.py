"""``python:`` models that are LLM apps: they call the openai SDK themselves (issue 11).

The SDK reads ``OPENAI_BASE_URL`` (the fake server in the tests) and ``OPENAI_API_KEY``.
``APP_SYSTEM`` in the environment replaces the system prompt, so a test can change the app
without editing code that is already imported.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

DOCUMENTS = [
    "Paris is the capital of France.",
    "The Nile is the longest river in Africa.",
    "Python was created by Guido van Rossum.",
]
SYSTEM = "Answer the question from the context, in a few words."


def _system() -> str:
    return os.environ.get("APP_SYSTEM", SYSTEM)


def _closest(question: list[float], documents: list[list[float]]) -> str:
    scores = [sum(q * d for q, d in zip(question, document, strict=True)) for document in documents]
    return DOCUMENTS[scores.index(max(scores))]


def _messages(question: str, context: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": _system()},
        {"role": "user", "content": f"{question}\nContext: {context}"},
    ]


def rag(row: dict[str, Any]) -> str:
    """An embedding call, then a chat call, with the sync client."""
    import openai

    client = openai.OpenAI()
    found = client.embeddings.create(
        model="text-embedding-3-small", input=[row["input"], *DOCUMENTS]
    )
    question, *documents = [item.embedding for item in found.data]
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=_messages(row["input"], _closest(question, documents)),  # type: ignore[arg-type]
    )
    return str(reply.choices[0].message.content)


async def rag_async(row: dict[str, Any]) -> str:
    """The same with the async client: the embedding and a chat call made together."""
    import openai

    client = openai.AsyncOpenAI()
    found, reply = await asyncio.gather(
        client.embeddings.create(model="text-embedding-3-small", input=[row["input"], *DOCUMENTS]),
        client.chat.completions.create(
            model="gpt-4o-mini",
            temperature=0,
            messages=_messages(row["input"], "none"),  # type: ignore[arg-type]
        ),
    )
    return f"{reply.choices[0].message.content} ({len(found.data)} vectors)"


async def blocking_in_async(row: dict[str, Any]) -> str:
    """A mistake: the sync client inside an async function blocks the event loop."""
    import openai

    reply = openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": row["input"]}]
    )
    return str(reply.choices[0].message.content)


async def streamed(row: dict[str, Any]) -> str:
    """Streams with the async clients of both SDKs: an OpenAI chat stream, then Claude's."""
    import anthropic
    import openai

    chunks = await openai.AsyncOpenAI().chat.completions.create(
        model="gpt-4o-mini",
        messages=_messages(row["input"], "none"),  # type: ignore[arg-type]
        stream=True,
    )
    first = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    async with anthropic.AsyncAnthropic().messages.stream(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": f"Check this answer: {first}"}],
    ) as events:
        second = "".join([piece async for piece in events.text_stream])
    return f"{first} | {second}"


CACHED_SYSTEM = " ".join(DOCUMENTS)  # 19 words: the fake server's tokens


def cached_claude(row: dict[str, Any]) -> str:
    """Claude with its system prompt in Anthropic's prompt cache (``cache_control``); streams
    when the row's ``stream`` is true."""
    import anthropic

    request: dict[str, Any] = {
        "model": "claude-sonnet-4",
        "max_tokens": 64,
        "system": [{"type": "text", "text": CACHED_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": row["input"]}],
    }
    client = anthropic.Anthropic()
    if os.environ.get("APP_STREAM"):
        with client.messages.stream(**request) as events:
            return "".join(events.text_stream)
    reply = client.messages.create(**request)
    return "".join(block.text for block in reply.content if block.type == "text")


def ask(row: dict[str, Any]) -> str:
    """One chat call with the sync client."""
    import openai

    reply = openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": row["input"]}]
    )
    return str(reply.choices[0].message.content)


def ask_briefly(row: dict[str, Any]) -> str:
    """One chat call with the sync client, its answer held to one token (cut off); streamed
    when ``APP_STREAM`` is set."""
    import openai

    client = openai.OpenAI()
    messages: Any = [{"role": "user", "content": row["input"]}]
    if os.environ.get("APP_STREAM"):
        chunks = client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=1, messages=messages, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model="gpt-4o-mini", max_tokens=1, messages=messages)
    return str(reply.choices[0].message.content)


def ask_responses(row: dict[str, Any]) -> str:
    """One call to the Responses API with the sync client, streamed when ``APP_STREAM`` is
    set; its answer held to one token (cut off) when ``APP_BRIEF`` is set."""
    import openai

    client = openai.OpenAI()
    limit: Any = 1 if os.environ.get("APP_BRIEF") else openai.omit
    if os.environ.get("APP_STREAM"):
        events = client.responses.create(
            model="gpt-4o-mini", input=row["input"], max_output_tokens=limit, stream=True
        )
        return "".join(e.delta for e in events if e.type == "response.output_text.delta")
    reply = client.responses.create(
        model="gpt-4o-mini", input=row["input"], max_output_tokens=limit
    )
    return reply.output_text


def ask_ollama_briefly(row: dict[str, Any]) -> str:
    """One call to Ollama's own ``/api/chat`` at ``OLLAMA_HOST`` with httpx (as the ollama
    client sends it), its answer held to one token (cut off: ``done_reason`` ``length``);
    streamed (NDJSON, the ollama client's default) when ``APP_STREAM`` is set."""
    import httpx

    stream = bool(os.environ.get("APP_STREAM"))
    body = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": row["input"]}],
        "options": {"num_predict": 1},
        "stream": stream,
    }
    url = os.environ["OLLAMA_HOST"] + "/api/chat"
    if stream:
        with httpx.stream("POST", url, json=body) as response:
            chunks = [json.loads(line) for line in response.iter_lines() if line]
        return "".join(str(chunk["message"]["content"]) for chunk in chunks)
    reply = httpx.post(url, json=body).json()
    return str(reply["message"]["content"])


async def ask_async(row: dict[str, Any]) -> str:
    """One chat call with the async client."""
    import openai

    reply = await openai.AsyncOpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": row["input"]}]
    )
    return str(reply.choices[0].message.content)


def pooled_with_fallback(row: dict[str, Any]) -> str:
    """Two chat calls from a thread pool (threads that carry no row), each falling back to a
    canned answer when the SDK raises, as an app that must always answer does."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    client = openai.OpenAI(max_retries=0)

    def one(part: int) -> str:
        try:
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": _system()},
                    {"role": "user", "content": f"{row['input']} (part {part})"},
                ],
            )
        except openai.APIError:
            return "fallback"
        return str(reply.choices[0].message.content)

    with ThreadPoolExecutor(2) as pool:
        return " | ".join(pool.map(one, range(2)))
