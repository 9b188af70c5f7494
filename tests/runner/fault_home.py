"""Run harness commands in a project home that is full or read-only, for real.

Started as ``unshare -rm python fault_home.py SPEC.json``: in a user + mount namespace of
its own, this process may mount a small tmpfs (a disk that really fills: ENOSPC) or a
read-only bind mount (EROFS) over the project home, without root and without touching
the machine's mounts. It copies the staged home in, leaves ``free_bytes`` free, runs the
steps, and writes what each printed and returned to ``SPEC.out``, with a copy of the home
as it was left (the mount vanishes with the namespace).

When no namespace can be made (``--rlimit``), the same steps run in a plain directory
with ``RLIMIT_FSIZE`` set in the children: a write that grows a file past the limit fails
with EFBIG (SIGXFSZ ignored), the nearest thing to a full disk without a mount.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def main(spec_path: str, mode: str = "mount") -> None:
    spec = json.loads(Path(spec_path).read_text())
    home, stage = Path(spec["home"]), Path(spec["stage"])
    env = dict(spec["env"], HARNESS_HOME=str(home))
    limit = None
    if mode == "mount" and spec["kind"] == "full":
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={spec['size']}", "tmpfs", str(home)], check=True
        )
    if spec["kind"] == "full":
        for item in stage.iterdir():
            shutil.copy2(item, home / item.name)
        if mode == "mount":
            stat = os.statvfs(home)
            spare = stat.f_bavail * stat.f_frsize - spec["free_bytes"]
            with open(home / "filler", "wb") as f:
                f.write(b"\0" * max(spare, 0))
        else:
            limit = os.path.getsize(home / "harness.duckdb") + spec["free_bytes"]
    if spec["kind"] == "read-only":
        for item in stage.iterdir():
            shutil.copy2(item, home / item.name)
        subprocess.run(["mount", "--bind", str(home), str(home)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(home)], check=True)
    results: list[dict[str, Any]] = []
    run_id = ""
    for step in spec["steps"]:
        if step == "free space":
            (home / "filler").unlink(missing_ok=True)
            limit = None
            results.append({"step": step})
            continue
        args = [a.replace("{run_id}", run_id) for a in step]
        done = subprocess.run(
            [sys.executable, "-m", "harness", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=spec["cwd"],
            preexec_fn=functools.partial(_limit_file_size, limit) if limit else None,
        )
        results.append(
            {"step": args, "code": done.returncode, "out": done.stdout, "err": done.stderr}
        )
        if not run_id and (home / "harness.duckdb").exists():
            run_id = _first_run(env)
    shutil.copytree(home, Path(spec["out"]) / "home", ignore=shutil.ignore_patterns("filler"))
    (Path(spec["out"]) / "results.json").write_text(json.dumps({"mode": mode, "steps": results}))


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _first_run(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "runs", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=env["HARNESS_HOME"],
    )
    runs = json.loads(done.stdout or "[]") if done.returncode == 0 else []
    return str(runs[-1]["run_id"]) if runs else ""


if __name__ == "__main__":
    main(*sys.argv[1:])
