"""Every runnable block of README.md and docs/*.md runs as written, in order, offline.

The commands run in a fresh folder that is the project home (the current directory, as for
a user in a fresh clone: ``datasets/`` and ``examples/`` are linked in), with the venv's
``bin`` first on PATH and the environment ``harness dev fake-llm`` prints (every provider's
base URL and a placeholder key pointing at the fake LLM server on 127.0.0.1). Each command
must exit with the code its comment documents (``# exits N``), else 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from doc_commands import runnable_commands

from harness.testing import FakeLLMServer
from harness.testing.dev import client_env

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_parser_reads_runnable_blocks_only_and_joins_continued_lines(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```bash\nnot run\n```\n"
        "```bash runnable\n# a comment line\nfirst --a \\\n    --b   # trailing\n\n"
        "python -c \"print(\n  'x')\"\nfail here   # exits 3 when it fails\n```\n"
        "````bash runnable\ninner ```\n````\n",
        encoding="utf-8",
    )
    commands = runnable_commands(doc)
    assert [c.text for c in commands] == [
        "first --a \\\n    --b   # trailing",
        "python -c \"print(\n  'x')\"",
        "fail here   # exits 3 when it fails",
        "inner ```",
    ]
    assert [c.exit_code for c in commands] == [0, 0, 3, 0]
    assert [c.source for c in commands] == ["doc.md:6", "doc.md:9", "doc.md:11", "doc.md:14"]


def test_the_readme_tour_has_runnable_blocks() -> None:
    """The README's tour is marked runnable (a marker lost in an edit would test nothing)."""
    readme = runnable_commands(REPO / "README.md")
    assert len(readme) >= 10
    assert any("harness data import" in c.text for c in readme)
    assert any("--cache replay" in c.text for c in readme)


