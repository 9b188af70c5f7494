"""An intercepted cache hit reads the cache as the call path's own hits do: the hits an async
client makes in one turn of the call path's event loop share one SQLite read transaction,
ended when the loop turns (``harness.cache.store.ResponseCache.get``'s ``held``); a hit in
another thread holds nothing past its own select."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from harness.cache import ResponseCache
from harness.calls import Caller
from harness.intercept.activate import activate
from harness.intercept.scope import Scope
from harness.testing import FakeLLMServer

QUESTIONS = [f"question {i}" for i in range(6)]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache") as opened:
        yield opened


def body(question: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


async def ask_all(caller: Caller, url: str) -> list[str]:
    """Every question through an async client, intercepted on this (the Caller's) loop."""
    scope = Scope(caller, asyncio.get_running_loop(), threading.get_ident())
    with activate(scope, fallback=scope):
        async with httpx2.AsyncClient(headers={"authorization": "Bearer sk-held-reads"}) as client:
            answers = [(await client.post(url, json=body(q))).text for q in QUESTIONS]
    return answers


def connection(cache: ResponseCache) -> sqlite3.Connection:
    con: sqlite3.Connection = cache._cache._con  # this thread's, the one ``get`` reads with
    return con


def test_an_async_clients_hits_in_one_turn_of_the_loop_read_in_one_transaction(
    llm: FakeLLMServer, cache: ResponseCache
) -> None:
    url = f"{llm.openai_base_url}/chat/completions"
    recorder = Caller(cache=cache, mode="use")

    async def record() -> list[str]:
        try:
            return await ask_all(recorder, url)
        finally:
            await recorder.aclose()

    recorded = asyncio.run(record())
    assert llm.stats()["requests_total"] == len(QUESTIONS)
    statements: list[str] = []

    async def replay() -> tuple[list[str], bool, bool]:
        caller = Caller(cache=cache, mode="replay")
        con = connection(cache)
        con.set_trace_callback(statements.append)
        try:
            answers = await ask_all(caller, url)
            held = con.in_transaction  # the loop has not turned since the last hit
            await asyncio.sleep(0)
            return answers, held, con.in_transaction
        finally:
            con.set_trace_callback(None)
            await caller.aclose()

    answers, held, after_a_turn = asyncio.run(replay())

    assert answers == recorded
    assert llm.stats()["requests_total"] == len(QUESTIONS)  # all hits
    # the client awaits nothing but harness between its calls: one turn, one transaction
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN", "COMMIT"]
    assert held
    assert not after_a_turn
