"""Sweeps: options -> grid -> child runs under one MLflow parent, and the comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ConfigError
from harness.runner.config import RunConfig, RunResult
from harness.runner.sweep import SweepRun, best_run, find_sweep, primary_metric, run_sweep
from harness.runner.sweep_grid import expand_grid, sweep_options

MODEL = "python:harness_test_models:answer_expected"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return json.loads(out)["ref"]


@pytest.fixture
def prompts(tmp_path: Path) -> dict[str, Path]:
    files = {"short": tmp_path / "short.txt", "long": tmp_path / "long.txt"}
    files["short"].write_text("Q: {input}\nA:", encoding="utf-8")
    files["long"].write_text("Answer the question below.\n\nQ: {input}\nA:", encoding="utf-8")
    return files


def test_repeated_keys_become_axes_and_single_values_stay_fixed():
    options = sweep_options(
        ["temperature=0.7", "max_tokens=64", "temperature=0", "temperature=0.0"], ["@a.txt"]
    )
    assert options.params == {"max_tokens": 64}
    assert options.prompt == "@a.txt"
    assert options.grid == {"temperature": [0.7, 0, 0.0]}  # in the order given
    options = sweep_options([], ["one {input}", "two {input}"])
    assert options.prompt is None and options.grid == {"prompt": ["one {input}", "two {input}"]}


def test_the_sweep_table_of_harness_toml_and_flag_precedence(tmp_path):
    settings = {"sweep": {"temperature": [0, 0.7], "prompt": ["@a.txt", "@/abs/b.txt", "inline"]}}
    options = sweep_options([], [], settings, base_dir=tmp_path)
    assert options.grid == {
        "temperature": [0, 0.7],
        "prompt": [f"@{tmp_path / 'a.txt'}", "@/abs/b.txt", "inline"],
    }
    # A flag replaces the same key of [sweep]: flag > harness.toml.
    options = sweep_options(["temperature=1"], [], settings, base_dir=tmp_path)
    assert options.params == {"temperature": 1} and list(options.grid) == ["prompt"]
    with pytest.raises(ConfigError, match=r"\[sweep\] top_p .* non-empty list"):
        sweep_options([], [], {"sweep": {"top_p": 0.5}})
    with pytest.raises(ConfigError, match="table"):
        sweep_options([], [], {"sweep": [1, 2]})


def test_expand_grid_is_the_product_with_readable_names(prompts):
    base = RunConfig(data="qa", model="echo", params={"max_tokens": 8}, run_name="exp")
    grid = {"temperature": [0, 0.7], "prompt": [f"@{prompts['short']}", "Inline {input}"]}
    points = expand_grid(base, grid)
    assert [p.values for p in points] == [
        {"temperature": 0, "prompt": "short.txt"},
        {"temperature": 0, "prompt": points[1].values["prompt"]},
        {"temperature": 0.7, "prompt": "short.txt"},
        {"temperature": 0.7, "prompt": points[1].values["prompt"]},
    ]
    assert points[1].values["prompt"].startswith("#") and len(points[1].values["prompt"]) == 9
    assert points[0].config.prompt == "Q: {input}\nA:"
    assert points[1].config.prompt == "Inline {input}"
    assert points[2].config.params == {"max_tokens": 8, "temperature": 0.7}
    assert points[0].config.run_name == "exp temperature=0 prompt=short.txt"
    assert base.params == {"max_tokens": 8} and base.prompt is None  # the base is not changed
    with pytest.raises(ConfigError, match="--prompt file not found"):
        expand_grid(base, {"prompt": ["@/no/such/prompt.txt"]})


def _result(metrics: dict[str, float | None], errors: int = 0, rows_done: int = 1) -> SweepRun:
    result = RunResult(
        run_id="r", run_name=None, mlflow_run_id=None, dataset="qa@1", model="echo",
        status="finished", rows=1, rows_done=rows_done, errors=errors,
        metrics={k: {"mean": v} for k, v in metrics.items()}, calls={}, error_reasons=[],
        duration_s=0.0,
    )  # fmt: skip
    return SweepRun({}, result)


def test_the_best_child_by_the_primary_metric():
    base = RunConfig(data="qa", model="echo", judges=["faithfulness"])
    names = ["exact_match", "faithfulness", "latency", "word_count"]
    assert primary_metric(base, names, {}) == "faithfulness"
    assert primary_metric(RunConfig(data="qa", model="echo"), names, {}) == "exact_match"
    assert primary_metric(RunConfig(data="qa", model="echo"), ["word_count"], {}) is None
    runs = [_result({"faithfulness": 3.0, "latency": 2.0}), _result({"faithfulness": 4.5,
            "latency": 3.0}), _result({"faithfulness": None, "latency": 1.0})]  # fmt: skip
    assert best_run(runs, "faithfulness", {}) == 1
    assert best_run(runs, "latency", {}) == 2  # lower is better (the built-in says so)
    assert best_run(runs, None, {}) is None
    assert best_run([_result({"x": 1.0}), _result({"x": 1.0})], "x", {}) == 0  # first on ties
    # Means equal but for the order of a float sum (0.4 over 8 rows and over 3): a tie too,
    # not a win for the later run (an interrupted child was starred over a finished one).
    tied = [_result({"x": sum([0.4] * 8) / 8}), _result({"x": sum([0.4] * 3) / 3})]
    assert best_run(tied, "x", {}) == 0
    assert best_run(tied, "x", {"x": -1}) == 0


def test_a_child_with_failed_or_missing_rows_is_not_the_best_over_a_whole_one():
    # Its mean is over the rows that succeeded: half its rows failed, and it was starred.
    runs = [_result({"x": 0.5}), _result({"x": 1.0}, errors=1), _result({"x": 0.9}, rows_done=0)]
    assert best_run(runs, "x", {}) == 0
    assert best_run(runs[1:], "x", {}) == 0  # none whole: the best of the others
    assert best_run([_result({"x": 0.4}), _result({"x": 0.6})], "x", {}) == 1


def test_a_runs_own_directions_pick_the_best_child():
    # A metric of the user's own (python:, a kind, an MLflow object) says which way is
    # better; the sweep reads it from the runs, not from a list of known names.
    runs = [_result({"refusals": 0.4}), _result({"refusals": 0.1}), _result({"refusals": 0.3})]
    assert best_run(runs, "refusals", {"refusals": -1}) == 1
    assert best_run(runs, "refusals", {"refusals": 1}) == 0
    base = RunConfig(data="qa", model="echo", metrics=["length", "refusals"])
    assert primary_metric(base, ["length", "refusals"], {"length": 0}) == "refusals"


def test_run_sweep_logs_children_under_one_parent(qa, home, prompts):
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home

    base = RunConfig(data="qa", model=MODEL, metrics=["exact_match", "word_count"],
                     experiment="sweeps", limit=5)  # fmt: skip
    grid = {"prompt": [f"@{prompts['short']}", f"@{prompts['long']}"], "seed": [1, 2]}
    sweep = run_sweep(base, grid, home=home)
    assert sweep.columns == ["prompt", "seed", "run_id", "mlflow_run_id", "rows", "errors",
                             "exact_match", "word_count"]  # fmt: skip
    assert [row[:2] for row in sweep.rows] == [
        ["short.txt", 1], ["short.txt", 2], ["long.txt", 1], ["long.txt", 2]
    ]  # fmt: skip
    assert all(row[4:7] == [5, 0, 1.0] for row in sweep.rows)
    assert sweep.primary_metric == "exact_match" and sweep.best == 0
    uri = resolve_home(home).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    parent = client.get_run(sweep.parent_mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.prompt"] == '["short.txt", "long.txt"]'
    assert parent.data.params["sweep.seed"] == "[1, 2]"
    assert parent.data.params["model"] == MODEL
    assert parent.data.metrics["exact_match/mean"] == 1.0
    assert parent.data.tags["harness.sweep.best_run"] == sweep.rows[0][3]
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert sorted(r.info.run_id for r in children) == sorted(row[3] for row in sweep.rows)
    table = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "sweep_comparison.json")).read_text()
    )
    assert table["columns"] == sweep.columns and table["data"] == sweep.rows
    # Two prompt texts: two versions of the experiment's prompt, one per file.
    uris = {r.data.params["prompt_uri"] for r in children}
    assert uris == {"prompts:/sweeps-prompt/1", "prompts:/sweeps-prompt/2"}
    assert len({r.data.tags["harness.model_id"] for r in children}) == 4
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()
    finally:
        con.close()
    assert stored == (4,)


def test_a_bad_point_fails_the_sweep_before_anything_runs(qa, home, prompts):
    bad = prompts["short"].with_name("bad.txt")
    bad.write_text("Uses {nope}", encoding="utf-8")
    base = RunConfig(data="qa", model=MODEL, experiment="sweeps")
    with pytest.raises(ConfigError, match=r"\{nope\}"):
        run_sweep(base, {"prompt": [f"@{prompts['short']}", f"@{bad}"]}, home=home)
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()
    assert not (home / "mlruns").exists()


def test_a_value_given_twice_is_refused_before_anything_runs(qa, home):
    """`--param temperature=0.2 --param temperature=0.2` ran one plain run, and a value
    repeated beside others a sweep with one run fewer than asked, without a word (a second
    run of one value would only replay the first from the cache)."""
    run = ("run", "--data", "qa", "--model", MODEL, "--metric", "exact_match", "--no-mlflow")
    cases = [
        (("--param", "temperature=0.2", "--param", "temperature=0.2"),
         "--param temperature=0.2"),
        (("--param", "temperature=0", "--param", "temperature=0.7", "--param",
          "temperature= 0"), "--param temperature= 0"),
        (("--model", "echo", "--model", "echo:/b", "--model", "echo"), "--model echo"),
        (("--param", "api_key=sk-secret-1", "--param", "api_key=sk-secret-1"),
         "--param api_key=..."),
        (("--prompt", "Q: {input}", "--prompt", "Q: {input}"), "--prompt 'Q: {input}'"),
    ]  # fmt: skip
    for flags, said in cases:
        code, out, err = invoke(*run, *flags)
        assert (code, out) == (2, ""), err
        assert err == (
            f"error: {said} is given more than once; a sweep runs each value once (a second "
            "run of it would only replay the first from the cache)\n"
        )
    (home / "harness.toml").write_text("[sweep]\ntop_p = [0.5, 1, 0.5]\n", encoding="utf-8")
    code, out, err = invoke(*run)
    assert (code, out) == (2, "")
    where = home / "harness.toml"  # messages begin with the file read, as config's do
    assert err.startswith(f"error: {where}: [sweep] top_p lists 0.5 more than once; ")
    with pytest.raises(ConfigError, match=r"^grid top_p lists 0.5 more than once; "):
        expand_grid(RunConfig(data="qa", model="echo"), {"top_p": [0.5, 0.5]})
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()


def test_a_grid_of_more_runs_than_a_sweep_makes_is_refused_before_planning(qa, home):
    # 6 axes of 10 values: a million runs, planned for minutes (the --dry-run too) before
    # anything was said, growing to gigabytes.
    values = ", ".join(str(v / 10) for v in range(10))
    axes = ["temperature", "top_p", "presence_penalty"]
    table = "".join(f"{axis} = [{values}]\n" for axis in axes) + "seed = [1, 2]\n"
    (home / "harness.toml").write_text(f"[sweep]\n{table}", encoding="utf-8")
    for dry_run in ([], ["--dry-run"]):
        code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--no-mlflow", *dry_run)
        assert (code, out) == (2, "")
        assert err == (
            "error: a sweep of 2,000 runs (10 temperature x 10 top_p x 10 presence_penalty x "
            "2 seed) is more than the 1,000 one sweep makes: narrow the grid, or sweep it in "
            "parts\n"
        )
    grid = {axis: [v / 10 for v in range(10)] for axis in axes}  # the limit itself
    assert len(expand_grid(RunConfig(data="qa", model="echo"), grid)) == 1000
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()


def test_cli_repeated_param_runs_a_sweep_and_prints_json(qa):
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--metric", "exact_match",
                            "--param", "seed=1", "--param", "seed=2", "--limit", "3",
                            "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["parent_mlflow_run_id"] is None and doc["axes"] == ["seed"]
    assert [run["values"] for run in doc["runs"]] == [{"seed": 1}, {"seed": 2}]
    assert [run["metric_means"] for run in doc["runs"]] == [{"exact_match": 1.0}] * 2
    assert [run["rows"] for run in doc["runs"]] == [3, 3]
    assert doc["best_run_id"] == doc["runs"][0]["run_id"]


def test_cli_sweep_table_from_harness_toml_and_dry_run(qa, home, prompts):
    (home / "prompts").mkdir()
    for name, path in prompts.items():
        (home / "prompts" / f"{name}.txt").write_text(path.read_text(), encoding="utf-8")
    (home / "harness.toml").write_text(
        '[sweep]\nprompt = ["@prompts/short.txt", "@prompts/long.txt"]\n', encoding="utf-8"
    )
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--dry-run", "--json")
    assert code == 0, err
    estimates = json.loads(out)["runs"]
    assert [e["values"] for e in estimates] == [{"prompt": "short.txt"}, {"prompt": "long.txt"}]
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--metric", "exact_match",
                            "--limit", "2", "--no-mlflow")  # fmt: skip
    assert code == 0, err
    assert ": 2 runs over prompt" in out
    assert "short.txt" in out and "long.txt" in out
    # A --prompt flag replaces the [sweep] prompts: one ordinary run.
    code, out, err = invoke("run", "--data", "qa", "--model", MODEL, "--prompt", "{input}",
                            "--limit", "2", "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    assert "run_id" in json.loads(out) and "runs" not in json.loads(out)


def test_a_sweep_table_of_models_runs_without_a_model_flag(qa, home):
    # docs/config.md and docs/mlflow.md: `[sweep] model = [...]` sweeps models; a --model
    # flag would replace it, so it must work without one.
    (home / "harness.toml").write_text(f'[sweep]\nmodel = ["{MODEL}", "echo"]\n', encoding="utf-8")
    code, out, err = invoke("run", "--data", "qa", "--metric", "exact_match", "--limit", "2",
                            "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["axes"] == ["model"]
    assert [run["values"] for run in doc["runs"]] == [{"model": MODEL}, {"model": "echo"}]
    assert [run["metric_means"]["exact_match"] for run in doc["runs"]] == [1.0, 0.0]
    # One value is not a sweep, and nothing else names the model.
    (home / "harness.toml").write_text(f'[sweep]\nmodel = ["{MODEL}"]\n', encoding="utf-8")
    code, out, err = invoke("run", "--data", "qa", "--no-mlflow")
    assert (code, out) == (2, "")
    assert err == (
        f"error: {home / 'harness.toml'}: [sweep] model needs two or more values (or use --model)\n"
    )


@pytest.mark.parametrize(
    ("table", "shown"),
    [
        ("prompt = [5]", "5"),  # was an AttributeError traceback, exit 1
        ('prompt = ["Q: {input}", 5]', "5"),  # ran a sweep whose second prompt was "5"
        ('system = ["Be brief.", 2.5]', "2.5"),
    ],
)
def test_a_sweep_text_axis_of_a_number_is_exit_2_and_leaves_no_run(qa, home, table, shown):
    (home / "harness.toml").write_text(f"[sweep]\n{table}\n", encoding="utf-8")
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--no-mlflow")
    key = table.split()[0]
    assert (code, out, err) == (
        2, "", f"error: {home / 'harness.toml'}: [sweep] {key} must list text, got {shown}\n"
    )  # fmt: skip
    with duckdb.connect(str(home / "harness.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_system_flag_replaces_the_sweep_tables_system_prompts(qa, home):
    # docs/mlflow.md: "a flag for a key replaces it", --system as --param and --prompt.
    (home / "harness.toml").write_text(
        '[sweep]\nsystem = ["Be brief.", "Be thorough."]\n', encoding="utf-8"
    )
    code, out, err = invoke("run", "--data", "qa", "--model", "echo", "--system", "From the flag.",
                            "--limit", "1", "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert "runs" not in doc  # one ordinary run, with the flag's system prompt
    stored = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        [(config,)] = stored.execute("SELECT config FROM runs").fetchall()
    finally:
        stored.close()
    assert json.loads(config)["system"] == "From the flag."


def _sweep_failing_half_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[Path, int, str, str]:
    """Two runs of 4 rows over temperature, 2 rows of each failing while the flag file
    exists: the flag, and the sweep's exit code, stdout (JSON) and stderr."""
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
        "--param", "temperature=0", "--param", "temperature=1", "--limit", "4", "--json",
        *flags,
    )  # fmt: skip
    return flag, code, out, err


