"""Which URLs are LLM endpoints, whose calls the interception routes through the call path.

An endpoint is a scheme, a host (or ``*.suffix``), an optional port and a path prefix. The
list, checked in this order, is:

1. ``[intercept] hosts = [...]`` in harness.toml: host names (``llm.internal``,
   ``*.example.com``, ``localhost:8000``) or URL prefixes (``http://127.0.0.1:8000/v1``);
2. ``base_url`` of every ``[providers.NAME]`` table in harness.toml;
3. base URLs in the environment: ``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT``,
   ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST``, and ``DATABRICKS_HOST`` (its
   ``/serving-endpoints`` only: the same host serves the rest of the workspace API);
4. the hosted APIs' own hosts (``KNOWN_HOSTS``, ``KNOWN_SUFFIXES``).

Each endpoint names the API it speaks (``openai``, ``anthropic``, ...; ``http`` for the
hosts of ``[intercept]``), which decides the prices and rate limits its calls count against,
and names its calls in messages. The first endpoint that matches wins, except that when it
is ``openai`` or ``anthropic`` and the path is the other's route (``/messages``;
``/chat/completions``, ``/responses``, ``/embeddings``), a later match speaking that API wins.
The environment is read when a URL is matched, so a variable set after a run started (as
tests do) still counts.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.config import settings_file
from harness.errors import ConfigError
from harness.wording import unknown_names

__all__ = [
    "BASE_URL_ENV",
    "KNOWN_HOSTS",
    "KNOWN_SUFFIXES",
    "Endpoint",
    "Endpoints",
    "environment_endpoints",
    "is_loopback",
    "llm_route",
]

KNOWN_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "api.mistral.ai": "mistral",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.fireworks.ai": "fireworks",
    "api.deepseek.com": "deepseek",
    "openrouter.ai": "openrouter",
    "api.perplexity.ai": "perplexity",
    "api.x.ai": "xai",
    "api.voyageai.com": "voyage",
}
KNOWN_SUFFIXES: dict[str, str] = {
    ".openai.azure.com": "openai",
    ".cognitiveservices.azure.com": "openai",
}
# variable -> (API, path the API lives under on that host)
BASE_URL_ENV: dict[str, tuple[str, str]] = {
    "OPENAI_BASE_URL": ("openai", ""),
    "AZURE_OPENAI_ENDPOINT": ("openai", ""),
    "ANTHROPIC_BASE_URL": ("anthropic", ""),
    "OLLAMA_HOST": ("ollama", ""),
    "DATABRICKS_HOST": ("databricks", "/serving-endpoints"),
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name (or a "*.suffix" of one) or an IP address, as urlsplit gives it: "a b" (two
# names in one string, a typo) would otherwise be taken for a name and match nothing.
_HOST = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|[0-9a-f:.]+")
# One server often serves both APIs (a gateway, a local fake) under both OPENAI_BASE_URL and
# ANTHROPIC_BASE_URL: when several endpoints match, the path says which API is called, so
# a call to /v1/messages is priced, limited and labelled as Anthropic's.
_WIRE_APIS = frozenset({"openai", "anthropic"})
_ANTHROPIC_PATH = re.compile(r"/messages(/|$)")
_OPENAI_PATH = re.compile(r"/(chat/completions|completions|embeddings|responses)(/|$)")


def _path_api(path: str) -> str | None:
    """The API whose route ``path`` is, when it is the route of one of ``_WIRE_APIS``."""
    if _ANTHROPIC_PATH.search(path):
        return "anthropic"
    if _OPENAI_PATH.search(path):
        return "openai"
    return None


# The routes of the LLM APIs (OpenAI's and Anthropic's, Ollama's own), at the end of a path:
# a POST to one on a host that is not intercepted is an LLM call harness does not see.
_LLM_ROUTE = re.compile(
    r"/(chat/completions|completions|embeddings|responses|messages)/?$"
    r"|^/api/(chat|generate|embed|embeddings)/?$"
)


def llm_route(path: str) -> str | None:
    """The API whose route ``path`` ends with (``openai``, ``anthropic``, ``ollama``), or
    None: how a call to an LLM server harness does not intercept is recognised."""
    if _LLM_ROUTE.search(path) is None:
        return None
    return _path_api(path) or "ollama"


@dataclass(frozen=True)
class Endpoint:
    """URLs whose scheme (any if None), host, port (any if None) and path prefix match."""

    api: str
    host: str  # lower case; "*.example.com" matches every subdomain of example.com
    scheme: str | None = None
    port: int | None = None
    path: str = ""

    @classmethod
    def parse(cls, text: str, api: str, path: str = "") -> Endpoint:
        """``https://host:port/prefix``, ``host:port`` or ``host``; raise ValueError if odd."""
        text = text.strip()
        if "://" not in text:  # a bare host (OLLAMA_HOST is often given so)
            text = "//" + text
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        if not _HOST.fullmatch(host) or parts.query or parts.fragment:
            raise ValueError(f"{text.lstrip('/')!r} is not a host or a URL prefix")
        port = parts.port  # raises ValueError on a bad port
        scheme = parts.scheme.lower() or None
        if scheme is not None and port is None:
            port = _DEFAULT_PORTS.get(scheme)
        prefix = (parts.path.rstrip("/") + path) if parts.path.strip("/") else path
        return cls(api, host, scheme, port, prefix)

    def matches_host(self, host: str) -> bool:
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def matches(self, scheme: str, host: str, port: int | None, path: str) -> bool:
        if not self.matches_host(host):
            return False
        if self.scheme is not None and scheme != self.scheme:
            return False
        if self.port is not None and (port or _DEFAULT_PORTS.get(scheme)) != self.port:
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


