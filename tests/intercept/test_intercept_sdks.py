"""The real openai and anthropic SDKs inside harness.replay: recorded, then replayed with the
server stopped, sync, async and streamed; misses explained; errors never recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

import harness
from harness.errors import CacheError, ConfigError, ProviderHTTPError, ReplayMiss, ReplayRefused
from harness.testing import FakeLLMServer
from tests.intercept.conftest import SENTINEL_KEY, files_holding


def ask(client: openai.OpenAI, text: str, **params: Any) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **params
    )
    return str(reply.choices[0].message.content)


def every_kind_of_call() -> list[Any]:
    """One of each: what an app does with the two SDKs. Returns what the app would see."""
    client = openai.OpenAI()
    seen: list[Any] = [
        client.embeddings.create(model="text-embedding-3-small", input=["cats", "dogs"]),
        client.embeddings.create(
            model="text-embedding-3-small", input="x", encoding_format="base64"
        )
        .data[0]
        .embedding,  # a base64 string, as asked
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Name a colour."}]
        ),
        client.responses.create(
            model="gpt-4o-mini", input="Name a river.", instructions="Be brief."
        ),
    ]
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream a city."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    seen.append([chunk.model_dump() for chunk in stream])
    claude = anthropic.Anthropic()
    seen.append(
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi."}]
        )
    )
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Stream."}]
    ) as events:
        seen.append(["".join(events.text_stream), events.get_final_message().model_dump()])

    async def in_async_code() -> list[Any]:
        async_client = openai.AsyncOpenAI()
        reply = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Async question."}]
        )
        chunks = await async_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Async stream."}],
            stream=True,
        )
        streamed = [chunk.model_dump() async for chunk in chunks]
        async with anthropic.AsyncAnthropic().messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "A."}]
        ) as events:
            text = "".join([piece async for piece in events.text_stream])
        return [reply, streamed, text]

    seen += asyncio.run(in_async_code())
    return [item.model_dump() if hasattr(item, "model_dump") else item for item in seen]


CALLS = 10  # requests every_kind_of_call sends


def test_every_kind_of_call_replays_with_the_server_stopped(
    own_llm: FakeLLMServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassettes" / "sdks.jsonl"
    with harness.replay(cassette, mode="use") as recorder:
        recorded = every_kind_of_call()
    assert own_llm.stats()["requests_total"] == CALLS
    assert recorder.stats["app"]["requests"] == CALLS and recorder.stats["app"]["cache_hits"] == 0
    assert recorder.written == CALLS and len(recorder.keys) == CALLS
    assert recorder.stats["app"]["input_tokens"] > 0 and recorder.stats["app"]["output_tokens"] > 0
    assert recorded[4][-1]["usage"]["completion_tokens"] == 4  # the stream's own usage chunk

    with harness.replay(cassette) as recorder:  # mode="replay" is the default
        assert every_kind_of_call() == recorded
    assert own_llm.stats()["requests_total"] == CALLS  # not one more
    assert recorder.stats["app"]["cache_hits"] == CALLS and recorder.stats["app"]["requests"] == 0
    assert recorder.written is None

    own_llm.stop()
    with harness.replay(cassette, mode="replay"):
        assert every_kind_of_call() == recorded
    assert files_holding(tmp_path, SENTINEL_KEY) == []


def test_a_changed_prompt_fails_with_what_differs(llm: FakeLLMServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "What is the capital of France? Answer in one word.")
    with (
        pytest.raises(ReplayMiss) as missed,
        harness.replay(cassette),
        pytest.raises(openai.APIStatusError) as refused,
    ):
        ask(openai.OpenAI(), "What is the capital of France? Answer briefly.")
    expected = (
        'prompt differs at character 39 (message 0, user): "…l of France? Answer briefly." '
        '(cached: "…l of France? Answer in one word.")'
    )
    assert refused.value.status_code == 424
    assert expected in str(refused.value)  # what the app's code is handed
    assert missed.value.explanation == expected  # and what fails the block when it ends
    assert str(missed.value) == (  # in the block's terms: no --cache replay, no row
        f"harness.replay: the app call to {llm.openai_base_url}/chat/completions is not in "
        f'{cassette}: {expected}; record it with harness.replay("{cassette}", mode="use")'
    )
    assert llm.stats()["requests_total"] == 1


def test_a_swallowed_miss_still_fails_the_block(llm: FakeLLMServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "One")
    with (
        pytest.raises(ReplayMiss, match="prompt differs"),
        harness.replay(cassette),
        contextlib.suppress(openai.APIError),  # an app that falls back quietly
    ):
        ask(openai.OpenAI(), "Two")


def test_a_miss_the_app_lets_through_fails_the_block_as_the_miss(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """docs/testing.md: in a notebook, an app that does not catch the SDK's error still
    sees the ReplayMiss (naming the cassette and how to record), not the SDK's 424."""
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "One")
    with pytest.raises(ReplayMiss) as missed, harness.replay(cassette):
        ask(openai.OpenAI(), "Two")  # the SDK's APIStatusError leaves the block
    assert str(missed.value).startswith(f"harness.replay: the app call to {llm.openai_base_url}")
    assert f'record it with harness.replay("{cassette}", mode="use")' in str(missed.value)
    assert isinstance(missed.value.__context__, openai.APIStatusError)  # kept, not shown


