"""The hosts replay lets through as they are: services the app needs besides LLMs.

In replay the network is closed to all but loopback (``harness.intercept.network``). An app
that also talks to a service by name (a vector store at ``qdrant:6333``, a database at
``db:5432``, a search API at ``10.0.0.7``) names those hosts in an allow-list, as
pytest-recording's ``allowed_hosts`` and vcrpy's ``ignore_hosts`` do: ``[intercept]
allowed_hosts`` in harness.toml, ``harness.replay(..., allowed_hosts=[...])``, the pytest
plugin's ``--harness-allowed-hosts`` and ``@pytest.mark.harness(allowed_hosts=[...])``.

A pattern is a host name or an IP address, with ``*`` standing for any run of characters
(``*.internal``, ``10.0.0.*``, ``*`` for every host) and an optional ``:port`` (``db:5432``,
``[fd00::7]:80``); names are matched without regard to case. Traffic to an allowed host is
neither cached nor counted. An LLM endpoint stays one, allowed or not: its calls are
answered from the cassette, never sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import settings_file

__all__ = ["AllowedHosts", "HostPattern"]

_NAME = re.compile(r"[a-z0-9*_.-]+")
_IPV6 = re.compile(r"[0-9a-f:.*]+")


@dataclass(frozen=True)
class HostPattern:
    """One entry of an allow-list: a host pattern (lower case) and a port (any if None)."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """``host``, ``host:port``, ``[ipv6]:port`` or a bare IPv6 address; raise ValueError
        saying what is wrong."""
        given = text
        text = text.strip().lower()
        if "/" in text or "@" in text or not text:
            raise ValueError(f"{given!r} is not a host: give a name or IP with an optional :port")
        port_text: str | None = None
        if text.startswith("["):
            host, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"{given!r} is not a host: [IPv6] must be closed by ]")
            port_text = rest[1:] if rest else None
            valid = _IPV6.fullmatch(host)
        elif text.count(":") > 1:  # a bare IPv6 address: no port
            host, valid = text, _IPV6.fullmatch(text)
        else:
            host, colon, port_text = text.partition(":")
            port_text = port_text if colon else None
            valid = _NAME.fullmatch(host)
        if not valid:
            raise ValueError(f"{given!r} is not a host name, an IP address or a pattern of one")
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{given!r}: the port must be a number from 1 to 65535")
            port = int(port_text)
        return cls(host, port)

    def matches_host(self, host: str) -> bool:
        if "*" not in self.host:
            return host == self.host
        return re.fullmatch(".*".join(map(re.escape, self.host.split("*"))), host) is not None

    def matches(self, host: str, port: int | None) -> bool:
        """Whether a connection to ``host`` (lower case) on ``port`` is allowed."""
        return (self.port is None or port == self.port) and self.matches_host(host)


class AllowedHosts:
    """An allow-list of ``HostPattern``; empty, it allows nothing."""

    def __init__(self, patterns: Iterable[HostPattern] = ()) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))

    @classmethod
    def parse(cls, values: object, where: str) -> AllowedHosts:
        """From a list of strings; ``where`` starts the one-line ``ConfigError`` that names a
        bad value."""
        from harness.errors import ConfigError

        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f'{where} must be a list of hosts, such as ["db:5432", "*.internal"]')
        try:
            return cls(HostPattern.parse(value) for value in values)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AllowedHosts:
        """``[intercept] allowed_hosts`` of harness.toml (the table itself is checked by
        ``Endpoints.from_settings``)."""
        table = settings.get("intercept") or {}
        if not isinstance(table, Mapping) or "allowed_hosts" not in table:
            return cls()
        where = f"{settings_file(settings)}: [intercept] allowed_hosts"  # as config's messages
        return cls.parse(table["allowed_hosts"], where)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __add__(self, other: AllowedHosts) -> AllowedHosts:
        return AllowedHosts((*self.patterns, *other.patterns))

    def allows(self, host: str, port: int | None) -> bool:
        """Whether ``host`` (a name or an address) on ``port`` is allowed."""
        host = host.strip("[]").lower()
        return any(pattern.matches(host, port) for pattern in self.patterns)
