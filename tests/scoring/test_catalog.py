"""``harness metrics list``: what --metric accepts here, with direction and needs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli


def test_metrics_list_names_builtins_kinds_and_tables(home: Path) -> None:
    (home / "harness.toml").write_text(
        '[metrics.refusals]\nkind = "icontains"\nvalue = "I cannot"\ngreater_is_better = false\n'
    )
    result = CliRunner().invoke(cli, ["metrics", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert entries["latency"] == {
        "name": "latency",
        "origin": "builtin",
        "usage": "latency",
        "needs_expected": False,
        "direction": -1,
        "description": "seconds the model call took, as recorded on the row",
    }
    assert entries["refusals"]["origin"] == "harness.toml"
    assert entries["refusals"]["direction"] == -1
    assert entries["regex"]["usage"] == "regex:PATTERN"
    assert entries["contains"]["usage"] == "contains[:VALUE]"
    assert entries["contains"]["needs_expected"] is None  # only without a value
    assert entries["length"]["usage"] == "length:MIN..MAX"
    assert entries["is-json"]["usage"] == "is-json"
    # A kind is higher-is-better unless a table says otherwise: 1 in JSON, as for the rest.
    assert {type(e["direction"]) for e in entries.values()} == {int}
    assert entries["regex"]["direction"] == 1
    table = CliRunner().invoke(cli, ["metrics", "list"])
    assert table.exit_code == 0 and "regex:PATTERN" in table.stdout


def test_a_bad_table_is_one_line_and_exit_2(home: Path) -> None:
    (home / "harness.toml").write_text('[metrics.x]\nkind = "regex"\n')
    result = CliRunner().invoke(cli, ["metrics", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "needs 'pattern'" in result.stderr
    assert result.stderr.count("\n") == 1