def test_modes_and_the_file(llm: FakeLLMServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    with pytest.raises(CacheError, match="no cassette at .*c.jsonl: record it with"):
        harness.replay(cassette).start()
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "old")
    first = cassette.read_bytes()
    with harness.replay(cassette, mode="use") as recorder:
        ask(openai.OpenAI(), "old")
    assert recorder.written is None and cassette.read_bytes() == first  # nothing new
    with harness.replay(cassette, mode="use") as recorder:
        ask(openai.OpenAI(), "new")
    assert recorder.written == 2  # added, the old one kept
    with harness.replay(cassette, mode="refresh") as recorder:
        ask(openai.OpenAI(), "new")
    assert recorder.written == 1 and recorder.stats["app"]["requests"] == 1
    with harness.replay(cassette, mode="off") as recorder:
        ask(openai.OpenAI(), "unrecorded")
    assert recorder.written is None and recorder.stats["app"]["requests"] == 1
    entries = [json.loads(line) for line in cassette.read_text().splitlines()[1:]]
    assert [e["request"]["messages"][0]["content"] for e in entries] == ["new"]
    with pytest.raises(ConfigError, match="unknown replay mode 'none'"):
        harness.replay(cassette, mode="none")


WANTS = "harness.replay path takes a cassette file's path (a str or os.PathLike), got "


@pytest.mark.parametrize(
    ("path", "said"),
    [
        (5, WANTS + "int 5"),
        (None, WANTS + "NoneType None"),
        (b"c.jsonl", WANTS + "bytes b'c.jsonl'"),
        (
            "",
            "harness.replay path is empty (''): give the cassette file's path, such as "
            '"tests/cassettes/rag.jsonl"',
        ),
    ],
)
@pytest.mark.parametrize("helper", [harness.replay, harness.Recorder])
def test_a_cassette_path_of_another_type_or_empty_is_one_line_naming_it(
    helper: Any, path: object, said: str
) -> None:
    """5, None or bytes was a TypeError from deep in pathlib; "" was the current folder,
    refused as "a directory, not a cassette" with a command that records to "."."""
    with pytest.raises(ConfigError) as raised:
        helper(path, mode="use")
    assert str(raised.value) == said


