"""Spark tables as eval sets and as a home for per-row results, through a real warehouse.

The tables live in the Spark Connect server's warehouse (a temporary folder, see
conftest.py); this process reads and writes them through its own Connect session, as a
notebook would, and harness through the session it opens (the active one here; the CLI
tests open their own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spark_helpers import cli_env

from harness.data import import_file
from harness.errors import ConfigError, DataError
from harness.runner.config import RunConfig, RunResult
from harness.runner.run import run_eval
from harness.runner.spark_session import SparkTarget
from harness.spark_tables import ExportResult, export_run_to_spark, import_spark_table
from harness.store.runs import load_outputs, load_scores
from harness.testing import FakeLLMServer, SparkConnectServer

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def remote(connect_server: SparkConnectServer) -> SparkTarget:
    return SparkTarget(remote=connect_server.url)


def varied_rows() -> list[dict[str, Any]]:
    """Rows with every kind of value an eval set holds: lists, objects, nulls, numbers."""
    return [
        {
            "id": f"r{i}",
            "question": f"What is {i} squared?",
            "answer": [str(i * i), f"{i}^2"] if i % 2 else str(i * i),
            "context": None if i % 3 == 0 else f"{i} times {i} is {i * i}.",
            "n": i,
            "share": i / 4,
            "even": i % 2 == 0,
            "tags": ["math", str(i)],
            "meta": {"level": i % 4, "source": "generated"},
        }
        for i in range(30)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_table_imports_as_the_version_its_rows_make_from_a_file(
    spark: Any, remote: SparkTarget, home: Path, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "squares.jsonl", varied_rows())
    spark.read.json(str(source)).write.mode("overwrite").saveAsTable("squares")
    from_file = import_file(source, name="squares", home=home)
    from_table = import_spark_table("squares", name="squares", home=home, target=remote)
    assert from_table.dataset.digest == from_file.dataset.digest
    assert from_table.created is False  # the same content: the same version, stored once
    assert from_table.dataset.columns == from_file.dataset.columns
    # A query picks rows: a version of its own, the rows the query returned, in its order.
    query = "SELECT * FROM squares WHERE n >= 20 ORDER BY n DESC"
    picked = import_spark_table(sql=query, name="squares", home=home, target=remote)
    assert picked.created and picked.dataset.n_rows == 10
    assert picked.dataset.source == f"spark-sql:{query}"
    subset = import_file(
        write_jsonl(tmp_path / "top.jsonl", varied_rows()[20:][::-1]), name="top", home=home
    )
    assert picked.dataset.digest == subset.dataset.digest


def test_table_errors_are_one_line(spark: Any, remote: SparkTarget, home: Path) -> None:
    with pytest.raises(DataError) as caught:
        import_spark_table("no_such_table", name="x", home=home, target=remote)
    assert str(caught.value).startswith(
        "cannot read Spark table no_such_table: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
        "`no_such_table` cannot be found"
    )
    assert "\n" not in str(caught.value)
    spark.sql("SELECT 'a' AS id, 'q' AS question UNION ALL SELECT 'a', 'r'").write.mode(
        "overwrite"
    ).saveAsTable("twice")
    with pytest.raises(DataError, match="duplicate id 'a' in rows 1 and 2"):
        import_spark_table("twice", name="x", home=home, target=remote)
    with pytest.raises(DataError, match="no input column"):
        import_spark_table(sql="SELECT 1 AS n", name="x", home=home, target=remote)
    with pytest.raises(ConfigError, match="give a Spark table"):
        import_spark_table(name="x", home=home, target=remote)


def test_a_bad_dataset_name_is_refused_before_spark_reads_the_table(
    llm: FakeLLMServer, home: Path, tmp_path: Path
) -> None:
    """`data import --spark-table T --name bad/name` started a local JVM (~10 s) and read
    the whole table before refusing the name (or said the table was not there)."""
    work = tmp_path / "work"
    work.mkdir()
    for source in (["--spark-table", "no_such_table"], ["--spark-sql", "SELECT 'q' AS input"]):
        command = [str(Path(sys.executable).parent / "harness"), "data", "import", *source]
        done = subprocess.run(
            [*command, "--name", "bad/name"], env=cli_env(home, llm), cwd=work,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            "error: invalid dataset name 'bad/name': use letters, digits, '-', '_' or '.'"
        ]
    assert list(work.iterdir()) == [] and not (home / "harness.duckdb").exists()


def _local_project(
    llm: FakeLLMServer, home: Path, tmp_path: Path
) -> tuple[RunResult, Path, Callable[..., subprocess.CompletedProcess[str]]]:
    """A project on a local[1] session harness starts, with a one-row `echo` run; an empty
    working folder; and the CLI run there."""
    (home / "harness.toml").write_text('[spark]\nmaster = "local[1]"\n')
    import_file(write_jsonl(tmp_path / "qa.jsonl", [{"question": "q"}]), name="qa", home=home)
    run = run_eval(RunConfig(data="qa", model="echo", mlflow=False), home=home)
    work = tmp_path / "work"
    work.mkdir()

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "harness"), *arguments]
        return subprocess.run(
            command, env=cli_env(home, llm), cwd=work, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip

    return run, work, cli


def test_a_failed_table_command_on_a_local_session_leaves_no_warehouse_folder(
    llm: FakeLLMServer, home: Path, tmp_path: Path
) -> None:
    """A local session's catalog makes ./spark-warehouse on first use, even to find that a
    table is not there: `data import --spark-table` of a table that does not exist, and
    `runs export --spark-table` to a schema that does not, left it (empty) in the cwd."""
    run, work, cli = _local_project(llm, home, tmp_path)
    imported = cli("data", "import", "--spark-table", "no_such_table", "--name", "x")
    assert imported.returncode == 2 and imported.stderr.count("\n") == 1, imported.stderr
    assert imported.stderr.startswith(
        "error: cannot read Spark table no_such_table: [TABLE_OR_VIEW_NOT_FOUND]"
    )
    exported = cli("runs", "export", run.run_id, "--spark-table", "no_schema.results")
    assert exported.returncode == 2 and exported.stderr.count("\n") == 1, exported.stderr
    assert exported.stderr.startswith(
        "error: cannot write Spark table no_schema.results: [SCHEMA_NOT_FOUND]"
    )
    assert list(work.iterdir()) == []


def test_a_query_on_a_local_session_finds_the_tables_earlier_commands_saved(
    llm: FakeLLMServer, home: Path, tmp_path: Path
) -> None:
    """A local session's catalog is new with each command; `data import --spark-table T`
    found a table an earlier `runs export` saved (./spark-warehouse/T), but a query naming
    it, `--spark-sql "SELECT ... FROM T WHERE run_id = ..."` (what picks one run out of a
    table of several), stopped with "[TABLE_OR_VIEW_NOT_FOUND]", exit 2."""
    run, work, cli = _local_project(llm, home, tmp_path)
    exported = cli("runs", "export", run.run_id, "--spark-table", "results")
    assert exported.returncode == 0, exported.stderr
    query = f"SELECT id, input, output AS expected FROM results WHERE run_id = '{run.run_id}'"
    imported = cli("data", "import", "--spark-sql", query, "--name", "echoed", "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["rows"] == 1
    assert sorted(p.name for p in (work / "spark-warehouse").iterdir()) == ["results"]


def test_a_run_exported_to_a_table_reads_back_as_stored(
    spark: Any, remote: SparkTarget, fake: FakeLLMServer, home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-export")
    import_file(write_jsonl(tmp_path / "squares.jsonl", varied_rows()), name="sq", home=home)
    config = RunConfig(
        data="sq", model="openai:/m", metrics=["token_f1", "exact_match"],
        judges=["correctness"], judge_model="openai:/j", judge_samples=2, mlflow=False,
    )  # fmt: skip
    first = run_eval(config, home=home)
    exported = export_run_to_spark(first.run_id, "results", home=home, target=remote)
    assert exported.rows == 30 and not exported.replaced

    rows = spark.read.table("results").orderBy("position").collect()
    outputs = load_outputs(home / "harness.duckdb", first.run_id)
    scores = load_scores(home / "harness.duckdb", first.run_id).astype(object)
    scores = scores.where(scores.notna(), None)  # NULL as None, as Spark returns it
    assert [r.id for r in rows] == list(outputs["id"])
    assert [r.output for r in rows] == list(outputs["output"])
    assert [r.cached for r in rows] == list(outputs["cached"])
    assert {r.run_id for r in rows} == {first.run_id} and rows[0].model == "openai:/m"
    assert rows[3].expected == ["9", "3^2"] and json.loads(rows[3].extra)["meta"]["level"] == 3
    for row in rows:
        mine = scores[scores["example_id"] == row.id]
        assert len(row.scores) == len(mine) == 4  # two metrics, two judge samples
        means = mine.groupby("metric")["value"].mean().to_dict()
        assert dict(row.metrics) == pytest.approx(means)
        assert {(s.metric, s.sample, s.value, s.rationale) for s in row.scores} == set(
            mine[["metric", "sample", "value", "rationale"]].itertuples(index=False, name=None)
        )

    # The same run again is refused; another run appends; --overwrite replaces.
    with pytest.raises(ConfigError, match=f"already holds run {first.run_id}"):
        export_run_to_spark(first.run_id, "results", home=home, target=remote)
    second = run_eval(config, home=home)  # cached: same answers, another run
    export_run_to_spark(second.run_id, "results", home=home, target=remote)
    counts = spark.sql("SELECT run_id, count(*) AS n FROM results GROUP BY run_id").collect()
    assert sorted((r.run_id, r.n) for r in counts) == sorted(
        [(first.run_id, 30), (second.run_id, 30)]
    )
    again = export_run_to_spark(second.run_id, "results", home=home, target=remote, overwrite=True)
    assert again.replaced
    assert spark.read.table("results").count() == 30


def peak_rss_mb(command: list[str], env: dict[str, str], log: Path) -> float:
    """The peak resident memory of one `harness` process, from the kernel's accounting."""
    with open(log, "w") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, log.read_text()
    return usage.ru_maxrss / 1024  # kB on Linux


