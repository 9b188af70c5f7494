"""Text from the data or a model in the terminal's tables is shown as it is: rich reads a
str as markup, so an answer with "[b]x[/b]" lost its tags, "[/x]" raised MarkupError (a
traceback from `runs show --rows`), and an escape sequence reached the terminal. Real
processes, a real DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path

from harness_test_models import MARKUP
from processes import harness, harness_env

SHOWN = MARKUP.replace("\x1b", "\\x1b")  # as written on the terminal: the escape's text


def test_answers_and_slice_values_like_markup_are_shown_as_written(tmp_path: Path) -> None:
    env = harness_env(tmp_path / "home", COLUMNS="200")
    data = tmp_path / "m.jsonl"
    rows = [{"question": f"q{i}", "answer": "a", "topic": "[/t] [red]x[/red]"} for i in range(3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert harness(env, "data", "import", str(data), "--name", "m")[0] == 0
    code, out, err = harness(env, "run", "--data", "m", "--model",
                             "python:harness_test_models:markup", "--metric", "exact_match",
                             "--by", "topic", "--no-mlflow", "--run-name", "[/r]")  # fmt: skip
    assert code == 0, err
    assert "[/t] [red]x[/red]" in out  # the slice's value
    assert "\x1b" not in out + err
    code, out, err = harness(env, "runs", "show", "[/r]", "--columns", "output")
    assert (code, err) == (0, ""), err
    cells = [line.split("│")[-1].strip() for line in out.splitlines() if "│" in line]
    assert cells[-3:] == [SHOWN] * 3
    assert "\x1b" not in out
