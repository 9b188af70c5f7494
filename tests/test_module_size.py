"""No module of harness/ passes 600 lines: the project's rule (split a module when it
passes ~600 lines) kept by a test, as the import layers are (tests/test_import_graph.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"
MAX_LINES = 600


def test_no_module_passes_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.rglob("*.py")
    }
    assert len(sizes) > 100  # the package was found, not an empty folder
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these modules (lines): {too_long}"
