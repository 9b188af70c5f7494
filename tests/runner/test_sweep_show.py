"""A sweep has an identity: its id (or its MLflow parent run's id) shows its table again.

Every call goes to the fake LLM server on 127.0.0.1 through the real OpenAI SDK; the
runs are stored in a real DuckDB file and, with MLflow on, the local MLflow store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer

SWEEP = ("run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match",
         "--metric", "word_count", "--param", "temperature=0", "--param", "temperature=0.7",
         "--limit", "3")  # fmt: skip


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def qa(qa_file: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sweep-test")
    code, _, err = invoke("data", "import", str(qa_file), "--name", "qa")
    assert code == 0, err


def children(doc: dict) -> list[tuple[dict, str, dict]]:
    """Each child as (values, run id, metric means), the part both documents share."""
    return [(r["values"], r["run_id"], r["metric_means"]) for r in doc["runs"]]


def shown(ref: str) -> dict:
    code, out, err = invoke("runs", "show", ref, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_sweep_without_mlflow_is_shown_again_by_its_id(qa):
    code, out, err = invoke(*SWEEP, "--no-mlflow", "--json")
    assert code == 0, err
    ran = json.loads(out)
    sweep_id = ran["sweep_id"]
    assert ran["parent_mlflow_run_id"] is None and len(ran["runs"]) == 2
    again = shown(sweep_id)
    assert again["sweep_id"] == sweep_id and again["axes"] == ["temperature"]
    assert children(again) == children(ran)
    assert [v for v, _, _ in children(again)] == [{"temperature": 0}, {"temperature": 0.7}]
    assert all(set(means) == {"exact_match", "word_count"} for _, _, means in children(again))
    assert again["best_run_id"] == ran["best_run_id"]
    assert [r["rows_done"] for r in again["runs"]] == [3, 3]

    code, out, err = invoke("runs", "show", sweep_id)
    assert code == 0, err
    assert f"sweep {sweep_id}: 2 runs over temperature" in out
    for _, run_id, _ in children(ran):
        assert run_id in out
    assert "MLflow parent run" not in out

    # `runs list` marks each child with its sweep; a single run has none.
    code, _, err = invoke("run", "--data", "qa", "--model", "openai:/m", "--limit", "1",
                          "--no-mlflow")  # fmt: skip
    assert code == 0, err
    code, out, err = invoke("runs", "list", "--json")
    assert code == 0, err
    marks = {r["run_id"]: r["sweep_id"] for r in json.loads(out)}
    assert sorted(marks.values(), key=lambda v: v or "") == [None, sweep_id, sweep_id]
    assert {k for k, v in marks.items() if v} == {run_id for _, run_id, _ in children(ran)}
    code, out, _ = invoke("runs", "list")
    assert out.count(sweep_id) == 2

    # A command that takes one run, given the sweep, names its runs instead.
    ids = ", ".join(run_id for _, run_id, _ in children(ran))
    for command in (("report", sweep_id), ("compare", sweep_id, ran["best_run_id"])):
        code, _, err = invoke(*command)
        assert code == 2 and err.count("\n") == 1, err
        assert f"'{sweep_id}' is a sweep of 2 runs, not a run: give one of their ids ({ids})" in err


def test_a_logged_sweep_is_shown_by_its_id_and_its_mlflow_parent_id(qa):
    code, out, err = invoke(*SWEEP)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("sweep ") and "show it again" in x)
    sweep_id = line.split()[1].rstrip(":")
    assert line.startswith(f"sweep {sweep_id}: 2 runs;")
    parent = next(x for x in out.splitlines() if x.startswith("MLflow parent run ")).split()[3]

    by_id, by_parent = shown(sweep_id), shown(parent)
    assert by_id == by_parent
    assert by_id["sweep_id"] == sweep_id and by_id["parent_mlflow_run_id"] == parent
    runs = by_id["runs"]
    assert [r["values"] for r in runs] == [{"temperature": 0}, {"temperature": 0.7}]
    assert all(r["mlflow_run_id"] and r["status"] == "finished" for r in runs)
    assert all(set(r["metric_means"]) == {"exact_match", "word_count"} for r in runs)
    # The children are those MLflow holds under the parent, with the same metrics.
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home

    uri = resolve_home().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for run in runs:
        logged = client.get_run(run["mlflow_run_id"])
        assert logged.data.tags["mlflow.parentRunId"] == parent
        assert logged.data.metrics["exact_match/mean"] == run["metric_means"]["exact_match"]

    code, out, err = invoke("runs", "show", parent)
    assert code == 0, err
    assert f"sweep {sweep_id}: 2 runs over temperature" in out
    assert f"MLflow parent run {parent}" in out
    assert all(r["run_id"] in out for r in runs)


def test_an_unknown_id_still_exits_2_with_one_line(qa):
    code, out, err = invoke(*SWEEP, "--no-mlflow", "--json")
    assert code == 0, err
    code, out, err = invoke("runs", "show", "0123456789ab")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "0123456789ab" in err


def test_a_sweep_shown_again_keeps_its_axes_in_the_order_it_ran(qa):
    # The stored config's keys are sorted (prompt < temperature), the sweep's axes are not.
    code, out, err = invoke(*SWEEP, "--prompt", "A {input}", "--prompt", "B {input}",
                            "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    ran = json.loads(out)
    assert ran["axes"] == ["temperature", "prompt"]
    again = shown(ran["sweep_id"])
    assert again["axes"] == ran["axes"]
    assert [list(r["values"]) for r in again["runs"]] == [["temperature", "prompt"]] * 4
    assert children(again) == children(ran)
    code, out, err = invoke("runs", "show", ran["sweep_id"])
    assert code == 0, err
    assert f"sweep {ran['sweep_id']}: 4 runs over temperature, prompt" in out
    header = next(line for line in out.splitlines() if "run_id" in line)
    assert header.index("temperature") < header.index("prompt")


def test_a_sliced_sampled_sweep_shows_its_childrens_slices_and_sample_again(qa):
    code, out, err = invoke(*SWEEP[:-2], "--sample", "8", "--seed", "2", "--by",
                            "final_decision", "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    ran = json.loads(out)
    again = shown(ran["sweep_id"])
    for before, now in zip(ran["runs"], again["runs"], strict=True):
        assert before["sample"]["rows"] == 8 and now["sample"] == before["sample"]
        assert before["slices"][0]["column"] == "final_decision"
        assert now["slices"] == before["slices"]

    # The terminal shows each child's slices after the table, as the sweep did.
    code, out, err = invoke("runs", "show", ran["sweep_id"])
    assert code == 0, err
    for run in ran["runs"]:
        assert f"run {run['run_id']} (temperature={run['values']['temperature']}):" in out
    assert out.count("by final_decision:") == 2

    # --by OTHER slices every child by another column, as for one run.
    code, out, err = invoke("runs", "show", ran["sweep_id"], "--by", "year", "--json")
    assert code == 0, err
    assert [[t["column"] for t in r["slices"]] for r in json.loads(out)["runs"]] == [["year"]] * 2
    code, out, err = invoke("runs", "show", ran["sweep_id"], "--by", "nosuch")
    assert code == 2 and out == "" and err.startswith("error: --by nosuch: no row has")

    # A sweep has no rows of its own: --rows names a child instead of being ignored.
    code, out, err = invoke("runs", "show", ran["sweep_id"], "--rows")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--rows" in err and ran["runs"][0]["run_id"] in err


def test_a_sweep_shown_again_names_its_stopped_childs_partly_logged_mlflow_run(qa):
    # A budget the first run's first calls use up: it stops, and with it the sweep, its
    # MLflow run KILLED with the rows logged so far (none), as `runs show RUN` names it.
    sweep = ("run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--model",
             "openai:/gpt-4.1-nano", "--max-cost", "0.000001", "--json")  # fmt: skip
    code, out, err = invoke(*sweep)
    assert code == 1, err
    assert "stopped at the --max-cost budget" in err
    [child] = json.loads(invoke("runs", "list", "--json")[1])
    assert child["status"] == "stopped" and child["mlflow_partial_run_id"]
    # --json printed the sweep so far, as an interrupted sweep does (it printed nothing):
    # the stopped child, naming the MLflow run that holds its rows.
    printed = json.loads(out)
    assert printed["sweep_id"] == child["config"]["sweep"]["id"]
    [stopped] = printed["runs"]
    assert stopped["run_id"] == child["run_id"] and stopped["status"] == "stopped"
    assert stopped["mlflow_partial_run_id"] == child["mlflow_partial_run_id"]
    assert err.splitlines()[-1].startswith(
        f"error: sweep {printed['sweep_id']} stopped after 0 of 2 runs: stopped at the "
        "--max-cost budget"
    )
    assert err.splitlines()[-1].endswith(
        "; or run the same command again to finish the sweep "
        "(the calls already made come from the cache)"
    )
    again = shown(child["config"]["sweep"]["id"])
    [run] = again["runs"]
    assert run["run_id"] == child["run_id"] and run["mlflow_run_id"] is None
    assert run["mlflow_partial_run_id"] == child["mlflow_partial_run_id"]


def test_deleting_a_sweeps_last_run_marks_its_mlflow_parent_deleted(qa):
    """With every child of a sweep deleted, its MLflow parent run stayed active, with the
    metrics and best run of children that were gone, and nothing in harness could delete
    it (`runs delete PARENT` named the children, then said no such run). The parent now
    goes with the last child; while a child is left, it stays."""
    code, out, err = invoke(*SWEEP, "--json")
    assert code == 0, err
    ran = json.loads(out)
    parent, sweep_id = ran["parent_mlflow_run_id"], ran["sweep_id"]
    first, last = (r["run_id"] for r in ran["runs"])
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home

    uri = resolve_home().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    code, out, err = invoke("runs", "delete", first)
    assert code == 0, err
    assert "parent" not in out
    assert client.get_run(parent).info.lifecycle_stage == "active"
    code, out, err = invoke("runs", "delete", last)
    assert code == 0, err
    assert out.splitlines()[-1] == (
        f"MLflow parent run {parent} of sweep {sweep_id} marked deleted (its last run is gone)"
    )
    assert client.get_run(parent).info.lifecycle_stage == "deleted"


def test_a_sweep_is_shown_by_a_unique_prefix_of_its_id_as_a_run_is(qa, home):
    """`runs show` took a run by a unique prefix of its id, but a sweep only by its whole
    id: `runs show 36d4e9` said "no run, tag or run name '36d4e9'"."""
    import duckdb

    ran = []
    for _ in range(2):
        code, out, err = invoke(*SWEEP, "--no-mlflow", "--json")
        assert code == 0, err
        ran.append(json.loads(out))
    first_child = ran[0]["runs"][0]["run_id"]
    # Ids that share a prefix, written where the runs keep them (sweep ids are random).
    con = duckdb.connect(str(home / "harness.duckdb"))
    for sweep, new_id in zip(ran, ("abc111111111", "abc222222222"), strict=True):
        con.execute(
            "UPDATE runs SET config = replace(config, ?, ?) WHERE "
            "json_extract_string(config, '$.sweep.id') = ?",
            [sweep["sweep_id"], new_id, sweep["sweep_id"]],
        )
    con.close()

    by_prefix = shown("abc1")
    assert by_prefix["sweep_id"] == "abc111111111"
    assert children(by_prefix) == children(ran[0])
    code, out, err = invoke("runs", "show", "abc2")
    assert code == 0 and "sweep abc222222222: 2 runs over temperature" in out, err
    # A prefix of both is refused as a run id's is; a command that takes a run names the runs.
    code, out, err = invoke("runs", "show", "abc")
    assert (code, out, err) == (2, "", "error: sweep id 'abc' is ambiguous: it starts 2 sweeps\n")
    code, _, err = invoke("report", "abc1")
    assert code == 2 and err.startswith("error: 'abc1' is a sweep of 2 runs, not a run: give")

    # A prefix of a sweep's id and of a run's id is ambiguous too.
    con = duckdb.connect(str(home / "harness.duckdb"))
    con.execute("UPDATE runs SET config = replace(config, 'abc222222222', ?)",
                [first_child[:5] + "zzzzzzz"])  # fmt: skip
    con.close()
    code, out, err = invoke("runs", "show", first_child[:5])
    assert (code, out) == (2, "")
    assert err == (
        f"error: '{first_child[:5]}' is ambiguous: it starts the id of sweep "
        f"{first_child[:5]}zzzzzzz and of run {first_child}; give more of the id\n"
    )
    # A run's whole id still shows the run.
    code, out, err = invoke("runs", "show", first_child, "--json")
    assert code == 0 and json.loads(out)["run_id"] == first_child, err


def test_a_sweep_is_shown_by_the_run_name_it_was_given(qa):
    """A sweep run with --run-name X names its runs "X temperature=0", ...: `runs show X`
    said "no run, tag or run name 'X'". X now shows the sweep, the newest of that name."""
    sweeps = []
    for _ in range(2):
        code, out, err = invoke(*SWEEP, "--run-name", "X", "--no-mlflow", "--json")
        assert code == 0, err
        sweeps.append(json.loads(out))
    names = {r["run_name"] for r in json.loads(invoke("runs", "list", "--json")[1])}
    assert names == {"X temperature=0", "X temperature=0.7"}
    older, newer = (s["sweep_id"] for s in sweeps)

    code, out, err = invoke("runs", "show", "X")
    assert code == 0, err
    assert f"sweep {newer}: 2 runs over temperature" in out
    assert err == (
        f"note: 2 sweeps are named 'X'; using the newest, {newer} (the others: {older}; "
        "give a sweep's id for one of them)\n"
    )
    assert children(shown("X")) == children(sweeps[1])
    # A command that takes one run names the sweep's runs, as for its id, and says which
    # sweep of that name they are, as `runs show X` does.
    ids = ", ".join(run["run_id"] for run in sweeps[1]["runs"])
    for command in (("report", "X"), ("compare", "X", "X")):
        code, _, err = invoke(*command)
        assert code == 2 and err == (
            f"error: 'X' is a sweep of 2 runs, not a run: give one of their ids ({ids}); "
            "`harness runs show X` compares them; 2 sweeps are named 'X'; using the newest, "
            f"{newer} (the others: {older}; give a sweep's id for one of them)\n"
        ), command
    code, _, err = invoke("runs", "show", "X", "--rows")
    assert code == 2 and err == (
        f"error: --rows shows one run's rows, and X is a sweep of 2 runs: give one of their "
        f"ids ({ids}); 2 sweeps are named 'X'; using the newest, {newer} (the others: "
        f"{older}; give a sweep's id for one of them)\n"
    )

    # A run's own name (or a tag) is a run's, as before.
    code, out, err = invoke("run", "--data", "qa", "--model", "openai:/m", "--limit", "1",
                            "--run-name", "X", "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    assert shown("X")["run_id"] == json.loads(out)["run_id"]


def test_a_tag_may_not_hide_a_sweeps_name_or_id(qa):
    """`runs tag RUN X`, X a sweep's --run-name, was taken: `runs show X` then showed RUN
    instead of the sweep, silently. It is refused as a tag naming another run is, and so
    is a tag that starts a sweep's id; a run named X (which shows for X) may take it."""
    code, out, err = invoke(*SWEEP, "--run-name", "X", "--no-mlflow", "--json")
    assert code == 0, err
    sweep = json.loads(out)["sweep_id"]
    code, out, err = invoke("run", "--data", "qa", "--model", "openai:/m", "--limit", "1",
                            "--no-mlflow", "--json")  # fmt: skip
    assert code == 0, err
    run = json.loads(out)["run_id"]

    code, out, err = invoke("runs", "tag", run, "X")
    assert (code, out) == (2, "")
    assert err == (
        f"error: tag 'X' is the name of sweep {sweep}; a tag must not hide a sweep's name: "
        "choose another tag\n"
    )
    code, out, err = invoke("runs", "tag", run, sweep[:-1])
    assert (code, out) == (2, "")
    assert err == (
        f"error: tag '{sweep[:-1]}' would hide the sweep ids it starts; choose another name\n"
    )
    assert shown("X")["sweep_id"] == sweep
    assert invoke("runs", "list", "--json")[1].count('"tags": []') == 3  # nothing written

    code, out, err = invoke("run", "--data", "qa", "--model", "openai:/m", "--limit", "1",
                            "--run-name", "X", "--no-mlflow", "--json")  # fmt: skip
    named = json.loads(out)["run_id"]
    code, out, err = invoke("runs", "tag", named, "X")
    assert (code, out) == (0, f"tagged run {named} 'X'\n"), err


def test_a_sweep_with_one_run_left_is_named_as_one_run(qa):
    """With one child of a sweep deleted, `harness report SWEEP_ID` said "is a sweep of 1
    runs, not a run: give one of their ids"."""
    code, out, err = invoke(*SWEEP, "--no-mlflow", "--json")
    assert code == 0, err
    ran = json.loads(out)
    first, last = (r["run_id"] for r in ran["runs"])
    code, _, err = invoke("runs", "delete", first)
    assert code == 0, err
    code, _, err = invoke("report", ran["sweep_id"])
    assert code == 2
    assert err == (
        f"error: '{ran['sweep_id']}' is a sweep of 1 run, not a run: give its id ({last}); "
        f"`harness runs show {ran['sweep_id']}` shows it\n"
    )