@pytest.mark.timeout(1200)  # the whole tour, ~20 runs, on a loaded 2-core machine
def test_every_runnable_doc_command_runs_as_written(tmp_path: Path) -> None:
    commands = [c for doc in DOCS for c in runnable_commands(doc)]
    project = tmp_path / "fresh-clone"
    project.mkdir()
    for linked in ("datasets", "examples"):
        (project / linked).symlink_to(REPO / linked)
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_HOME"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    results = []
    with FakeLLMServer() as server:
        env.update(client_env(server))
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command.text],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            results.append((command, done))
            if done.returncode != command.exit_code:
                break  # later commands depend on this one: stop at the first that fails
        sent = server.stats()["requests_total"]
    for command, done in results:
        assert done.returncode == command.exit_code, (
            f"{command.source}: `{command.text}` exited {done.returncode}, documented "
            f"{command.exit_code}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
    assert len(results) == len(commands)
    assert sent > 0  # the tour's judge step reached the fake server, not some other one
    assert (project / "harness.duckdb").exists()  # the fresh folder was the project home


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_runnable_blocks_are_well_formed(doc: Path) -> None:
    """An unterminated command or fence in a runnable block is an error, not a skip."""
    runnable_commands(doc)


def test_runnable_commands_find_the_store_in_the_users_project_home() -> None:
    """The tour runs here with the current folder as the home; a reader may have set
    ``HARNESS_HOME`` (README, "The project home"), so a command that opens the store by
    its path takes the home from there (a bare ``harness.duckdb`` failed for that reader)."""
    commands = [c for doc in DOCS for c in runnable_commands(doc)]
    opening = [c for c in commands if "harness.duckdb" in c.text]
    assert opening  # the README's SQL step
    for command in opening:
        assert "${HARNESS_HOME:-.}/harness.duckdb" in command.text, command.source


def test_the_readme_python_example_runs_and_gives_what_its_comments_say(tmp_path: Path) -> None:
    """README's "From Python" block (a python block, so not run by the test above): run as
    a script in a fresh project home, its values are those its comments show."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    after = readme.split("**From Python**", 1)[1]
    block = after.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'result.metrics["exact_match/mean"]            # 1.0' in block
    script = tmp_path / "example.py"
    script.write_text(
        block
        + 'print(result.metrics["exact_match/mean"], len(result.tables["eval_results_table"]))\n',
        encoding="utf-8",
    )
    env = {**os.environ, "HARNESS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "1.0 1"  # exact_match 1.0; one row per example
    assert (tmp_path / "home" / "harness.duckdb").exists()


def _sql_hints() -> list[tuple[str, str]]:
    """The README's SQL step and the SQL hint `make demo` prints, as a user runs them."""
    [readme] = [c for c in runnable_commands(REPO / "README.md") if "harness.duckdb" in c.text]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    [echo] = [line for line in makefile.splitlines() if "every row, in SQL:" in line]
    echo = echo.strip().removeprefix("@").replace("$$", "$")
    echo = echo.replace("$(BIN)/", str(Path(sys.executable).parent) + "/")
    printed = subprocess.run(["bash", "-c", echo], capture_output=True, text=True, check=True)
    hint = printed.stdout.split("every row, in SQL: ", 1)[1].strip()
    return [("README.md", readme.text), ("make demo", hint)]


def test_the_sql_hints_give_each_runs_own_means(home: Path, qa_file: Path) -> None:
    """Both averaged each metric over every run in the store: after `make demo`,
    exact_match came out 0.2885, neither run's (0 and 0.577)."""
    import json

    from click.testing import CliRunner

    from harness.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    means = {}
    models = {"wrong": "echo", "right": "python:harness_test_models:answer_expected"}
    for name, model in models.items():
        done = runner.invoke(cli, ["run", "--data", "qa", "--model", model, "--limit", "4",
                                   "--metric", "exact_match", "--run-name", name,
                                   "--no-mlflow", "--json"])  # fmt: skip
        assert done.exit_code == 0, done.stderr
        means[name] = json.loads(done.stdout)["metrics"]["exact_match"]["mean"]
    assert means == {"wrong": 0.0, "right": 1.0}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for where, command in _sql_hints():
        done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (where, done.stderr)
        rows = [line for line in done.stdout.splitlines() if "exact_match" in line]
        shown = {line.split("│")[1].strip(): float(line.split("│")[-2]) for line in rows}
        assert shown == means, (where, done.stdout)


def test_the_python_api_pages_first_example_runs_as_written(tmp_path: Path) -> None:
    """docs/python-api.md opens with every argument of ``harness.evaluate`` in one call; it
    used ``df``, ``has_citation`` and ``answer_relevance`` without defining them (a NameError
    for a reader who ran it). Run as a script from a fresh clone's folder against the fake
    LLM server, it now completes, every row scored."""
    page = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8")
    block = page.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "first.py"
    script.write_text(
        block + "table = result.tables['eval_results_table']\n"
        "errors = [c for c in table.columns if c == 'error' or c.endswith('/error')]\n"
        "print(len(table), int(table[errors].notna().sum().sum()),\n"
        "      sorted(result.tables['slices_table']['value'].unique()))\n",
        encoding="utf-8",
    )
    (tmp_path / "datasets").symlink_to(REPO / "datasets")
    with FakeLLMServer() as server:
        env = {**os.environ, **client_env(server), "HARNESS_HOME": str(tmp_path / "home")}
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RowsFailedWarning" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "200 0 ['(all)', 'maybe', 'no', 'yes']"  # no errors


def test_the_python_api_pages_retriever_example_runs_as_written(tmp_path: Path) -> None:
    """docs/python-api.md's retriever (a function of one row returning its document ids)
    runs as a script in a fresh project home, and its last line's metrics are there: the
    three relevant ids of two questions, all retrieved within k=5."""
    page = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "def retrieve" in b]
    last = block.strip().splitlines()[-1]
    assert last == 'results.metrics["precision_at_5/mean"], results.metrics["ndcg_at_5/mean"]'
    script = tmp_path / "retriever.py"
    script.write_text(block + f"print({last})\nprint(results.metrics['recall_at_5/mean'])\n")
    env = {**os.environ, "HARNESS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    *_, shown, recall = done.stdout.splitlines()
    assert shown.split()[0] == "0.5" and recall == "1.0"  # 1/3 and 2/3 of 3 retrieved
