"""Whether a run's process is alive: the start time the kernel keeps, not the wall clock's.

A run records its process (pid, host, start time). Read back as epoch seconds, a start
time moves when the wall clock is stepped (the boot time it is counted from moves), so a
live run read back as gone. On Linux the owner also carries the start in seconds since
boot and the boot's id; these tests step the clock by storing an epoch start time an hour
off, as a run recorded before a step reads after it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psutil
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.store.owner import Owner, boot_id, current_owner, started_since_boot
from harness.store.runs import get_run

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="start times since boot are read on Linux"
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def owner_of(pid: int) -> Owner:
    """The owner a process records for itself (``current_owner``), for another process."""
    return Owner(
        pid,
        current_owner().host,
        psutil.Process(pid).create_time(),
        boot_id(),
        started_since_boot(pid),
    )


def test_this_process_records_its_start_since_boot() -> None:
    owner = current_owner()
    assert owner.pid == os.getpid() and owner.boot and owner.since_boot is not None
    # psutil's epoch start time is that count of seconds plus the boot time, both read now:
    # owner.started was read when the owner was first made, and the epoch boot time moves
    # with the wall clock (a VM's clock stepped 22 s during a suite run once), which is why
    # since_boot is recorded at all.
    process = psutil.Process()
    assert owner.since_boot == pytest.approx(process.create_time() - psutil.boot_time(), abs=0.02)
    assert owner.is_alive()


def test_this_process_finds_its_epoch_start_without_importing_psutil() -> None:
    # Importing psutil took ~15-50 ms of every run's start, for a number /proc gives.
    code = (
        "import sys, json\n"
        "from harness.store.owner import current_owner\n"
        "owner = current_owner()\n"
        "imported = 'psutil' in sys.modules\n"
        "import psutil\n"
        "print(json.dumps([imported, owner.started, psutil.Process().create_time()]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, started, psutils = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported is False
    assert started == pytest.approx(psutils, abs=0.02)  # the boot time read twice: see above


def test_a_live_process_is_alive_after_the_wall_clock_moves(
    sleeper: subprocess.Popen[bytes],
) -> None:
    owner = owner_of(sleeper.pid)
    assert owner.is_alive()
    for step in (3600.0, -3600.0, 1.5):
        assert dataclasses.replace(owner, started=owner.started + step).is_alive(), step


def test_another_boot_a_reused_pid_and_an_exited_process_are_gone(
    sleeper: subprocess.Popen[bytes],
) -> None:
    owner = owner_of(sleeper.pid)
    assert not dataclasses.replace(owner, boot="another-boot").is_alive()
    assert not dataclasses.replace(owner, since_boot=owner.since_boot + 1.0).is_alive()
    sleeper.kill()
    # Killed but not yet reaped, it is a zombie: gone, as psutil counts it.
    deadline = time.monotonic() + 10
    while psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the killed process never became a zombie"
        time.sleep(0.01)
    assert not owner.is_alive()
    sleeper.wait()
    assert not owner.is_alive()
    assert started_since_boot(sleeper.pid) is None


def test_an_owner_recorded_without_a_boot_is_judged_by_its_epoch_start(
    sleeper: subprocess.Popen[bytes],
) -> None:
    """Runs recorded before the boot was: a second's slack, as before."""
    legacy = dataclasses.replace(owner_of(sleeper.pid), boot=None, since_boot=None)
    assert legacy.is_alive()
    assert not dataclasses.replace(legacy, started=legacy.started + 5).is_alive()


def test_a_command_name_with_spaces_and_parentheses_is_read_past(tmp_path: Path) -> None:
    """The name in /proc/PID/stat is in parentheses and may hold both."""
    odd = tmp_path / "a) b (c"
    odd.symlink_to(Path("/bin/sleep").resolve())
    process = subprocess.Popen([str(odd), "60"])
    try:
        assert psutil.Process(process.pid).name() == "a) b (c"
        since_boot = started_since_boot(process.pid)
        expected = psutil.Process(process.pid).create_time() - psutil.boot_time()
        assert since_boot == pytest.approx(expected, abs=0.02)
    finally:
        process.kill()
        process.wait()


def test_a_running_run_stays_running_after_the_wall_clock_moves(qa_file: Path, home: Path) -> None:
    """Recorded by this (live) process, read back by this one and by `harness runs delete`
    in another, with its epoch start time an hour off: still running, not deleted."""
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
    done = runner.invoke(
        cli,
        ["run", "--data", "qa", "--model", "echo", "--no-mlflow", "--json"],
    )
    assert done.exit_code == 0, done.stderr
    run_id = str(json.loads(done.stdout)["run_id"])
    con = duckdb.connect(str(home / "harness.duckdb"))
    try:
        con.execute(
            "UPDATE runs SET status = 'running', pid = ?, host = ?, pid_started = ?, "
            "pid_boot = ?, pid_since_boot = ? WHERE run_id = ?",
            [
                os.getpid(),
                current_owner().host,
                current_owner().started + 3600,
                current_owner().boot,
                current_owner().since_boot,
                run_id,
            ],
        )
    finally:
        con.close()
    info = get_run(home / "harness.duckdb", run_id)
    assert info.status == "running" and not info.stale
    deleted = subprocess.run(
        [sys.executable, "-m", "harness", "runs", "delete", run_id],
        capture_output=True,
        text=True,
        env={**os.environ, "HARNESS_HOME": str(home)},
    )
    assert deleted.returncode == 2 and "still running" in deleted.stderr, deleted.stderr
    assert get_run(home / "harness.duckdb", run_id).status == "running"
