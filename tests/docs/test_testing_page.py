"""docs/testing.md runs as written: its app, its test, its commands, and the output it shows.

The page talks to OpenAI; here ``OPENAI_BASE_URL`` points its SDK at the fake server (what
any OpenAI-compatible server is to the SDK), and nothing else about the page changes
but that URL where a miss names the call.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from harness.testing import FakeLLMServer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def page_blocks() -> dict[str, str]:
    """The page's fenced blocks that carry a title, by title."""
    text = PAGE.read_text(encoding="utf-8")
    return {m[1]: m[2] for m in re.finditer(r'```\w+ title="([^"]+)"\n(.*?)```', text, re.S)}


def shown_lines(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip()]


def shell(script: str, folder: Path, server: FakeLLMServer) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.openai_base_url,
        "HARNESS_HOME": str(folder),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=folder, env=env, capture_output=True, text=True
    )


def test_the_page_runs_as_written(tmp_path: Path) -> None:
    blocks = page_blocks()
    for name in ("my_app.py", "tests/test_my_app.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(blocks[name])
    cassette = tmp_path / "tests/cassettes/test_my_app/test_answers_from_the_right_document.jsonl"

    with FakeLLMServer() as server:
        recorded = shell(blocks["record"], tmp_path, server)
        assert recorded.returncode == 0 and "1 passed" in recorded.stdout, recorded.stdout
        assert server.stats()["requests_total"] == 2  # the embedding and the chat call
        assert cassette.exists()
        server.stop()  # "with no key and no network"
        replayed = shell(blocks["replay"], tmp_path, server)
        assert replayed.returncode == 0 and "1 passed" in replayed.stdout, replayed.stdout

        app = tmp_path / "my_app.py"
        app.write_text(app.read_text().replace("in a few words", "in one word"))
        missed = shell("python -m pytest tests", tmp_path, server)
        assert missed.returncode == 1
        for line in shown_lines(blocks["miss"]):  # the call's URL is the fake server's here
            line = line.replace("https://api.openai.com/v1", server.openai_base_url)
            assert line in missed.stdout.splitlines(), (line, missed.stdout)

    with FakeLLMServer() as server:  # the command the miss gives records it, as written
        hint = next(line for line in missed.stdout.splitlines() if line.startswith("record it"))
        command = hint.removeprefix("record it with: ")
        rerecorded = shell(f"export OPENAI_API_KEY=sk-...\n{command}", tmp_path, server)
        assert rerecorded.returncode == 0 and "1 passed" in rerecorded.stdout, rerecorded.stdout
        app.write_text(blocks["my_app.py"])

    with FakeLLMServer() as server:
        evaluated = shell(blocks["evaluate"], tmp_path, server)
        assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
        lines = evaluated.stdout.splitlines()
        first, second = (i for i, line in enumerate(lines) if line.startswith("model calls:"))
        assert lines[first : first + 2] == shown_lines(blocks["evaluate output"])
        assert lines[second : second + 2] == shown_lines(blocks["replay output"])
        assert server.stats()["requests_total"] == 4  # two rows; the replay sent nothing


def test_the_notebook_block_records_then_replays_as_written(tmp_path: Path) -> None:
    """The "Notebooks and scripts" block (harness.replay with mode="use", then the default
    replay, then allowed_hosts=) runs as a script beside the page's app: the first block
    records the app's two calls, and the two after it answer from the cassette alone."""
    page = PAGE.read_text(encoding="utf-8")
    notebook = page.split("## Notebooks and scripts", 1)[1].split("```python\n", 1)[1]
    (tmp_path / "my_app.py").write_text(page_blocks()["my_app.py"])
    script = tmp_path / "notebook.py"
    script.write_text("import my_app\n" + notebook.split("```", 1)[0])
    with FakeLLMServer() as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.openai_base_url}
        env["OPENAI_API_KEY"] = "sk-notebook"  # "record what is missing" needs the key once
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert server.stats()["requests_total"] == 2  # recorded once; the replays sent nothing
    stats = ast.literal_eval(done.stdout.splitlines()[-1])  # recorder.stats["app"]
    assert (stats["requests"], stats["cache_hits"]) == (2, 0)
    assert stats["input_tokens"] > 0
    assert (tmp_path / "cassettes" / "rag.jsonl").exists()