def test_refresh_of_a_block_that_raised_keeps_the_entries_it_did_not_get_to(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A block the app's own error stopped part way did not make every call: ``refresh``
    keeps the entries it did not get to (it dropped them, and the replay after the app was
    fixed missed), and one that made no call leaves the file as it was."""
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "first")
        ask(openai.OpenAI(), "second")
    for calls in (["first"], []):
        with contextlib.suppress(RuntimeError), harness.replay(cassette, mode="refresh"):
            for text in calls:
                ask(openai.OpenAI(), text)
            raise RuntimeError("the app broke")
        with harness.replay(cassette):  # the fixed app replays both calls
            assert [ask(openai.OpenAI(), "first"), ask(openai.OpenAI(), "second")]
    before = cassette.read_bytes()
    with contextlib.suppress(RuntimeError), harness.replay(cassette, mode="refresh"):
        raise RuntimeError("the app broke before any call")
    assert cassette.read_bytes() == before


def test_a_cassette_whose_folder_cannot_be_made_is_one_error(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "cassettes").write_text("a file where the folder should be")
    cassette = suite / "cassettes" / "rag" / "c.jsonl"
    with (
        pytest.raises(CacheError) as refused,
        harness.replay(cassette, mode="use"),
    ):
        ask(openai.OpenAI(), "Recorded, but where?")
    assert str(refused.value) == (
        f"cannot write cassette {cassette}: {suite / 'cassettes'} is not a folder"
    )
    assert [p.name for p in suite.iterdir()] == ["cassettes"]  # nothing half-written


def test_a_damaged_cassette_names_the_line_and_a_way_out_that_works(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "Kept?")
    lines = cassette.read_text().splitlines(keepends=True)
    cassette.write_text(lines[0] + lines[1][:80] + "\n")  # cut off mid-entry
    hint = f'harness.replay("{cassette}", mode="refresh")'
    for mode in ("replay", "use"):
        with pytest.raises(CacheError) as damaged:
            harness.replay(cassette, mode=mode).start()
        assert str(damaged.value) == (
            f"{cassette} line 2: not valid JSON (truncated line?); record it again with {hint}"
        )
    with harness.replay(cassette, mode="refresh"):  # what the message says to do
        ask(openai.OpenAI(), "Kept?")
    with harness.replay(cassette):
        ask(openai.OpenAI(), "Kept?")


def test_an_app_asking_twice_gets_both_answers_back_in_order(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    llm.configure(vary_with_temperature=True)
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        first = [ask(openai.OpenAI(), "Pick a number.", temperature=1.0) for _ in range(3)]
    assert len(set(first)) == 3  # three samples, three entries
    with harness.replay(cassette):
        assert [ask(openai.OpenAI(), "Pick a number.", temperature=1.0) for _ in range(3)] == first


def test_a_base_url_with_a_bare_number_host_is_sent_as_the_sdk_sends_it(
    llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http://0:PORT/v1`` works with the SDK on its own; a miss harness sends for an async
    client (on harness's aiohttp client) reaches the server too, not "is not a canonical
    IPv4 address" after ten retries."""
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://0:{llm.port}/v1")

    async def ask_async() -> str:
        reply = await openai.AsyncOpenAI(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi."}]
        )
        return str(reply.choices[0].message.content)

    with harness.replay(tmp_path / "c.jsonl", mode="use") as recorder:
        assert asyncio.run(ask_async()).startswith("Answer:")
    assert recorder.stats["app"]["requests"] == 1 and recorder.written == 1
    assert llm.stats()["requests"][-1]["headers"]["Host"] == f"0:{llm.port}"


def test_errors_are_retried_handed_back_and_never_recorded(
    llm: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    (home / "harness.toml").write_text("[calls]\nretry_base_delay_s = 0.01\n")
    cassette = tmp_path / "c.jsonl"
    llm.configure(fault_script=["error_500", "ok"])
    client = openai.OpenAI(max_retries=0)
    with harness.replay(cassette, mode="use", home=home) as recorder:
        assert ask(client, "flaky").startswith("Answer:")  # harness retried, not the SDK
    assert recorder.stats["app"]["retries"] == 1 and recorder.written == 1
    recorder = harness.replay(cassette, mode="use", home=home)
    with pytest.raises(openai.BadRequestError, match="'input' must be"), recorder:
        client.embeddings.create(model="text-embedding-3-small", input=[])
    assert recorder.written is None  # the 400 is the server's answer, handed back, not kept
    assert recorder.stats["app"]["errors"] == 1
    assert llm.stats()["by_status"] == {"500": 1, "200": 1, "400": 1}


def test_an_anthropic_calls_error_names_the_anthropic_api(
    llm: FakeLLMServer, tmp_path: Path, home: Path
) -> None:
    # OPENAI_BASE_URL (…/v1) and ANTHROPIC_BASE_URL (…) are the same server here.
    (home / "harness.toml").write_text("[calls]\nmax_retries = 0\n")
    llm.configure(fault_script=["error_500"])
    client = anthropic.Anthropic(max_retries=0)
    with (
        pytest.raises(ProviderHTTPError) as failed,
        harness.replay(tmp_path / "c.jsonl", mode="use", home=home),
        pytest.raises(anthropic.InternalServerError),
    ):
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=9, messages=[{"role": "user", "content": "Hi"}]
        )
    assert str(failed.value).startswith(
        f"anthropic:/claude-haiku-4-5: HTTP 500 from {llm.url}/v1/messages"
    )


def test_other_traffic_in_replay(llm: FakeLLMServer, tmp_path: Path, service: int) -> None:
    local_service = f"http://127.0.0.1:{service}"  # loopback, no LLM endpoint
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        ask(openai.OpenAI(), "hello")
    with harness.replay(cassette):
        assert httpx.get(local_service).text == "ok"  # loopback, not an LLM endpoint: open
    with (
        pytest.raises(ReplayRefused, match="refused GET http://0.0.0.0:9/page"),
        harness.replay(cassette),
        pytest.raises(httpx.ConnectError, match="nothing leaves the machine"),
    ):
        httpx.get("http://0.0.0.0:9/page")
    with (
        pytest.raises(ReplayRefused, match="only JSON POSTs to LLM endpoints are recorded"),
        harness.replay(cassette),
        pytest.raises(openai.APIStatusError),
    ):
        openai.OpenAI().models.list()
    assert llm.stats()["requests_total"] == 1


def test_a_credential_in_a_body_is_refused_before_it_is_sent(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.jsonl"
    with (
        pytest.raises(ConfigError, match="carries the value of OPENAI_API_KEY in its URL or body"),
        harness.replay(cassette, mode="use"),
        pytest.raises(openai.APIStatusError),
    ):
        ask(openai.OpenAI(), f"my key is {SENTINEL_KEY}")
    assert llm.stats()["requests_total"] == 0
    assert files_holding(tmp_path, SENTINEL_KEY) == []


def test_a_gateway_key_header_echoed_in_the_body_is_refused(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A key in a header of the app's own naming (a gateway's ``x-portkey-api-key``), held in
    no environment variable, is a credential too: its value in the body is never recorded."""
    gateway_key = "pk-gateway-credential-31415926"
    client = openai.OpenAI(default_headers={"X-Portkey-Api-Key": gateway_key})
    with (
        pytest.raises(ConfigError, match="carries the value of the x-portkey-api-key header"),
        harness.replay(tmp_path / "c.jsonl", mode="use"),
        pytest.raises(openai.APIStatusError),
    ):
        ask(client, "hello", extra_body={"metadata": {"gateway": gateway_key}})
    assert llm.stats()["requests_total"] == 0
    assert files_holding(tmp_path, gateway_key) == []
    with harness.replay(tmp_path / "c.jsonl", mode="use"):  # the header alone is fine
        ask(client, "hello")
    assert files_holding(tmp_path, gateway_key) == []


def test_a_cassette_saved_with_a_byte_order_mark_replays(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A cassette hand-edited in an editor that writes a UTF-8 byte-order mark was "not a
    harness cassette (its first line is not a header)"."""
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use"):
        first = ask(openai.OpenAI(), "hello")
    cassette.write_bytes(b"\xef\xbb\xbf" + cassette.read_bytes())
    with harness.replay(cassette) as recorder:
        assert ask(openai.OpenAI(), "hello") == first
    assert recorder.stats["app"]["cache_hits"] == 1
    assert llm.stats()["requests_total"] == 1


def test_one_host_given_as_a_string_is_that_host(llm: FakeLLMServer, tmp_path: Path) -> None:
    """``hosts="localhost:PORT"`` was read as its characters ("l", "o", ...): the app's calls
    to it went out live, uncached, and the cassette stayed empty."""
    port = llm.openai_base_url.split(":")[2].split("/")[0]
    client = openai.OpenAI(base_url=f"http://localhost:{port}/v1")  # not OPENAI_BASE_URL's host
    cassette = tmp_path / "c.jsonl"
    with harness.replay(cassette, mode="use", hosts=f"localhost:{port}") as recorder:
        ask(client, "hello")
    assert recorder.written == 1
    with harness.replay(cassette, hosts=f"localhost:{port}"):  # from the cassette
        ask(client, "hello")
    assert llm.stats()["requests_total"] == 1
    with pytest.raises(ConfigError, match=r"hosts must be a list of hosts, .* not 5"):
        harness.replay(cassette, hosts=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["use", "refresh", "off"])
def test_a_body_no_key_can_hold_is_refused_unsent(
    llm: FakeLLMServer, tmp_path: Path, mode: str
) -> None:
    """NaN is JSON to Python's reader but to no key: the client gets harness's refusal (not an
    exception from inside its transport) and the block fails with the reason."""
    answers: list[httpx.Response] = []
    body = b'{"model": "gpt-4o-mini", "messages": [], "temperature": NaN}'
    with (
        pytest.raises(ConfigError, match="parameter 'temperature' is nan, which JSON cannot hold"),
        harness.replay(tmp_path / "c.jsonl", mode=mode),
    ):
        answers.append(httpx.post(f"{llm.openai_base_url}/chat/completions", content=body))
    assert [a.status_code for a in answers] == [424]
    assert answers[0].headers["x-should-retry"] == "false"
    assert llm.stats()["requests_total"] == 0


def test_threads_the_app_starts_use_the_blocks_cassette(llm: FakeLLMServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    questions = [f"Question {i}." for i in range(6)]

    def fan_out() -> list[str]:
        client = openai.OpenAI()
        with ThreadPoolExecutor(3) as pool:  # its threads start with an empty context
            return list(pool.map(lambda q: ask(client, q), questions))

    with harness.replay(cassette, mode="use") as recorder:
        answers = fan_out()
    assert recorder.written == 6 and llm.stats()["requests_total"] == 6
    with harness.replay(cassette) as recorder:
        assert fan_out() == answers
    assert recorder.stats["app"]["cache_hits"] == 6 and llm.stats()["requests_total"] == 6


def test_a_changed_tool_call_in_an_agents_history_shows_where_it_differs(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """An agent's second turn carries the first's tool call; a changed call id (or argument)
    deep in it is shown around the difference, not by the start both share."""

    def second_turn(call_id: str) -> None:
        call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "C"})}
        openai.OpenAI().chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": call_id, "type": "function", "function": call}],
                },
                {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
            ],
        )

    cassette = tmp_path / "agent.jsonl"
    with harness.replay(cassette, mode="use"):
        second_turn("call_abc")
    with pytest.raises(ReplayMiss) as missed, harness.replay(cassette):
        second_turn("call_xyz")
    assert missed.value.explanation == (
        'message 1 tool_calls differs at character 107: "…ther\\"}, \\"id\\": \\"call_xyz\\", '
        '\\"type\\": \\"function\\"}]" (cached: "…ther\\"}, \\"id\\": \\"call_abc\\", '
        '\\"type\\": \\"function\\"}]"); message 2 tool_call_id: "call_xyz" '
        '(cached: "call_abc")'
    )
    assert llm.stats()["requests_total"] == 1
