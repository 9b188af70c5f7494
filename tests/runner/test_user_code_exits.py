"""sys.exit() in the user's code (a python: model, a row metric, an eval_fn), or in a
library it calls, ended harness with that exit code and not a word: 3, which reads as
--check's "cannot decide", with the run stored as failed. It is that code's failure, as any
exception it raises is: the row's (or the metric's) error, the run goes on, exit 1. Real
processes, a real DuckDB store."""

from __future__ import annotations

from pathlib import Path

import pytest
from processes import harness, harness_env, import_rows, query


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--model", "python:harness_test_models:exits", "--metric", "exact_match"],
         "python:harness_test_models:exits raised SystemExit: 3"),
        (["--model", "echo", "--metric", "python:harness_test_metrics:exits"],
         "metrics raised on 4 rows"),
        (["--model", "echo", "--metric", "python:harness_test_metrics:exits_in_a_batch"],
         "metric 'exits_in_a_batch' raised SystemExit: 3"),
    ],
)  # fmt: skip
def test_sys_exit_in_the_users_code_fails_its_rows_not_harness(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    env = harness_env(tmp_path / "home")
    import_rows(env, tmp_path, 4)
    code, out, err = harness(env, "run", "--data", "qa", "--no-mlflow", *flags)
    assert code == 1, (out, err)
    assert said in err
    assert query(tmp_path / "home", "SELECT status, rows_total FROM runs") == [("finished", 4)]
    assert query(tmp_path / "home", "SELECT count(*) FROM outputs") == [(4,)]  # every row ran
