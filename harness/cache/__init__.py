"""The response cache: request keys, the disk store, cassettes and explained misses.

``request_key(req)`` names a request (``keys``); a ``CacheEntry`` is one answer as
checksummed JSON (``entry``); ``ResponseCache(directory)`` holds entries in diskcache
(``store``); ``export_cassette`` and
``import_cassette`` move entries through a committed JSONL file (``cassette``);
``explain_miss`` says why a request is not cached (``explain``). The cache modes (use,
replay, refresh, off) live in ``harness.calls``, the one caller.
"""

from __future__ import annotations

from harness.cache.cassette import CASSETTE_VERSION, ImportReport, export_cassette, import_cassette
from harness.cache.entry import ENTRY_SCHEMA_VERSION, CacheEntry, utc_now
from harness.cache.explain import closest, differences, distance, explain_miss
from harness.cache.keys import (
    KEY_SCHEMA_VERSION,
    canonical_json,
    canonical_key,
    canonical_request,
    family_of,
    request_key,
)
from harness.cache.store import ResponseCache

__all__ = [
    "CASSETTE_VERSION",
    "ENTRY_SCHEMA_VERSION",
    "KEY_SCHEMA_VERSION",
    "CacheEntry",
    "ImportReport",
    "ResponseCache",
    "canonical_json",
    "canonical_key",
    "canonical_request",
    "closest",
    "differences",
    "distance",
    "explain_miss",
    "export_cassette",
    "family_of",
    "import_cassette",
    "request_key",
    "utc_now",
]