class Endpoints:
    """The LLM endpoints of a project: its settings, the environment, the known hosts."""

    def __init__(self, configured: Iterable[Endpoint] = ()) -> None:
        self.configured = tuple(configured)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Endpoints:
        """From harness.toml: ``[intercept] hosts`` and ``[providers.NAME] base_url``."""
        where = settings_file(settings)  # messages begin with the file, as config's do
        table = settings.get("intercept") or {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [intercept] must be a table")
        unknown = sorted(set(table) - {"hosts", "allowed_hosts"})
        if unknown:
            raise ConfigError(
                f"{where}: {unknown_names('setting', unknown)} in [intercept]; "
                "known: allowed_hosts, hosts"
            )
        hosts = table.get("hosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ConfigError(
                f"{where}: [intercept] hosts must be a list of host names or URL prefixes"
            )
        found = []
        for host in hosts:
            try:
                found.append(Endpoint.parse(host, "http"))
            except ValueError as exc:
                raise ConfigError(f"{where}: [intercept] hosts: {exc}") from None
        for name, options in (settings.get("providers") or {}).items():
            base_url = options.get("base_url") if isinstance(options, Mapping) else None
            if isinstance(base_url, str) and base_url.strip():
                try:
                    found.append(Endpoint.parse(base_url, str(name)))
                except ValueError as exc:
                    raise ConfigError(f"{where}: [providers.{name}] base_url: {exc}") from None
        return cls(found)

    def match(
        self,
        scheme: str,
        host: str,
        port: int | None,
        path: str,
        environment: tuple[Endpoint, ...] | None = None,
    ) -> str | None:
        """The API the URL's endpoint speaks, or None when it is not an LLM endpoint.
        ``environment`` is ``environment_endpoints()``, when the caller read it already."""
        host = host.lower()
        if environment is None:
            environment = environment_endpoints()
        first: str | None = None
        for endpoint in (*self.configured, *environment):
            if not endpoint.matches(scheme, host, port, path):
                continue
            if first is None:
                first = endpoint.api
                spoken = _path_api(path) if first in _WIRE_APIS else None
                if spoken is None or spoken == first:
                    return first
            elif endpoint.api == spoken:
                return spoken
        if first is not None:
            return first
        return _known(host)

    def serves(self, host: str, port: int | None) -> bool:
        """Whether an LLM endpoint lives at ``host`` (on ``port``, when the endpoint names
        one), whatever its scheme and path: all a socket tells of where it connects."""
        host = host.strip("[]").lower()
        for endpoint in (*self.configured, *environment_endpoints()):
            if endpoint.port is not None and port is not None and endpoint.port != port:
                continue
            if endpoint.matches_host(host):
                return True
        return _known(host) is not None


def _known(host: str) -> str | None:
    """The API of a hosted API's own host, or None."""
    api = KNOWN_HOSTS.get(host)
    if api is not None:
        return api
    for suffix, api in KNOWN_SUFFIXES.items():
        if host.endswith(suffix):
            return api
    return None


def environment_endpoints() -> tuple[Endpoint, ...]:
    """The endpoints the environment's base-URL variables name, as they are now."""
    return _environment_endpoints(tuple(os.environ.get(name) for name in BASE_URL_ENV))


@functools.lru_cache(maxsize=16)
def _environment_endpoints(values: tuple[str | None, ...]) -> tuple[Endpoint, ...]:
    found = []
    for (_, (api, path)), value in zip(BASE_URL_ENV.items(), values, strict=True):
        if value and value.strip():
            try:
                found.append(Endpoint.parse(value, api, path))
            except ValueError:
                continue  # the provider reports a bad URL when it is used; nothing to match
    return tuple(found)


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: traffic that does not leave the machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
