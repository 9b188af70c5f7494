"""The public judge API is what we mean it to be, and importing it stays cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys

import harness.judges as judges


def test_exported_names() -> None:
    assert sorted(judges.__all__) == sorted(
        [
            "BUILTIN_NAMES",
            "PARSER_VERSION",
            "Calibration",
            "Comparison",
            "Judge",
            "OutputSpec",
            "Verdict",
            "available_judges",
            "builtin_judge",
            "calibrate",
            "compare_runs",
            "make_judge",
            "parse_verdict",
            "register_judge",
            "registered_judges",
            "resolve_judges",
            "sample_stats",
        ]
    )
    for name in judges.__all__:
        assert getattr(judges, name) is not None
    # Functions, not the modules that hold them (a submodule must never shadow its function).
    for name in ("calibrate", "compare_runs", "sample_stats", "resolve_judges", "make_judge"):
        assert inspect.isfunction(getattr(judges, name)), name
    assert judges.BUILTIN_NAMES == (
        "answer_correctness",
        "answer_similarity",
        "answer_relevance",
        "faithfulness",
        "context_relevance",
        "correctness",
        "groundedness",
        "safety",
        "guidelines",
    )


def test_resolve_judges_signature_is_the_runners() -> None:
    parameters = inspect.signature(judges.resolve_judges).parameters
    assert list(parameters) == ["names", "home", "judges_file", "guidelines"]
    assert all(
        parameters[p].kind is inspect.Parameter.KEYWORD_ONLY
        for p in ("home", "judges_file", "guidelines")
    )


def test_importing_judges_does_not_import_mlflow_or_sklearn() -> None:
    code = (
        "import sys, harness.judges; "
        "print(sorted(m for m in ('mlflow', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
