"""Which process runs a run, and whether it is still alive.

A run stores its process's pid, host and start time while it runs. A run left ``running``
by a process that no longer exists (SIGKILL, a power cut, a full disk that stopped every
write) is then told apart from one that is still going: ``runs list`` shows it as
``interrupted`` and ``--resume`` takes it over, while a second ``--resume`` of a run that
really is running elsewhere is refused. The start time guards against a reused pid.

Another host cannot be asked: a run started on another host (or in another container,
whose hostname differs) counts as gone, so a project home moved between machines or
containers can always be resumed.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

__all__ = ["Owner", "current_owner"]

# Start times are compared with this slack: psutil reads them at a clock-tick resolution.
_START_SLACK_S = 1.0


@dataclass(frozen=True)
class Owner:
    """A process: its pid, the host it runs on, and when it started (epoch seconds)."""

    pid: int
    host: str
    started: float

    def is_alive(self) -> bool:
        """Whether this process still exists (on another host: assumed gone, see the module)."""
        if self.host != socket.gethostname():
            return False
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
        import psutil

        pid = os.getpid()
        _current = Owner(pid, socket.gethostname(), psutil.Process(pid).create_time())
    return _current