def test_importing_a_table_takes_memory_that_does_not_grow_with_the_table(
    spark: Any, connect_server: SparkConnectServer, fake: FakeLLMServer, home: Path, tmp_path: Path
) -> None:
    # Two tables of 4 kB rows, one three times the other (~47 MB and ~141 MB of text).
    # Collecting a table (toPandas) grows the process by more than the table; reading it
    # in batches of 1,000 rows grows it by what a few batches take, whatever the table.
    row_kb, rows = 4, 12_000
    sizes = {"wide_small": rows, "wide_large": 3 * rows}
    for name, n in sizes.items():
        spark.range(0, n, 1, 6).selectExpr(
            "concat('w', id) AS id",
            f"concat('question ', id, ' ', repeat('x', {row_kb * 1024 - 1024})) AS question",
            "repeat('y', 1024) AS answer",
        ).write.mode("overwrite").saveAsTable(name)
    env = cli_env(home, fake)
    harness_bin = str(Path(sys.executable).parent / "harness")
    peaks = {
        name: peak_rss_mb(
            [harness_bin, "data", "import", "--spark-table", name, "--name", name,
             "--spark-remote", connect_server.url],
            env,
            tmp_path / f"{name}.stderr",
        )
        for name in sizes
    }  # fmt: skip
    extra_mb = (sizes["wide_large"] - sizes["wide_small"]) * row_kb / 1024  # 94 MB more rows
    growth = peaks["wide_large"] - peaks["wide_small"]
    # Holding the added rows once would take all of extra_mb (toPandas: 2-3 times it);
    # measured growth 8-27 MB, the allocator's noise.
    assert growth < extra_mb / 2, (peaks, extra_mb)