def test_failed_rows_of_a_sweep_name_each_run_its_reasons_and_resume(qa, tmp_path, monkeypatch):
    flag, code, out, err = _sweep_failing_half_its_rows(tmp_path, monkeypatch, "--no-mlflow")
    assert code == 1, err
    ids = [run["run_id"] for run in json.loads(out)["runs"]]
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: 4 rows failed in the sweep (run ")
    for run_id in ids:
        assert f"run {run_id}: 2 of 4 rows failed (model: 2 rows: 1 x " in line
        assert f"`harness run --resume {run_id}`" in line
    assert "flagged row" in line  # the reason, as a single run's line gives it
    flag.unlink()
    code, _, err = invoke("run", "--resume", ids[0], "--no-mlflow")
    assert code == 0, err


def test_resuming_a_sweeps_run_logs_the_parents_table_again(qa, home, tmp_path, monkeypatch):
    """The MLflow parent's sweep_comparison.json still said "errors: 2" of a run whose
    failed rows `--resume` had finished: it was written once, when the sweep ended."""
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home

    flag, code, out, err = _sweep_failing_half_its_rows(
        tmp_path, monkeypatch, "--metric", "exact_match"
    )
    assert code == 1, err
    ran = json.loads(out)
    uri = resolve_home(home).tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def parent_table() -> list[list[object]]:
        path = client.download_artifacts(ran["parent_mlflow_run_id"], "sweep_comparison.json")
        return json.loads(Path(path).read_text())["data"]

    assert [row[4] for row in parent_table()] == [2, 2]  # errors
    flag.unlink()
    code, _, err = invoke("run", "--resume", ran["runs"][1]["run_id"])
    assert code == 0, err
    assert [row[3:] for row in parent_table()] == [[4, 2, 1.0], [4, 0, 1.0]]  # resumed: 0
    parent = client.get_run(ran["parent_mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    # The resumed run, its rows all done now, is the best: the other still has failed rows.
    assert parent.data.tags["harness.sweep.best_run"] == ran["runs"][1]["mlflow_run_id"]


def test_one_failed_row_and_one_run_left_are_counted_in_the_singular(qa, tmp_path, monkeypatch):
    """A sweep with one failed row said "1 rows failed in the sweep (... (model: 1 rows:
    ...))", `runs show` "failed: 1 model rows", and a sweep with one run left "1 runs"."""
    rows = tmp_path / "two.jsonl"  # the even id fails while flagged, the odd one does not
    rows.write_text('{"id": 2, "question": "a?"}\n{"id": 3, "question": "b?"}\n')
    assert invoke("data", "import", str(rows), "--name", "two")[0] == 0
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    code, out, err = invoke(
        "run", "--data", "two", "--model", "python:harness_test_models:fail_while_flagged",
        "--model", "echo", "--metric", "word_count", "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 1, err
    doc = json.loads(out)
    failed, clean = (run["run_id"] for run in doc["runs"])
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"error: 1 row failed in the sweep (run {failed}: 1 of 2 rows failed (model: 1 row: 1 x "
    ), line
    code, out, err = invoke("runs", "show", failed)
    assert code == 0, err
    assert "failed: 1 model row\n" in out
    assert invoke("runs", "delete", clean)[0] == 0
    code, out, err = invoke("runs", "show", doc["sweep_id"])
    assert code == 0, err
    # The deleted run is counted as missing: one of the sweep's two runs is left.
    assert f"sweep {doc['sweep_id']}: 1 of 2 runs over model" in out


def test_a_harness_option_given_as_a_param_or_sweep_key_is_refused_before_any_run(qa, home):
    code, _, err = invoke("run", "--data", "qa", "--model", MODEL, "--param", "judge=correctness")
    assert code == 2 and err.count("\n") == 1, err
    assert "param 'judge' (--param or a [sweep] key) is a harness option" in err
    assert err.strip().endswith("use --judge")
    (home / "harness.toml").write_text("[sweep]\nconcurrency = [1, 4]\n", encoding="utf-8")
    code, _, err = invoke("run", "--data", "qa", "--model", MODEL, "--no-mlflow")
    assert code == 2 and "param 'concurrency'" in err and "use --concurrency" in err, err
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()
    # seed is a model parameter as well: still a sweep axis
    (home / "harness.toml").write_text("[sweep]\nseed = [1, 2]\n", encoding="utf-8")
    code, _, err = invoke("run", "--data", "qa", "--model", MODEL, "--limit", "1", "--no-mlflow")
    assert code == 0, err


def test_the_sweep_tables_counts_have_thousands_separators(tmp_path, monkeypatch):
    """The sweep's table wrote its rows and errors columns as 2000 and 1000, where every
    other count harness prints reads 2,000."""
    rows = tmp_path / "many.jsonl"
    rows.write_text("".join(f'{{"id": {i}, "question": "q{i}?"}}\n' for i in range(2000)))
    assert invoke("data", "import", str(rows), "--name", "many")[0] == 0
    flag = tmp_path / "flag"
    flag.touch()  # the even ids fail: 1,000 of 2,000 rows in each run
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    code, out, err = invoke(
        "run", "--data", "many", "--model", "python:harness_test_models:fail_while_flagged",
        "--param", "seed=1", "--param", "seed=2", "--metric", "word_count", "--no-mlflow",
    )  # fmt: skip
    assert code == 1, err
    table = [line.split("│") for line in out.splitlines() if "│" in line]
    assert [[cell.strip() for cell in line[3:5]] for line in table] == [["2,000", "1,000"]] * 2


def test_a_parent_deleted_between_runs_is_opened_again_for_the_runs_left(qa, home):
    """`harness runs delete` of a sweep's only stored run, between two of its runs (from
    another terminal), takes the MLflow parent with it; the sweep went on logging its next
    run under the deleted parent (which MLflow hides) and could not finish it ("must be
    in the 'active' state"). The runs left now go under a new parent, which it finishes."""
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home
    from harness.runner.deletion import delete_run
    from harness.runner.progress import NullProgress
    from harness.store.runs import list_runs

    deleted: list[str] = []

    class DeletesTheFirstRun(NullProgress):  # what the other terminal does, at that moment
        def note(self, message: str) -> None:
            super().note(message)
            if message.startswith("sweep run 2 of 2"):
                [first] = list_runs(resolve_home().db_path)
                gone = delete_run(resolve_home(), first.run_id)
                assert gone.sweep_parent is not None
                deleted.append(gone.sweep_parent)

    progress = DeletesTheFirstRun()
    base = RunConfig(data="qa", model=MODEL, metrics=["exact_match"], run_name="S", limit=2)
    sweep = run_sweep(base, {"temperature": [0, 0.7]}, progress=progress)
    [old] = deleted
    new = sweep.parent_mlflow_run_id
    assert new is not None and new != old
    said = (
        f"MLflow parent run {old} of sweep {sweep.sweep_id} was deleted while the sweep ran; "
        f"the runs from S temperature=0.7 on are under a new parent run {new}; "
        "S temperature=0 was deleted with it and is left out of the sweep"
    )
    assert sweep.warnings == [said] and said in progress.notes

    uri = resolve_home().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    parent = client.get_run(new)
    assert (parent.info.lifecycle_stage, parent.info.status) == ("active", "FINISHED")
    assert parent.data.tags["harness.sweep.axes"] == "temperature"
    child = client.get_run(sweep.runs[-1].result.mlflow_run_id)
    assert child.data.tags["mlflow.parentRunId"] == new
    [left] = list_runs(resolve_home().db_path)
    assert left.config["sweep"]["parent_mlflow_run_id"] == new
    # The new parent's table, like `harness runs show SWEEP_ID`, lists the runs that exist.
    logged = json.loads(Path(client.download_artifacts(new, "sweep_comparison.json")).read_text())
    run_ids = [row[logged["columns"].index("run_id")] for row in logged["data"]]
    assert run_ids == [run.result.run_id for run in sweep.runs] == [left.run_id]
    shown = find_sweep(sweep.sweep_id)
    assert shown is not None and [run.result.run_id for run in shown.runs] == run_ids


def test_a_parent_that_cannot_be_checked_is_said_once_and_noted(qa, home):
    """MLflow failing between runs (its store damaged) made each later run add the same
    warning again, and none reached the progress notes, unlike a parent that cannot be
    opened: the check's failure is now said once, in both."""
    from harness.config import resolve_home
    from harness.runner.progress import NullProgress

    store = Path(resolve_home().tracking_uri.removeprefix("sqlite:///"))

    class DamagesTheStore(NullProgress):  # what a full disk or another program does
        def note(self, message: str) -> None:
            super().note(message)
            if message.startswith("sweep run 2 of 3"):
                store.rename(store.with_suffix(".ok"))
                store.write_bytes(b"this is not SQLite" * 4000)

    progress = DamagesTheStore()
    base = RunConfig(data="qa", model=MODEL, metrics=["exact_match"], run_name="S", limit=2)
    sweep = run_sweep(base, {"temperature": [0, 0.5, 0.7]}, progress=progress)
    parent = sweep.parent_mlflow_run_id
    checks = [w for w in sweep.warnings if f"cannot read sweep run {parent}" in w]
    assert len(checks) == 1 and checks[0] in progress.notes, sweep.warnings
    # One plain line: the driver's reason, not SQLAlchemy's "(sqlite3.DatabaseError) ...",
    # its statement, parameters and background link (MLflow's store wraps them in its error).
    assert checks[0] == (
        f"MLflow logging failed: cannot read sweep run {parent} in MLflow at "
        f"sqlite:///{store}: file is not a database"
    )
