"""The aiohttp application of the fake LLM server; runs in its own process.

Only ``harness.testing.fake_llm.main`` imports this module, so the parent process never pays
for aiohttp. See ``harness.testing.fake_llm`` for the routes and behaviour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.errors import ConfigError
from harness.testing._fake_llm_config import FAULT_KINDS, FakeLLMConfig, FaultPlanner
from harness.testing._fake_llm_replies import ReplyBook
from harness.testing._fake_llm_wire import DIALECTS, Dialect, EmbeddingsDialect, RequestRejected

MAX_BODY_BYTES = 64 * 1024 * 1024
_NOT_JSON = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
# The "quota" step's message: what each service says when the account cannot pay.
_OPENAI_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_QUOTA = {
    "anthropic": (
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits."
    ),
    "databricks": "The account's usage limit is exhausted.",
    "ollama": "quota exceeded",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerState:
    """Configuration, fault planner, reply book and the counters ``/_stats`` reports."""

    def __init__(self, config: FakeLLMConfig) -> None:
        self.config = config
        self.planner = FaultPlanner(config)
        self.replies = ReplyBook(config.replies, config.vary_with_temperature)
        self.reset()

    def reset(self) -> None:
        """Zero the counters and restart the fault sequence, canned replies and samples."""
        self.seq = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults: Counter[str] = Counter({kind: 0 for kind in FAULT_KINDS})
        self.bodies: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.malformed_sent = 0
        self.recorded: deque[dict[str, Any]] = deque(maxlen=self.config.max_recorded)
        self.configure(self.config)

    def configure(self, config: FakeLLMConfig) -> None:
        """Use ``config`` from now on; the fault sequence and canned replies start over."""
        self.config = config
        self.planner.restart(config)
        self.replies.restart(config.replies, config.vary_with_temperature)
        if self.recorded.maxlen != config.max_recorded:
            self.recorded = deque(self.recorded, maxlen=config.max_recorded)

    def stats(self) -> dict[str, Any]:
        """The JSON document ``GET /_stats`` returns."""
        return {
            "requests_total": self.seq,
            "by_route": dict(self.by_route),
            "by_status": dict(self.by_status),
            "faults": dict(self.faults),
            "unique_bodies": len(self.bodies),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "requests": list(self.recorded),
            "config": self.config.as_dict(),
        }


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return web.json_response(data, status=status, headers=headers)


def _credential(request: web.Request) -> str:
    """The key a request carried: a bearer token, else Anthropic's ``x-api-key``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else request.headers.get("x-api-key", "")


