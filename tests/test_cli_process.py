"""What the `harness` command sets up in its own process, and what importing harness does not."""

from __future__ import annotations

import subprocess
import sys

SHOW = "import gc; print(tuple(gc.get_threshold()))"


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_command_collects_cycles_less_often_and_a_library_user_keeps_their_own() -> None:
    default = _python(SHOW)
    as_a_library = _python(f"import harness, harness.runner.run, harness.cli; {SHOW}")
    assert as_a_library == default
    as_the_command = _python(
        "import sys; sys.argv = ['harness', '--version']\n"
        "from harness.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n" + SHOW
    )
    assert as_the_command == "(10000, 10, 10)" != default
