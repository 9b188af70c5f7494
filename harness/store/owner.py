"""Which process runs a run, and whether it is still alive.

A run stores its process's pid, host and start time while it runs. A run left ``running``
by a process that no longer exists (SIGKILL, a power cut, a full disk that stopped every
write) is then told apart from one that is still going: ``runs list`` shows it as
``interrupted`` and ``--resume`` takes it over, while a second ``--resume`` of a run that
really is running elsewhere is refused. The start time guards against a reused pid.

Another host cannot be asked: a run started on another host (or in another container,
whose hostname differs) counts as gone, so a project home moved between machines or
containers can always be resumed.

On Linux the start time compared is the one the kernel keeps, in clock ticks since boot
(``/proc/PID/stat``), with the boot's id (``/proc/sys/kernel/random/boot_id``): a start
time in epoch seconds is the boot time plus that, and the boot time moves whenever the
wall clock is stepped (NTP after a laptop wakes, a VM's clock catching up), so a run whose
process was alive read back as gone: another ``--resume`` could take it over and ``runs
delete`` delete it without ``--force``. Elsewhere, and for runs recorded before, the epoch
start time is compared with a second's slack.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Owner", "current_owner"]

# Epoch start times are compared with this slack: psutil reads them at a clock-tick
# resolution. Start times since boot are the kernel's own count of ticks: equal or not.
_START_SLACK_S = 1.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_TICK_SLACK_S = 0.5 / _CLOCK_TICKS


@dataclass(frozen=True)
class Owner:
    """A process: its pid, the host it runs on, and when it started: in epoch seconds and,
    on Linux, in seconds since the boot whose id is ``boot`` (see the module)."""

    pid: int
    host: str
    started: float
    boot: str | None = None
    since_boot: float | None = None

    def is_alive(self) -> bool:
        """Whether this process still exists (on another host: assumed gone, see the module)."""
        if self.host != socket.gethostname():
            return False
        boot = boot_id()
        if self.boot is not None and self.since_boot is not None and boot is not None:
            if self.boot != boot:
                return False  # the host has restarted since: every process of then is gone
            since_boot = started_since_boot(self.pid)
            return since_boot is not None and abs(since_boot - self.since_boot) < _TICK_SLACK_S
        import psutil

        try:
            started = psutil.Process(self.pid).create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.Error:  # exists, but we may not look at it: alive as far as we know
            return True
        return abs(started - self.started) <= _START_SLACK_S

    def is_current(self) -> bool:
        return self == current_owner()

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


_current: Owner | None = None


def current_owner() -> Owner:
    """This process."""
    global _current
    if _current is None or _current.pid != os.getpid():  # a forked child is another owner
        pid = os.getpid()
        since_boot = started_since_boot(pid)
        booted = _boot_time()
        if since_boot is not None and booted is not None:  # as psutil has it on Linux
            started = booted + since_boot
        else:
            import psutil  # ~15-50 ms of a run's start (issue 14): not where /proc says it

            started = psutil.Process(pid).create_time()
        _current = Owner(pid, socket.gethostname(), started, boot_id(), since_boot)
    return _current


def _boot_time() -> float | None:
    """When the host booted, in epoch seconds, as the kernel says now (Linux), or None."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime"):
                    return float(line.split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


@functools.cache
def boot_id() -> str | None:
    """The id of this boot of the host (Linux), or None where there is none to read."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def started_since_boot(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the host booted, as the kernel keeps
    it (Linux; unmoved by changes of the wall clock); None if there is no such process, or
    it has exited and waits to be reaped (a zombie, as psutil counts it: gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces and parentheses: fields are counted
    # after its last ")". The state is field 3 of proc(5), the start time field 22.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    try:
        return int(fields[19]) / _CLOCK_TICKS
    except (IndexError, ValueError):
        return None