def _drop(request: web.Request) -> web.Response:
    """Close the connection; aiohttp then fails quietly to write the response it is handed."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


def _format_seconds(seconds: float) -> str:
    # Retry-After is whole seconds on the real wire; fractions let tests wait milliseconds.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def build_app(state: ServerState) -> web.Application:
    """The aiohttp application: model routes behind a recording middleware, control routes."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):
            return await handler(request)
        raw = await request.read()
        state.seq += 1
        route = request.match_info.route.name or "unknown"
        state.by_route[route] += 1
        body_id = hashlib.sha256(raw).hexdigest()
        state.bodies.add(body_id)
        entry: dict[str, Any] = {
            "seq": state.seq,
            "time": time.time(),
            "route": route,
            "method": request.method,
            "path": request.path,
            "headers": dict(request.headers),
            "body": raw.decode("utf-8", errors="replace"),
            "fault": None,
            "status": None,
        }
        state.recorded.append(entry)
        request["entry"], request["body_id"] = entry, body_id
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            state.by_status[str(exc.status)] += 1
            raise
        finally:
            state.in_flight -= 1
        if entry["fault"] not in ("drop", "timeout"):
            entry["status"] = response.status
            state.by_status[str(response.status)] += 1
        return response

    def model_route(dialect: Dialect) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await _answer(state, dialect, request)

        return handle

    async def get_stats(request: web.Request) -> web.StreamResponse:
        return _json_response(state.stats())

    async def post_reset(request: web.Request) -> web.StreamResponse:
        state.reset()
        return _json_response({"ok": True})

    async def post_config(request: web.Request) -> web.StreamResponse:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ConfigError("fake LLM server: /_config takes a JSON object")
            state.configure(state.config.replace(**changes))
        except (ValueError, TypeError, ConfigError) as exc:
            return _json_response({"error": str(exc)}, status=400)
        return _json_response(state.config.as_dict())

    app = web.Application(middlewares=[record], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/v1/chat/completions", model_route(DIALECTS["openai"]), name="openai")
    app.router.add_post("/v1/responses", model_route(DIALECTS["responses"]), name="responses")
    app.router.add_post("/v1/embeddings", model_route(DIALECTS["embeddings"]), name="embeddings")
    app.router.add_post("/v1/messages", model_route(DIALECTS["anthropic"]), name="anthropic")
    app.router.add_post(
        "/serving-endpoints/{endpoint}/invocations",
        model_route(DIALECTS["databricks"]),
        name="databricks",
    )
    app.router.add_post("/api/chat", model_route(DIALECTS["ollama"]), name="ollama")
    app.router.add_get("/_stats", get_stats)
    app.router.add_post("/_reset", post_reset)
    app.router.add_post("/_config", post_config)
    return app


async def _answer(state: ServerState, dialect: Dialect, request: web.Request) -> web.StreamResponse:
    entry: dict[str, Any] = request["entry"]
    body_id: str = request["body_id"]
    endpoint = request.match_info.get("endpoint")
    # Refusals come first and fast, and draw nothing from the fault sequence, as on a real
    # service where a bad key never reaches the model.
    try:
        dialect.check_auth(request.headers)
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise RequestRejected(400, "bad_request", f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestRejected(400, "bad_request", "request body must be a JSON object")
        texts: list[str] = []
        conversation = None
        if isinstance(dialect, EmbeddingsDialect):
            texts = dialect.texts(body)
        else:
            conversation = dialect.conversation(body, endpoint)
    except RequestRejected as exc:
        return _json_response(dialect.error(exc.status, exc.kind, exc.message), exc.status)

    plan = state.planner.plan(body_id)
    entry["fault"] = plan.fault
    if plan.fault:
        state.faults[plan.fault] += 1
    if plan.fault == "timeout":
        await asyncio.sleep(state.config.hang_s)
        return _drop(request)
    if plan.delay_s:
        await asyncio.sleep(plan.delay_s)
    if plan.fault == "drop":
        return _drop(request)
    # A careless proxy's error page: the key it was sent, echoed back.
    echo = f" (sent with key {_credential(request)})" if state.config.echo_key_in_errors else ""
    if plan.fault == "error_500":
        message = "The server had an error while processing your request." + echo
        return _json_response(dialect.error(500, "error_500", message), 500)
    if plan.fault == "error_429":
        retry_after = state.config.retry_after_s
        headers = {
            "Retry-After": _format_seconds(retry_after),
            "retry-after-ms": str(int(retry_after * 1000)),
        }
        message = "Rate limit reached. Please try again later." + echo
        return _json_response(dialect.error(429, "error_429", message), 429, headers)
    if plan.fault == "quota":  # as each service says it: OpenAI 429, Anthropic 400
        status = 400 if dialect.name == "anthropic" else 429
        return _json_response(
            dialect.error(status, "quota", _QUOTA.get(dialect.name, _OPENAI_QUOTA)), status
        )

    if isinstance(dialect, EmbeddingsDialect):
        payload = json.dumps(dialect.embeddings(body, texts)).encode()
    else:
        assert conversation is not None
        reply = state.replies.reply(conversation, body_id)
        if plan.fault == "filtered":  # the content filter stopped it before a word
            reply = dataclasses.replace(reply, text="", output_tokens=0, filtered=True)
        model = body.get("model")
        if not isinstance(model, str):
            model = endpoint or "fake"
        if conversation.stream:
            events = dialect.events(reply, model, entry["seq"], conversation)
            if plan.fault == "malformed":
                state.malformed_sent += 1
                events = _broken_stream(events, cut_off=not state.malformed_sent % 2)
            return await _stream(request, events, dialect.stream_type)
        payload = json.dumps(dialect.answer(reply, model, entry["seq"])).encode()
    if plan.fault == "malformed":
        # Alternate between the two kinds a client meets: a cut-off body and an HTML page.
        state.malformed_sent += 1
        payload = payload[: len(payload) // 2] if state.malformed_sent % 2 else _NOT_JSON
    return web.Response(body=payload, content_type="application/json")


def _broken_stream(events: list[str], *, cut_off: bool) -> list[str]:
    """A stream as a client meets one broken (``malformed``): the middle event's JSON cut in
    half, the events after it following to the stream's end; or (``cut_off``) the stream
    ending in the middle of that event. SSE events and NDJSON lines alike."""
    middle = len(events) // 2
    event = events[middle]
    if cut_off:
        return [*events[:middle], event[: len(event) // 2]]
    text = event.rstrip("\n")
    start = max(text.find("{"), 0)  # after the SSE event's field names, if any
    garbled = text[: start + (len(text) - start) // 2] + event[len(text) :]
    return [*events[:middle], garbled, *events[middle + 1 :]]


async def _stream(request: web.Request, events: list[str], content_type: str) -> web.StreamResponse:
    """Send ``events`` (server-sent events, or Ollama's NDJSON lines), one write each, as a
    real stream arrives."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for event in events:
        await response.write(event.encode())
    await response.write_eof()
    return response


async def serve(
    config: FakeLLMConfig, host: str, port: int, on_ready: Callable[[int], None]
) -> None:
    """Serve forever on ``host:port`` (0 picks a free port) and call ``on_ready(bound_port)``."""
    state = ServerState(config)
    # handler_cancellation: a client that gives up on a hanging request frees its handler, so
    # ``in_flight`` reports what clients are really waiting on.
    runner = web.AppRunner(build_app(state), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    on_ready(int(runner.addresses[0][1]))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
