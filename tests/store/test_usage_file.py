"""The usage file of a running run (``harness.store.usage_file``): a save that a kill or a
reader meets half-written leaves the save before it readable."""

from __future__ import annotations

from pathlib import Path

from harness.store.usage_file import SLOT, UsageFile, with_saved_usage


def test_a_broken_slot_leaves_the_save_before_it(tmp_path: Path) -> None:
    db_path = tmp_path / "harness.duckdb"
    usage = UsageFile(db_path, "run1")
    usage.save({"model": {"requests": 3, "cost_usd": 0.5}})  # slot 0
    usage.save({"model": {"requests": 4, "cost_usd": 0.75}})  # slot 1
    stored = {"model": {"requests": 2, "cost_usd": 0.25, "errors": 1}}
    assert with_saved_usage(db_path, "run1", stored) == {
        "model": {"requests": 4, "cost_usd": 0.75, "errors": 1}
    }
    usage.close()
    data = bytearray(usage.path.read_bytes())
    data[SLOT + 20] ^= 1  # the last save, broken: its CRC no longer matches
    usage.path.write_bytes(bytes(data))
    assert with_saved_usage(db_path, "run1", stored)["model"]["requests"] == 3
    usage.path.write_bytes(b"")  # a power cut may leave it empty: the stored counters
    assert with_saved_usage(db_path, "run1", stored) == stored
    usage.remove()
    assert not usage.path.exists()
    assert with_saved_usage(db_path, "run1", stored) == stored
