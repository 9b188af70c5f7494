"""The network closed in replay: only loopback, Unix sockets and allowed hosts are open.

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

Each scope may bring an allow-list (``harness.intercept.allowed``): an address is open when
an active scope's list matches it, or matches a name it was found under. A socket connects
to an address, so the names are learnt where Python resolves them: once the guard is
installed, each name resolved through ``socket.getaddrinfo`` (which
``socket.create_connection``, asyncio, anyio, httpx, urllib3 and aiohttp's default resolver
call) is remembered with its addresses, in replay or between replays, and kept after a
replay ends (the most recent ``_NAMES_KEPT`` addresses): a client that looks a host up once
and keeps the address (aiohttp's DNS cache, a statsd client built once) connects by address
in the replays (the tests) after the one that found it. A host that is an LLM endpoint of
an active scope (by its address or a name it was found under) stays closed, allowed or not.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness.errors import ReplayRefused
from harness.intercept.endpoints import is_loopback

if TYPE_CHECKING:
    from harness.intercept.allowed import AllowedHosts
    from harness.intercept.endpoints import Endpoints

__all__ = ["closed_network", "is_allowed", "open_to_some", "where_to_add"]

_lock = threading.Lock()
_closed = 0  # replay scopes active in the process
_installed = False
# The active scopes' allow-lists, each with the LLM endpoints it must not open (a list, not
# a set: two scopes may bring equal ones), and the names addresses were resolved under.
_allowed: list[tuple[AllowedHosts, Endpoints]] = []
_names: OrderedDict[str, set[str]] = OrderedDict()  # address -> names it was found under
# Who closed the network, outermost first: "pytest" (a marked test), "replay" (a
# harness.replay block) or None (a run); the refusals name the outermost one's ways.
_origins: list[str | None] = []
_NAMES_KEPT = 4096  # addresses remembered at most, the most recent (a process's life)


def open_to_some() -> bool:
    """Whether an active scope allows some host besides loopback."""
    return bool(_allowed)


def is_allowed(host: str, port: int | None) -> bool:
    """Whether an active scope's allow-list opens ``host`` (a name, or an address with the
    names it was resolved under) on ``port``, and no active scope's LLM endpoint lives there."""
    return _closed_because(host, port) is None


def where_to_add(key: str) -> str:
    """Where a host can be added to ``key`` (``hosts`` or ``allowed_hosts``), the likeliest
    first: in a marked test its marker (and for ``allowed_hosts`` the pytest option), in a
    ``harness.replay`` block its argument, and harness.toml's ``[intercept]`` table."""
    origin = _origins[0] if _origins else None
    ways = [f"[intercept] {key} in harness.toml"]
    if origin == "pytest":
        extra = ["--harness-allowed-hosts"] if key == "allowed_hosts" else []
        ways = [f"@pytest.mark.harness({key}=[...])", *extra, *ways]
    elif origin == "replay":
        ways.insert(0, f"harness.replay(..., {key}=[...])")
    return ways[0] if len(ways) == 1 else f"{', '.join(ways[:-1])} or {ways[-1]}"


def _closed_because(host: str, port: int | None) -> str | None:
    """Why ``host`` is closed on ``port`` (the end of a refusal's message), None if open."""
    entries = list(_allowed)
    names = (host.lower(), *_names.get(host.lower(), ()))
    if not any(allowed.allows(name, port) for allowed, _ in entries for name in names):
        where = where_to_add("allowed_hosts")
        return f"only loopback and allowed_hosts are open; to reach it, add it to {where}"
    if any(endpoints.serves(name, port) for _, endpoints in entries for name in names):
        return "it is an LLM endpoint, which allowed_hosts never opens"
    return None


def _learn(host: Any, results: list[Any]) -> None:
    """Remember the name an address was resolved under (see the module docstring): every
    name, not only allowed ones, so that an LLM endpoint's name closes its address."""
    if not isinstance(host, str | bytes):
        return
    name = (host.decode(errors="replace") if isinstance(host, bytes) else host).lower()
    with _lock:
        for result in results:
            address = str(result[4][0])
            if address == name:
                continue
            _names.setdefault(address, set()).add(name)
            _names.move_to_end(address)  # the most recent last (never missing meanwhile)
            if len(_names) > _NAMES_KEPT:
                _names.popitem(last=False)


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
    reason = _closed_because(host, port if isinstance(port, int) else None)
    if reason is None:
        return
    what = "sending to" if sending else "a connection to"
    message = (
        f"harness replay: refused {what} {host}:{port}: nothing leaves the machine "
        f"while replaying ({reason})"
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

    getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        results = getaddrinfo(host, *args, **kwargs)
        _learn(host, results)
        return results

    guarded_getaddrinfo.__wrapped__ = getaddrinfo  # type: ignore[attr-defined]
    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = guarded_sendto  # type: ignore[method-assign,assignment]
    socket.socket.sendmsg = guarded_sendmsg  # type: ignore[method-assign,assignment]
    _installed = True


@contextlib.contextmanager
def closed_network(
    allowed: AllowedHosts | None = None,
    endpoints: Endpoints | None = None,
    origin: str | None = None,
) -> Iterator[None]:
    """Refuse every non-loopback connection or datagram in the process while this is
    entered, but to the hosts ``allowed`` names that are not LLM endpoints (``endpoints``:
    those of the scope's call path; the environment's and the hosted APIs' count always).
    ``origin`` (``"pytest"``, ``"replay"``) is who closes it, for ``where_to_add``."""
    global _closed
    entry = None
    if allowed:
        from harness.intercept.endpoints import Endpoints

        entry = (allowed, endpoints if endpoints is not None else Endpoints())
    with _lock:
        if not _installed:
            _install()
        _closed += 1
        _origins.append(origin)
        if entry is not None:
            _allowed.append(entry)
    try:
        yield
    finally:
        with _lock:
            _closed -= 1
            _origins.remove(origin)  # the first equal one: the others keep their order
            if entry is not None:
                _allowed.remove(entry)
