"""The public names of harness.cache are the ones we mean to offer."""

from __future__ import annotations

import harness.cache


def test_exported_members() -> None:
    assert sorted(harness.cache.__all__) == sorted(
        [
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
    )
    for name in harness.cache.__all__:
        assert getattr(harness.cache, name) is not None
