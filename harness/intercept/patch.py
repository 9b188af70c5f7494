"""The hooks in httpx: where the user's HTTP calls are handed to ``harness.intercept.routing``.

The hooks wrap the methods a client hands each request to, as vcrpy, respx and
pytest-recording do: ``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request`` of ``httpx`` and of ``httpx2`` (which the
``openai`` and ``anthropic`` SDKs use from their 2.x/3.x releases on), and the aiohttp-backed
transports of ``httpx-aiohttp`` and of the SDKs' ``DefaultAioHttpClient``. A transport
passed in by the user (``httpx.MockTransport``, their own class) is not wrapped: what it
answers never reaches the network.

``install`` runs when a scope becomes active and wraps each target whose module is loaded
(``httpx`` and ``httpx2`` are imported for it when installed); it never unwraps, since
another library may have wrapped the same method since, and the wrappers pass everything
through untouched while no scope is active. Each wrapper carries the method it wraps as
``__wrapped__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from typing import Any

__all__ = ["TARGETS", "install", "installed"]

# (module, class, method, is async); the first four are imported if installed.
TARGETS: tuple[tuple[str, str, str, bool], ...] = (
    ("httpx", "HTTPTransport", "handle_request", False),
    ("httpx", "AsyncHTTPTransport", "handle_async_request", True),
    ("httpx2", "HTTPTransport", "handle_request", False),
    ("httpx2", "AsyncHTTPTransport", "handle_async_request", True),
    ("httpx_aiohttp", "AiohttpTransport", "handle_async_request", True),
    ("httpx_aiohttp.httpx2", "AiohttpTransport", "handle_async_request", True),
    ("openai._vendor.httpx_aiohttp", "AiohttpTransport", "handle_async_request", True),
    ("anthropic._vendor.httpx_aiohttp", "AiohttpTransport", "handle_async_request", True),
)
_IMPORTED_FOR_US = ("httpx", "httpx2")
_lock = threading.Lock()
_done: set[tuple[str, str, str]] = set()


def _wrap(original: Any, is_async: bool) -> Any:
    from harness.intercept.routing import route_async, route_sync

    if is_async:

        async def handle_async_request(self: Any, request: Any) -> Any:
            return await route_async(self, request, original)

        wrapper: Any = handle_async_request
    else:

        def handle_request(self: Any, request: Any) -> Any:
            return route_sync(self, request, original)

        wrapper = handle_request
    wrapper.__wrapped__ = original
    wrapper.__qualname__ = getattr(original, "__qualname__", wrapper.__qualname__)
    return wrapper


def install() -> None:
    """Wrap every target whose module is loaded and that is not wrapped yet."""
    if len(_done) == len(TARGETS):
        return
    with _lock:
        for module_name, class_name, method, is_async in TARGETS:
            target = (module_name, class_name, method)
            if target in _done:
                continue
            module = sys.modules.get(module_name)
            if module is None and module_name in _IMPORTED_FOR_US:
                if importlib.util.find_spec(module_name) is None:
                    _done.add(target)  # not installed: nothing to wrap, ever
                    continue
                module = importlib.import_module(module_name)
            cls = getattr(module, class_name, None) if module is not None else None
            original = getattr(cls, "__dict__", {}).get(method)
            if original is None:
                continue  # not loaded yet: the next scope looks again
            setattr(cls, method, _wrap(original, is_async))
            _done.add(target)


def installed() -> list[str]:
    """The targets wrapped so far, as ``module.Class.method``."""
    return sorted(".".join(target) for target in _done if _is_wrapped(target))


def _is_wrapped(target: tuple[str, str, str]) -> bool:
    module = sys.modules.get(target[0])
    cls = getattr(module, target[1], None)
    return hasattr(getattr(cls, target[2], None), "__wrapped__")
