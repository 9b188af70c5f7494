"""The pytest plugin: a test's LLM calls replayed from its own cassette.

Installing harness registers it (the ``pytest11`` entry point ``harness``). A test marked
``@pytest.mark.harness`` (or a module with ``pytestmark = pytest.mark.harness``) runs inside
``harness.replay(...)`` (see ``harness.recorder``) with the cassette
``<test file's folder>/cassettes/<test module>/<test name>.jsonl`` (a method's name is
``Class.test_name``, a nested class's ``Outer.Inner.test_name``):

- ``@pytest.mark.harness(cassette="path.jsonl")`` names another file (relative to the test
  file's folder), ``hosts=[...]`` adds LLM endpoints for that test, ``allowed_hosts=[...]``
  hosts that replay lets it reach as they are (a service container: ``"db:5432"``,
  ``"*.internal"``; see ``harness.intercept.allowed``); the ini option
  ``harness_cassette_dir`` (relative to each test file's folder) moves every default one;
- ``--harness-allowed-hosts=HOST,HOST`` allows hosts for every marked test, with
  ``[intercept] allowed_hosts`` of harness.toml and each test's ``allowed_hosts=``;
- ``--harness-record=none`` (the default) replays strictly: a call the cassette does not
  hold fails the test with what differs and the command that records it, a missing cassette
  fails it with that command, and the network is closed to all but loopback;
  ``--harness-record=new`` records the calls the cassette lacks and keeps the others;
  ``--harness-record=all`` records everything again and drops the entries the test no
  longer uses (a test that failed or skipped part way keeps them; one whose calls all
  failed writes nothing);
- the ``harness_recorder`` fixture is the test's ``Recorder`` (its cassette, mode, live
  ``calls`` counters);
- calls made by the test and by its function-scoped fixtures (set-up and teardown) are
  covered, and a failure of one fails the phase it happened in, or the call if the code
  caught it; module- and session-scoped fixtures run outside any test's cassette.

Under pytest-xdist each test runs in one worker, and each test has its own cassette, so no
two workers write one file. Tests that share a cassette (``cassette=``) take turns under a
file lock and merge: with ``new`` each adds its calls; with ``all`` the first test of the
session to write the file replaces it and the others add to it (the session is recognised
by a note beside the lock file, which the workers share).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.recorder import Recorder

MODES = {"none": "replay", "new": "use", "all": "refresh"}
DEFAULT_CASSETTE_DIR = "cassettes"
_RECORDER = pytest.StashKey["Recorder"]()
_RUN_ID = pytest.StashKey[str]()  # this pytest session, as the controller named it
_TOLD = pytest.StashKey[bool]()  # the test's harness failure has failed a phase of it
_CUT_SHORT = pytest.StashKey[bool]()  # its set-up or call raised: it may not have made every call
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: LLM calls replayed from cassettes")
    group.addoption(
        "--harness-record",
        choices=sorted(MODES),
        default="none",
        help="none: replay only, fail on a missing call (default); new: record missing "
        "calls; all: record every call again and drop unused entries.",
    )
    group.addoption(
        "--harness-allowed-hosts",
        action="append",
        default=[],
        metavar="HOST,HOST",
        help="hosts that replay lets marked tests reach as they are (a service such as "
        "db:5432, *.internal, 10.0.0.*); comma-separated, may be repeated.",
    )
    parser.addini(
        "harness_cassette_dir",
        "Folder of the cassettes of @pytest.mark.harness tests, relative to each test file's "
        "folder (default: cassettes).",
        default=DEFAULT_CASSETTE_DIR,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "harness(cassette=None, hosts=(), allowed_hosts=()): replay the test's LLM calls "
        "from a cassette (see --harness-record, --harness-allowed-hosts).",
    )
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        config.stash[_RUN_ID] = uuid.uuid4().hex
    if not str(config.getini("harness_cassette_dir")).strip():
        # An empty value put each test module's cassettes in a folder beside the test files.
        raise pytest.UsageError(
            "harness_cassette_dir is empty: give the cassettes' folder, relative to each test "
            f"file's folder, or leave the setting out ({DEFAULT_CASSETTE_DIR})"
        )
    allowed = _allowed_option(config)
    if allowed:  # a bad host is a usage error, said once, before any test runs
        from harness.errors import ConfigError
        from harness.intercept.allowed import AllowedHosts

        try:
            AllowedHosts.parse(allowed, "--harness-allowed-hosts")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None


def _allowed_option(config: pytest.Config) -> list[str]:
    """The hosts of every ``--harness-allowed-hosts`` given, split at commas."""
    values = config.getoption("--harness-allowed-hosts", None) or []
    return [host.strip() for value in values for host in value.split(",") if host.strip()]


def cassette_path(item: pytest.Item, cassette: Any = None) -> Path:
    """Where a test's cassette lives (see the module docstring)."""
    folder = item.path.parent
    if cassette is not None:
        return (folder / Path(cassette)).resolve()
    base = folder / str(item.config.getini("harness_cassette_dir"))
    cls = getattr(item, "cls", None)
    name = item.name if cls is None else f"{cls.__name__}.{item.name}"
    outer = [node.name for node in item.listchain() if isinstance(node, pytest.Class)][:-1]
    if cls is not None and outer:  # a nested class: named by every class around it too
        name = ".".join([*outer, name])
    safe = _UNSAFE.sub("_", name)
    if safe != name:  # "test_x[a b]" and "test_x[a_b]" must not share a file
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return base / item.path.stem / f"{safe}.jsonl"


