"""The pytest plugin, driven as a user drives it: a small app's test suite, recorded against the
fake server, replayed with the server stopped and no API key, changed until it misses,
re-recorded, and run under pytest-xdist."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

# pytester's in-process runs take these out of sys.modules again when they were first
# imported inside one; a C extension imported twice fails ("cannot load module more than
# once per process") in whichever test of this worker imports it next. Imported here first
# (and see imported_before_pytester).
import duckdb  # noqa: F401
import numpy  # noqa: F401
import openai
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pytest

import harness
from harness.testing import FakeLLMServer
from harness.testing.pytest_plugin import _record_command, cassette_path

pytest_plugins = ["pytester"]

SENTINEL_KEY = "sk-sentinel-plugin-7a6b5c4d3e2f"


@pytest.fixture(scope="module", autouse=True)
def imported_before_pytester(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The app's calls, made once under harness before any pytester snapshot, so that what
    they import stays imported. pytester takes out of sys.modules again whatever was first
    imported inside its test or one of its in-process runs, and the next import loads a
    second copy while the modules that were kept still hold the first: httpx2 (kept, with
    openai) maps the exception classes of the first httpcore2 it used (httpx those of
    httpcore alike), so a refused connection raised by the second one escaped it unmapped,
    as harness: [Errno 111] Connection refused without its URL or retries, here and in
    every later test of the worker (a 424 where tests/intercept expects a 502)."""
    home = tmp_path_factory.mktemp("imported-before-pytester")
    with FakeLLMServer() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", server.openai_base_url)
        env.setenv("OPENAI_API_KEY", SENTINEL_KEY)
        with harness.replay(home / "calls.jsonl", mode="use", home=home):
            client = openai.OpenAI()
            client.embeddings.create(model="text-embedding-3-small", input=["Paris"])
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Paris?"}]
            )
        server.stats()  # over httpx (and httpcore), as harness's own clients


APP = """
import openai

PROMPT = "{question}\\nAnswer from this context in a few words: {context}"
DOCUMENTS = ["Paris is the capital of France.", "The Nile flows through Egypt."]


def answer(question):
    client = openai.OpenAI()
    found = client.embeddings.create(model="text-embedding-3-small", input=[question, *DOCUMENTS])
    question_vector, *document_vectors = [item.embedding for item in found.data]
    scores = [sum(a * b for a, b in zip(question_vector, v)) for v in document_vectors]
    context = DOCUMENTS[scores.index(max(scores))]
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{"role": "user", "content": PROMPT.format(question=question, context=context)}],
    )
    return reply.choices[0].message.content
"""

TESTS = """
import pytest

import my_app

pytestmark = pytest.mark.harness


def test_france():
    assert my_app.answer("What is the capital of France?").startswith("Answer:")


def test_egypt(harness_recorder):
    assert my_app.answer("Which river flows through Egypt?").startswith("Answer:")
    calls = harness_recorder.calls["app"]
    assert calls["requests"] + calls["cache_hits"] == 2


@pytest.mark.harness
def test_a_marked_test_without_calls(harness_recorder):
    assert harness_recorder.calls["app"]["requests"] == 0

"""


# Three tests sharing one cassette.
SHARED_TESTS = """
import pytest
import my_app

@pytest.mark.harness(cassette="shared.jsonl")
@pytest.mark.parametrize("question", ["Capital of France?", "River of Egypt?", "Tallest peak?"])
def test_shared(question):
    assert my_app.answer(question)
"""


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(my_app=APP, test_app=TESTS)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    return pytester


