"""Local TCP ports for the servers harness starts (``harness ui``, ``harness dev fake-llm``):
checked before starting, so a taken port is one line and exit 2, not a log buried in a child."""

from __future__ import annotations

import contextlib
import socket

from harness.errors import ConfigError


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def claim_port(host: str, port: int, flag: str = "--port") -> int:
    """``port`` if it can be listened on (0: a free one), else ConfigError naming it."""
    if port == 0:
        return free_port(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers bind: SO_REUSEADDR lets a port in TIME_WAIT be reused, not a listened one.
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({e.strerror or e}); {busy_port_hint(port)}: "
                f"pass {flag} N, or {flag} 0 for a free port"
            ) from None
    return port


def preferred_port(host: str, port: int) -> int:
    """``port`` if it can be listened on, else a free one (the OS's pick)."""
    try:
        return claim_port(host, port)
    except ConfigError:
        return free_port(host)


def busy_port_hint(port: int) -> str:
    """Who may hold ``port``: macOS's AirPlay receiver is named only for the port it takes."""
    if port == 5000:
        return "another program has it (on macOS, AirPlay takes 5000)"
    return "another program has it"


def wait_listening(host: str, port: int, timeout_s: float, alive: object = None) -> bool:
    """True once something accepts connections on host:port, False after ``timeout_s``
    or as soon as ``alive()`` (when given) returns False."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False
