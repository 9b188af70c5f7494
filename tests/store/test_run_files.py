"""Run files (`harness runs export`), tags and deleting runs, on real stored runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.config import resolve_home
from harness.store.exports import load_run_record, read_run_file
from harness.store.runs import load_outputs, load_scores


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def run_id(qa_file: Path) -> str:
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness.baselines:context_overlap",
        "--metric", "exact_match", "--metric", "token_f1", "--no-mlflow", "--json",
        "--run-name", "first",
    )  # fmt: skip
    assert code == 0, err
    return str(json.loads(out)["run_id"])


@pytest.mark.parametrize("name", ["run.jsonl", "run.jsonl.gz", "run.parquet"])
def test_export_holds_rows_scores_and_configuration(
    run_id: str, name: str, tmp_path: Path, home: Path
) -> None:
    path = tmp_path / name
    code, out, err = invoke("runs", "export", run_id, str(path))
    assert code == 0, err
    assert out == f"wrote run {run_id} (20 rows) to {path}\n"
    record = read_run_file(path)
    db_path = resolve_home(home).db_path
    assert record.table.equals(load_run_record(db_path, run_id).table)
    assert record.info.config["metrics"] == ["exact_match", "token_f1"]
    assert record.info.dataset == "qa" and record.dataset_digest
    # The rows and scores read back are what the store holds.
    stored = load_scores(db_path, run_id)
    back = record.scores()
    columns = ["example_id", "metric", "sample", "value", "source"]
    key = ["example_id", "metric"]
    assert (
        back[columns]
        .sort_values(key)
        .reset_index(drop=True)
        .equals(stored[columns].sort_values(key).reset_index(drop=True))
    )
    assert list(record.rows()["output"]) == list(load_outputs(db_path, run_id)["output"])
    assert not list(tmp_path.glob(".*partial"))


def test_jsonl_layout_and_deterministic_gzip(run_id: str, tmp_path: Path) -> None:
    assert invoke("runs", "export", run_id, str(tmp_path / "a.jsonl"))[0] == 0
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert list(header)[:2] == ["harness_run_export", "harness_version"]
    assert header["run"]["run_id"] == run_id and header["dataset"]["name"] == "qa"
    row = json.loads(lines[1])
    assert set(row) >= {"id", "input", "expected", "context", "extra", "output", "scores"}
    assert {s["metric"] for s in row["scores"]} == {"exact_match", "token_f1"}
    assert isinstance(row["extra"], dict) and "final_decision" in row["extra"]
    for name in ("b.jsonl.gz", "c.jsonl.gz"):
        assert invoke("runs", "export", run_id, str(tmp_path / name))[0] == 0
    assert (tmp_path / "b.jsonl.gz").read_bytes() == (tmp_path / "c.jsonl.gz").read_bytes()
    assert gzip.decompress((tmp_path / "b.jsonl.gz").read_bytes()).decode().splitlines() == lines
    metadata = pq.read_schema(_export(run_id, tmp_path / "d.parquet")).metadata[
        b"harness_run_export"
    ]
    assert json.loads(metadata) == header


def _export(run_id: str, path: Path) -> Path:
    assert invoke("runs", "export", run_id, str(path))[0] == 0
    return path


def test_bad_export_targets_write_nothing(run_id: str, tmp_path: Path) -> None:
    code, _, err = invoke("runs", "export", run_id, str(tmp_path / "run.csv"))
    assert code == 2 and "must end in .parquet, .jsonl or .jsonl.gz" in err
    code, _, err = invoke("runs", "export", run_id, str(tmp_path / "nowhere" / "run.jsonl"))
    assert (code, err) == (2, f"error: {tmp_path / 'nowhere'} does not exist\n")
    qa = tmp_path / "qa.jsonl"  # a file where the folder goes
    code, _, err = invoke("runs", "export", run_id, str(qa / "run.jsonl"))
    assert (code, err) == (2, f"error: {qa} is not a folder\n")
    assert sorted(tmp_path.iterdir()) == [tmp_path / "home", tmp_path / "qa.jsonl"]
    # A FILE or a Spark table (tests/spark/test_spark_tables.py), one of them.
    code, _, err = invoke("runs", "export", run_id)
    assert code == 2 and "writes to a FILE or to --spark-table NAME" in err
    code, _, err = invoke("runs", "export", run_id, str(tmp_path / "r.jsonl"), "--spark-table", "t")
    assert code == 2 and "writes to a FILE or to --spark-table NAME" in err
    code, _, err = invoke("runs", "export", run_id, str(tmp_path / "r.jsonl"), "--overwrite")
    assert code == 2 and "go with --spark-table" in err
    assert sorted(tmp_path.iterdir()) == [tmp_path / "home", tmp_path / "qa.jsonl"]


def test_runs_show_reads_a_run_file(run_id: str, tmp_path: Path) -> None:
    path = _export(run_id, tmp_path / "run.parquet")
    code, out, _ = invoke("runs", "show", str(path), "--rows", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["run_id"] == run_id and len(doc["rows_table"]) == 20
    assert {"exact_match", "token_f1"} <= set(doc["rows_table"][0])


@pytest.mark.parametrize("name", ["run.jsonl", "run.jsonl.gz"])
def test_a_run_file_with_rows_missing_or_added_is_refused(
    run_id: str, name: str, tmp_path: Path
) -> None:
    # A file cut at a line's end (`head -11`) is valid JSON Lines, and was read as a
    # baseline of 10 rows; only the header's count of rows tells.
    opener = gzip.open if name.endswith(".gz") else open
    with opener(_export(run_id, tmp_path / name), "rt", encoding="utf-8") as f:
        lines = f.readlines()
    assert len(lines) == 21  # the header, then 20 rows
    for kept, held in ((lines[:11], 10), ([*lines, lines[-1]], 21)):
        path = tmp_path / f"{held}-{name}"
        with opener(path, "wt", encoding="utf-8") as f:
            f.writelines(kept)
        for args in (
            ("compare", run_id, str(path)),
            ("check", run_id, "--baseline", str(path)),
            ("runs", "show", str(path)),
        ):
            code, out, err = invoke(*args)
            assert (code, out) == (2, ""), args
            assert err == (
                f"error: {path} is truncated or damaged: its header says 20 rows, it holds {held}\n"
            )


def test_a_run_file_holds_the_rows_of_an_unfinished_run(
    run_id: str, tmp_path: Path, home: Path
) -> None:
    # An interrupted run holds fewer rows than its rows_total: the header counts the rows
    # in the file, so its file reads back whole.
    import dataclasses

    from harness.store.exports import export_run

    record = load_run_record(resolve_home(home).db_path, run_id)
    info = dataclasses.replace(record.info, status="interrupted", rows_done=5)
    part = dataclasses.replace(record, info=info, arrow=record.table.slice(0, 5))
    for name in ("part.jsonl", "part.parquet"):
        assert export_run(part, tmp_path / name) == 5
        back = read_run_file(tmp_path / name).info
        assert (back.rows_done, back.rows_total, back.status) == (5, 20, "interrupted")


def test_a_run_file_without_a_row_count_is_read(run_id: str, tmp_path: Path) -> None:
    # Files exported before the header counted its rows (examples/ci/baseline.jsonl was) read
    # as before, unchecked.
    lines = _export(run_id, tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    del header["rows"]
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([json.dumps(header), *lines[1:11]]) + "\n", encoding="utf-8")
    assert read_run_file(old).table.num_rows == 10


def test_tags_name_runs_and_move(run_id: str, home: Path) -> None:
    code, out, _ = invoke("runs", "tag", run_id, "baseline")
    assert code == 0 and out == f"tagged run {run_id} 'baseline'\n"
    code, out, _ = invoke(
        "run", "--data", "qa", "--model", "python:harness.baselines:top_sentence",
        "--metric", "exact_match", "--no-mlflow", "--json",
    )  # fmt: skip
    second = json.loads(out)["run_id"]
    code, out, _ = invoke("runs", "tag", second, "baseline")
    assert out == f"tagged run {second} 'baseline' (moved from {run_id})\n"
    code, out, _ = invoke("runs", "show", "baseline", "--json")
    assert json.loads(out)["run_id"] == second
    code, out, _ = invoke("runs", "list", "--json")
    assert {r["run_id"]: r["tags"] for r in json.loads(out)} == {second: ["baseline"], run_id: []}
    code, _, err = invoke("runs", "tag", run_id, "two words")
    assert code == 2 and "one word without spaces" in err
    code, _, err = invoke("runs", "tag", run_id, second[:4])
    assert code == 2 and "would hide the run ids it starts" in err


def test_a_tag_named_like_a_run_file_is_refused(run_id: str, home: Path) -> None:
    """`runs show`, compare and check read such a name as a file: the tag was accepted,
    then every use of it said `error: no such run file: baseline.jsonl`."""
    for name in ("baseline.jsonl", "b.JSONL.gz", "b.parquet"):
        code, out, err = invoke("runs", "tag", run_id, name)
        assert (code, out) == (2, ""), name
        assert err == (
            f"error: tag {name!r} ends like a run file (.jsonl, .jsonl.gz, .parquet), which "
            "commands read as a file: choose another name\n"
        )
    code, out, _ = invoke("runs", "list", "--json")
    assert json.loads(out)[0]["tags"] == []


def test_a_run_name_finds_the_newest_run_of_that_name(run_id: str) -> None:
    code, out, _ = invoke(
        "run", "--data", "qa", "--model", "python:harness.baselines:top_sentence",
        "--metric", "exact_match", "--no-mlflow", "--json", "--run-name", "first",
    )  # fmt: skip
    newest = json.loads(out)["run_id"]
    code, out, err = invoke("runs", "show", "first", "--json")
    assert json.loads(out)["run_id"] == newest
    assert "2 runs are named 'first'; using the newest" in err


def test_a_run_takes_its_own_name_as_a_tag_to_be_pinned_among_runs_of_that_name(
    run_id: str,
) -> None:
    """The note for several runs of one name says to pin one with `runs tag RUN_ID NAME`;
    that was refused as a tag hiding a run name."""
    run = ("run", "--data", "qa", "--model", "echo", "--metric", "word_count", "--no-mlflow",
           "--json", "--run-name", "first")  # fmt: skip
    newest = json.loads(invoke(*run)[1])["run_id"]
    code, _, err = invoke("runs", "show", "first", "--json")
    assert "pin one with `harness runs tag RUN_ID first`" in err
    code, out, err = invoke("runs", "tag", run_id, "first")  # the older of the two
    assert code == 0 and err == ""
    code, out, err = invoke("runs", "show", "first", "--json")
    assert code == 0 and json.loads(out)["run_id"] == run_id
    assert err == (
        f"note: 'first' is the tag of run {run_id}, which is used; run {newest} is named "
        "'first' too\n"
    )


def test_a_tag_never_hides_a_run_name_nor_deletes_the_wrong_run(run_id: str, home: Path) -> None:
    """`runs tag OTHER first` (a run is named first) was taken, and then `runs show first`
    and even `runs delete first` took the tagged run: the tag is refused. A run named like
    a tag after it was made is hidden by it: show says so, delete refuses."""
    run = ("run", "--data", "qa", "--model", "echo", "--metric", "word_count", "--no-mlflow",
           "--json", "--run-name")  # fmt: skip
    other = json.loads(invoke(*run, "other")[1])["run_id"]
    code, out, err = invoke("runs", "tag", other, "first")
    assert (code, out) == (2, "") and err == (
        f"error: tag 'first' is the name of run {run_id}; a tag must not hide a run name: "
        "choose another tag\n"
    )
    code, out, err = invoke("runs", "show", "first", "--json")
    assert code == 0 and json.loads(out)["run_id"] == run_id and err == ""

    assert invoke("runs", "tag", other, "pinned")[0] == 0
    later = json.loads(invoke(*run, "pinned")[1])["run_id"]
    code, out, err = invoke("runs", "show", "pinned", "--json")
    assert code == 0 and json.loads(out)["run_id"] == other  # the tag wins, and says so
    note = f"'pinned' is the tag of run {other}, which is used; run {later} is named 'pinned' too"
    assert err == f"note: {note}\n"
    code, out, err = invoke("runs", "delete", "pinned")
    assert (code, out, err) == (2, "", f"error: {note}; delete it by its run id\n")
    code, out, err = invoke("runs", "delete", other[:6])  # an id prefix is no name: no note
    assert code == 0 and out.startswith(f"deleted run {other} ") and err == ""
    remaining = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        rows = remaining.execute("SELECT run_id FROM runs ORDER BY created_at").fetchall()
    finally:
        remaining.close()
    assert rows == [(run_id,), (later,)]


def test_an_empty_run_name_names_no_run(run_id: str, home: Path, tmp_path: Path) -> None:
    """`harness runs delete "$RUN"` with RUN unset: '' starts every run id, so with one run
    stored it was taken as that run's abbreviation and the run was deleted (and `runs show
    ''`, `report ''`, `compare '' RUN` read it). It names no run, in one line, exit 2."""
    refused = (
        "error: no run named '': give a run id, a tag or a run name; see `harness runs list`\n"
    )
    page = tmp_path / "r.html"
    for args in (["runs", "delete", ""], ["runs", "show", ""], ["report", "", "-o", str(page)],
                 ["compare", "", run_id], ["runs", "tag", "", "pinned"]):  # fmt: skip
        assert invoke(*args) == (2, "", refused), args
    assert not page.exists()
    code, out, _ = invoke("runs", "show", run_id, "--json")
    assert code == 0 and json.loads(out)["run_id"] == run_id  # still there


def test_delete_removes_the_runs_rows_and_tags(run_id: str, home: Path) -> None:
    invoke("runs", "tag", run_id, "old")
    code, out, _ = invoke("runs", "delete", run_id)
    assert code == 0 and out == f"deleted run {run_id} (20 rows, tags old)\n"
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        for table in ("runs", "outputs", "scores", "run_tags"):
            count = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id])
            assert count.fetchone() == (0,), table
        assert con.execute("SELECT count(*) FROM examples").fetchone() == (20,)
    finally:
        con.close()
    code, _, err = invoke("runs", "show", run_id)
    assert code == 2 and "no run, tag or run name" in err


def test_a_running_run_is_deleted_only_with_force(run_id: str, home: Path) -> None:
    con = duckdb.connect(str(home / "harness.duckdb"))
    con.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [run_id])
    con.close()
    code, _, err = invoke("runs", "delete", run_id)
    assert code == 2 and "still running" in err
    assert invoke("runs", "delete", run_id, "--force")[0] == 0


def test_a_run_file_keeps_what_failed_per_kind(
    qa_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    code, out, err = invoke(
        "run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", "exact_match", "--no-mlflow", "--json",
    )  # fmt: skip
    assert code == 1, err
    stored = json.loads(out)
    failed = stored["errors"]
    assert 0 < failed < 20 and stored["failures"]["model"]["failed"] == failed
    path = tmp_path / "failed.jsonl"
    assert invoke("runs", "export", stored["run_id"], str(path))[0] == 0
    info = read_run_file(path).info
    assert info.failures == stored["failures"] and info.errors == failed
    code, out, _ = invoke("runs", "show", str(path))
    assert code == 0 and f"failed: {failed} model rows" in out, out


# How a run's rows and their nested scores were read before ``load_run_record`` nested
# them itself: DuckDB's own list() aggregate, the reference for the layout.
_NESTED_BY_DUCKDB = """
WITH s AS (
    SELECT example_id, list({'metric': metric, 'sample': sample, 'value': value,
        'label': label, 'rationale': rationale, 'raw': raw, 'error': error, 'source': source,
        'request_key': request_key, 'cached': cached} ORDER BY metric, sample) AS scores
    FROM scores WHERE run_id = $run GROUP BY example_id
)
SELECT o.example_id AS id, e.input, e.expected, e.context, CAST(e.extra AS VARCHAR) AS extra,
       o.output, o.error, o.latency_s, o.input_tokens, o.output_tokens, o.cost_usd,
       o.request_key, o.cached, coalesce(s.scores, []) AS scores
FROM outputs o
JOIN runs r ON r.run_id = o.run_id
LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                    AND e.id = o.example_id
LEFT JOIN s ON s.example_id = o.example_id
WHERE o.run_id = $run
ORDER BY e.position, o.example_id
"""


def test_a_run_record_nests_each_rows_scores_in_order(qa_file: Path, home: Path) -> None:
    from harness.store.datasets import load_examples, resolve_dataset
    from harness.store.exports import ROW_SCHEMA, _arrow
    from harness.store.rows import OutputRow, ScoreRow
    from harness.store.runs import create_run, write_batch

    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    db_path = resolve_home(home).db_path
    dataset = resolve_dataset(db_path, "qa")
    ids = [e.id for e in load_examples(db_path, dataset)]
    create_run(
        db_path, run_id="r1", run_name=None, dataset=dataset.name,
        dataset_version=dataset.version, model="m", config={}, rows_total=len(ids),
    )  # fmt: skip
    # Written out of order, in two batches: an example the dataset does not hold (it
    # sorts last), one with no score, one whose scores come unsorted, an error score,
    # and a score whose row has no output (not part of the record).
    kept = [ids[5], ids[0], "ghost", *ids[10:12], ids[2]]
    outputs = [OutputRow(i, f"out {i}", None, 0.1, 3, 4, None, "k", True) for i in kept]
    scores = [
        ScoreRow(ids[0], "b", 1.0),
        ScoreRow(ids[0], "a", 0.5, "llm_judge", 1, "yes", "because", "raw", None, "k1", True),
        ScoreRow(ids[0], "a", 0.0, "llm_judge", 0, "no", "since", "raw0", None, "k0", False),
        ScoreRow(ids[2], "b", None, error="metric raised"),
        ScoreRow("ghost", "b", 0.25),
        ScoreRow(ids[19], "b", 1.0),
    ]
    write_batch(db_path, "r1", outputs[:3], scores[:2])
    write_batch(db_path, "r1", outputs[3:], scores[2:])

    table = load_run_record(db_path, "r1").table
    with duckdb.connect(str(db_path), read_only=True) as con:
        reference = _arrow(con.sql(_NESTED_BY_DUCKDB, params={"run": "r1"}))
    assert table.schema == ROW_SCHEMA
    assert table.equals(reference.cast(ROW_SCHEMA))
    rows = {r["id"]: r for r in table.to_pylist()}
    assert table.column("id").to_pylist() == [ids[0], ids[2], ids[5], *ids[10:12], "ghost"]
    assert [(s["metric"], s["sample"]) for s in rows[ids[0]]["scores"]] == [
        ("a", 0), ("a", 1), ("b", 0),
    ]  # fmt: skip
    assert rows[ids[5]]["scores"] == []
    assert rows[ids[2]]["scores"][0]["error"] == "metric raised"
    assert rows["ghost"]["input"] is None and rows["ghost"]["scores"][0]["value"] == 0.25


def test_a_run_file_on_a_full_disk_is_the_environments_fault(
    run_id: str, tmp_path: Path, home: Path
) -> None:
    """A full disk (a real 4 KiB tmpfs, in a user and mount namespace) is exit 74 and
    leaves no partial file; it was reported as bad input (exit 2)."""
    import shutil
    import subprocess
    import sys

    small = tmp_path / "small"
    small.mkdir()
    target = small / "run.jsonl"
    command = (f"mount -t tmpfs -o size=4k tmpfs {small} && {sys.executable} -m harness "
               f"--home {home} runs export {run_id} {target}; code=$?; ls -A {small}; "
               f"exit $code")  # fmt: skip
    assert shutil.which("unshare"), "unshare (util-linux) makes the full disk"
    full = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert full.returncode == 74, full.stderr
    assert full.stderr.strip().splitlines() == [
        f"error: no space left on device while writing {target}"
    ]
    assert full.stdout.strip() == ""  # the folder is empty: no partial file left behind


def test_a_run_name_wins_over_an_id_prefix_and_says_so(run_id: str) -> None:
    """A run named 'a' was passed over for the runs whose ids start with 'a' (`judges
    compare a b` compared other runs); the name wins, as a branch name does over a
    commit's abbreviation in git, with a note naming the run it hides."""
    prefix = run_id[:4]
    run = ("run", "--data", "qa", "--model", "echo", "--metric", "word_count", "--no-mlflow",
           "--json", "--run-name", prefix)  # fmt: skip
    named = json.loads(invoke(*run)[1])["run_id"]
    code, out, err = invoke("runs", "show", prefix, "--json")
    assert code == 0 and json.loads(out)["run_id"] == named
    note = (
        f"{prefix!r} is the name of run {named}, which is used; it also starts the id of run "
        f"{run_id} (give more of the id for it)"
    )
    assert err == f"note: {note}\n"
    code, out, err = invoke("runs", "delete", prefix)  # a delete never takes a guess
    assert (code, out, err) == (2, "", f"error: {note}; delete it by its run id\n")
    code, out, err = invoke("runs", "show", run_id, "--json")  # the whole id: no note
    assert code == 0 and json.loads(out)["run_id"] == run_id and err == ""
    code, out, err = invoke("runs", "show", run_id[:6], "--json")  # a longer prefix: the id
    assert json.loads(out)["run_id"] == run_id and err == ""