def _run_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        return str(worker.get("testrunuid", ""))
    return config.stash[_RUN_ID]


@pytest.fixture(autouse=True)
def _harness_cassette(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a marked test: its recorder, active from the set-up of its function-scoped
    fixtures to their teardown; the cassette is written (record modes) when it ends."""
    # A module's or class's marker and the test's own add up (as pytest-recording's do):
    # the closest one's cassette wins, hosts and allowed_hosts are the union.
    markers = list(request.node.iter_markers("harness"))  # closest first
    if not markers:
        yield
        return
    from harness.intercept.allowed import AllowedHosts
    from harness.recorder import Recorder

    item = request.node
    for marker in markers:
        unknown = sorted(set(marker.kwargs) - {"cassette", "hosts", "allowed_hosts"})
        if marker.args or unknown:
            pytest.fail(
                "@pytest.mark.harness takes cassette=, hosts= and allowed_hosts=, not "
                f"{marker.args or unknown}",
                pytrace=False,
            )
        problem = _marker_problem(marker.kwargs)
        if problem:
            pytest.fail(f"harness: @pytest.mark.harness {problem}", pytrace=False)
    allowed = [name for m in reversed(markers) for name in _listed(m.kwargs.get("allowed_hosts"))]
    hosts = [name for m in reversed(markers) for name in _listed(m.kwargs.get("hosts"))]
    cassette = next((m.kwargs["cassette"] for m in markers if m.kwargs.get("cassette")), None)
    problem = _attempt(lambda: AllowedHosts.parse(allowed, "@pytest.mark.harness allowed_hosts"))
    problem = problem or _attempt(lambda: _check_hosts(hosts))
    if problem:
        pytest.fail(problem, pytrace=False)
    path = cassette_path(item, cassette)
    recorder = Recorder(
        path,
        MODES[item.config.getoption("--harness-record")],
        hosts=tuple(dict.fromkeys(hosts)),
        allowed_hosts=[*_allowed_option(item.config), *allowed],
        name=_test_id(item),
        record_hint=_record_command(item),
        rerecord_hint=_record_command(item, "all"),
        shown_path=_from_here(item.config, path),
        origin="pytest",
    )
    problem = _attempt(recorder.start)
    if problem:
        pytest.fail(problem, pytrace=False)
    item.stash[_RECORDER] = recorder
    item.stash[_TOLD] = False
    try:
        yield
    finally:
        cut_short = item.stash.get(_CUT_SHORT, False)
        problem = _attempt(
            lambda: recorder.stop(merge_if=_merge_check(item.config, path), cut_short=cut_short)
        )
        if problem:
            pytest.fail(problem, pytrace=False)


def _marker_problem(kwargs: dict[str, Any]) -> str | None:
    """What is wrong with a marker's ``cassette=``, ``hosts=`` or ``allowed_hosts=`` type
    (a number for a path would otherwise surface as a TypeError from deep in pathlib)."""
    cassette = kwargs.get("cassette")  # None: the default one
    if cassette is not None and (
        not isinstance(cassette, (str, os.PathLike)) or not str(cassette).strip()
    ):
        return f"cassette= is the path of a .jsonl file, not {cassette!r}"
    for name in ("hosts", "allowed_hosts"):
        value = kwargs.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, (list, tuple, set, frozenset)) or not all(
            isinstance(host, str) for host in value
        ):
            return f"{name}= is a host or a list of hosts, not {value!r}"
    return None


def _check_hosts(hosts: list[str]) -> None:
    """Raise the ``ConfigError`` that names the marker for a ``hosts=`` entry that is no
    host (``Recorder.start`` would name ``harness.replay``)."""
    from harness.errors import ConfigError
    from harness.intercept.endpoints import Endpoint

    for host in hosts:
        try:
            Endpoint.parse(host, "http")
        except ValueError as exc:
            raise ConfigError(f"@pytest.mark.harness hosts: {exc}") from None


def _listed(value: Any) -> list[Any]:
    """A marker's ``hosts=``/``allowed_hosts=``: a list, or one name."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _from_here(config: pytest.Config, path: Path) -> str:
    """``path`` as the folder pytest was run from sees it (pytest's node ids are relative to
    its rootdir, which is a parent folder when run from a subfolder, or ``--rootdir``)."""
    try:
        return os.path.relpath(path, config.invocation_params.dir)
    except ValueError:  # another drive
        return str(path)


def _test_id(item: pytest.Item) -> str:
    """``item``'s node id, its file named from where pytest was run (see ``_from_here``)."""
    _, sep, inside = item.nodeid.partition("::")
    return _from_here(item.config, item.path) + sep + inside


def _record_command(item: pytest.Item, mode: str = "new") -> str:
    """The command that records ``item``'s calls, to run from where pytest was run:
    ``python -m pytest``, which puts the current folder on ``sys.path``, so an app module at
    the project's root (docs/testing.md's layout) imports, where plain ``pytest`` fails with
    ModuleNotFoundError."""
    quoted = "'" + _test_id(item).replace("'", "'\\''") + "'"
    return f"python -m pytest {quoted} --harness-record={mode}"


def _attempt(action: Callable[[], Any]) -> str | None:
    """Run ``action``; a HarnessError becomes the one line a failed test shows."""
    from harness.errors import HarnessError

    try:
        action()
    except HarnessError as exc:
        return f"harness: {exc}"
    return None


def _merge_check(config: pytest.Config, path: Path) -> Callable[[], bool]:
    """For ``all``: whether this session already rewrote ``path`` (then add to it). Called
    under the cassette's file lock; the session that last wrote it is noted in a file beside
    the lock, which every worker of the session sees (pytest's cache is not there under
    ``-p no:cacheprovider``)."""

    def written_this_session() -> bool:
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
        note = Path(tempfile.gettempdir()) / f"harness-cassette-{digest}.session"
        run = _run_id(config)
        try:
            already = note.read_text(encoding="utf-8") == run
        except OSError:  # none yet: no session wrote it
            already = False
        note.write_text(run, encoding="utf-8")
        return already

    return written_this_session


@pytest.fixture
def harness_recorder(request: pytest.FixtureRequest) -> Recorder:
    """The ``Recorder`` of a ``@pytest.mark.harness`` test."""
    recorder = request.node.stash.get(_RECORDER, None)
    if recorder is None:
        pytest.fail(
            "harness_recorder needs the test to be marked @pytest.mark.harness", pytrace=False
        )
    return recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    """A fixture's set-up that raised because of a harness failure: the failure's message in
    place of the error its code was handed (a set-up that swallowed it fails at the call)."""
    return (yield from _told_in_place(item, swallowed=False))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """A harness failure (a miss, a refused request) fails the test with its own message,
    in place of whatever the code under test made of the error it was handed (and even
    when it swallowed it)."""
    return (yield from _told_in_place(item, swallowed=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    """The same for a failure not told yet, such as a call in a fixture's teardown (the
    cassette covers it: the recorder stops after every function-scoped fixture)."""
    return (yield from _told_in_place(item, swallowed=True))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    """A harness failure fails an ``xfail`` test too: pytest would report it as the
    expected failure, so a stale cassette (a miss) went unseen; the test is expected to
    fail for its own reason, not for a call its cassette lacks."""
    report = yield
    if getattr(report, "wasxfail", None) is not None and item.stash.get(_TOLD, False):
        report.outcome = "failed"
        del report.wasxfail
    return report


def _told_in_place(item: pytest.Item, *, swallowed: bool) -> Generator[None, Any, Any]:
    """One phase of a marked test: its harness failure, if any and not told by an earlier
    phase, fails it (when the phase raised, or, with ``swallowed``, whatever it did)."""
    try:
        result = yield
    except Exception:  # the test's own error: an assertion, the SDK's error for the miss...
        item.stash[_CUT_SHORT] = True
        if not _untold(item):
            raise
        result = None  # replaced below, outside this block: no chained traceback
    except BaseException:  # pytest.skip(), pytest.fail(), an xfail: it stopped part way too
        item.stash[_CUT_SHORT] = True
        raise
    else:
        if not (swallowed and _untold(item)):
            return result
    item.stash[_TOLD] = True
    pytest.fail(_message(item, item.stash[_RECORDER]), pytrace=False)
    return result


def _untold(item: pytest.Item) -> bool:
    recorder = item.stash.get(_RECORDER, None)
    return (
        recorder is not None
        and recorder.current_failure is not None
        and not item.stash.get(_TOLD, False)
    )


def _message(item: pytest.Item, recorder: Recorder) -> str:
    from harness.errors import ReplayMiss, ReplayRefused

    failure = recorder.current_failure
    if isinstance(failure, ReplayMiss) and not isinstance(failure, ReplayRefused):
        return (
            f"harness: {_test_id(item)} made {_call_named(failure.call)} that is not in "
            f"{recorder.shown_path}: "
            f"{failure.explanation or failure}\n"
            f"record it with: {_record_command(item)}"
        )
    told = str(failure)
    return told if told.startswith("harness") else f"harness: {told}"  # not "harness: harness"


def _call_named(call: str | None) -> str:
    """``a call to URL`` for the app's call (with two SDKs, or two servers, which one),
    ``a judge call`` for harness's own."""
    if call is None:
        return "a call"
    url = call.removeprefix("app call to ")
    return f"a call to {url}" if url != call else f"a {call}"
