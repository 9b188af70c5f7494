"""The usage file of a running run (``harness.store.usage_file``): a save that a kill or a
reader meets half-written leaves the save before it readable."""

from __future__ import annotations

from pathlib import Path

from harness.store.usage_file import SLOT, UsageFile, with_saved_usage


def test_a_broken_slot_leaves_the_save_before_it(tmp_path: Path) -> None:
    db_path = tmp_path / "harness.duckdb"
    usage = UsageFile(db_path, "run1")
    earlier = {"model": {"requests": 1, "cost_usd": 0.25}}  # a resumed run's first attempt
    usage.save({"earlier": earlier, "now": {"model": {"requests": 2, "cost_usd": 0.25}}})
    usage.save({"earlier": earlier, "now": {"model": {"requests": 3, "cost_usd": 0.5}}})
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


def test_a_save_reads_as_the_usage_the_run_would_store(tmp_path: Path) -> None:
    """The file holds this process's raw counters and a resumed run's earlier usage; read,
    they are the totals ``Caller.usage`` gives of the same counters (rounded, added)."""
    from harness.calls.stats import KINDS, CallStats

    stats = CallStats()
    stats.model.requests, stats.model.cost_usd = 5, 0.1 + 0.2  # 0.30000000000000004
    stats.judge.cache_hits, stats.judge.saved_cost_usd = 7, 1 / 3
    earlier = {"model": {"requests": 2, "cost_usd": 0.0000015}, "judge": {"errors": 1}}
    db_path = tmp_path / "harness.duckdb"
    usage = UsageFile(db_path, "run1")
    usage.saver(lambda: {kind: vars(stats.of(kind)).copy() for kind in KINDS}, earlier)()
    assert UsageFile(db_path, "run1").load() == stats.with_earlier(earlier)


def test_a_save_after_the_run_removed_its_file_does_not_make_it_again(tmp_path: Path) -> None:
    """An app's thread may get an answer after the run's end (it outlived the run): the
    cache stores it, but the file the end removed stays gone, not left behind."""
    usage = UsageFile(tmp_path / "harness.duckdb", "run1")
    save = usage.saver(lambda: {"model": {"requests": 1}}, {})
    save()
    assert usage.path.exists()
    usage.remove()
    save()
    assert not usage.path.exists()
