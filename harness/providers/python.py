"""``python:MODULE:FUNCTION``: a local callable as a model.

As the model of a run, the function receives the row as a dict (``id``, ``input``,
``expected``, ``context``, ``prompt`` — the rendered template — and every extra column)
and returns text. As a judge model it receives the rendered judge messages (a list of
``{"role", "content"}`` dicts). Async functions are awaited; plain ones run in a worker
thread so a slow function does not stall the other rows. A retriever's function
(``harness.evaluate(model_type="retriever")``, ``ids=True``) returns a list of document ids,
stored as its JSON text (``["d1", "d2"]``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import numbers
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import thread_work
from harness.errors import ModelURIError, ProviderError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider
from harness.secrets import scrub_secrets

if TYPE_CHECKING:
    import httpx


def load_callable(target: str) -> Callable[..., Any]:
    """``module.sub:function`` -> the function; the current directory is importable."""
    from harness.imports import load_object

    fn = load_object(
        target, what="python model", error=ModelURIError, form="python:MODULE:FUNCTION"
    )
    if not callable(fn):
        attr = target.partition(":")[2]
        raise ModelURIError(f"python model {target!r}: {attr!r} is not callable")
    return fn


class PythonProvider(Provider):
    scheme = "python"
    local = True

    def __init__(
        self, model: str, fn: Callable[..., Any] | None = None, *, ids: bool = False
    ) -> None:
        super().__init__(model)
        self.fn = fn if fn is not None else load_callable(model)
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.ids = ids  # a retriever: the function returns a list of document ids

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, ids: bool = False) -> PythonProvider:
        """A provider for a callable handed to ``evaluate`` directly."""
        name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
        return cls(name, fn, ids=ids)

    @property
    def uri(self) -> str:
        return f"python:{self.model}"

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> PythonProvider:
        return cls(model, ids=bool(options.get("ids")))  # ids: a retriever's run, resumed

    async def complete(
        self, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        arg: Any = (
            dict(request.row) if request.row is not None else [dict(m) for m in request.messages]
        )
        try:
            if self.is_async:
                started = time.perf_counter()
                result = await self.fn(arg)
                latency = time.perf_counter() - started
            else:
                # Timed inside the worker thread: queueing for a thread is not the model's latency.
                result, latency = await asyncio.to_thread(_timed, self.fn, arg)
        # A failing user function fails its row, not the run; sys.exit() in it too, which
        # ended harness with its code and not a word.
        except (Exception, SystemExit) as e:
            hint = ""
            if request.row is None and isinstance(e, TypeError | KeyError | AttributeError):
                # The likeliest cause: a function written for the model role, given messages.
                hint = (
                    "; as a judge model a python: function gets the judge's messages "
                    '(a list of {"role", "content"} dicts), not a row dict'
                )
            # The user's own message may hold a key of this environment (a client's config).
            said = scrub_secrets(str(e))
            raise ProviderError(f"{self.uri} raised {type(e).__name__}: {said}{hint}") from e
        if isinstance(result, ModelResponse):
            result.latency_s = result.latency_s or latency
            return result
        if self.ids and request.row is not None:
            return ModelResponse(text=self._ids_text(result), latency_s=latency)
        if result is None:
            raise ProviderError(f"{self.uri} returned None; a model must return text")
        if request.row is not None and not isinstance(result, str | numbers.Number):
            # str() of a list, a Series or an SDK's response object would be scored as the
            # answer: a function written for mlflow.evaluate returns a list for a DataFrame.
            raise ProviderError(
                f"{self.uri} returned a {type(result).__name__}, not text; a model gets one "
                "row and returns its answer as a str (from a batch predict, its first item: "
                'm.predict([row["input"]])[0])'
            )
        return ModelResponse(text=str(result), latency_s=latency)

    def _ids_text(self, result: Any) -> str:
        """A retriever's answer as it is stored: the JSON text of its list of ids (a text
        is kept as it is: MLflow's retriever metrics read it as such a list, or fail)."""
        if isinstance(result, str):
            return result
        if hasattr(result, "tolist"):  # a numpy array or a pandas Series
            result = result.tolist()
        if isinstance(result, (list, tuple)) and all(
            isinstance(i, (str, numbers.Integral)) and not isinstance(i, bool) for i in result
        ):
            ids = [i if isinstance(i, str) else int(i) for i in result]
            return json.dumps(ids, ensure_ascii=False)
        shown = repr(result)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ProviderError(
            f"{self.uri} returned {shown}; a retriever returns a list of document ids "
            "(strings or integers) for the row"
        )


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[Any, float]:
    # A stretch of work of its own: what the call path keeps open in this thread across the
    # model's SDK calls (their cache hits' read transaction) is closed as the model returns.
    with thread_work.work():
        started = time.perf_counter()
        result = fn(arg)
        latency = time.perf_counter() - started
    return result, latency
