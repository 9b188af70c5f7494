"""After a stop, a row that has sent nothing sends nothing (harness.calls.halt), against the
fake LLM server: what the engine relies on, call by call."""

from __future__ import annotations

import asyncio

import pytest

from harness.calls import ROW_SENT, Caller, CallHalted
from harness.providers.openai import OpenAIProvider
from harness.testing import FakeLLMServer


def test_a_row_that_has_paid_is_not_halted_by_the_row_it_shared_a_request_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows A (nothing sent yet) and B (has paid) ask the same request; A owns it and waits
    for the one connection, which C holds. The stop halts A: B shared A's answer, so it got
    A's CallHalted and was dropped with what it had paid. Now B sends it itself."""
    said: dict[str, str] = {}

    async def main(server: FakeLLMServer) -> None:
        caller = Caller(cache=None, mode="off", concurrency=1)
        provider = OpenAIProvider.from_uri("m", {"base_url": server.openai_base_url})
        same = provider.request([{"role": "user", "content": "the same judge prompt"}], {})
        other = provider.request([{"role": "user", "content": "another prompt"}], {})

        async def row(label: str, sent: bool, delay: float, request: object) -> None:
            ROW_SENT.set([sent])
            await asyncio.sleep(delay)
            try:
                await caller.call(provider, request, kind="judge", row_id=label)  # type: ignore[arg-type]
                said[label] = "answered"
            except CallHalted:
                said[label] = "halted"

        rows = [
            asyncio.create_task(row("C", True, 0, other)),  # holds the connection
            asyncio.create_task(row("A", False, 0.05, same)),
            asyncio.create_task(row("B", True, 0.1, same)),
        ]
        await asyncio.sleep(0.15)
        caller.halted = True  # the stop
        await asyncio.gather(*rows)
        await caller.aclose()

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-halt-0000")
    with FakeLLMServer(latency_s=0.3) as server:
        asyncio.run(main(server))
        sent = server.stats()["requests_total"]
    assert said == {"C": "answered", "A": "halted", "B": "answered"}
    assert sent == 2  # C's, and B's own


def test_outside_a_row_nothing_is_halted() -> None:
    """harness.replay and threads an app starts itself have no row: never halted."""
    from harness.calls.halt import may_send

    assert ROW_SENT.get() is None
    may_send(True)  # no row: no CallHalted
    token = ROW_SENT.set([False])
    try:
        with pytest.raises(CallHalted):
            may_send(True)
        may_send(False)
        assert ROW_SENT.get() == [True]
        may_send(True)  # it has sent: it goes on
    finally:
        ROW_SENT.reset(token)
