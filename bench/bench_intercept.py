"""What routing the app's own LLM calls through the call path costs (issue 11).

1. **A cache hit.** 1,000 chat requests (a ~600-character prompt; the fake server's answer)
   are recorded once both ways, then answered from the cache (replay mode) and timed, one
   after another:

   - direct: ``await Caller.call(provider, request)``, a harness model call;
   - intercepted, sync: ``HTTPTransport.handle_request(request)`` of httpx2 (the package the
     openai SDK sends with), called from a worker thread while the Caller's event loop runs
     in another, in a stretch of work (``harness.thread_work``), as a plain ``python:``
     model's SDK call is: the hop between the threads is included;
   - intercepted, async: ``AsyncHTTPTransport.handle_async_request`` on the Caller's loop,
     as an ``async def`` model's call is.

   The transport call is exactly what harness puts where the network was; the SDK's own
   work around it (building the request, parsing the answer into its models) is the same
   with or without harness. For scale, the whole ``openai`` SDK call answered from the
   cache is shown too. Limit: intercepted / direct <= 2.

2. **A miss at 100 ms.** A cold ``harness run`` of a ``python:`` model making one chat call
   per row with the ``openai`` SDK, against the fake server answering in 100 ms, 320 rows at
   concurrency 16: the calls intercepted (keyed, sent from the app's thread on the SDK's
   transport, stored in the cache: ``harness.calls.in_thread``), and the same model on an
   SDK client whose transport harness does not wrap. Limit: intercepted / not intercepted
   <= 1.05.

Each timing is the best of its repeats, the ways taking turns: ``--hit-repeats`` rounds of
1,000 hits (a tenth of a second each), ``--repeats`` cold runs of each kind after one
untimed run of each (the first run of each kind in the process imports the SDK and the
app: 3.7-4.0 s and 2.7-2.8 s against ~2.5 s after, which left best-of-5 a best of 4).

On this 2-core VM the same 1,000 hits take up to twice as long from one round to the next,
so the floor of many rounds is what is compared.

Run: ``python bench/bench_intercept.py [--hits 1000] [--rows 320] [--hit-repeats 15]
[--repeats 7]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HIT_LIMIT = 2.0
MISS_LIMIT = 1.05
SYSTEM = "You are a careful assistant. Answer the question using only the context. " * 3

APP = '''
import httpx2
import openai

_clients = {}


class Unwrapped(httpx2.HTTPTransport):
    """httpx2's transport as it is without harness: its hook skipped."""

    def handle_request(self, request):
        method = httpx2.HTTPTransport.handle_request
        return getattr(method, "__wrapped__", method)(self, request)


def _ask(client, row):
    reply = client.chat.completions.create(
        model="gpt-4o-mini", temperature=0,
        messages=[{"role": "user", "content": row["input"]}],
    )
    return reply.choices[0].message.content


def intercepted(row):
    if "intercepted" not in _clients:  # one client, built once, in both models
        _clients["intercepted"] = openai.OpenAI(max_retries=0)
    return _ask(_clients["intercepted"], row)


def not_intercepted(row):
    if "not" not in _clients:
        _clients["not"] = openai.OpenAI(
            max_retries=0, http_client=httpx2.Client(transport=Unwrapped())
        )
    return _ask(_clients["not"], row)
