"""harness.memory.release_freed hands freed memory back to the OS (a run's end calls it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each case runs in a fresh interpreter, so the heap holds only what the case allocates.
# RSS from /proc/self/statm (resident pages).
_RSS = (
    "import os\n"
    "def rss():\n"
    "    pages = int(open('/proc/self/statm').read().split()[1])\n"
    "    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
)


def _python(code: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", _RSS + code], capture_output=True, text=True, check=True
    )
    return [float(x) for x in done.stdout.split()]


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; CI runs on Linux"
)


def test_freed_arrow_memory_leaves_the_process() -> None:
    # pyarrow's pool keeps ~all of a freed 100 MB array resident until released.
    held, released = _python(
        "import pyarrow as pa\n"
        "from harness.memory import release_freed\n"
        "array = pa.array([b'x' * 1000] * 100_000)\n"
        "del array\n"
        "held = rss()\n"
        "release_freed()\n"
        "print(held, rss())"
    )
    assert held - released > 50


def test_freed_heap_memory_leaves_the_process() -> None:
    # Every other 64 KB block freed: holes in the C heap that glibc keeps until trimmed.
    held, released = _python(
        "from harness.memory import release_freed\n"
        "blocks = [bytes(65536) for _ in range(2000)]\n"
        "del blocks[::2]\n"
        "held = rss()\n"
        "release_freed()\n"
        "print(held, rss())"
    )
    assert held - released > 20


def test_it_needs_no_pyarrow_loaded() -> None:
    # A run without pandas (nothing at its end read Arrow) must not import pyarrow here.
    (loaded,) = _python(
        "import sys\n"
        "from harness.memory import release_freed\n"
        "release_freed()\n"
        "print(int('pyarrow' in sys.modules))"
    )
    assert loaded == 0