def test_record_replay_miss_and_rerecord(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassettes = suite.path / "cassettes" / "test_app"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        missing = suite.runpytest("-p", "no:cacheprovider")
        missing.assert_outcomes(errors=3)
        missing.stdout.fnmatch_lines(
            [
                "*harness: no cassette at cassettes/test_app/test_france.jsonl: "
                "record it with python -m pytest 'test_app.py::test_france' --harness-record=new"
            ]
        )
        assert server.stats()["requests_total"] == 0  # nothing was sent to find that out

        suite.runpytest("--harness-record=new").assert_outcomes(passed=3)
        assert server.stats()["requests_total"] == 4  # an embedding and a chat call per test
        assert sorted(p.name for p in cassettes.iterdir()) == [
            "test_a_marked_test_without_calls.jsonl",  # header only: it replays too
            "test_egypt.jsonl",
            "test_france.jsonl",
        ]
        assert len(entries(cassettes / "test_france.jsonl")) == 2
        recorded = (cassettes / "test_france.jsonl").read_bytes()

    # The server is gone and there is no key: the suite replays.
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest().assert_outcomes(passed=3)
    assert (cassettes / "test_france.jsonl").read_bytes() == recorded
    assert not any(SENTINEL_KEY.encode() in p.read_bytes() for p in suite.path.rglob("*.jsonl"))

    # The app changes its prompt: the test fails, naming the difference and the command.
    app = suite.path / "my_app.py"
    app.write_text(app.read_text().replace("in a few words", "in one word"))
    changed = suite.runpytest("-k", "france")
    changed.assert_outcomes(failed=1, deselected=2)  # the other two make no such call
    changed.stdout.fnmatch_lines(
        [
            "*harness: test_app.py::test_france made a call to http://127.0.0.1:*/v1/chat/"
            "completions that is not in "
            "cassettes/test_app/test_france.jsonl: prompt differs at character 60 "
            '(message 0, user): "*in one word*" (cached: "*in a few words*")',
            "record it with: python -m pytest 'test_app.py::test_france' --harness-record=new",
        ]
    )

    # With a server up, the miss still sends nothing: in replay the network is closed.
    with FakeLLMServer() as live:
        monkeypatch.setenv("OPENAI_BASE_URL", live.openai_base_url)
        suite.runpytest("-k", "france").assert_outcomes(failed=1, deselected=2)
        assert live.stats()["requests_total"] == 0


def record_france(suite: pytest.Pytester) -> None:
    """Record (or complete) test_france's cassette against the server the env names."""
    suite.runpytest("-k", "france", "--harness-record=new").assert_outcomes(passed=1, deselected=2)


def test_all_drops_what_a_test_no_longer_uses(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = suite.path / "cassettes" / "test_app" / "test_france.jsonl"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        record_france(suite)
        app = suite.path / "my_app.py"
        app.write_text(app.read_text().replace("in a few words", "in one word"))
        record_france(suite)
        assert len(entries(cassette)) == 3  # new keeps the old chat call
        suite.runpytest("-k", "france", "--harness-record=all").assert_outcomes(
            passed=1, deselected=2
        )
        kept = entries(cassette)
        assert len(kept) == 2  # all records again and keeps only what the test used
        prompts = [e["request"]["messages"][0]["content"] for e in kept if e["request"]["messages"]]
        assert len(prompts) == 1 and "in one word" in prompts[0]


def test_xdist_workers_record_and_replay(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three tests share one cassette: under two workers they take turns and merge.
    suite.makepyfile(test_shared=SHARED_TESTS)
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        result = suite.runpytest("-n", "2", "-p", "xdist", "--harness-record=new")
        result.assert_outcomes(passed=6)
        assert server.stats()["requests_total"] == 10  # 2 calls for each of 5 tests
    assert len(entries(suite.path / "shared.jsonl")) == 6
    assert len(list((suite.path / "cassettes" / "test_app").iterdir())) == 3
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest().assert_outcomes(passed=6)  # what the workers wrote replays


EVALUATION = """
import json
import shlex
import socket
from pathlib import Path

import pandas as pd
import pytest

import harness
import my_app

DATA = pd.DataFrame(
    {"input": ["What is the capital of France?", "Which river flows through Egypt?"],
     "expected": ["Paris", "The Nile"]}
)


@pytest.mark.harness
def test_the_app_scores_well():
    result = harness.evaluate(
        model=lambda row: my_app.answer(row["input"]),
        data=DATA,
        metrics=["token_f1"],
        judges=["correctness"],
        judge_model="openai:/gpt-4o-mini",
        log_to_mlflow=False,
    )
    assert result.metrics["token_f1/count"] == 2
    assert result.result.calls["app"]["requests"] + result.result.calls["app"]["cache_hits"] == 4
    seen = Path("metrics.json")
    if seen.exists():  # a replay: the same numbers, to the last digit
        assert json.loads(seen.read_text()) == result.metrics
    seen.write_text(json.dumps(result.metrics))
"""


def test_evaluate_inside_a_marked_test_replays_its_own_calls_too(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a subprocess: DuckDB and pandas cannot be imported twice into one process, as
    # inline runs would.
    suite.makepyfile(test_evaluation=EVALUATION)
    cassette = suite.path / "cassettes" / "test_evaluation" / "test_the_app_scores_well.jsonl"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        args = ("-k", "scores_well", "-p", "no:cacheprovider")
        suite.runpytest_subprocess(*args, "--harness-record=new").assert_outcomes(
            passed=1, deselected=3
        )
        assert server.stats()["requests_total"] == 6  # 2 rows x (embedding, chat, judge)
    providers = sorted(e["request"]["provider"] for e in entries(cassette))
    assert providers == ["http"] * 4 + ["openai"] * 2  # the app's calls and the judge's
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest_subprocess(*args).assert_outcomes(passed=1, deselected=3)  # no server, no key

    # A changed prompt in the app fails the test with the call and what differs, as outside
    # evaluate, not with whatever the test met next (a row that failed has no metrics).
    app = suite.path / "my_app.py"
    app.write_text(app.read_text().replace("in a few words", "in one word"))
    changed = suite.runpytest_subprocess(*args)
    changed.assert_outcomes(failed=1, deselected=3)
    changed.stdout.fnmatch_lines(
        [
            "harness: test_evaluation.py::test_the_app_scores_well made a call to "
            f"{server.openai_base_url}/chat/completions that is not in cassettes/test_evaluation/"
            "test_the_app_scores_well.jsonl: prompt differs at character *",
            "record it with: python -m pytest 'test_evaluation.py::test_the_app_scores_well' "
            "--harness-record=new",
        ]
    )


def test_a_cassette_that_would_hold_a_key_is_not_written(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makepyfile(
        test_leak=f"""
import pandas as pd
import pytest
import harness

@pytest.mark.harness
def test_a_key_pasted_into_the_data():
    data = pd.DataFrame({{"input": ["my key is {SENTINEL_KEY}"], "expected": ["no"]}})
    harness.evaluate(model="openai:/gpt-4o-mini", data=data, metrics=["exact_match"],
                     log_to_mlflow=False)
"""
    )
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        result = suite.runpytest_subprocess("-k", "pasted", "--harness-record=new")
    result.assert_outcomes(passed=1, errors=1, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "*harness: refusing to write cassettes/test_leak/test_a_key_pasted_into_the_data.jsonl"
            ": a recorded call holds the value of OPENAI_API_KEY"
        ]
    )
    assert not (suite.path / "cassettes" / "test_leak").exists()
    assert not any(SENTINEL_KEY.encode() in p.read_bytes() for p in suite.path.rglob("*.jsonl"))


def test_where_cassettes_live(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_places="""
import pytest

@pytest.mark.harness
def test_plain():
    pass

@pytest.mark.harness
@pytest.mark.parametrize("q", ["a b", "a_b"])
def test_asked(q):
    pass

class TestGroup:
    def test_method(self):
        pass

@pytest.mark.harness(cassette="../shared/one.jsonl")
def test_named():
    pass
"""
    )
    items = {item.name: item for item in pytester.getitems(pytester.path / "test_places.py")}
    folder = pytester.path / "cassettes" / "test_places"
    assert cassette_path(items["test_plain"]) == folder / "test_plain.jsonl"
    assert cassette_path(items["test_method"]) == folder / "TestGroup.test_method.jsonl"
    spaced = cassette_path(items["test_asked[a b]"])
    underscored = cassette_path(items["test_asked[a_b]"])
    assert spaced.name.startswith("test_asked_a_b_-") and spaced.suffix == ".jsonl"
    assert spaced != underscored  # names that clean up alike still get files of their own
    named = items["test_named"]
    assert cassette_path(named, named.get_closest_marker("harness").kwargs["cassette"]) == (
        pytester.path.parent / "shared" / "one.jsonl"
    )
    pytester.makeini("[pytest]\nharness_cassette_dir = recorded/llm\n")
    moved = pytester.getitems(pytester.path / "test_places.py")[0]
    assert (
        cassette_path(moved)
        == pytester.path / "recorded" / "llm" / "test_places" / "test_plain.jsonl"
    )


def test_an_empty_cassette_dir_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    # "harness_cassette_dir =" recorded each module's cassettes beside the test files
    # (test_x/test_marked.jsonl), exit 0.
    pytester.makepyfile(
        test_x="import pytest\n\n@pytest.mark.harness\ndef test_marked():\n    pass\n"
    )
    pytester.makeini("[pytest]\nharness_cassette_dir =\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--harness-record=new")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: harness_cassette_dir is empty: give the cassettes' folder, relative to each "
            "test file's folder, or leave the setting out (cassettes)"
        ]
    )
    assert not list(pytester.path.rglob("*.jsonl"))


def test_a_nested_class_names_its_cassette_by_every_class(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nested="""
class TestOuter:
    class TestInner:
        def test_x(self):
            pass

class TestInner:
    def test_x(self):
        pass
"""
    )
    items = {item.nodeid: item for item in pytester.getitems(pytester.path / "test_nested.py")}
    folder = pytester.path / "cassettes" / "test_nested"
    assert cassette_path(items["test_nested.py::TestOuter::TestInner::test_x"]) == (
        folder / "TestOuter.TestInner.test_x.jsonl"
    )
    assert cassette_path(items["test_nested.py::TestInner::test_x"]) == (
        folder / "TestInner.test_x.jsonl"  # a top-level class's cassette keeps its name
    )


def test_marker_mistakes_are_one_line_each(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mistakes="""
import pytest

def test_unmarked(harness_recorder):
    pass

@pytest.mark.harness("shared.jsonl")
def test_positional():
    pass

@pytest.mark.harness(cassette=5)
def test_number():
    pass

@pytest.mark.harness(cassette="")
def test_empty():
    pass

@pytest.mark.harness(hosts=5)
def test_hosts_number():
    pass

@pytest.mark.harness(hosts=[""])
def test_hosts_empty():
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(errors=6)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_unmarked _*",
            "harness_recorder needs the test to be marked @pytest.mark.harness",
            "*_ ERROR at setup of test_positional _*",
            "@pytest.mark.harness takes cassette=, hosts= and allowed_hosts=, not "
            "('shared.jsonl',)",
            "*_ ERROR at setup of test_number _*",
            "harness: @pytest.mark.harness cassette= is the path of a .jsonl file, not 5",
            "*_ ERROR at setup of test_empty _*",
            "harness: @pytest.mark.harness cassette= is the path of a .jsonl file, not ''",
            "*_ ERROR at setup of test_hosts_number _*",
            "harness: @pytest.mark.harness hosts= is a host or a list of hosts, not 5",
            "*_ ERROR at setup of test_hosts_empty _*",
            "harness: @pytest.mark.harness hosts: * is not a host or a URL prefix",
        ],
        consecutive=True,
    )
    assert "Traceback" not in result.stdout.str()


def test_a_connection_off_the_machine_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_offline="""
import socket

import httpx
import pytest

@pytest.mark.harness(cassette="none.jsonl")
def test_search_api():
    try:
        httpx.get("http://192.0.2.1/search", timeout=5)
    except httpx.ConnectError:
        pass  # an app that carries on without its search results

@pytest.mark.harness(cassette="none.jsonl")
def test_telemetry():
    socket.create_connection(("192.0.2.1", 80), timeout=5)
"""
    )
    (pytester.path / "none.jsonl").write_text(
        '{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n'
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "harness replay: refused GET http://192.0.2.1/search: nothing leaves the machine *",
            "harness replay: refused a connection to 192.0.2.1:80: nothing leaves the machine *",
        ]
    )
    # The ways to let a host through that a test has come first, then harness.toml's.
    lines = result.stdout.lines
    assert (
        "harness replay: refused GET http://192.0.2.1/search: nothing leaves the machine while "
        "replaying (if this is an LLM endpoint, add its host to "
        "@pytest.mark.harness(hosts=[...]) or [intercept] hosts in harness.toml; if it is a "
        "service the app needs, to @pytest.mark.harness(allowed_hosts=[...]), "
        "--harness-allowed-hosts or [intercept] allowed_hosts in harness.toml)"
    ) in lines
    assert (
        "harness replay: refused a connection to 192.0.2.1:80: nothing leaves the machine while "
        "replaying (only loopback and allowed_hosts are open; to reach it, add it to "
        "@pytest.mark.harness(allowed_hosts=[...]), --harness-allowed-hosts or [intercept] "
        "allowed_hosts in harness.toml)"
    ) in lines


def test_allowed_hosts_let_a_service_through_and_nothing_else(pytester: pytest.Pytester) -> None:
    # 0.0.0.0 is this machine (Linux connects it here): no packet leaves it, allowed or not.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    pytester.makepyfile(
        test_service=f"""
import socket

import pytest

def connect():
    socket.create_connection(("0.0.0.0", {port}), timeout=5).close()

@pytest.mark.harness(cassette="none.jsonl", allowed_hosts=["0.0.0.0:{port}"])
def test_marked():
    connect()

@pytest.mark.harness(cassette="none.jsonl", allowed_hosts="10.0.0.*")
def test_other_host():
    connect()

@pytest.mark.harness(cassette="none.jsonl")
def test_by_option():
    connect()

@pytest.mark.harness(cassette="none.jsonl", allowed_hosts=["http://db:5432"])
def test_bad():
    pass
"""
    )
    (pytester.path / "none.jsonl").write_text(
        '{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n'
    )
    try:
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1, failed=2, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*_ ERROR at setup of test_bad _*",
                "harness: @pytest.mark.harness allowed_hosts: 'http://db:5432' is not a host: "
                "give a name or IP with an optional :port",
                "*_ test_other_host _*",
                f"harness replay: refused a connection to 0.0.0.0:{port}: nothing leaves the "
                "machine while replaying (only loopback and allowed_hosts are open; *",
                "*_ test_by_option _*",
                f"harness replay: refused a connection to 0.0.0.0:{port}: *",
            ]
        )
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--harness-allowed-hosts=10.0.0.*,0.0.0.*", "-k", "not bad"
        )
        result.assert_outcomes(passed=3)
        result = pytester.runpytest("-p", "no:cacheprovider", "--harness-allowed-hosts=db:x")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            ["ERROR: --harness-allowed-hosts: 'db:x': the port must be a number from 1 to 65535"]
        )
    finally:
        server.close()


def test_a_modules_marker_and_a_tests_own_add_up(pytester: pytest.Pytester) -> None:
    """A module's pytestmark with allowed_hosts and a test's own marker naming its cassette:
    the closest marker alone counted, so the module's allow-list was dropped and the test's
    service call refused (pytest-recording merges its markers' keywords)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    pytester.makepyfile(
        test_merged=f"""
import socket

import pytest

pytestmark = pytest.mark.harness(allowed_hosts=["0.0.0.0:{port}"])

@pytest.mark.harness(cassette="none.jsonl")
def test_own_cassette():
    socket.create_connection(("0.0.0.0", {port}), timeout=5).close()

@pytest.mark.harness(cassette="none.jsonl", allowed_hosts="10.0.0.*")
def test_both_lists():
    socket.create_connection(("0.0.0.0", {port}), timeout=5).close()
"""
    )
    (pytester.path / "none.jsonl").write_text(
        '{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n'
    )
    try:
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
    finally:
        server.close()


def test_a_damaged_cassette_says_how_to_record_it_again(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = suite.path / "cassettes" / "test_app" / "test_france.jsonl"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        record_france(suite)
        lines = cassette.read_text().splitlines(keepends=True)
        cassette.write_text(lines[0] + lines[1] + lines[2][:80] + "\n")  # cut off mid-entry
        damaged = suite.runpytest("-k", "france")
        damaged.assert_outcomes(errors=1, deselected=2)
        hint = (
            "python -m pytest 'test_app.py::test_france' --harness-record=all"  # not new: it reads
        )
        damaged.stdout.fnmatch_lines(
            [
                "harness: cassettes/test_app/test_france.jsonl line 3: not valid JSON "
                f"(truncated line?); record it again with {hint}"
            ]
        )
        suite.runpytest(*shlex.split(hint)[3:]).assert_outcomes(passed=1)
    suite.runpytest("-k", "france").assert_outcomes(passed=1, deselected=2)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            '{"entry_schema":1,"harness_cassette":2,"key_schema":1}\n',
            "is a version 2 cassette; this harness reads version 1",
        ),
        ("", "is not a harness cassette (it is empty)"),
        ("<<<<<<< HEAD\n", "is not a harness cassette (its first line is not a header)"),
    ],
)
def test_a_cassette_that_is_none_of_this_harness_names_it_as_run_and_how_to_record_it(
    pytester: pytest.Pytester, content: str, problem: str
) -> None:
    pytester.makepyfile(
        test_other="""
import pytest

@pytest.mark.harness
def test_x():
    pass
"""
    )
    cassette = pytester.path / "cassettes" / "test_other" / "test_x.jsonl"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(content)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"harness: cassettes/test_other/test_x.jsonl {problem}; record it again with "
            "python -m pytest 'test_other.py::test_x' --harness-record=all"
        ]
    )