'''


def messages(row: int) -> list[dict[str, str]]:
    context = " ".join(f"word{(row * 31 + i) % 997}" for i in range(40))
    question = f"Question {row}: what does item {row * 7919 % 10007} say?"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Context: {context}\n\n{question}"},
    ]


class LoopThread:
    """An event loop in a thread of its own: where the Caller runs, as during a run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def best_per_call(repeats: int, count: int, run: Callable[[], None]) -> float:
    """Microseconds per call, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


_WORKER = ThreadPoolExecutor(1, thread_name_prefix="bench-model")


def in_a_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in the worker thread, one that lives on, as the run's threads for
    ``python:`` models do (and with them the cache's connection in that thread)."""
    _WORKER.submit(work).result()


def bench_hits(count: int, repeats: int) -> bool:
    import httpx2
    import openai

    from harness import thread_work
    from harness.cache import ResponseCache
    from harness.calls import Caller
    from harness.intercept.activate import activate
    from harness.intercept.scope import Scope
    from harness.providers import resolve
    from harness.testing import FakeLLMServer

    with FakeLLMServer() as server, tempfile.TemporaryDirectory() as folder:
        base = server.openai_base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        os.environ["OPENAI_BASE_URL"] = base  # where the app's calls are intercepted
        provider = resolve("openai:/gpt-4o-mini", {"base_url": base})
        own = [provider.request(messages(row), {"temperature": 0.0}) for row in range(count)]
        bodies = [
            json.dumps({"model": "gpt-4o-mini", "messages": messages(row), "temperature": 0.0})
            for row in range(count)
        ]
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

        # Built once, outside the timings (a request is read once, then reused).
        url = f"{base}/chat/completions"
        prebuilt = [
            httpx2.Request("POST", url, content=b.encode(), headers=headers) for b in bodies
        ]

        def http_requests() -> list[Any]:
            return prebuilt

        cache = ResponseCache(Path(folder) / "cache")
        loop = LoopThread()
        sync_transport, async_transport = httpx2.HTTPTransport(), httpx2.AsyncHTTPTransport()
        sdk = openai.OpenAI(base_url=base, api_key="sk-bench", max_retries=0)

        def scoped(caller: Caller, work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:  # a fresh scope each time: repeats are not new samples
                scope = Scope(caller, loop.loop, loop.thread.ident or 0)
                # thread_work.work(): as harness.providers.python runs a model's call
                with activate(scope, fallback=scope), thread_work.work():
                    work()

            return run

        def sync_calls() -> None:
            for request in http_requests():
                sync_transport.handle_request(request).read()

        def sdk_calls() -> None:
            for row in range(count):
                sdk.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages(row),  # type: ignore[arg-type]
                    temperature=0.0,
                )

        async def direct_calls(caller: Caller) -> None:
            for request in own:
                await caller.call(provider, request)

        async def async_calls(caller: Caller) -> None:
            scope = Scope(caller, asyncio.get_running_loop(), threading.get_ident())
            with activate(scope, fallback=scope):
                for request in http_requests():
                    await (await async_transport.handle_async_request(request)).aread()

        recorder = Caller.from_settings({}, cache=cache, mode="use", concurrency=16)
        loop.run(direct_calls(recorder))  # record both ways, from the fake server
        in_a_thread(scoped(recorder, sync_calls))
        loop.run(recorder.aclose())
        assert server.stats()["requests_total"] == 2 * count

        caller = Caller.from_settings({}, cache=cache, mode="replay", concurrency=16)
        ways = {
            "direct": lambda: loop.run(direct_calls(caller)),
            "sync": lambda: in_a_thread(scoped(caller, sync_calls)),
            "async": lambda: loop.run(async_calls(caller)),
            "sdk": lambda: in_a_thread(scoped(caller, sdk_calls)),
        }
        best = dict.fromkeys(ways, float("inf"))
        for _ in range(repeats):  # in turns, so a slow moment of the machine hits each way
            for name, way in ways.items():
                best[name] = min(best[name], best_per_call(1, count, way))
        direct_us, sync_us, async_us, sdk_us = (best[name] for name in ways)
        loop.run(caller.aclose())
        loop.stop()
        cache.close()
        assert server.stats()["requests_total"] == 2 * count  # every timed call was a hit
        assert caller.stats.app.cache_hits == 3 * repeats * count, caller.stats.as_dict()

    worst = max(sync_us, async_us) / direct_us
    print(f"cache hit, {count} calls, best of {repeats}:")
    print(f"  direct Caller.call               {direct_us:8.1f} us/call")
    print(f"  intercepted, sync in a thread    {sync_us:8.1f} us/call  {sync_us / direct_us:.2f}x")
    print(
        f"  intercepted, async on the loop   {async_us:8.1f} us/call  {async_us / direct_us:.2f}x"
    )
    print(f"  (the whole openai SDK call, hit: {sdk_us:8.1f} us/call)")
    ok = worst <= HIT_LIMIT
    print(f"  intercepted / direct: {worst:.2f}x, limit {HIT_LIMIT:.2f}x: {'ok' if ok else 'OVER'}")
    return ok


def bench_misses(rows: int, repeats: int, concurrency: int = 16) -> bool:
    from harness.config import resolve_home
    from harness.data import import_file
    from harness.runner.config import RunConfig
    from harness.runner.run import run_eval
    from harness.testing import FakeLLMServer

    with FakeLLMServer(latency_s=0.1) as server, tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        (workdir / "bench_app.py").write_text(APP)
        sys.path.insert(0, str(workdir))
        data = workdir / "questions.jsonl"
        data.write_text(
            "".join(json.dumps({"input": f"Question {i}?"}) + "\n" for i in range(rows))
        )
        os.environ["OPENAI_BASE_URL"] = server.openai_base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        times: dict[str, float] = {"intercepted": float("inf"), "not_intercepted": float("inf")}
        for attempt in range(-1, repeats):  # -1: untimed, the one-time imports of each kind
            for name in times:  # alternate, so a slow moment of the machine hits both
                home = workdir / f"home-{name}-{attempt}"  # a fresh cache: every call misses
                home.mkdir()
                import_file(data, name="questions", home=home)
                config = RunConfig(
                    data="questions",
                    model=f"python:bench_app:{name}",
                    metrics=["word_count"],
                    concurrency=concurrency,
                    mlflow=False,
                )
                server.reset()
                started = time.perf_counter()
                result = run_eval(config, home=resolve_home(home))
                if attempt >= 0:
                    times[name] = min(times[name], time.perf_counter() - started)
                assert result.errors == 0, result.error_reasons
                assert server.stats()["requests_total"] == rows
                sent = result.calls["app"]["requests"]
                assert sent == (rows if name == "intercepted" else 0), result.calls
    ratio = times["intercepted"] / times["not_intercepted"]
    print(
        f"cold run, {rows} rows x 1 chat call at 100 ms, "
        f"concurrency {concurrency}, best of {repeats}:"
    )
    print(f"  calls not intercepted   {times['not_intercepted']:6.2f} s")
    print(f"  calls intercepted       {times['intercepted']:6.2f} s  (keyed, sent, stored)")
    ok = ratio <= MISS_LIMIT
    print(f"  intercepted / not: {ratio:.3f}x, limit {MISS_LIMIT:.2f}x: {'ok' if ok else 'OVER'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=320)
    parser.add_argument("--hit-repeats", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    ok = bench_hits(args.hits, args.hit_repeats)
    ok = bench_misses(args.rows, args.repeats) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
