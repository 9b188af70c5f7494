"""The hooks in httpx: where the user's HTTP calls are handed to ``harness.intercept.routing``.

The hooks wrap the methods a client hands each request to, as vcrpy, respx and
pytest-recording do: ``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request`` of ``httpx`` and of ``httpx2`` (which the
``openai`` and ``anthropic`` SDKs use from their 2.x/3.x releases on), and the aiohttp-backed
transports of ``httpx-aiohttp`` and of the SDKs' ``DefaultAioHttpClient``. A transport
passed in by the user (``httpx.MockTransport``, their own class) is not wrapped: what it
answers never reaches the network.

``install`` runs when a scope becomes active and wraps each target whose module is loaded
(``httpx`` and ``httpx2`` are imported for it when installed) and whose class it has not
wrapped yet, keeping the classes it wrapped (a module imported again has new ones); it
never unwraps, since another library may have wrapped the same method since, and the
wrappers pass everything through untouched while no scope is active. Each wrapper carries
the method it wraps as ``__wrapped__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import weakref
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
# What was wrapped, by the class object: a module imported again (taken out of sys.modules,
# as pytester's in-process runs do) has new classes, which need wrapping too, and a class
# already wrapped is never wrapped again (a layer on a layer).
_wrapped: weakref.WeakKeyDictionary[type, set[str]] = weakref.WeakKeyDictionary()
_absent: set[str] = set()  # modules of _IMPORTED_FOR_US that are not installed


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
    for module_name, class_name, method, is_async in TARGETS:
        cls = _class(module_name, class_name)
        if cls is None or method in _wrapped.get(cls, ()):
            continue
        with _lock:
            done = _wrapped.setdefault(cls, set())
            if method in done:
                continue
            original = cls.__dict__.get(method)
            if original is None:
                continue  # not this class's own: the next scope looks again
            setattr(cls, method, _wrap(original, is_async))
            done.add(method)


def _class(module_name: str, class_name: str) -> type | None:
    """The class as its module, loaded now, holds it (None if it is not loaded)."""
    module = sys.modules.get(module_name)
    if module is None and module_name in _IMPORTED_FOR_US and module_name not in _absent:
        with _lock:
            if importlib.util.find_spec(module_name) is None:
                _absent.add(module_name)  # not installed: nothing to wrap, ever
                return None
            module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def installed() -> list[str]:
    """The targets wrapped, as ``module.Class.method``, of the modules loaded now."""
    names = []
    for module_name, class_name, method, _ in TARGETS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and method in _wrapped.get(cls, ()):
            names.append(f"{module_name}.{class_name}.{method}")
    return sorted(names)