def test_a_server_gone_while_recording_fails_the_test_with_the_connection_error(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """The failed call is told with its URL and retries, in a second in-process run too (see
    imported_before_pytester: without it, the second run said [Errno 111] Connection
    refused alone)."""
    (home / "harness.toml").write_text("[calls]\nretry_base_delay_s = 0.01\nmax_retries = 2\n")
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        record_france(suite)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the discard port: closed
    gone = suite.runpytest("-k", "france", "--harness-record=all")
    gone.assert_outcomes(failed=1, deselected=2)
    gone.stdout.fnmatch_lines(
        [
            "harness: openai:/text-embedding-3-small: connection to "
            "http://127.0.0.1:9/v1/embeddings failed: * (gave up after 3 attempts)"
        ]
    )


def test_a_recording_that_stored_nothing_leaves_no_cassette(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """Every call failed: the next replay says there is no cassette (a header-only one made
    it say the call was not in it, as if the recording had worked), and ``all`` against a
    server that is gone leaves the earlier recording whole (it was rewritten empty)."""
    (home / "harness.toml").write_text("[calls]\nretry_base_delay_s = 0.01\nmax_retries = 0\n")
    cassette = suite.path / "cassettes" / "test_app" / "test_france.jsonl"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the discard port: closed
    suite.runpytest("-k", "france", "--harness-record=new").assert_outcomes(failed=1, deselected=2)
    assert not cassette.exists()
    replayed = suite.runpytest("-k", "france")
    replayed.assert_outcomes(errors=1, deselected=2)
    replayed.stdout.fnmatch_lines(["harness: no cassette at cassettes/test_app/test_france.jsonl*"])

    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        record_france(suite)
    recorded = cassette.read_bytes()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    for mode in ("all", "new"):
        suite.runpytest("-k", "france", f"--harness-record={mode}").assert_outcomes(
            failed=1, deselected=2
        )
        assert cassette.read_bytes() == recorded


def test_a_recording_that_failed_part_way_keeps_what_the_cassette_had(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """``all`` drops the entries a test no longer uses; a test that failed part way did not
    get to use them, so they are kept (its new answers replace the old ones)."""
    (home / "harness.toml").write_text("[calls]\nretry_base_delay_s = 0.01\nmax_retries = 0\n")
    cassette = suite.path / "cassettes" / "test_app" / "test_france.jsonl"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        record_france(suite)
        before = {json.dumps(e["request"], sort_keys=True) for e in entries(cassette)}
        server.configure(fault_script=["ok", "error_500"])  # the embedding, then the chat call
        suite.runpytest("-k", "france", "--harness-record=all").assert_outcomes(
            failed=1, deselected=2
        )
    after = {json.dumps(e["request"], sort_keys=True) for e in entries(cassette)}
    assert after == before
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest("-k", "france").assert_outcomes(passed=1, deselected=2)


def test_the_record_command_runs_as_written_from_where_pytest_ran(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest run from a subfolder of its rootdir (or given --rootdir) names tests relative
    to the rootdir; the command harness prints is run from the current folder, so it names
    the test (and the cassette) from there."""
    pytester.makeini("[pytest]\n")
    tests = pytester.mkdir("tests")
    (tests / "my_app.py").write_text(APP)
    (tests / "test_app.py").write_text(TESTS)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.chdir(tests)
    args = ("-k", "france", "-p", "no:cacheprovider")
    missing = pytester.runpytest(*args)
    missing.assert_outcomes(errors=1, deselected=2)
    hint = "python -m pytest 'test_app.py::test_france' --harness-record=new"
    missing.stdout.fnmatch_lines(
        [f"harness: no cassette at cassettes/test_app/test_france.jsonl: record it with {hint}"]
    )
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        pytester.runpytest(*shlex.split(hint)[3:]).assert_outcomes(passed=1)
    assert (tests / "cassettes" / "test_app" / "test_france.jsonl").exists()

    elsewhere = pytester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    app = tests / "my_app.py"
    app.write_text(app.read_text().replace("in a few words", "in one word"))
    changed = pytester.runpytest(f"--rootdir={pytester.path}", "../tests", *args)
    changed.assert_outcomes(failed=1, deselected=2)
    hint = "python -m pytest '../tests/test_app.py::test_france' --harness-record=new"
    changed.stdout.fnmatch_lines(
        [
            "harness: ../tests/test_app.py::test_france made a call to * that is not in "
            "../tests/cassettes/test_app/test_france.jsonl: *",
            f"record it with: {hint}",
        ]
    )
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        pytester.runpytest(*shlex.split(hint)[3:]).assert_outcomes(passed=1)
    pytester.runpytest("../tests", *args).assert_outcomes(passed=1, deselected=2)


def test_the_record_command_quotes_a_test_id_with_a_quote(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quoted="""
import pytest

@pytest.mark.parametrize("q", ["it's"])
def test_asked(q):
    pass
"""
    )
    (item,) = pytester.getitems(pytester.path / "test_quoted.py")
    command = _record_command(item)
    assert shlex.split(command)[3] == "test_quoted.py::test_asked[it's]"


def test_a_miss_in_a_fixtures_teardown_fails_the_test(pytester: pytest.Pytester) -> None:
    """The cassette covers function-scoped fixtures, their teardown too: a miss there failed
    nothing when the fixture caught the SDK's error, and showed the SDK's traceback, not what
    differs and how to record it, when it did not (nor did a set-up that raised)."""
    pytester.makepyfile(
        test_teardown="""
import openai
import pytest


def summarise():
    openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise the session."}]
    )


@pytest.fixture
def quiet_summary():
    yield
    try:
        summarise()
    except openai.APIError:
        pass  # best effort


@pytest.fixture
def summary():
    yield
    summarise()


@pytest.fixture
def warmed_up():
    summarise()


@pytest.mark.harness(cassette="empty.jsonl")
def test_warm(warmed_up):
    pass


@pytest.mark.harness(cassette="empty.jsonl")
def test_quiet(quiet_summary):
    pass


@pytest.mark.harness(cassette="empty.jsonl")
def test_loud(summary):
    pass
"""
    )
    (pytester.path / "empty.jsonl").write_text(
        '{"entry_schema":1,"harness_cassette":1,"key_schema":1}\n'
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=3)  # told once each
    for phase, test in [
        ("setup", "test_warm"),
        ("teardown", "test_quiet"),
        ("teardown", "test_loud"),
    ]:
        result.stdout.fnmatch_lines(
            [
                f"*_ ERROR at {phase} of {test} _*",
                f"harness: test_teardown.py::{test} made a call to * that is not in empty.jsonl: *",
                f"record it with: python -m pytest 'test_teardown.py::{test}' --harness-record=new",
            ]
        )
    assert "APIStatusError" not in result.stdout.str()


def test_all_on_a_new_shared_cassette_keeps_every_tests_calls(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first test to write a shared cassette that did not exist yet marks it written this
    session, so the next one adds to it (it replaced it: only the last test's calls stayed)."""
    suite.makepyfile(
        test_shared="""
import pytest
import my_app

@pytest.mark.harness(cassette="shared.jsonl")
@pytest.mark.parametrize("question", ["Capital of France?", "River of Egypt?"])
def test_shared(question):
    assert my_app.answer(question)
"""
    )
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        suite.runpytest("-k", "shared", "--harness-record=all").assert_outcomes(
            passed=2, deselected=3
        )
    assert len(entries(suite.path / "shared.jsonl")) == 4  # an embedding and a chat call each
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest("-k", "shared").assert_outcomes(passed=2, deselected=3)


@pytest.mark.parametrize("workers", [[], ["-n", "2", "-p", "xdist"]], ids=["serial", "xdist"])
def test_all_on_a_shared_cassette_without_pytests_cache_keeps_every_tests_calls(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """With ``-p no:cacheprovider`` (a read-only checkout in CI), ``all`` on a shared cassette
    kept only the last test's calls: the session was recognised through pytest's cache."""
    suite.makepyfile(test_shared=SHARED_TESTS)
    shared = suite.path / "shared.jsonl"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        args = [*workers, "-p", "no:cacheprovider", "test_shared.py"]
        suite.runpytest(*args, "--harness-record=all").assert_outcomes(passed=3)
        assert len(entries(shared)) == 6  # an embedding and a chat call each
        suite.runpytest(*args, "--harness-record=all").assert_outcomes(passed=3)
        assert len(entries(shared)) == 6  # the next session replaces it again
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest("-p", "no:cacheprovider", "test_shared.py").assert_outcomes(passed=3)


def test_all_keeps_the_entries_a_test_that_stopped_part_way_did_not_get_to(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--harness-record=all`` on a test that failed (or skipped) after its first call
    dropped the entries of the calls it did not get to make, so the replay after the fix
    missed; a test that stopped before any call emptied its cassette."""
    suite.makepyfile(
        test_stops="""
import os
import pytest
import my_app

@pytest.mark.harness
def test_two_questions():
    my_app.answer("Capital of France?")
    if os.environ.get("STOP") == "fail":
        raise AssertionError("the app broke after the first question")
    if os.environ.get("STOP") == "skip":
        pytest.skip("not today")
    my_app.answer("River of Egypt?")

@pytest.mark.harness
def test_stops_first():
    if os.environ.get("STOP"):
        pytest.skip("not today")
    my_app.answer("Tallest peak?")
"""
    )
    folder = suite.path / "cassettes" / "test_stops"
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        suite.runpytest("test_stops.py", "--harness-record=new").assert_outcomes(passed=2)
        for stop, outcomes in (("fail", {"failed": 1}), ("skip", {"skipped": 1})):
            monkeypatch.setenv("STOP", stop)
            suite.runpytest(
                "test_stops.py", "-k", "two_questions", "--harness-record=all"
            ).assert_outcomes(deselected=1, **outcomes)
            assert len(entries(folder / "test_two_questions.jsonl")) == 4
        suite.runpytest("test_stops.py", "-k", "first", "--harness-record=all").assert_outcomes(
            skipped=1, deselected=1
        )
        assert len(entries(folder / "test_stops_first.jsonl")) == 2
    monkeypatch.delenv("STOP")
    monkeypatch.delenv("OPENAI_API_KEY")
    suite.runpytest("test_stops.py").assert_outcomes(passed=2)


def test_a_miss_fails_an_xfail_test_rather_than_passing_as_its_expected_failure(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An xfail test whose cassette lacked a call was reported XFAIL (strict or not), as
    pytest reports any failure of such a test, so a stale cassette went unseen; the
    harness failure now fails it, with its own message."""
    suite.makepyfile(
        test_known_bug="""
import pytest
import my_app

pytestmark = pytest.mark.harness


@pytest.mark.xfail(reason="the app answers in too many words")
def test_short():
    assert len(my_app.answer("What is the capital of France?").split()) == 1


@pytest.mark.xfail(reason="the app answers in too many words", strict=True)
def test_short_strict():
    assert len(my_app.answer("What is the capital of France?").split()) == 1
"""
    )
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        suite.runpytest("test_known_bug.py", "--harness-record=new").assert_outcomes(xfailed=2)
    suite.runpytest("test_known_bug.py").assert_outcomes(xfailed=2)  # replayed: its own bug
    app = suite.path / "my_app.py"
    app.write_text(app.read_text().replace("in a few words", "in one word"))
    changed = suite.runpytest("test_known_bug.py")
    changed.assert_outcomes(failed=2)
    changed.stdout.fnmatch_lines(["*harness: test_known_bug.py::test_short made a call to * that*"])


LOCAL_APP = """
import os

import openai


def answer(question):
    # A local server (vLLM, llama.cpp, LM Studio) named in the app's own code, not in
    # harness.toml or the environment: harness does not intercept loopback hosts by itself.
    client = openai.OpenAI(base_url=os.environ["LOCAL_LLM_URL"], api_key="sk-local")
    reply = client.chat.completions.create(
        model="local-model", messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content
"""

LOCAL_TESTS = """
import pytest

import local_app

@pytest.mark.harness
def test_local():
    assert local_app.answer("Capital of France?")
"""


def test_a_local_llm_server_the_harness_does_not_intercept_is_not_called_silently(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(local_app=LOCAL_APP, test_local=LOCAL_TESTS)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    args = ("-p", "no:cacheprovider", "-W", "always")
    with FakeLLMServer() as server:
        monkeypatch.setenv("LOCAL_LLM_URL", server.openai_base_url)
        host = server.openai_base_url.split("//")[1].split("/")[0]  # 127.0.0.1:PORT
        hosts_line = f'[intercept] hosts = ["{host}"]'
        # Recording: the call goes to the server as it is, and the user is told why the
        # cassette stays empty and what caches it.
        recorded = pytester.runpytest_subprocess(*args, "--harness-record=new")
        recorded.assert_outcomes(passed=1, warnings=1)
        said = " ".join(recorded.stdout.str().split())
        assert (
            f"LiveCallWarning: harness: POST http://{host}/v1/chat/completions was sent live, "
            f"not recorded: {host} is not an LLM endpoint harness intercepts (loopback hosts "
            f"are not, unless named); to record and replay its calls, add "
            f'@pytest.mark.harness(hosts=["{host}"]) or {hosts_line} in harness.toml; to '
            "call it live on purpose, add it to allowed_hosts"
        ) in said
        assert server.stats()["requests_total"] == 1

        # Replaying: the test fails as on a miss, and nothing is sent.
        replayed = pytester.runpytest_subprocess(*args)
        replayed.assert_outcomes(failed=1)
        said = " ".join(replayed.stdout.str().split())
        assert (
            f"harness replay: refused POST http://{host}/v1/chat/completions: {host} is not "
            "an LLM endpoint harness intercepts, and replay makes no live call (to record and "
            f'replay its calls, add @pytest.mark.harness(hosts=["{host}"]) or {hosts_line} '
            "in harness.toml; to call it live on purpose, add it to allowed_hosts)"
        ) in said
        assert server.stats()["requests_total"] == 1

        # A host allowed on purpose is called live in silence.
        allowed = pytester.runpytest_subprocess(*args, f"--harness-allowed-hosts={host}")
        allowed.assert_outcomes(passed=1)
        assert "LiveCallWarning" not in allowed.stdout.str()
        assert server.stats()["requests_total"] == 2

        # Named in the marker, its calls are recorded, and replay with the server stopped.
        pytester.makepyfile(
            test_local=LOCAL_TESTS.replace("harness\n", f"harness(hosts=[{host!r}])\n")
        )
        pytester.runpytest_subprocess(*args, "--harness-record=new").assert_outcomes(passed=1)
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
