"""The shell commands of the docs' runnable blocks (the contract is in docs/design.md).

A fenced block whose info string has the word ``runnable`` (```` ```bash runnable ````) is
run; other blocks are illustrations. A command is one line, or several joined by a
trailing ``\\`` or by an open quote; lines that are only a comment are skipped. A command
that is documented to fail says so in its comment: ``# exits 1 ...`` (else 0 is expected).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(`{3,})(.*)$")
EXITS = re.compile(r"#.*?\bexits (\d+)\b")


@dataclass(frozen=True)
class DocCommand:
    source: str  # file:line where the command starts
    text: str
    exit_code: int


def runnable_commands(path: Path) -> list[DocCommand]:
    commands: list[DocCommand] = []
    fence: str | None = None
    runnable = False
    pending: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line.strip())
        if fence is None:
            if match:
                fence, runnable = match.group(1), "runnable" in match.group(2).split()
            continue
        if match and match.group(1) == fence and not match.group(2).strip():
            if pending:
                raise ValueError(f"{path}:{start}: command not finished before the fence")
            fence = None
            continue
        if not runnable:
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        pending.append(line)
        text = "\n".join(pending)
        if text.rstrip().endswith("\\") or not _complete(text):
            continue
        expected = EXITS.search(text)
        commands.append(
            DocCommand(f"{path.name}:{start}", text, int(expected.group(1)) if expected else 0)
        )
        pending = []
    return commands


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation": the command goes on
        return False
    return True
