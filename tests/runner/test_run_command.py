"""What `harness run` makes of its options, without Click: each check of how they go
together, its refusal and its pass, the order of the checks, and what they prepare."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import ConfigError, RunFailed
from harness.runner.config import RunConfig, RunResult
from harness.runner.run_command import (
    RESUMED_OPTIONS,
    RunOptions,
    prepare_run,
    refuse_changes_on_resume,
)
from harness.runner.sweep import SweepResult, SweepRun

NEEDS = "harness run needs --data NAME and --model URI (or --resume RUN_ID)"
ONE_RUN = RunOptions(data="qa", models=["echo"])


def refusal(options: RunOptions) -> str:
    with pytest.raises(ConfigError) as refused:
        prepare_run(options)
    return str(refused.value)


@pytest.fixture
def stored_runs(qa_file: Path, home: Path) -> list[str]:
    """Two finished runs of qa by echo, both named 'again' (oldest first)."""
    from harness.data import import_file
    from harness.runner.progress import NullProgress
    from harness.runner.run import run_eval

    import_file(qa_file, name="qa", home=home)
    config = RunConfig(data="qa", model="echo", metrics=["exact_match"], run_name="again",
                       limit=2, mlflow=False)  # fmt: skip
    return [run_eval(config, home=home, progress=NullProgress()).run_id for _ in range(2)]


def test_a_new_run_needs_data_and_a_model() -> None:
    assert refusal(RunOptions(models=["echo"])) == NEEDS
    assert refusal(RunOptions(data="qa")) == NEEDS
    prepared = prepare_run(ONE_RUN)
    assert prepared.kind == "run" and prepared.resume is None and prepared.grid == {}
    assert (prepared.config.data, prepared.config.model) == ("qa", "echo")
    assert prepared.spark_target is None and prepared.config.spark is False


def test_a_sweep_table_gives_the_model(home: Path) -> None:
    (home / "harness.toml").write_text('[sweep]\nmodel = ["echo", "echo:/b"]\n')
    prepared = prepare_run(RunOptions(data="qa"))
    assert prepared.kind == "sweep" and prepared.grid == {"model": ["echo", "echo:/b"]}
    assert prepared.config.model == "echo"


def test_seed_needs_a_sample() -> None:
    assert refusal(replace(ONE_RUN, sample_seed=3)) == (
        "--seed picks which --sample; give --sample N (or a fraction) too"
    )
    config = prepare_run(replace(ONE_RUN, sample="10", sample_seed=3)).config
    assert (config.sample, config.sample_seed) == (10, 3)


def test_dry_run_estimates_a_new_run_only() -> None:
    # Refused before the run is looked up: there is no run 'nothing-here'.
    assert refusal(RunOptions(resume="nothing-here", dry_run=True)) == (
        "--dry-run estimates a new run; it cannot be used with --resume"
    )
    assert prepare_run(replace(ONE_RUN, dry_run=True)).kind == "estimate"


def test_resume_finds_the_run_and_says_how(stored_runs: list[str]) -> None:
    notes: list[str] = []
    prepared = prepare_run(RunOptions(resume="again"), note=notes.append)
    assert prepared.kind == "run" and prepared.resume == stored_runs[1]  # the newest
    assert len(notes) == 1 and notes[0].startswith("2 runs are named 'again'; using the newest")
    prepared = prepare_run(RunOptions(resume=stored_runs[0]), note=notes.append)
    assert prepared.resume == stored_runs[0] and len(notes) == 1  # an id: nothing to say


def test_resume_refuses_options_given_with_another_value(stored_runs: list[str]) -> None:
    resume = RunOptions(resume=stored_runs[0], metrics=["token_f1"], limit=3)
    # Not given on the command line (a default, in the options): not the resume's business.
    assert prepare_run(resume).resume == stored_runs[0]
    assert refusal(replace(resume, given={"--limit", "--metric", "--json"})) == (
        "--resume goes on with the run's own options, and --metric, --limit differ "
        "from the run's; start a new run to change them (its calls come from the cache)"
    )
    same = replace(resume, metrics=["exact_match"], limit=2, given={"--metric", "--limit"})
    assert prepare_run(same).resume == stored_runs[0]


def test_refuse_changes_on_resume_names_what_differs() -> None:
    stored = RunConfig(data="qa", model="echo", judge_model="openai:/a", concurrency=4)
    given = replace(stored, judge_model="openai:/b", concurrency=8, mlflow=False)
    everything = set(RESUMED_OPTIONS)
    with pytest.raises(ConfigError, match=r"and --judge-model differs from the run's;"):
        refuse_changes_on_resume(given, stored, {"--judge-model", "--spark"})
    with pytest.raises(ConfigError, match=r"--judge-model, --concurrency, --no-mlflow differ"):
        refuse_changes_on_resume(given, stored, everything)
    refuse_changes_on_resume(given, stored, {"--data", "--model", "--max-cost"})  # same values
    refuse_changes_on_resume(given, stored, set())


def test_a_resume_with_another_by_says_no_new_run_is_needed() -> None:
    """`harness run --resume RUN --by topic` (a run made without --by, or by another column)
    was told only to "start a new run to change them", as for a changed model: slices
    need no run, since `runs show RUN --by` and `report RUN --by` slice any run; it says so."""
    stored = RunConfig(data="qa", model="echo", by=["final_decision"])
    with pytest.raises(ConfigError) as refused:
        refuse_changes_on_resume(replace(stored, by=["topic"]), stored, {"--by"})
    assert str(refused.value) == (
        "--resume goes on with the run's own options, and --by differs from the run's; start "
        "a new run to change them (its calls come from the cache); for --by no new run is "
        "needed: resume without it, then `harness runs show RUN --by COLUMN` (or `harness "
        "report RUN --by COLUMN`) slices the run"
    )
    with pytest.raises(ConfigError) as refused:  # another option alone: as before
        refuse_changes_on_resume(replace(stored, model="other"), stored, {"--model"})
    assert "for --by" not in str(refused.value)


def test_resumed_options_are_the_commands_in_its_order() -> None:
    from harness.cli.run import run

    flags = [param.opts[0] for param in run.params]
    assert [f for f in flags if f in RESUMED_OPTIONS] == list(RESUMED_OPTIONS)
    assert all(hasattr(RunConfig(data="", model=""), name) for name in RESUMED_OPTIONS.values())


def test_check_checks_one_run() -> None:
    assert refusal(replace(ONE_RUN, check=True, dry_run=True)) == (
        "--check checks one run, not --dry-run; check runs with `harness check`"
    )
    assert refusal(replace(ONE_RUN, models=["echo", "echo:/b"], check=True)) == (
        "--check checks one run, not a sweep; check runs with `harness check`"
    )
    assert prepare_run(replace(ONE_RUN, check=True)).kind == "run"


def test_gate_options_need_check() -> None:
    refused = "gate options (--baseline, --min, --max-drop, ...) need --check"
    assert refusal(replace(ONE_RUN, gates={"baseline": "main", "minimums": ()})) == refused
    assert refusal(replace(ONE_RUN, gates={"minimums": ("exact_match=0.5",)})) == refused
    assert refusal(replace(ONE_RUN, junit="gates.xml")) == refused
    assert prepare_run(replace(ONE_RUN, gates={"baseline": None, "minimums": ()})).kind == "run"
    gated = replace(ONE_RUN, check=True, junit="gates.xml", gates={"baseline": "main"})
    assert prepare_run(gated).kind == "run"


def test_report_is_one_runs(tmp_path: Path) -> None:
    report = str(tmp_path / "report.html")
    assert refusal(replace(ONE_RUN, report=report, dry_run=True)) == (
        "--report writes one run's report, not --dry-run's; write each run's with "
        "`harness report RUN`, or compare them with `harness report BASE CANDIDATE...`"
    )
    sweep = replace(ONE_RUN, models=["echo", "echo:/b"], report=report)
    assert refusal(sweep).startswith("--report writes one run's report, not a sweep's;")
    assert prepare_run(replace(ONE_RUN, report=report)).run_report == report
    # With --check the check writes it (checked before the run), not the run.
    assert prepare_run(replace(ONE_RUN, report=report, check=True)).run_report is None
    missing = str(tmp_path / "no-such-folder" / "report.html")
    refused = refusal(replace(ONE_RUN, report=missing, check=True))
    assert refused == f"cannot write {missing}: {Path(missing).parent} does not exist"
    assert prepare_run(replace(ONE_RUN, report=missing)).run_report == missing  # the run's own
    junit = str(tmp_path / "no-such-folder" / "junit.xml")  # the check's JUnit file too
    refused = refusal(replace(ONE_RUN, junit=junit, check=True))
    assert refused == f"cannot write {junit}: {Path(junit).parent} does not exist"


def test_the_first_mistake_is_the_one_said() -> None:
    assert refusal(RunOptions(sample_seed=1, dry_run=True, resume=None)) == NEEDS
    assert refusal(RunOptions(data="qa", sample_seed=1, check=True, dry_run=True)).startswith(
        "--seed picks which --sample"
    )
    both = replace(ONE_RUN, check=True, dry_run=True, report="r.html")
    assert refusal(both).startswith("--check checks one run, not --dry-run")
    gates_and_report = replace(ONE_RUN, junit="j.xml", report="r.html", dry_run=True)
    assert refusal(gates_and_report).startswith("gate options")


def _run(errors: int = 0, metric_errors: int = 0, run_id: str = "r1") -> SweepRun:
    result = RunResult(
        run_id=run_id, run_name=None, mlflow_run_id=None, dataset="qa@1", model="echo",
        status="finished", rows=4, rows_done=4, errors=errors, metrics={}, calls={},
        error_reasons=[], duration_s=0.0, metric_errors=metric_errors,
    )  # fmt: skip
    return SweepRun({}, result)


def test_a_sweeps_failure_is_its_failed_rows_then_its_metrics() -> None:
    assert SweepResult(None, ["model"], [_run(), _run(run_id="r2")]).failure() is None
    failed = SweepResult(None, ["model"], [_run(errors=2), _run(metric_errors=1, run_id="r2")])
    assert isinstance(failed.failure(), RunFailed)
    assert str(failed.failure()) == failed.failure_line()
    metrics = SweepResult(None, ["model"], [_run(metric_errors=2), _run(metric_errors=1)])
    assert str(metrics.failure()) == "metrics failed in 3 place(s) in the sweep; see warnings"
