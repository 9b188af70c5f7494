"""``harness.store.dataframes.frame`` gives DuckDB's ``.df()`` frame, read through Arrow."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from harness.store.dataframes import frame

# Each column type the store's reads use, with every NULL pattern: none, some, all.
_TYPES = {
    "text": "VARCHAR",
    "number": "INTEGER",
    "big": "BIGINT",
    "flag": "BOOLEAN",
    "real": "DOUBLE",
    "answers": "VARCHAR[]",
}
_VALUES = {
    "text": ["'a'", "'b'", "'ü\u00e9'"],
    "number": ["1", "-2", "3"],
    "big": ["9007199254740993", "0", "-1"],
    "flag": ["true", "false", "true"],
    "real": ["0.1", "-0.0", "'nan'::DOUBLE"],
    "answers": ["['x', 'y']", "[]", "['z', NULL]"],
}


def _table(con: duckdb.DuckDBPyConnection, pattern: str) -> None:
    """Three rows; ``pattern`` says which values are NULL: none, some (row 2) or all."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _TYPES.items())
    con.execute(f"CREATE OR REPLACE TABLE t (place INTEGER, {columns})")
    for place in range(3):
        values = []
        for name in _TYPES:
            null = pattern == "all" or (pattern == "some" and place == 1)
            values.append("NULL" if null else _VALUES[name][place])
        con.execute(f"INSERT INTO t VALUES ({place}, {', '.join(values)})")


@pytest.mark.parametrize("pattern", ["none", "some", "all", "empty"])
def test_frame_is_the_df_frame_for_each_column_type_and_nulls(pattern: str) -> None:
    con = duckdb.connect()
    _table(con, "none" if pattern == "empty" else pattern)
    where = "WHERE false" if pattern == "empty" else ""
    query = f"SELECT * FROM t {where} ORDER BY place"
    expected = con.sql(query).df()
    got = frame(con.sql(query))
    pd.testing.assert_frame_equal(got, expected)
    # Beyond the dtypes: the same missing markers (None, NaN or pd.NA) and the same lists.
    shown = [[repr(v) for v in got[c]] for c in got]
    assert shown == [[repr(v) for v in expected[c]] for c in expected]


def test_frame_refuses_a_column_type_it_does_not_convert_as_df_does() -> None:
    con = duckdb.connect()
    with pytest.raises(TypeError, match="does not convert"):
        frame(con.sql("SELECT DATE '2026-12-03' AS day"))


def test_a_runs_outputs_and_scores_read_back_as_df_reads_them(
    home: Path, qa_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored run whose failed rows have an error and no output, tokens or judge verdict:
    both loads agree with ``.df()`` on the same queries."""
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.store import runs as run_store
    from harness.store.db import connect

    imported = CliRunner().invoke(cli, ["data", "import", str(qa_file), "--name", "qa"])
    assert imported.exit_code == 0, imported.stderr
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    result = CliRunner().invoke(cli, [
        "run", "--data", "qa", "--model", "python:harness_test_models:fail_while_flagged",
        "--metric", "token_f1", "--judge", "correctness",
        "--judge-model", "python:harness_test_models:judge_yes", "--no-mlflow", "--json",
    ])  # fmt: skip
    assert result.exit_code == 1, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    db = home / "harness.duckdb"
    outputs = run_store.load_outputs(db, run_id)
    scores = run_store.load_scores(db, run_id)
    assert outputs["error"].notna().any() and outputs["error"].isna().any()
    with connect(db, read_only=True) as con:
        pd.testing.assert_frame_equal(outputs, con.execute(run_store.OUTPUTS_SQL, [run_id]).df())
        pd.testing.assert_frame_equal(scores, con.execute(run_store.SCORES_SQL, [run_id]).df())
