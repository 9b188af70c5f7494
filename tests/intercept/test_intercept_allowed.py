"""Hosts replay lets through as they are (``allowed_hosts``): a service the app needs.

Every socket here is on this machine. A host that is not loopback is 0.0.0.0, which Linux
connects to this machine (as in test_intercept_network.py), so should the guard fail, no
packet leaves it; and a name the app uses is ``0``, which the resolver reads as the address
0.0.0.0 without asking a DNS server: the guard sees the name at ``getaddrinfo`` and only the
address at ``connect``, as with a service container's name.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import harness
from harness.errors import ConfigError, ReplayMiss, ReplayRefused
from harness.intercept import network
from harness.intercept.allowed import AllowedHosts, HostPattern
from harness.intercept.endpoints import Endpoint, Endpoints
from harness.intercept.network import closed_network
from harness.testing import FakeLLMServer


def allowing(*hosts: str) -> AllowedHosts:
    return AllowedHosts.parse(list(hosts), "test")


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize(
    ("pattern", "host", "port", "allowed"),
    [
        ("db", "db", 5432, True),
        ("DB", "db", 1, True),
        ("db:5432", "db", 5432, True),
        ("db:5432", "db", 5433, False),
        ("db", "db2", 5432, False),
        ("*.internal", "search.eu.internal", 80, True),
        ("*.internal", "internal", 80, False),
        ("10.0.0.*", "10.0.0.7", 6333, True),
        ("10.0.0.*", "10.0.1.7", 6333, False),
        ("[fd00::7]:80", "fd00::7", 80, True),
        ("fd00::7", "fd00::7", 443, True),
        ("*", "anything.example", 1, True),
    ],
)
def test_patterns(pattern: str, host: str, port: int, allowed: bool) -> None:
    assert allowing(pattern).allows(host, port) is allowed


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("db", "test must be a list of hosts"),
        ([5432], "test must be a list of hosts"),
        (["http://db:5432"], "test: 'http://db:5432' is not a host"),
        (["db:port"], "test: 'db:port': the port must be a number from 1 to 65535"),
        (["db:70000"], "the port must be a number from 1 to 65535"),
        (["db host"], "'db host' is not a host name, an IP address or a pattern of one"),
        ([""], "'' is not a host"),
    ],
)
def test_bad_values_are_one_line(value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        AllowedHosts.parse(value, "test")
    assert problem in str(refused.value) and "\n" not in str(refused.value)


def test_an_allowed_address_connects_and_others_stay_refused(listener: int) -> None:
    with closed_network(allowing(f"0.0.0.*:{listener}")):
        with socket.create_connection(("0.0.0.0", listener), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError, match=r"0\.0\.0\.0:1: nothing leaves"):
            socket.create_connection(("0.0.0.0", 1), timeout=5)  # not that port
    with (
        closed_network(allowing("10.0.0.*", "db.internal")),
        pytest.raises(ConnectionRefusedError, match="only loopback and allowed_hosts"),
    ):
        socket.create_connection(("0.0.0.0", listener), timeout=5)


def test_a_name_is_matched_at_the_address_it_resolves_to(listener: int) -> None:
    with closed_network(allowing("0")):
        # create_connection resolves the name, then connects to 0.0.0.0
        with socket.create_connection(("0", listener), timeout=5):
            pass
        probe = socket.socket()
        probe.connect(("0", listener))  # a name handed to connect itself
        probe.close()
        # the address was opened through its name, not for everyone
        assert "0" in network._names["0.0.0.0"]
    with closed_network(allowing("db.internal")), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("0", listener), timeout=5)


def test_an_llm_endpoint_stays_closed_even_if_allowed(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = Endpoints([Endpoint.parse(f"http://0.0.0.0:{listener}/v1", "http")])
    with (
        closed_network(allowing("0.0.0.0"), endpoints),
        pytest.raises(ConnectionRefusedError, match="an LLM endpoint, which allowed_hosts"),
    ):
        socket.create_connection(("0.0.0.0", listener), timeout=5)
    # An LLM endpoint named by a name, reached by a client of its own (not httpx) at an
    # address the list allows: the name it was resolved under closes it.
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://0:{listener}/v1")
    for allowed in ("0", "0.0.0.*"):
        with closed_network(allowing(allowed)), pytest.raises(ConnectionRefusedError, match="LLM"):
            socket.create_connection(("0", listener), timeout=5)


def test_httpx_reaches_an_allowed_service_by_name_or_address(tmp_path: Path, service: int) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n')
    for allowed, url in [
        ("0.0.0.0", f"http://0.0.0.0:{service}/"),
        (f"0:{service}", f"http://0:{service}/"),  # the name the app used
        ("0.0.0.0", f"http://0:{service}/"),  # the address the name resolved to
    ]:
        with harness.replay(cassette, allowed_hosts=[allowed]) as recorder:
            assert httpx.get(url).text == "ok"
        assert recorder.stats["app"]["requests"] == 0  # not an LLM call: not counted
    with (
        pytest.raises(ReplayRefused, match="refused GET http://0.0.0.0"),
        harness.replay(cassette, allowed_hosts=["10.0.0.*"]),
        pytest.raises(httpx.ConnectError),
    ):
        httpx.get(f"http://0.0.0.0:{service}/")
    with (
        pytest.raises(ReplayRefused, match="refused a connection to 0.0.0.0"),
        harness.replay(cassette, allowed_hosts=["10.0.0.*"]),
        pytest.raises(httpx.ConnectError),
    ):
        httpx.get(f"http://0:{service}/")  # judged at the address: no name matched


def test_an_allowed_llm_endpoint_is_still_answered_from_the_cassette(
    llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://0.0.0.0:{llm.port}/v1")
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        client = openai.OpenAI()
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi."}]
        )
    assert llm.stats()["requests_total"] == 1
    with harness.replay(cassette, allowed_hosts=["0.0.0.0"]) as recorder:
        openai.OpenAI().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi."}]
        )
    assert recorder.stats["app"]["cache_hits"] == 1
    with (
        pytest.raises(ReplayMiss),
        harness.replay(cassette, allowed_hosts=["0.0.0.0"]),
        pytest.raises(openai.APIStatusError),
    ):
        openai.OpenAI().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Another."}]
        )
    assert llm.stats()["requests_total"] == 1  # nothing was sent


def test_harness_toml_allows_hosts(tmp_path: Path, service: int) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n')
    (tmp_path / "harness.toml").write_text('[intercept]\nallowed_hosts = ["0.0.0.0"]\n')
    with harness.replay(cassette, home=tmp_path):
        assert httpx.get(f"http://0.0.0.0:{service}/").text == "ok"
    (tmp_path / "harness.toml").write_text('[intercept]\nallowed_hosts = ["db/x"]\n')
    where = re.escape(f"{tmp_path.resolve() / 'harness.toml'}: [intercept] allowed_hosts")
    with pytest.raises(ConfigError, match=f"^{where}: 'db/x' is not a host"):
        harness.replay(cassette, home=tmp_path).start()


def test_a_refusal_names_the_ways_to_allow_of_who_closed_the_network(
    tmp_path: Path, service: int
) -> None:
    """A harness.replay block's refusal names its own allowed_hosts= first; a marked test's
    names the marker and --harness-allowed-hosts (tests/testing/); a run's, harness.toml."""
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n')
    with (
        pytest.raises(ReplayRefused) as refused,
        harness.replay(cassette),
        pytest.raises(httpx.ConnectError),
    ):
        httpx.get(f"http://0.0.0.0:{service}/")
    assert str(refused.value).endswith(
        "(if this is an LLM endpoint, add its host to harness.replay(..., hosts=[...]) or "
        "[intercept] hosts in harness.toml; if it is a service the app needs, to "
        "harness.replay(..., allowed_hosts=[...]) or [intercept] allowed_hosts in harness.toml)"
    )
    with pytest.raises(ConnectionRefusedError) as run, closed_network():
        socket.create_connection(("0.0.0.0", service), timeout=5)
    assert str(run.value).endswith(
        "(only loopback and allowed_hosts are open; to reach it, add it to [intercept] "
        "allowed_hosts in harness.toml)"
    )
    # A run in a marked test: the test's ways, whose allow-list opens the run's calls too.
    with (
        closed_network(origin="pytest"),
        closed_network(),
        pytest.raises(ConnectionRefusedError, match=r"add it to @pytest.mark.harness\(allowed"),
    ):
        socket.create_connection(("0.0.0.0", service), timeout=5)


