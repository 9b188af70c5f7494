"""The network closed in replay: only loopback and Unix sockets may connect or be sent to.

The interception answers httpx's calls to LLM endpoints from the cache, but the user's code
may talk to other hosts and through other libraries (``requests``, ``urllib``, ``aiohttp``,
a database driver, a statsd client). While any replay scope is active,
``socket.socket.connect`` (and ``connect_ex``, which asyncio and most clients end in)
refuses every address that is not loopback with ``ConnectionRefusedError``, and
``sendto``/``sendmsg`` to such an address (a datagram from an unconnected socket) raise
``PermissionError``, as a firewall's refusal does; either way the current scope records a
``ReplayRefused`` that names the address, so the row or test fails saying why. The guard is
process-wide (a socket may be used from any thread) and counted: it opens again when the
last replay scope ends. It is installed on first use and does nothing while no replay scope
is active. Not guarded: name lookups (``getaddrinfo`` asks the system's resolver, which may
ask a DNS server; only the name leaves, never a request), and sockets made outside Python's
``socket`` module (a C extension's own).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Iterator
from typing import Any

from harness.errors import ReplayRefused
from harness.intercept.endpoints import is_loopback

__all__ = ["closed_network"]

_lock = threading.Lock()
_closed = 0  # replay scopes active in the process
_installed = False


def _address_host(family: int, address: Any) -> str | None:
    """The host of an AF_INET/AF_INET6 address, None for any other family."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


def _check(sock: socket.socket, address: Any, sending: bool = False) -> None:
    if not _closed:
        return
    host = _address_host(sock.family, address)
    if host is None or is_loopback(host):
        return
    port = address[1] if isinstance(address, tuple) and len(address) > 1 else "?"
    what = "sending to" if sending else "a connection to"
    message = (
        f"harness replay: refused {what} {host}:{port}: nothing leaves the machine "
        f"while replaying (only loopback is open)"
    )
    from harness.intercept.scope import current

    scope = current()
    if scope is not None:
        scope.fail(ReplayRefused(message))
    if sending:
        raise PermissionError(errno.EPERM, message)
    raise ConnectionRefusedError(errno.ECONNREFUSED, message)


def _install() -> None:
    global _installed
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return connect_ex(self, address)

    sendto, sendmsg = socket.socket.sendto, socket.socket.sendmsg

    def guarded_sendto(self: socket.socket, data: Any, *rest: Any) -> int:
        if rest:  # (data, address) or (data, flags, address)
            _check(self, rest[-1], sending=True)
        return sendto(self, data, *rest)

    def guarded_sendmsg(self: socket.socket, buffers: Any, *rest: Any) -> int:
        if len(rest) >= 3 and rest[2] is not None:  # (buffers, ancdata, flags, address)
            _check(self, rest[2], sending=True)
        return sendmsg(self, buffers, *rest)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = guarded_sendto  # type: ignore[method-assign,assignment]
    socket.socket.sendmsg = guarded_sendmsg  # type: ignore[method-assign,assignment]
    _installed = True


@contextlib.contextmanager
def closed_network() -> Iterator[None]:
    """Refuse every non-loopback connection or datagram in the process while this is
    entered."""
    global _closed
    with _lock:
        if not _installed:
            _install()
        _closed += 1
    try:
        yield
    finally:
        with _lock:
            _closed -= 1
