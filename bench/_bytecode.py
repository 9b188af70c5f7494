"""Benchmarks time harness as an installed package runs: from bytecode.

``pip install`` compiles a package's modules to bytecode as it installs them, and Python
writes an editable install's bytecode the first time it imports each module, unless
``PYTHONDONTWRITEBYTECODE`` is set (as it is in some CI and sandbox environments). Then
every process compiles every harness module it imports, from source, each time: in a
1,000-row cached rerun with MLflow that was ~0.14 s more than from bytecode (the run's
process and its MLflow worker import more of harness than a ``--no-mlflow`` run), work no
installed harness does. The benchmarks that time harness's processes compile it first.
"""

from __future__ import annotations

import compileall
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"


def compile_harness() -> str:
    """Compile harness's modules whose bytecode is missing or stale; say so."""
    if not compileall.compile_dir(HARNESS, quiet=1):
        raise SystemExit(f"cannot compile {HARNESS} to bytecode")
    return "harness's modules compiled to bytecode first, as pip install does"
