"""Per-lookup cost of ResponseCache.get next to a raw diskcache.Cache.get, same process.

A fully cached rerun of 10,000 rows x 4 calls makes 40,000 lookups; this fills a cache
with 10,000 realistic entries (a ~600-character prompt, a ~300-character answer and a
provider body of ~1 KB), then times 40,000 lookups six ways:

- raw diskcache: ``diskcache.Cache.get`` of the same JSON text in a default diskcache
- ResponseCache.get: the harness lookup (read, checksum, parse, build the entry)
- ResponseCache.get held: the same in a read transaction held across lookups, as the run's
  event loop reads (``get(held=True)``: one transaction per ``_HELD_READS`` lookups)
- request_key: building the canonical request and hashing it (paid per call before a lookup)
- key + get: both, i.e. what one cached call cost the call path before held reads
- as Caller.call: the key and its canonical JSON, then a held get given the request, whose
  stored copy is then not parsed again (``decode_entry``'s ``request``)

Run: ``python bench/bench_cache_lookup.py [--rows 10000] [--lookups 40000]``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import diskcache

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.cache import CacheEntry, ResponseCache, canonical_request, request_key  # noqa: E402
from harness.cache.keys import canonical_key_json  # noqa: E402
from harness.model_io import ModelRequest, ModelResponse  # noqa: E402

SYSTEM = "You are a careful assistant. Answer the question using only the context. " * 3


def make_request(row: int, kind: int) -> ModelRequest:
    question = f"Question {row}: what does item {row * 7919 % 10007} say about topic {kind}?"
    context = " ".join(f"word{(row * 31 + i) % 997}" for i in range(40))
    return ModelRequest(
        provider="openai",
        model="gpt-4o-mini" if kind < 2 else "gpt-4o",
        messages=(
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Context: {context}\n\n{question}"},
        ),
        params={"temperature": 0.0, "max_tokens": 256, "seed": 7},
        base_url="https://api.openai.com/v1",
    )


def make_response(row: int) -> ModelResponse:
    text = f"The answer for row {row} is " + "quite detailed, " * 16
    raw = {
        "id": f"chatcmpl-{row:08d}",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 180, "completion_tokens": 60, "total_tokens": 240},
        "system_fingerprint": "fp_" + "0" * 10,
        "padding": "x" * 500,
    }
    return ModelResponse(text=text, input_tokens=180, output_tokens=60, latency_s=0.8, raw=raw)


def best_of(repeats: int, run) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "harness")
        raw_cache = diskcache.Cache(str(Path(tmp) / "raw"))
        requests = [make_request(row, row % 4) for row in range(args.rows)]
        keys = []
        start = time.perf_counter()
        with cache.batch():
            for row, req in enumerate(requests):
                key = request_key(req)
                entry = CacheEntry.from_response(canonical_request(req), make_response(row))
                cache.set(key, entry)
                keys.append(key)
        fill_s = time.perf_counter() - start
        with raw_cache.transact():
            for key in keys:
                raw_cache.set(key, cache._cache.get(key))
        entry_chars = len(cache._cache.get(keys[0]))

        rng = random.Random(0)
        order = [rng.randrange(args.rows) for _ in range(args.lookups)]
        lookup_keys = [keys[i] for i in order]
        lookup_requests = [requests[i] for i in order]

        def raw_gets() -> None:
            for key in lookup_keys:
                raw_cache.get(key)

        def harness_gets() -> None:
            for key in lookup_keys:
                cache.get(key)

        def held_gets() -> None:
            for key in lookup_keys:
                cache.get(key, held=True)
            cache.release_reads()

        def keying() -> None:
            for req in lookup_requests:
                request_key(req)

        def key_and_get() -> None:
            for req in lookup_requests:
                cache.get(request_key(req))

        def as_caller() -> None:
            for req in lookup_requests:
                canonical = canonical_request(req)
                key, encoded = canonical_key_json(canonical)
                cache.get(key, held=True, request=(canonical, encoded))
            cache.release_reads()

        n = args.lookups
        raw_s = best_of(args.repeats, raw_gets)
        harness_s = best_of(args.repeats, harness_gets)
        held_s = best_of(args.repeats, held_gets)
        key_s = best_of(args.repeats, keying)
        both_s = best_of(args.repeats, key_and_get)
        caller_s = best_of(args.repeats, as_caller)
        print(f"entries: {args.rows:,} ({entry_chars:,} chars each), lookups: {n:,}")
        print(f"fill (request_key + set, one transaction): {fill_s:.2f} s")
        for label, total, unit in [
            ("raw diskcache.Cache.get", raw_s, "lookup"),
            ("ResponseCache.get", harness_s, "lookup"),
            ("ResponseCache.get held", held_s, "lookup"),
            ("request_key", key_s, "call"),
            ("request_key + get", both_s, "call"),
            ("as Caller.call", caller_s, "call"),
        ]:
            print(f"{label + ':':26}{total / n * 1e6:7.1f} us/{unit:7} {total:6.3f} s total")
        print(f"ratio ResponseCache.get / raw diskcache get: {harness_s / raw_s:.2f}x")
        cache.close()
        raw_cache.close()


if __name__ == "__main__":
    main()
