"""harness.slices: labels of a column, per-slice means and intervals against pandas,
statsmodels and scipy, the limit on values, and MLflow-safe metric names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint

from harness.errors import ConfigError
from harness.slices import (
    DEFAULT_MAX_VALUES,
    check_value_count,
    column_labels,
    label,
    max_values,
    mlflow_slice_metrics,
    per_row_values,
    row_fields,
    slice_table,
    sort_labels,
)


def test_labels_are_text_whatever_the_cell() -> None:
    assert label("yes") == "yes"
    assert label(2011) == "2011"
    assert label(np.int64(3)) == "3"
    assert label(True) == "true"
    assert label(["b", "a"]) == '["b", "a"]'
    assert label(None) is None and label(float("nan")) is None


def test_pandas_missing_values_are_rows_without_a_value(tmp_path: Path, home: Path) -> None:
    """pandas' NA and NaT were labels of their own: a DataFrame's datetime column with a gap
    was stored as the text 'NaT' and sliced as a 'NaT' slice, label(pd.NA) was '"<NA>"', and
    slice_table given a nullable column's values raised 'boolean value of NA is ambiguous'.
    Each is now a row without a value, the (none) slice, as None and NaN are."""
    from harness.data import import_dataframe
    from harness.slices import example_fields
    from harness.store.datasets import load_examples

    assert label(pd.NA) is None and label(pd.NaT) is None
    frame = pd.DataFrame(
        {
            "input": ["a", "b", "c"],
            "day": pd.to_datetime(["2024-01-01", None, "2024-01-01"]),
            "level": pd.array([1, None, 2], dtype="Int64"),
            "topic": pd.Series(["x", pd.NA, "y"], dtype=object),
        }
    )
    info = import_dataframe(frame, name="gaps").dataset
    rows = [example_fields(e) for e in load_examples(home / "harness.duckdb", info)]
    assert rows[1]["day"] is None
    for column in ("day", "level", "topic"):
        assert column_labels(rows, column, "--by")[1] is None
    values = pd.DataFrame({"m": [1.0, 0.0, 1.0]}, index=list("abc"))
    for gaps in (
        pd.Series(["x", None, "y"], index=list("abc"), dtype="string"),
        pd.Series(["x", pd.NA, "y"], index=list("abc"), dtype=object),
        pd.Series(["x", float("nan"), "y"], index=list("abc"), dtype=object),
    ):
        table = slice_table("t", gaps, values)
        assert [(s.value, s.rows) for s in table.slices] == [("x", 1), ("y", 1), (None, 1)]


def test_missing_values_inside_lists_and_dicts_are_stored_as_json_nulls(home: Path) -> None:
    """A list cell with a gap was stored with the text "<NA>" (pandas' NA) or the token NaN,
    which is not JSON (DuckDB's JSON functions and strict readers refuse it)."""
    import duckdb

    from harness.data import import_dataframe

    frame = pd.DataFrame(
        {
            "input": ["a", "b"],
            "tags": [["x", pd.NA], [1.5, float("nan"), {"when": pd.NaT}]],
        }
    )
    import_dataframe(frame, name="nested")
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        stored = [
            r[0] for r in con.execute("SELECT extra FROM examples ORDER BY position").fetchall()
        ]
        by_duckdb = con.execute(
            "SELECT json_extract(extra, '$.tags') FROM examples ORDER BY position"
        ).fetchall()
    finally:
        con.close()

    def strict(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    assert [json.loads(text, parse_constant=strict)["tags"] for text in stored] == [
        ["x", None],
        [1.5, None, {"when": None}],
    ]
    assert [json.loads(r[0]) for r in by_duckdb] == [["x", None], [1.5, None, {"when": None}]]


def test_column_labels_reach_builtin_and_extra_columns() -> None:
    rows = [
        row_fields("1", "q1", ["a"], "c1", '{"topic": "bio", "year": 2011}'),
        row_fields("2", "q2", ("a", "b"), None, {"topic": "chem"}),
        row_fields("3", "q3", [], "c3", None),
    ]
    assert column_labels(rows, "topic", "--by") == ["bio", "chem", None]
    assert column_labels(rows, "year", "--by") == ["2011", None, None]
    assert column_labels(rows, "expected", "--by") == ["a", '["a", "b"]', None]
    assert column_labels(rows, "context", "--by") == ["c1", None, "c3"]
    with pytest.raises(ConfigError, match=r"^--stratify level: no row has that column; "
                       r"columns: context, expected, id, input, topic, year$"):  # fmt: skip
        column_labels(rows, "level", "--stratify")


def test_labels_sort_numerically_when_they_are_numbers_and_missing_last() -> None:
    assert sort_labels(["10", "9", None, "100"]) == ["9", "10", "100", None]
    assert sort_labels(["b", "10", "a"]) == ["10", "a", "b"]
    assert sort_labels([]) == []


def test_the_limit_comes_from_the_option_then_harness_toml_then_the_default() -> None:
    assert max_values(None, {}) == DEFAULT_MAX_VALUES == 50
    assert max_values(None, {"slices": {"max_values": 7}}) == 7
    assert max_values(3, {"slices": {"max_values": 7}}) == 3
    for settings, message in (
        ({"slices": {"max_values": 0}}, "[slices] max_values must be a whole number"),
        ({"slices": {"max_values": "9"}}, "[slices] max_values must be a whole number"),
        ({"slices": {"max_value": 9}}, "unknown setting max_value"),
        ({"slices": {"max_value": 9, "maxvalues": 9}}, "unknown settings max_value, maxvalues"),
        ({"slices": 3}, "[slices] in harness.toml must be a table"),
    ):
        with pytest.raises(ConfigError) as raised:
            max_values(None, settings)
        assert message in str(raised.value)
    check_value_count("topic", ["a", "b", None], 3)
    with pytest.raises(ConfigError, match="--by topic: 3 distinct values, more than the 2"):
        check_value_count("topic", ["a", "b", None], 2)


def test_too_many_numbers_suggest_binning_the_column() -> None:
    """A numeric column is not binned: each distinct number is a slice, and a number 1 and
    the text "1" are one slice. Before, refusing 60 latencies said only "slice by a column
    with fewer values"; now it says the values are numbers and what to do with them."""
    assert label(1) == label("1") == label(1.0) == "1"  # one slice
    numbers = [label(v) for v in [*range(30), *(str(v) for v in range(30, 60)), None]]
    with pytest.raises(ConfigError) as raised:
        check_value_count("latency_ms", numbers, 50)
    assert str(raised.value) == (
        "--by latency_ms: 61 distinct values, more than the 50 allowed; its values are "
        "numbers, and each distinct number is a slice of its own (numbers are not binned): "
        "add a column of ranges (bins) to the file before importing it and slice by that, "
        "or raise the limit with --max-slices N ([slices] max_values in harness.toml)"
    )
    with pytest.raises(ConfigError) as raised:  # text keeps the general advice
        check_value_count("topic", [f"t{i}" for i in range(60)], 50)
    assert "slice by a column with fewer values" in str(raised.value)


def scores_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Stored-score rows: a 0/1 metric, a [0, 1] metric and a judge asked twice per row."""
    records = []
    for i in range(n):
        records.append({"example_id": f"e{i}", "metric": "exact_match", "sample": 0,
                        "value": float(rng.random() < 0.4 + 0.02 * (i % 5))})  # fmt: skip
        records.append({"example_id": f"e{i}", "metric": "token_f1", "sample": 0,
                        "value": None if i % 17 == 0 else float(rng.beta(2, 3))})  # fmt: skip
        for sample in (0, 1):
            records.append({"example_id": f"e{i}", "metric": "judge", "sample": sample,
                            "value": float(rng.integers(1, 6))})  # fmt: skip
    return pd.DataFrame.from_records(records)


def test_slice_means_and_intervals_match_pandas_statsmodels_and_scipy() -> None:
    rng = np.random.default_rng(4)
    n = 240
    scores = scores_frame(rng, n)
    topics = ["alpha", "beta", "gamma", None]
    labels = pd.Series([topics[i % 4] for i in range(n)], index=[f"e{i}" for i in range(n)],
                       dtype=object)  # fmt: skip
    failed = pd.Series([i % 23 == 0 for i in range(n)], index=labels.index)
    values = per_row_values(scores)
    table = slice_table("topic", labels, values, failed=failed, binary={"exact_match"})
    assert [s.value for s in table.slices] == ["alpha", "beta", "gamma", None]
    assert table.metrics == ["exact_match", "token_f1", "judge"]

    # The reference: a pandas groupby on the stored scores, a judge's samples averaged.
    per_row = scores.dropna(subset=["value"]).groupby(["example_id", "metric"])["value"].mean()
    frame = per_row.unstack("metric").join(labels.rename("topic").fillna("(none)"))
    grouped = frame.groupby("topic")
    for s in table.slices:
        key = "(none)" if s.value is None else s.value
        assert s.rows == int((labels.fillna("(none)") == key).sum())
        assert s.errors == int(failed[labels.fillna("(none)") == key].sum())
        for metric in table.metrics:
            column = grouped.get_group(key)[metric].dropna()
            m = s.means[metric]
            assert m.n == column.count()
            assert m.mean == pytest.approx(column.mean(), rel=1e-12)
            if metric == "exact_match":  # 0/1 scores: Wilson's interval
                low, high = proportion_confint(column.sum(), column.count(), method="wilson")
                assert m.method == "wilson"
            else:
                low, high = scipy_stats.t.interval(
                    0.95, column.count() - 1, loc=column.mean(), scale=scipy_stats.sem(column)
                )
                assert m.method == "t"
            assert (m.low, m.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    everything = frame[table.metrics]
    for metric in table.metrics:
        assert table.overall.means[metric].mean == pytest.approx(everything[metric].mean())
        assert table.overall.means[metric].n == everything[metric].count()
    assert table.overall.rows == n

    document = table.as_dict()
    assert document["column"] == "topic" and document["overall"]["value"] is None
    first = document["slices"][0]["metrics"]["token_f1"]
    assert set(first) == {"count", "mean", "se", "ci", "interval", "interval_note", "range"}
    records = pd.DataFrame(table.records())
    assert len(records) == (1 + len(table.slices)) * len(table.metrics)
    assert list(records.loc[records["value"] == "(all)", "metric"]) == table.metrics


def test_a_slice_of_one_row_has_no_interval() -> None:
    values = pd.DataFrame({"token_f1": [0.5, 0.7, 0.2]}, index=["a", "b", "c"])
    labels = pd.Series(["x", "x", "y"], index=["a", "b", "c"], dtype=object)
    table = slice_table("t", labels, values)
    lone = table.slices[1]
    assert lone.value == "y" and lone.means["token_f1"].n == 1
    assert lone.as_dict()["metrics"]["token_f1"]["ci"] == [None, None]


def test_the_slices_table_says_why_a_cell_has_no_interval() -> None:
    """slices_table (MLflow's artifact, harness.evaluate's table) had ci_low and ci_high
    null for a slice of one row or with no spread and no word why, where runs show --by and
    the report say it; its ci_note now does, null where there is an interval."""
    values = pd.DataFrame({"token_f1": [0.5, 0.7, 0.4, 0.4, 0.2]}, index=list("abcde"))
    labels = pd.Series(["x", "x", "flat", "flat", "y"], index=list("abcde"), dtype=object)
    records = slice_table("t", labels, values).records()
    assert list(records[0]) == ["column", "value", "metric", "mean", "ci_low", "ci_high",
                                "rows", "count", "ci_note", "interval", "range"]  # fmt: skip
    notes = {r["value"]: r["ci_note"] for r in records}
    assert notes == {
        "(all)": None,
        "x": None,
        "flat": "every row scored 0.4: with no spread over 2 rows there is no interval",
        "y": "one row: an interval needs two or more",
    }
    assert [r["ci_low"] is None for r in records] == [False, True, False, True]


def test_mlflow_names_are_names_mlflow_accepts() -> None:
    from mlflow.utils.validation import _validate_metric_name

    values = pd.DataFrame({"exact_match": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]},
                          index=list("abcdef"))  # fmt: skip
    labels = pd.Series(["a/b", "x=y", ".", "a_b", None, "ü ok"], index=list("abcdef"),
                       dtype=object)  # fmt: skip
    names = mlflow_slice_metrics(slice_table("src file", labels, values))
    assert len(names) == 6  # every value has its own name, even where two would collide
    for name in names:
        _validate_metric_name(name)  # raises MlflowException for a name MLflow refuses
        assert name.startswith("exact_match/mean/by/src file/")
    segments = {name.removeprefix("exact_match/mean/by/src file/") for name in names}
    assert {"a_b", "_none_", "ü ok"} < segments  # MLflow takes them as they are
    for value, start in (("a/b", "a_b_"), ("x=y", "x_y_"), (".", "__")):  # "." is no segment
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        assert f"{start}{digest}" in segments
    # A segment is a function of its value alone; one that looks made is hashed too.
    alone = mlflow_slice_metrics(slice_table("src file", labels.iloc[:1], values.iloc[:1]))
    assert set(alone) < set(names)
    for value in ("_none_", "(none)", "a_b_c14cddc0", "a_b_C14CDDC0"):
        one = pd.Series([value], index=["a"], dtype=object)
        (name,) = mlflow_slice_metrics(slice_table("c", one, values.iloc[:1]))
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        hashed = value != "a_b_C14CDDC0"  # not the made "_" and 8 lowercase hex digits
        assert name.endswith(f"/c/{value}" if not hashed else f"_{digest}")
    long = pd.Series(["v" * 300], index=["a"], dtype=object)
    (name,) = mlflow_slice_metrics(slice_table("c", long, values.iloc[:1])).keys()
    assert len(name) == 250
    _validate_metric_name(name)


def test_an_empty_csv_cell_is_a_row_without_a_value(tmp_path: Path, home: Path) -> None:
    """A CSV keeps an empty cell as '': --by n made it a slice with no label, and a column
    of numbers with a gap sorted as text (10 before 3); it is now the (none) slice."""
    from harness.data import import_file
    from harness.slices import example_fields
    from harness.store.datasets import load_examples

    path = tmp_path / "gaps.csv"
    path.write_text("input,n\na,3\nb,\nc,10\n", encoding="utf-8")
    info = import_file(path, name="gaps").dataset
    rows = [example_fields(e) for e in load_examples(home / "harness.duckdb", info)]
    labels = column_labels(rows, "n", "--by")
    assert labels == ["3", None, "10"]
    assert sort_labels(labels) == ["3", "10", None]


def test_a_slice_with_no_spread_says_why_it_has_no_interval(tmp_path: Path) -> None:
    """A scale whose rows all scored the same had a blank 95% CI cell in `runs show --by`
    (and nothing in --json but "interval": "none"); the cell and the JSON now say why."""
    import json

    from click.testing import CliRunner

    from harness.cli import cli
    from tests.compare.run_files import write_run

    run = write_run(
        tmp_path / "run.jsonl", run_id="flat0000aaaa",
        scores={"const": [0.0714] * 60, "token_f1": [float(i % 2) for i in range(60)]},
        extra=[{"topic": "a" if i % 3 else "b"} for i in range(60)],
    )  # fmt: skip
    shown = CliRunner().invoke(cli, ["runs", "show", str(run), "--by", "topic"])
    assert shown.exit_code == 0, shown.output
    const = [line for line in shown.output.splitlines() if "0.0714" in line]
    assert len(const) == 3 and all(line.rstrip().endswith("none (no spread)") for line in const)
    f1 = [line for line in shown.output.splitlines() if line.startswith("token_f1")]
    assert "[0.37, 0.63]" in f1[0]
    shown = CliRunner().invoke(cli, ["runs", "show", str(run), "--by", "topic", "--json"])
    (table,) = json.loads(shown.output)["slices"]
    overall = table["overall"]["metrics"]
    assert overall["const"]["ci"] == [None, None] and overall["const"]["interval"] == "none"
    assert overall["const"]["interval_note"] == (
        "every row scored 0.0714: with no spread over 60 rows there is no interval"
    )
    assert overall["token_f1"]["interval_note"] is None


def test_a_slice_of_one_row_says_why_it_has_no_interval(tmp_path: Path) -> None:
    """A slice of one row had `"interval_note": null` in `--json`, a blank 95% CI cell in
    `runs show --by` and a bare mean in the report, where a slice without spread says why;
    each now says it is one row."""
    from click.testing import CliRunner

    from harness.cli import cli
    from tests.compare.run_files import write_run

    run = write_run(
        tmp_path / "run.jsonl", run_id="lone0000aaaa",
        scores={"token_f1": [0.25, 0.5, 0.75, 1.0]},
        extra=[{"topic": t} for t in ("a", "a", "b", "c")],
    )  # fmt: skip
    shown = CliRunner().invoke(cli, ["runs", "show", str(run), "--by", "topic", "--json"])
    (table,) = json.loads(shown.output)["slices"]
    notes = {s["value"]: s["metrics"]["token_f1"]["interval_note"] for s in table["slices"]}
    one = "one row: an interval needs two or more"
    assert notes == {"a": None, "b": one, "c": one}
    shown = CliRunner().invoke(cli, ["runs", "show", str(run), "--by", "topic"])
    cells = [[c.strip() for c in line.split("│")] for line in shown.output.splitlines()]
    ci = {row[1]: row[-1] for row in cells if len(row) == 5 and row[1] in ("a", "b", "c")}
    assert ci == {"a": "[0, 1]", "b": "none (one row)", "c": "none (one row)"}
    page = tmp_path / "report.html"
    made = CliRunner().invoke(cli, ["report", str(run), "--by", "topic", "-o", str(page)])
    assert made.exit_code == 0, made.output
    assert page.read_text(encoding="utf-8").count("0.75 (one row)") == 1


def test_a_bounded_scale_keeps_its_interval_inside_its_range(tmp_path: Path, home: Path) -> None:
    """A three-label judge (rude/neutral/warm: 0, 0.5, 1) on 3 rows read `0.5 [-0.742, 1.74]`
    and token F1 `0.6667 [-0.768, 2.1]` in `run --by`, `runs show --by`, --json and MLflow's
    slices_table.json: Student's t, unclipped, for a mean that cannot leave [0, 1]. The t
    interval is now cut at the range the metric declares, exact_match keeps Wilson's (as
    statsmodels computes it), and every surface says which interval each metric got."""
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    from harness.cli import cli
    from harness.config import resolve_home

    (home / "harness.toml").write_text(
        'judge_model = "python:harness_test_models:judge_tone"\n[judges.tone]\n'
        'prompt = "Judge the tone: {output}"\noutput = ["rude", "neutral", "warm"]\n',
        encoding="utf-8",
    )
    data = tmp_path / "tones.jsonl"
    rows = [("rude", "rude"), ("neutral", "x"), ("warm", "warm")]
    data.write_text(
        "".join(json.dumps({"input": i, "expected": e, "topic": "t"}) + "\n" for i, e in rows),
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "tones"]).exit_code == 0
    ran = runner.invoke(cli, ["run", "--data", "tones", "--model", "echo", "--prompt", "{input}",
                              "--metric", "exact_match", "--metric", "token_f1", "--judge",
                              "tone", "--by", "topic", "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output)
    (table,) = result["slices"]
    overall = table["overall"]["metrics"]
    # The unclipped t interval, as scipy computes it, reaches past both ends.
    t_low, t_high = scipy_stats.t.interval(0.95, 2, loc=0.5, scale=scipy_stats.sem([0, 0.5, 1]))
    assert (round(t_low, 3), round(t_high, 3)) == (-0.742, 1.742)
    assert overall["tone"]["mean"] == 0.5 and overall["tone"]["ci"] == [0.0, 1.0]
    assert overall["tone"]["interval"] == "t" and overall["tone"]["range"] == [0.0, 1.0]
    assert overall["token_f1"]["ci"] == [0.0, 1.0] and overall["token_f1"]["range"] == [0, 1]
    wilson = proportion_confint(2, 3, method="wilson")
    assert overall["exact_match"]["ci"] == pytest.approx(list(wilson), rel=1e-12)
    assert overall["exact_match"]["interval"] == "wilson"
    assert overall["exact_match"]["range"] is None

    shown = runner.invoke(cli, ["runs", "show", result["run_id"], "--by", "topic"])
    assert shown.exit_code == 0, shown.output
    assert "95% intervals: Wilson's for exact_match; t cut at [0, 1] for token_f1, tone" in (
        shown.output
    )
    tone = [s for s in shown.output.splitlines() if s.startswith("tone") and "(all)" in s]
    assert tone[0].split("│")[-1].strip() == "[0, 1]"

    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)
    path = client.download_artifacts(result["mlflow_run_id"], "slices_table.json")
    artifact = json.loads(Path(path).read_text(encoding="utf-8"))
    frame = pd.DataFrame(artifact["data"], columns=artifact["columns"]).set_index(
        ["value", "metric"]
    )
    assert frame.loc[("(all)", "tone"), ["ci_low", "ci_high"]].tolist() == [0.0, 1.0]
    assert frame.loc[("t", "token_f1"), "interval"] == "t"
    assert frame.loc[("t", "token_f1"), "range"] == [0.0, 1.0]
    assert frame.loc[("t", "exact_match"), "interval"] == "wilson"


def test_a_metric_never_negative_keeps_its_interval_at_or_above_0(
    tmp_path: Path, home: Path
) -> None:
    """word_count and latency declared no range, so Student's t interval of their mean on a
    few rows went below 0 (word counts 1, 1 and 9: `3.667 [-7.81, 15.1]`) in `run --by`,
    `runs show --by`, --json and MLflow's slices_table.json. Both now declare 0 to infinity:
    the interval is scipy's cut at 0 and at nothing above; the run stores the range with
    its open side as null, and a run stored before reads it for the built-in metrics."""
    import duckdb
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    from harness.cli import cli
    from harness.config import resolve_home

    data = tmp_path / "words.jsonl"
    inputs = [("a", "t"), ("b", "t"), ("c d e f g h i j k", "u")]
    data.write_text("".join(json.dumps({"input": i, "expected": "a", "topic": t}) + "\n"
                            for i, t in inputs), encoding="utf-8")  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "words"]).exit_code == 0
    ran = runner.invoke(cli, ["run", "--data", "words", "--model", "echo", "--prompt", "{input}",
                              "--metric", "word_count", "--metric", "latency", "--by", "topic",
                              "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output)
    overall = result["slices"][0]["overall"]["metrics"]
    low, high = scipy_stats.t.interval(0.95, 2, loc=11 / 3, scale=scipy_stats.sem([1, 1, 9]))
    assert round(low, 2) == -7.81  # what it read
    assert overall["word_count"]["ci"] == [0.0, pytest.approx(high, rel=1e-12)]
    assert overall["word_count"]["interval"] == "t"
    assert overall["word_count"]["range"] == overall["latency"]["range"] == [0.0, None]
    db = resolve_home(home).db_path
    with duckdb.connect(str(db), read_only=True) as con:
        latency_rows = "SELECT value FROM scores WHERE metric = 'latency' ORDER BY example_id"
        latencies = [v for (v,) in con.execute(latency_rows).fetchall()]
        (config,) = con.execute("SELECT config FROM runs").fetchone()
    assert json.loads(config)["bounds"] == {"latency": [0.0, None], "word_count": [0.0, None]}
    low_l, high_l = scipy_stats.t.interval(0.95, 2, loc=np.mean(latencies),
                                           scale=scipy_stats.sem(latencies))  # fmt: skip
    assert overall["latency"]["ci"] == pytest.approx([max(low_l, 0.0), high_l], rel=1e-9)

    shown = runner.invoke(cli, ["runs", "show", result["run_id"], "--by", "topic"])
    assert shown.exit_code == 0, shown.output
    assert "95% intervals: t cut at [0, ∞) for word_count, latency" in shown.output
    words = [s for s in shown.output.splitlines() if s.startswith("word_count") and "(all)" in s]
    assert words[0].split("│")[-1].strip() == f"[0, {high:.3g}]"

    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)
    path = client.download_artifacts(result["mlflow_run_id"], "slices_table.json")
    text = Path(path).read_text(encoding="utf-8")
    assert "Infinity" not in text
    artifact = json.loads(text)
    frame = pd.DataFrame(artifact["data"], columns=artifact["columns"]).set_index(
        ["value", "metric"]
    )
    assert frame.loc[("(all)", "word_count"), "ci_low"] == 0.0
    assert frame.loc[("(all)", "word_count"), "range"] == [0.0, None]

    # A run stored before the two declared their range (bounds without them), and one
    # stored before runs stored ranges at all, read 0 to infinity for the built-ins; one
    # whose word_count is its own python: metric reads none (scipy's interval, uncut).
    stored = json.loads(config)
    before = {**stored, "bounds": {}}
    older = {k: v for k, v in stored.items() if k != "bounds"}
    own = {**before, "metric_sources": {"word_count": "python:mine:count"}}
    for kept, expected in ((before, [0.0, high]), (older, [0.0, high]), (own, [low, high])):
        with duckdb.connect(str(db)) as con:
            con.execute("UPDATE runs SET config = ?", [json.dumps(kept)])
        again = runner.invoke(cli, ["runs", "show", result["run_id"], "--by", "topic", "--json"])
        assert again.exit_code == 0, again.output
        words = json.loads(again.output)["slices"][0]["overall"]["metrics"]["word_count"]
        assert words["ci"] == pytest.approx(expected, rel=1e-12)


def test_a_whole_number_column_with_a_gap_slices_as_whole_numbers(
    tmp_path: Path, home: Path
) -> None:
    """pandas holds a column of whole numbers with a gap as floats, so a DataFrame's or a
    Parquet file's year column sliced as '2011.0' and '2012.0' (MLflow metrics
    'm/mean/by/year/2011.0'), where the same numbers from a JSONL file slice as '2011':
    the slice names of one eval set changed with the file it came in."""
    from harness.data import import_dataframe, import_file
    from harness.slices import example_fields
    from harness.store.datasets import load_examples

    assert label(2011.0) == "2011" and label(np.float64(-3.0)) == "-3"
    assert label(1.5) == "1.5" and label(1e300) == "1e+300"  # past 2**53: no int
    frame = pd.DataFrame({"input": ["a", "b", "c"], "year": [2011, None, 2012]})
    assert frame["year"].dtype == np.float64
    from_frame = import_dataframe(frame, name="frame").dataset
    path = tmp_path / "years.parquet"
    frame.to_parquet(path)
    from_parquet = import_file(path, name="parquet").dataset
    path = tmp_path / "years.jsonl"
    path.write_text(
        '{"input": "a", "year": 2011}\n{"input": "b", "year": null}\n'
        '{"input": "c", "year": 2012}\n',
        encoding="utf-8",
    )
    from_jsonl = import_file(path, name="jsonl").dataset
    for info in (from_frame, from_parquet, from_jsonl):
        rows = [example_fields(e) for e in load_examples(home / "harness.duckdb", info)]
        assert column_labels(rows, "year", "--by") == ["2011", None, "2012"], info.name


def test_a_value_that_reads_all_or_none_passes_for_neither_line(tmp_path: Path) -> None:
    """A column whose value is the text '(all)' or '(none)' showed it bare: `runs show --by`
    and the report printed two '(all)' lines (the overall one and the value's), `compare
    --by` two '(none)' slices, and the MLflow slices_table two '(all)' rows. Such a value is
    now quoted everywhere, '"(all)"', and the overall line and the rows without a value keep
    the bare words."""
    from click.testing import CliRunner

    from harness.cli import cli
    from tests.compare.run_files import write_run

    topics = ["(all)", "(all)", "(none)", "(none)", None, None, "x", "x"]
    extra = [{"topic": t} for t in topics]
    base = write_run(
        tmp_path / "base.jsonl", run_id="odd00000base",
        scores={"token_f1": [0.1, 0.3, 0.2, 0.6, 0.5, 0.7, 0.4, 0.8]}, extra=extra,
    )  # fmt: skip
    candidate = write_run(
        tmp_path / "cand.jsonl", run_id="odd00000cand",
        scores={"token_f1": [0.2, 0.5, 0.2, 0.7, 0.4, 0.9, 0.6, 0.8]}, extra=extra,
    )  # fmt: skip

    shown = CliRunner().invoke(cli, ["runs", "show", str(base), "--by", "topic"])
    assert shown.exit_code == 0, shown.output
    cells = [[c.strip() for c in line.split("│")] for line in shown.output.splitlines()]
    values = [row[1] for row in cells if len(row) == 5]
    assert values == ["(all)", '"(all)"', '"(none)"', "x", "(none)"]

    table = CliRunner().invoke(cli, ["runs", "show", str(base), "--by", "topic", "--json"])
    (sliced,) = json.loads(table.output)["slices"]
    assert [s["value"] for s in sliced["slices"]] == ["(all)", "(none)", "x", None]
    ids = [f"q{i}" for i in range(len(topics))]
    logged = slice_table(  # the records of MLflow's slices_table and harness.evaluate's
        "topic", pd.Series(topics, index=ids), pd.DataFrame({"m": 0.5}, ids)
    ).records()
    assert [r["value"] for r in logged] == ["(all)", '"(all)"', '"(none)"', "x", None]

    page = tmp_path / "report.html"
    made = CliRunner().invoke(cli, ["report", str(base), "--by", "topic", "-o", str(page)])
    assert made.exit_code == 0, made.output
    text = page.read_text(encoding="utf-8")
    assert text.count('<tr class="overall"><td>(all)</td>') == 1
    assert text.count("<td>&#34;(all)&#34;</td>") == 1
    page = tmp_path / "compared.html"
    made = CliRunner().invoke(
        cli, ["report", str(base), str(candidate), "--by", "topic", "-o", str(page)]
    )
    assert made.exit_code == 0, made.output
    text = page.read_text(encoding="utf-8")
    assert '<th rowspan="1">&#34;(none)&#34;</th>' in text
    assert '<th rowspan="1">(none)</th>' in text

    compared = CliRunner().invoke(
        cli, ["compare", str(base), str(candidate), "--by", "topic", "--rows", "0"]
    )
    assert compared.exit_code == 0, compared.output
    labels = [line.split("│")[0].strip() for line in compared.output.splitlines()]
    assert '"(all)" (2 rows)' in labels and '"(none)" (2 rows)' in labels
    assert "(none) (2 rows)" in labels
    markdown = CliRunner().invoke(
        cli, ["compare", str(base), str(candidate), "--by", "topic", "--markdown"]
    )
    assert '| "(none)" | 2 ' in markdown.output and "| (none) | 2 " in markdown.output
