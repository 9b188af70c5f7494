"""``python:MODULE:FUNCTION``: a local callable as a model.

As the model of a run, the function receives the row as a dict (``id``, ``input``,
``expected``, ``context``, ``prompt`` — the rendered template — and every extra column)
and returns text. As a judge model it receives the rendered judge messages (a list of
``{"role", "content"}`` dicts). Async functions are awaited; plain ones run in a worker
thread so a slow function does not stall the other rows.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ModelURIError, ProviderError
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider

if TYPE_CHECKING:
    import httpx


def load_callable(target: str) -> Callable[..., Any]:
    """``module.sub:function`` -> the function; the current directory is importable."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ModelURIError(f"python model {target!r} must look like python:MODULE:FUNCTION")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # so `python:my_app:predict` finds ./my_app.py, like `python -m`
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ModelURIError(f"python model {target!r}: no module named {e.name!r}") from None
    except Exception as e:  # the user's module failed at import: say where, not a traceback
        raise ModelURIError(
            f"python model {target!r}: importing {module_name} failed: {type(e).__name__}: {e}"
        ) from e
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ModelURIError(f"python model {target!r}: {module_name} has no {attr!r}")
    if not callable(fn):
        raise ModelURIError(f"python model {target!r}: {attr!r} is not callable")
    return fn


class PythonProvider(Provider):
    scheme = "python"
    local = True

    def __init__(self, model: str, fn: Callable[..., Any] | None = None) -> None:
        super().__init__(model)
        self.fn = fn if fn is not None else load_callable(model)
        self.is_async = inspect.iscoroutinefunction(self.fn)

    @classmethod
    def from_function(cls, fn: Callable[..., Any]) -> PythonProvider:
        """A provider for a callable handed to ``evaluate`` directly."""
        name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
        return cls(name, fn)

    @property
    def uri(self) -> str:
        return f"python:{self.model}"

    @classmethod
    def from_uri(cls, model: str, options: dict[str, Any]) -> PythonProvider:
        return cls(model)

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
        except Exception as e:  # a failing user function fails its row, not the run
            hint = ""
            if request.row is None and isinstance(e, TypeError | KeyError | AttributeError):
                # The likeliest cause: a function written for the model role, given messages.
                hint = (
                    "; as a judge model a python: function gets the judge's messages "
                    '(a list of {"role", "content"} dicts), not a row dict'
                )
            raise ProviderError(f"{self.uri} raised {type(e).__name__}: {e}{hint}") from e
        if isinstance(result, ModelResponse):
            result.latency_s = result.latency_s or latency
            return result
        if result is None:
            raise ProviderError(f"{self.uri} returned None; a model must return text")
        return ModelResponse(text=str(result), latency_s=latency)


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(arg)
    return result, time.perf_counter() - started
