"""A local fake LLM HTTP server for tests and benchmarks: real wire formats, injectable faults.

``FakeLLMServer`` starts ``python -m harness.testing.fake_llm`` in its own process (an
aiohttp server, so it never competes with the client under test for the GIL) on 127.0.0.1
and a free port::

    with FakeLLMServer(latency_s=0.1, error_429_rate=0.2, retry_after_s=0.05) as server:
        httpx.post(server.openai_base_url + "/chat/completions", ...)
        assert server.stats()["faults"]["error_429"] > 0

The process exits when its parent does (it watches its stdin for EOF and the parent pid), so
a crashed test never leaks a server. From a shell: ``python -m harness.testing.fake_llm
--port 8765 --latency 0.1 --error-429-rate 0.1`` (``--help`` lists every flag).

Routes (request and response bodies as the real services send them, including errors):

- ``POST /v1/chat/completions`` OpenAI (and vLLM, llama.cpp, LM Studio, Azure-compatible):
  needs ``Authorization: Bearer <non-empty>``; accepts ``response_format``, ignores ``n``;
  errors ``{"error": {"message", "type", "param", "code"}}``. With ``"stream": true`` the
  answer is a stream of ``chat.completion.chunk`` server-sent events, one per word, ending in
  ``data: [DONE]`` (with ``stream_options.include_usage``, a usage chunk before it).
- ``POST /v1/responses`` the OpenAI Responses API: ``input`` (a string or a list of
  messages), ``instructions``, ``max_output_tokens``, ``text.format``. With ``"stream":
  true`` the answer is a Responses event stream: ``response.created``, the item's and its
  text part's ``added`` events, a ``response.output_text.delta`` per word, their ``done``
  events, then ``response.completed`` (``response.incomplete`` for an answer cut off or
  filtered, with ``incomplete_details.reason`` as in a whole answer).
- ``POST /v1/embeddings`` OpenAI embeddings: ``input`` a string or a list of strings, one
  unit vector each (``dimensions`` long, 16 by default; texts sharing words point alike),
  as floats or, with ``encoding_format: "base64"``, packed little-endian float32.
- ``POST /v1/messages`` Anthropic: needs ``x-api-key`` or a bearer token (401
  ``authentication_error``) and ``anthropic-version`` (400, as the real API), and
  ``max_tokens``; errors
  ``{"type": "error", "error": {"type", "message"}}``. With ``"stream": true``, the real
  event stream: ``message_start``, ``content_block_start``, ``ping``, a
  ``content_block_delta`` per word, ``content_block_stop``, ``message_delta``, ``message_stop``.
- ``POST /serving-endpoints/{name}/invocations`` Databricks: OpenAI chat bodies (and
  streams), bearer auth, errors ``{"error_code", "message"}``; the answer's model is ``name``
  unless the body names one.
- ``POST /api/chat`` Ollama: no auth; errors ``{"error": "..."}``. As Ollama, it streams
  unless the body says ``"stream": false``: NDJSON (``application/x-ndjson``), one
  ``{"model", "created_at", "message": {"role", "content"}, "done": false}`` line per word,
  then a last line with ``"done": true``, ``done_reason``, ``prompt_eval_count`` and
  ``eval_count``.
- ``GET /_stats``: ``requests_total``, ``by_route``, ``by_status``, ``faults`` (count per kind),
  ``unique_bodies``, ``in_flight``, ``max_in_flight``, ``config``, and ``requests``: the last
  ``max_recorded`` requests, each ``{seq, time, route, method, path, headers, body (raw text),
  fault, status}`` (``status`` is null for dropped and hung requests). Control routes are
  never counted.
- ``POST /_reset``: zero the counters and restart the fault sequence and canned replies.
- ``POST /_config`` with a JSON object of settings: change them (400 on an unknown name or a
  bad value); the fault sequence and canned replies start over, counters are kept.

Replies are deterministic. By default the text is a pure function of the conversation:

- when JSON is asked for (``response_format`` json, Ollama ``format``, or "json" in the prompt)
  and the prompt mentions "score" and/or "verdict", a judge answer
  ``{"score": N, "verdict": "yes"|"no", "rationale": "..."}`` with only the keys mentioned;
  N is drawn by hash from the first ``LOW-HIGH`` or ``LOW to HIGH`` scale that follows a
  "score" within 40 characters (else 1-5), and the verdict is ``"pass"|"fail"`` when the
  prompt mentions both words;
- else ``"Answer: <first sentence of the last user message, cut to 80 characters>"``, or
  ``{"answer": "<that sentence>"}`` when a JSON response format is asked for.

``replies`` overrides this: a list of texts is used in order (cycling), a mapping from a prompt
substring to a text answers the first key found in the prompt (system + messages) and falls
back to the default. With ``vary_with_temperature``, a request whose ``temperature`` is > 0
gets sample number k (its ``seed`` when it sends one, else how many times this exact body has
already been answered): plain answers end in ``" (sample k)"`` (for k > 0) and judge scores
are drawn from a hash that includes k, so repeated sampling is observable. ``max_tokens``
(OpenAI ``max_completion_tokens``, Responses ``max_output_tokens``, Ollama ``num_predict``)
cuts the answer to that many words with ``finish_reason`` ``"length"`` (Responses
``incomplete_details.reason`` ``"max_output_tokens"``, Ollama ``done_reason`` ``"length"``).
Tokens are whitespace-separated words; input tokens count the system prompt and every
message. Anthropic's prompt cache: the text up to the last
content block marked ``cache_control`` is counted apart from ``input_tokens``, as
``cache_creation_input_tokens`` the first time the server sees it (since it started, or its
settings last changed or were reset) and ``cache_read_input_tokens`` after.

Faults (see ``FakeLLMConfig``): each valid request waits ``latency_s`` plus up to ``jitter_s``,
then meets at most one fault, drawn with the given rates from ``random.Random(seed)`` in
arrival order, or taken from ``fault_script`` for the first requests:
``error_500``; ``error_429`` with ``Retry-After: retry_after_s`` (fractions allowed, so tests
wait milliseconds) and ``retry-after-ms``; ``timeout`` (hold the request ``hang_s`` seconds,
then close it unanswered); ``drop`` (close the connection without a response); ``malformed``
(status 200 whose body is alternately cut in half and an HTML page; on a streamed request,
alternately a stream whose middle event's JSON is cut in half, the rest following to its
end, and a stream that ends in the middle of that event). With
``fault_once_per_body`` a body (byte-identical request) meets at most one fault, so a retry
of it succeeds. The script step ``quota`` answers as an account that cannot pay: OpenAI's
429 ``insufficient_quota`` (Anthropic's 400 "credit balance is too low"); the step
``filtered`` answers with no text, stopped by the content filter (OpenAI's ``finish_reason``
``"content_filter"``, the Responses API's ``incomplete_details.reason`` ``"content_filter"``,
Anthropic's ``stop_reason`` ``"refusal"``). With
``echo_key_in_errors`` the 500 and 429 messages end with the key the request carried, as a
careless proxy's would (the tests of scrubbing use it). Refused
requests (auth, bad body) are answered at once and draw no fault.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, HarnessError
from harness.testing._fake_llm_config import FakeLLMConfig

if TYPE_CHECKING:
    import httpx

__all__ = ["FakeLLMConfig", "FakeLLMServer", "main"]

START_TIMEOUT_S = 15.0
_READY = re.compile(r"fake_llm ready http://\S+:(\d+)")
_REPO_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the harness package


class FakeLLMServer:
    """A fake LLM server in a child process; see the module docstring for its behaviour."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        error_500_rate: float = 0.0,
        error_429_rate: float = 0.0,
        retry_after_s: float = 1.0,
        timeout_rate: float = 0.0,
        hang_s: float = 30.0,
        drop_rate: float = 0.0,
        malformed_rate: float = 0.0,
        seed: int = 0,
        replies: list[str] | dict[str, str] | None = None,
        fault_once_per_body: bool = False,
        port: int = 0,
        fault_script: str | list[str] | tuple[str, ...] = (),
        script_per_body: bool = False,
        vary_with_temperature: bool = False,
        max_recorded: int = 1000,
        echo_key_in_errors: bool = False,
    ) -> None:
        self.config = FakeLLMConfig(
            latency_s=latency_s,
            jitter_s=jitter_s,
            error_500_rate=error_500_rate,
            error_429_rate=error_429_rate,
            retry_after_s=retry_after_s,
            timeout_rate=timeout_rate,
            hang_s=hang_s,
            drop_rate=drop_rate,
            malformed_rate=malformed_rate,
            seed=seed,
            replies=replies,
            fault_once_per_body=fault_once_per_body,
            fault_script=fault_script if isinstance(fault_script, str) else tuple(fault_script),
            script_per_body=script_per_body,
            vary_with_temperature=vary_with_temperature,
            max_recorded=max_recorded,
            echo_key_in_errors=echo_key_in_errors,
        )
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            # else the child's argparse usage text, from start()
            raise ConfigError(
                f"fake LLM server: port must be 0 to 65535 (0: any free one), got {port!r}"
            )
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the bound port once started)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI client takes (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The base URL an Anthropic client takes (it appends ``/v1/messages``)."""
        return self.url

    def start(self) -> FakeLLMServer:
        """Spawn the server process, wait until it listens, and learn its port."""
        if self._process is not None:
            return self
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        command = [
            sys.executable,
            "-m",
            "harness.testing.fake_llm",
            "--port",
            str(self.port),
            "--config",
            json.dumps(self.config.as_dict()),
            "--watch-stdin",
            "--parent-pid",
            str(os.getpid()),
        ]
        # stderr goes to a file: a pipe nobody reads could fill up and stall the server.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        self._process = process
        try:
            self.port = self._wait_ready(process)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> int:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=deadline - time.monotonic()):
                    line = process.stdout.readline().decode(errors="replace")
                    match = _READY.search(line)
                    if match:
                        return int(match.group(1))
                    if not line:  # EOF: the process died before it was ready
                        break
        with contextlib.suppress(subprocess.TimeoutExpired):  # alive but silent: stop() kills it
            process.wait(timeout=2)
        raise HarnessError(
            f"fake LLM server did not start (exit code {process.returncode}): {self._errors()}"
        )

    def _errors(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def wait(self) -> int | None:
        """Block until the server process exits (it serves until stopped); its exit code."""
        return self._process.wait() if self._process is not None else None

    def stop(self) -> None:
        """Stop the server process (closing its stdin makes it exit at once)."""
        process, self._process = self._process, None
        if self._client is not None:
            self._client.close()
            self._client = None
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        if self._process is None:
            raise HarnessError("fake LLM server is not running: call start() first")
        if self._client is None:
            import httpx  # here, not at the top: the server process has no use for it

            # One client for the server's life: building one (its SSL context) costs ~20 ms.
            self._client = httpx.Client(base_url=self.url, trust_env=False, timeout=10)
        response = self._client.request(method, path, json=payload)
        if response.status_code == 400:
            raise ConfigError(response.json()["error"])
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """The server's counters and recorded requests (``GET /_stats``)."""
        result: dict[str, Any] = self._control("GET", "/_stats")
        return result

    def reset(self) -> None:
        """Zero the counters; the fault sequence and canned replies start over."""
        self._control("POST", "/_reset")

    def configure(self, **changes: Any) -> None:
        """Change settings at runtime (same names as the constructor, except ``port``)."""
        self.config = self.config.replace(**changes)  # fail here, before the server does
        self._control("POST", "/_config", changes)


_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--latency", "latency_s", float, "seconds every answer waits"),
    ("--jitter", "jitter_s", float, "up to this many seconds more, drawn per request"),
    ("--error-500-rate", "error_500_rate", float, "probability of a 500"),
    ("--error-429-rate", "error_429_rate", float, "probability of a 429"),
    ("--retry-after", "retry_after_s", float, "Retry-After seconds sent with a 429"),
    ("--timeout-rate", "timeout_rate", float, "probability of holding a request unanswered"),
    ("--hang", "hang_s", float, "seconds a timed-out request is held before it is closed"),
    ("--drop-rate", "drop_rate", float, "probability of closing the connection unanswered"),
    ("--malformed-rate", "malformed_rate", float, "probability of a 200 with a broken body"),
    ("--seed", "seed", int, "seed of the fault sequence"),
    ("--max-recorded", "max_recorded", int, "requests kept for /_stats"),
)
_SWITCHES = (
    "fault_once_per_body",
    "script_per_body",
    "vary_with_temperature",
    "echo_key_in_errors",
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.testing.fake_llm",
        description=(
            "Fake LLM HTTP server (OpenAI chat, Responses and embeddings, Anthropic, "
            "Databricks, Ollama wire formats)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--config", help="settings as a JSON object; flags override it")
    for flag, name, kind, help_text in _FLAGS:
        parser.add_argument(flag, dest=name, type=kind, default=None, help=help_text)
    for name in _SWITCHES:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, action="store_true")
    parser.add_argument("--replies", help="JSON list of texts or object of substring -> text")
    parser.add_argument("--fault-script", help="comma-separated steps, e.g. error_429,ok")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    return parser.parse_args(argv)