@pytest.mark.parametrize(("rows", "said"), [(1, "1 row written"), (1200, "1,200 rows written")])
def test_an_export_says_its_rows_in_words_that_agree(rows: int, said: str) -> None:
    # `runs export --spark-table` of a one-row run printed "1 rows written".
    result = ExportResult("3f2a9c1b4d5e", "main.evals.results", rows, False, "local[1]")
    assert result.line() == f"run 3f2a9c1b4d5e: {said} to main.evals.results on local[1]"


def test_a_run_without_rows_exports_as_an_empty_table_of_the_same_columns(
    spark: Any, remote: SparkTarget, fake: FakeLLMServer, home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A run that failed before any row (here: its Spark Connect server could not be
    reached) stopped `runs export --spark-table` with Spark's "[CANNOT_INFER_EMPTY_SCHEMA]
    Can not infer schema from an empty dataset", exit 2, where a run file is written."""
    import socket

    from spark_helpers import harness

    from harness.store.runs import list_runs

    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-export")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"sc://127.0.0.1:{probe.getsockname()[1]}"
    import_file(write_jsonl(tmp_path / "squares.jsonl", varied_rows()), name="sq", home=home)
    run = ["run", "--data", "sq", "--model", "openai:/m", "--no-mlflow", "--spark-remote"]
    failed = harness(*run, closed, env=cli_env(home, fake))  # no session active there
    assert failed.returncode == 74, failed.stderr
    (empty,) = list_runs(home / "harness.duckdb")
    exported = export_run_to_spark(empty.run_id, "no_rows", home=home, target=remote)
    assert exported.rows == 0 and "0 rows written to no_rows" in exported.line()
    assert spark.read.table("no_rows").count() == 0

    full = run_eval(RunConfig(data="sq", model="openai:/m", mlflow=False), home=home)
    export_run_to_spark(full.run_id, "no_rows", home=home, target=remote)  # appends
    export_run_to_spark(full.run_id, "some_rows", home=home, target=remote)
    assert spark.read.table("no_rows").count() == 30
    assert spark.read.table("no_rows").schema == spark.read.table("some_rows").schema
