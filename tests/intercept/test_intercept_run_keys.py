"""`harness run --cache replay` of a `python:` model needs no API key, even when the app
builds its SDK client when its module is imported (``client = OpenAI()`` at the top)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import FakeLLMServer

APP = """
import anthropic
import openai

client = openai.OpenAI()  # built at import, as many apps do
claude = anthropic.Anthropic()


def answer(row):
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": row["input"]}]
    )
    said = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=32,
        messages=[{"role": "user", "content": row["input"]}],
    )
    return reply.choices[0].message.content + " / " + said.content[0].text
"""


def invoke(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, list(args))
    out = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def test_a_client_built_at_import_replays_without_a_key(
    own_llm: FakeLLMServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app_client_at_import.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"input": "Where is Paris?"}) + "\n")
    assert invoke("data", "import", str(data), "--name", "questions")[0] == 0
    run = ("run", "--data", "questions", "--model", "python:app_client_at_import:answer",
           "--metric", "word_count", "--no-mlflow", "--json")  # fmt: skip

    monkeypatch.delitem(sys.modules, "app_client_at_import", raising=False)
    code, cold, err = invoke(*run)
    assert code == 0, err

    own_llm.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    del sys.modules["app_client_at_import"]  # a new process imports the app again
    code, replayed, err = invoke(*run, "--cache", "replay")
    assert code == 0, err
    assert replayed["calls"]["app"]["cache_hits"] == 2
    assert replayed["metrics"] == cold["metrics"]