def test_a_pattern_is_kept_once() -> None:
    assert allowing("db", "DB", "db:5432").patterns == (
        HostPattern("db"),
        HostPattern("db", 5432),
    )


def test_an_address_found_under_an_allowed_name_stays_open_in_later_replays(
    tmp_path: Path, listener: int
) -> None:
    """A client that looks its host up once and keeps the address (aiohttp's DNS cache, for
    10 s by default; a statsd client, at its construction) connects by address in the
    replays (the tests) after the one that found it, and after a look-up between them (a
    session fixture's health check)."""
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n')
    found: list[Any] = []

    def call_service() -> None:
        if not found:
            found.append(socket.getaddrinfo("0", listener, type=socket.SOCK_STREAM)[0][4])
        with socket.create_connection(found[0], timeout=5):
            pass

    for _ in range(2):
        with harness.replay(cassette, allowed_hosts=[f"0:{listener}"]):
            call_service()
    found.clear()
    call_service()  # outside any replay
    with harness.replay(cassette, allowed_hosts=[f"0:{listener}"]):
        call_service()
    with (
        pytest.raises(ReplayRefused, match="refused a connection to 0.0.0.0"),
        harness.replay(cassette, allowed_hosts=["db.internal"]),
    ):
        call_service()  # an address is open for its names only
