"""Benchmarks time harness as an installed package runs: from bytecode.

``pip install`` compiles a package's modules to bytecode as it installs them, and Python
writes an editable install's bytecode the first time it imports each module, unless
``PYTHONDONTWRITEBYTECODE`` is set (as it is in some CI and sandbox environments). Then
every process compiles every harness module it imports, from source, each time, which no
installed harness does. In 1,000-row cached reruns (one set of five pairs each) that made
the medians 2.29 s with MLflow and 1.57 s without, against 1.89 s and 1.38 s from
bytecode: the run's process and its MLflow worker import more of harness than a
``--no-mlflow`` run. The benchmarks that time harness's processes compile it first.
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
