"""What routing the app's own LLM calls through the call path costs (issue 11).

1. **A cache hit.** The same 2,000 chat requests (a ~600-character prompt, a ~1 KB answer)
   answered from a warm cache two ways, one after another:

   - direct: ``await Caller.call(provider, request)``, harness's own call path;
   - intercepted: ``HTTPTransport.handle_request(request)`` of httpx, called from a worker
     thread while the Caller's event loop runs in another, as a plain ``python:`` model's
     SDK call is (the hop between the threads included), and the same through
     ``AsyncHTTPTransport.handle_async_request`` on the Caller's own loop (an async model).

   What the transport call is is exactly what harness puts in place of the network: the
   SDK's own work (building the request, parsing the answer) is the same with or without
   harness, and is shown apart, for scale: an ``openai`` SDK call answered from the cache.
   Limit: intercepted / direct <= 2.

2. **A miss at 100 ms.** A cold ``harness run`` of a ``python:`` model that makes one chat
   call per row through the ``openai`` SDK, against the fake server answering in 100 ms,
   at concurrency 16: with interception (each call keyed, sent by harness, stored) and
   without (the same SDK client on a transport harness does not wrap). Limit: +5%.

Run: ``python bench/bench_intercept.py [--hits 2000] [--rows 320] [--repeats 3]``
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HIT_LIMIT = 2.0
MISS_LIMIT = 1.05
SYSTEM = "You are a careful assistant. Answer the question using only the context. " * 3
BASE_URL = "http://127.0.0.1:9/v1"  # never contacted: every call below is a cache hit


def messages(row: int) -> list[dict[str, str]]:
    context = " ".join(f"word{(row * 31 + i) % 997}" for i in range(40))
    question = f"Question {row}: what does item {row * 7919 % 10007} say?"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Context: {context}\n\n{question}"},
    ]


def answer_body(row: int) -> dict[str, Any]:
    text = f"The answer for row {row} is " + "quite detailed, " * 16
    return {
        "id": f"chatcmpl-{row:08d}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 180, "completion_tokens": 60, "total_tokens": 240},
        "padding": "x" * 500,
    }


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def per_call(repeats: int, count: int, run: Callable[[], None]) -> float:
    """Microseconds per call, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def bench_hits(count: int, repeats: int) -> bool:
    import httpx
    import openai

    from harness.cache import CacheEntry, ResponseCache, canonical_request
    from harness.calls import Caller
    from harness.intercept.activate import activate
    from harness.intercept.scope import Scope
    from harness.intercept.wire import app_request, envelope, summary
    from harness.providers import resolve
    from harness.providers.base import ModelResponse

    provider = resolve("openai:/gpt-4o-mini", {"base_url": BASE_URL})
    own = [provider.request(messages(row), {"temperature": 0.0}) for row in range(count)]
    bodies = [
        json.dumps({"model": "gpt-4o-mini", "messages": messages(row), "temperature": 0.0})
        for row in range(count)
    ]
    http = [
        httpx.Request(
            "POST",
            f"{BASE_URL}/chat/completions",
            content=body.encode(),
            headers={"content-type": "application/json", "authorization": "Bearer sk-bench"},
        )
        for body in bodies
    ]
    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(Path(folder) / "cache")
        with cache.batch():
            for row in range(count):
                raw = answer_body(row)
                text, given, produced = summary({"json": raw})
                response = ModelResponse(text, given, produced, 0.5, raw)
                canonical = canonical_request(own[row])
                cache.set(own[row].key if hasattr(own[row], "key") else "", None) if False else None
                entry = CacheEntry.from_response(canonical, response)
                cache.set(entry.key, entry)
                keyed = app_request(
                    "openai",
                    "POST",
                    http[row].url,
                    http[row].headers.multi_items(),
                    http[row].content,
                )
                assert keyed is not None
                stored = ModelResponse(
                    text,
                    given,
                    produced,
                    0.5,
                    envelope(200, "application/json", json.dumps(raw).encode()),
                )
                app_entry = CacheEntry.from_response(canonical_request(keyed), stored)
                cache.set(app_entry.key, app_entry)
        loop = LoopThread()
        caller = Caller.from_settings({}, cache=cache, mode="replay", concurrency=16)

        async def direct() -> None:
            for request in own:
                await caller.call(provider, request)

        transport = httpx.HTTPTransport()
        async_transport = httpx.AsyncHTTPTransport()
        scope = Scope(caller, loop.loop, loop.thread.ident or 0)

        def intercepted_sync() -> None:
            for request in http:
                transport.handle_request(request)

        async def intercepted_async() -> None:
            for request in http:
                await async_transport.handle_async_request(request)

        client = openai.OpenAI(base_url=BASE_URL, api_key="sk-bench", max_retries=0)

        def through_the_sdk() -> None:
            for row in range(count):
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages(row),
                    temperature=0.0,  # type: ignore[arg-type]
                )

        def in_a_worker(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                done = threading.Thread(target=work)
                done.start()
                done.join()

            return run

        def async_scope() -> None:
            async def body() -> None:
                from harness.intercept.scope import Scope as S

                inner = S(caller, asyncio.get_running_loop(), threading.get_ident())
                with activate(inner, fallback=inner):
                    await intercepted_async()

            loop.run(body())

        direct_us = per_call(repeats, count, lambda: loop.run(direct()))
        with activate(scope, fallback=scope):
            sync_us = per_call(repeats, count, in_a_worker(intercepted_sync))
            sdk_us = per_call(repeats, count, in_a_worker(through_the_sdk))
        async_us = per_call(repeats, count, async_scope)
        loop.run(caller.aclose())
        loop.stop()
        cache.close()
    assert caller.stats.app.cache_hits == repeats * count * 3, caller.stats.as_dict()
    worst = max(sync_us, async_us) / direct_us
    print(f"cache hit, {count} calls, best of {repeats}:")
    print(f"  direct Caller.call             {direct_us:8.1f} us/call")
    print(f"  intercepted, sync in a thread  {sync_us:8.1f} us/call  ({sync_us / direct_us:.2f}x)")
    print(
        f"  intercepted, async on the loop {async_us:8.1f} us/call  ({async_us / direct_us:.2f}x)"
    )
    print(f"  (for scale: the openai SDK call, hit included: {sdk_us:.1f} us/call)")
    ok = worst <= HIT_LIMIT
    print(f"  ratio {worst:.2f} vs limit {HIT_LIMIT:.2f}: {'ok' if ok else 'OVER'}")
    return ok
