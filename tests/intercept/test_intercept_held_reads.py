"""An intercepted cache hit reads the cache as the call path's own hits do: the hits an async
client makes in one turn of the call path's event loop share one SQLite read transaction,
ended when the loop turns (``harness.cache.store.ResponseCache.get``'s ``held``), and so do
those a sync client makes in a ``python:`` model's call, ended as the model returns
(``harness.thread_work``); a hit in a thread the model started holds nothing past its own
select."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import thread_work
from harness.cache import ResponseCache
from harness.calls import Caller
from harness.intercept.activate import activate
from harness.intercept.scope import Scope
from harness.model_io import ModelRequest
from harness.providers.python import PythonProvider
from harness.testing import FakeLLMServer

QUESTIONS = [f"question {i}" for i in range(6)]
AUTH = {"authorization": "Bearer sk-held-reads"}


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
        async with httpx2.AsyncClient(headers=AUTH) as client:
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


def model_run(
    cache: ResponseCache, model: PythonProvider, *, between: Any = None
) -> list[tuple[str, bool]]:
    """One row of ``model`` recorded (``use``), then replayed: the row's output each time,
    with ``between()``'s answer after the replay, while its loop and worker threads live on
    (and the recorded entries are still in the cache's write-ahead log)."""
    request = ModelRequest(provider="python", model=model.model, messages=(), row={"n": 1})

    async def go(mode: str) -> tuple[str, bool]:
        caller = Caller(cache=cache, mode=mode)  # type: ignore[arg-type]
        try:
            result = await caller.call(model, request, row_id="row-1")
            return result.text, between() if between and mode == "replay" else False
        finally:
            await caller.aclose()

    return [asyncio.run(go("use")), asyncio.run(go("replay"))]


def test_a_python_models_hits_share_a_read_transaction_ended_as_it_returns(
    llm: FakeLLMServer, cache: ResponseCache, tmp_path: Path
) -> None:
    url = f"{llm.openai_base_url}/chat/completions"
    seen: list[tuple[bool, list[str]]] = []

    def ask(row: dict[str, Any]) -> str:  # a plain python: model with a sync client
        con, statements = connection(cache), []
        con.set_trace_callback(statements.append)
        try:
            with httpx2.Client(headers=AUTH) as client:
                answers = [client.post(url, json=body(q)).text for q in QUESTIONS]
        finally:
            con.set_trace_callback(None)
        seen.append((con.in_transaction, statements))
        return answers[-1]

    def checkpoint_passes() -> bool:  # another connection's, as another process's would be
        with ResponseCache(tmp_path / "cache") as other:
            ((busy, _, _),) = other._cache._sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return busy == 0

    (recorded, _), (replayed, passed) = model_run(
        cache, PythonProvider("ask", ask), between=checkpoint_passes
    )

    assert replayed == recorded
    assert llm.stats()["requests_total"] == len(QUESTIONS)  # the replay's were all hits
    held, statements = seen[1]
    assert held  # till the model returns
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN"]
    assert passed  # it returned: nothing is held in its idle thread


def test_hits_in_a_thread_the_model_started_hold_nothing(
    llm: FakeLLMServer, cache: ResponseCache
) -> None:
    url = f"{llm.openai_base_url}/chat/completions"
    seen: list[tuple[bool, list[str]]] = []

    def in_its_thread() -> None:
        con, statements = connection(cache), []
        con.set_trace_callback(statements.append)
        try:
            with httpx2.Client(headers=AUTH) as client:
                for q in QUESTIONS:
                    client.post(url, json=body(q))
        finally:
            con.set_trace_callback(None)
        seen.append((con.in_transaction, statements))

    def pooled(row: dict[str, Any]) -> str:
        thread = threading.Thread(target=in_its_thread)  # no stretch of work: none ends
        thread.start()
        thread.join(20)
        return "done"

    model_run(cache, PythonProvider("pooled", pooled))

    assert llm.stats()["requests_total"] == len(QUESTIONS)  # the replay's were all hits
    held, statements = seen[1]
    assert not held
    assert not [s for s in statements if s.startswith(("BEGIN", "COMMIT"))]
    assert thread_work.at_end(lambda: None) is False  # and this thread is in none either
