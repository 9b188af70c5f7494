"""Cassettes: export, import into a fresh cache, idempotence, conflicts, tampering, gzip."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator

import pytest

from harness.cache import (
    CacheEntry,
    ResponseCache,
    canonical_request,
    export_cassette,
    import_cassette,
    request_key,
)
from harness.cache.keys import canonical_json
from harness.errors import CacheCorrupt, CacheError
from harness.model_io import ModelResponse


@pytest.fixture
def filled(cache, make_request, store_request) -> list[str]:
    """Three entries in ``cache``; their keys."""
    return [
        store_request(make_request()),
        store_request(make_request(params={"temperature": 0.7}), text="Paris!"),
        store_request(make_request(model="gpt-4o"), text="Paris."),
    ]


@pytest.fixture
def fresh(tmp_path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "fresh") as opened:
        yield opened


def test_export_writes_a_header_then_entries_sorted_by_key(cache, filled, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    assert export_cassette(cache, path) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"harness_cassette": 1, "entry_schema": 1, "key_schema": 1}
    keys = [json.loads(line)["key"] for line in lines[1:]]
    assert keys == sorted(filled)
    for line in lines[1:]:
        assert canonical_json(json.loads(line)).decode() == line  # one canonical line each


def test_round_trip_into_a_fresh_cache(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    report = import_cassette(fresh, path)
    assert (report.added, report.unchanged, report.conflicts, report.invalid) == (3, 0, [], [])
    for key in filled:
        assert fresh.get(key) == cache.get(key)
    assert fresh.verify() == []


def test_import_is_idempotent(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    import_cassette(fresh, path)
    again = import_cassette(fresh, path)
    assert again.as_dict() == {"added": 0, "unchanged": 3, "conflicts": [], "invalid": []}
    assert len(fresh) == 3


def test_a_conflict_keeps_the_local_entry(cache, filled, fresh, tmp_path, make_request) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    req = make_request()
    local = CacheEntry.from_response(canonical_request(req), ModelResponse(text="Marseille"))
    fresh.set(request_key(req), local)
    report = import_cassette(fresh, path)
    assert report.conflicts == [request_key(req)]
    assert (report.added, report.unchanged) == (2, 0)
    assert fresh.get(request_key(req)).text == "Marseille"


def test_same_response_at_another_time_is_unchanged(cache, filled, fresh, tmp_path, make_request):
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    req = make_request()
    original = cache.get(request_key(req))
    later = CacheEntry.from_response(
        original.request, original.to_response(), created_at="2030-01-01T00:00:00.000Z"
    )
    fresh.set(later.key, later)
    assert import_cassette(fresh, path).unchanged == 1


def test_a_corrupt_local_entry_is_replaced(cache, filled, fresh, tmp_path) -> None:
    import diskcache

    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    diskcache.Cache(str(fresh.directory)).set(filled[0], "garbage")
    assert import_cassette(fresh, path).added == 3
    assert fresh.verify() == []


def rewrite_line(path, index: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[index] = change(lines[index])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_line_with_a_bad_checksum_is_rejected(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    rewrite_line(path, 2, lambda line: line.replace('"text":"', '"text":"Not ', 1))
    report = import_cassette(fresh, path)
    assert report.invalid == [(3, "failed its checksum")]
    assert report.added == 2 and len(fresh) == 2


def test_a_tampered_request_cannot_poison_a_key(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)

    def forge(line: str) -> str:
        # Put this answer under another prompt, keep the key, and fix up the checksum.
        document = json.loads(line)
        document["request"]["messages"][1]["content"] = "What is the capital of Italy?"
        body = {k: v for k, v in document.items() if k != "checksum"}
        forged = CacheEntry.from_document({**body, "checksum": "x"}, checksum_verified=True)
        return forged.to_text()

    rewrite_line(path, 1, forge)
    report = import_cassette(fresh, path)
    assert len(report.invalid) == 1
    line_no, problem = report.invalid[0]
    assert line_no == 2 and "not the key of its request" in problem
    assert len(fresh) == 2


def test_broken_lines_are_reported_with_their_numbers(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    with path.open("a", encoding="utf-8") as out:
        out.write("\n")  # blank lines are fine
        out.write('{"key": "truncat\n')
        out.write("[1, 2]\n")
    report = import_cassette(fresh, path)
    assert report.added == 3
    assert [line for line, _ in report.invalid] == [6, 7]
    assert "not valid JSON" in report.invalid[0][1]


def test_gzip_export_is_deterministic_and_imports(cache, filled, fresh, tmp_path) -> None:
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    export_cassette(cache, first)
    export_cassette(cache, second)
    assert first.read_bytes()[:2] == b"\x1f\x8b"
    assert first.read_bytes() == second.read_bytes()
    plain = tmp_path / "plain.jsonl"
    export_cassette(cache, plain)
    assert gzip.decompress(first.read_bytes()) == plain.read_bytes()
    assert import_cassette(fresh, first).added == 3


def test_export_of_chosen_keys_skips_unknown_ones(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "some.jsonl"
    assert export_cassette(cache, path, keys=[filled[1], "f" * 64, filled[1]]) == 1
    assert import_cassette(fresh, path).added == 1
    assert fresh.keys() == [filled[1]]


def test_export_refuses_a_corrupt_entry_and_leaves_no_file(cache, filled, tmp_path) -> None:
    import diskcache

    diskcache.Cache(str(cache.directory)).set(filled[0], "garbage")
    path = tmp_path / "suite.jsonl"
    with pytest.raises(CacheCorrupt, match=filled[0]):
        export_cassette(cache, path)
    assert list(tmp_path.glob("*suite*")) == []


def test_a_failed_export_leaves_no_folder_it_made(cache, filled, tmp_path) -> None:
    import diskcache

    diskcache.Cache(str(cache.directory)).set(filled[2], "garbage")
    (tmp_path / "suite").mkdir()
    path = tmp_path / "suite" / "tests" / "cassettes" / "qa.jsonl.gz"
    with pytest.raises(CacheCorrupt, match=filled[2]):
        export_cassette(cache, path)
    # Only the folder that was there before is left, and it is empty.
    assert [p.name for p in tmp_path.rglob("*") if "suite" in str(p)] == ["suite"]


def test_a_cassette_without_header_is_accepted(cache, filled, fresh, tmp_path) -> None:
    path = tmp_path / "suite.jsonl"
    export_cassette(cache, path)
    rewrite_line(path, 0, lambda line: "")
    assert import_cassette(fresh, path).added == 3


def test_a_named_pipe_is_refused_unopened(fresh, tmp_path) -> None:
    """`harness cache import pipe.jsonl` (and harness.replay of it) waited forever for a
    writer; a device (here /dev/null) read as an empty file."""
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    device = tmp_path / "null.jsonl"
    device.symlink_to("/dev/null")
    for path in (pipe, device):
        with pytest.raises(CacheError) as caught:
            import_cassette(fresh, path)
        assert str(caught.value) == f"{path} is not a regular file (a pipe, a socket or a device)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no cassette at"),
        ("", "it is empty"),
        ("hello world\n", "not a harness cassette"),
        ('{"harness_cassette": 2}\n', "version 2 cassette"),
        (b"\x1f\x8b\x08\x00broken gzip", "cannot read cassette"),
    ],
    ids=["missing", "empty", "text", "newer", "bad-gzip"],
)
def test_files_that_are_not_cassettes_raise_cache_error(fresh, tmp_path, content, message) -> None:
    path = tmp_path / "input.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CacheError, match=message) as caught:
        import_cassette(fresh, path)
    assert "\n" not in str(caught.value)