def _config_from_args(args: argparse.Namespace) -> FakeLLMConfig:
    settings: dict[str, Any] = json.loads(args.config) if args.config else {}
    settings.update(
        {name: getattr(args, name) for _, name, _, _ in _FLAGS if getattr(args, name) is not None}
    )
    settings.update({name: True for name in _SWITCHES if getattr(args, name)})
    if args.replies:
        settings["replies"] = json.loads(args.replies)
    if args.fault_script:
        settings["fault_script"] = [s.strip() for s in args.fault_script.split(",")]
    return FakeLLMConfig.from_mapping(settings)


def _exit_with_parent(watch_stdin: bool, parent_pid: int | None) -> None:
    """Exit this process as soon as the parent closes our stdin or is gone."""

    def watch_stdin_eof() -> None:
        while sys.stdin.buffer.read(65536):
            pass
        os._exit(0)  # nothing to flush: the server keeps no state worth saving

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    if watch_stdin:
        threading.Thread(target=watch_stdin_eof, daemon=True).start()
    if parent_pid is not None:
        threading.Thread(target=watch_parent, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Run the server until killed (or until the parent goes, with the watch flags)."""
    import asyncio

    from harness.testing._fake_llm_app import serve

    args = _parse_args(argv)
    try:
        config = _config_from_args(args)
    except (ValueError, ConfigError) as exc:
        sys.exit(f"fake_llm: {exc}")

    def ready(port: int) -> None:
        print(f"fake_llm ready http://{args.host}:{port}", flush=True)
        # Watch only once listening: a failed start then exits with its own message. A parent
        # that died meanwhile is still noticed (stdin is already at EOF).
        _exit_with_parent(args.watch_stdin, args.parent_pid)

    try:
        asyncio.run(serve(config, args.host, args.port, ready))
    except OSError as exc:  # the port is taken, or the host is not ours
        sys.exit(f"fake_llm: cannot listen on {args.host}:{args.port}: {exc}")
    except KeyboardInterrupt:  # Ctrl-C from a shell is the normal stop
        # os._exit: a watcher thread blocked reading stdin would abort a normal shutdown.
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
