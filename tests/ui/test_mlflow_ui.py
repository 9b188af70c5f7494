"""The MLflow UI, in headless Chromium, shows a harness run's per-row judge results.

A real run (a ``python:`` app and judge on five questions) is logged into a fresh home,
``harness ui`` serves that home's store on a free port, and Chromium renders the run's
Traces tab: the judge's column must hold each row's own score. The run's overview must
list its registered prompt version and its configuration's model. The screenshot is kept
in the test's tmp dir; with ``HARNESS_UI_SCREENSHOT_DIR`` set it is also copied there
(``docs/img/mlflow-ui-judges.png`` is made that way).

Chromium is driven by ``tests/browser.py`` (shared with the report's tests): without it the
test skips, unless ``HARNESS_REQUIRE_CHROMIUM=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import ui_demo_app  # a helper of this folder: if it breaks, the test must fail, not skip
from browser import png_size, render
from click.testing import CliRunner

from harness.cli import cli
from harness.config import resolve_home
from harness.runner.config import RunConfig
from harness.runner.run import run_eval

JUDGE = "answer_correctness"
WINDOW = (2200, 1100)  # wide enough for the judge column beside MLflow's assistant panel
SERVER_START_S = 180.0
SCREENSHOT = "mlflow-ui-judges.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_run(chromium: str, home: Path, tmp_path: Path) -> dict[str, str]:
    """A finished run with judge feedback, logged to the home's MLflow store."""
    data = tmp_path / "capitals.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ui_demo_app.rows()), encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "import", str(data), "--name", "quiz",
                                      "--input", "question", "--expected", "answer"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    config = RunConfig(
        data="quiz", model="python:ui_demo_app:answer", metrics=["exact_match"],
        judges=[JUDGE], judge_model="python:ui_demo_app:judge", experiment="ui-demo",
        run_name="ui-demo",
    )  # fmt: skip
    # Twice: the first run makes the store and registers the prompt through MLflow's API,
    # the second is written with SQL (harness.tracking.sql_run); the UI shows that one.
    run_eval(config, home=home)
    run = run_eval(config, home=home)
    assert run.mlflow_run_id and run.errors == 0 and not run.warnings
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=resolve_home(home).tracking_uri)
    mlflow_run = client.get_run(run.mlflow_run_id)
    assert mlflow_run.data.tags["harness.traces"].endswith("(sql-direct)")
    model = client.get_logged_model(mlflow_run.data.tags["harness.model_id"])
    return {"experiment_id": mlflow_run.info.experiment_id, "run_id": run.mlflow_run_id,
            "prompt": mlflow_run.data.params["prompt_uri"], "model_name": model.name}  # fmt: skip


@pytest.fixture
def mlflow_ui(demo_run, home: Path, tmp_path: Path):
    """``harness ui`` on a free port; yields its base URL and stops it afterwards."""
    port = free_port()
    log = open(tmp_path / "mlflow-ui.log", "wb")  # noqa: SIM115 - closed below
    # A session of its own, so the server and its workers stop together.
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "--home", str(home), "ui", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, tmp_path / "mlflow-ui.log")
        yield url
    finally:
        stop(server)
        log.close()
    # harness ui said when it answered, and a TERM to it stopped MLflow's workers too.
    assert f"MLflow UI ready: {url}" in (tmp_path / "mlflow-ui.log").read_text()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"harness ui exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"harness ui did not answer in {SERVER_START_S:.0f} s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def table_rows(dom: str) -> list[dict[str, str]]:
    """The rows of MLflow's traces table: column id -> the cell's text."""
    rows = []
    for chunk in dom.split('role="row"')[1:]:
        cells = {}
        for cell in re.split(r'(?=<div[^>]*role="cell")', chunk)[1:]:
            column = re.search(r"var\(--col-([\w-]+?)-size\)", cell[:400])
            if column:
                text = html.unescape(re.sub(r"<[^>]+>", " ", cell))
                cells[column.group(1)] = " ".join(text.split())
        if cells:
            rows.append(cells)
    return rows


def test_mlflow_ui_shows_per_row_judge_results(chromium, mlflow_ui, demo_run, tmp_path):
    page = f"{mlflow_ui}/#/experiments/{demo_run['experiment_id']}/runs/{demo_run['run_id']}"
    screenshot = tmp_path / SCREENSHOT
    dom = render(chromium, f"{page}/traces", tmp_path / "chromium-profile", screenshot, WINDOW)
    (tmp_path / "traces.html").write_text(dom, encoding="utf-8")  # to look at on failure

    column = f"{JUDGE}_assessment_column"
    assert f"--header-{column}-size" in dom, "no judge column in the traces table"
    by_question = {row.get("request", ""): row for row in table_rows(dom)}
    assert set(by_question) >= set(ui_demo_app.QUESTIONS), sorted(by_question)
    for question in ui_demo_app.QUESTIONS:
        row = by_question[question]
        wrong = question in ui_demo_app.WRONG_ANSWERS
        assert row[column] == ("1" if wrong else "5"), (question, row)
        assert row["exact_match_assessment_column"] == ("0" if wrong else "1"), (question, row)
        shown = ui_demo_app.WRONG_ANSWERS.get(question, ui_demo_app.QUESTIONS[question])
        assert shown in row["response"]

    assert png_size(screenshot) == WINDOW
    assert screenshot.stat().st_size > 50_000  # a rendered page, not a blank one
    if target := os.environ.get("HARNESS_UI_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(target) / SCREENSHOT)

    # The overview lists the registered prompt version and the configuration's model.
    overview = render(chromium, page, tmp_path / "chromium-profile", window=WINDOW)
    name, version = demo_run["prompt"].removeprefix("prompts:/").split("/")
    assert name == "ui-demo-prompt" and version == "1"
    assert f"{name} (v{version})" in html.unescape(re.sub(r"<[^>]+>", "", overview))
    assert demo_run["model_name"] in overview
