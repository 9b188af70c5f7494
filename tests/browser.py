"""Headless Chromium for the tests of what a person looks at (the MLflow UI, the report).

Chromium is Debian's ``chromium`` package. ``find_chromium`` skips a test without it,
unless ``HARNESS_REQUIRE_CHROMIUM=1`` (CI), where a missing browser is a failure.

Two ways to drive it:

- ``render``: load a URL, let its scripts run (virtual time), and return the DOM as text
  (``--dump-dom``), optionally with a screenshot: enough for a page that only displays;
- ``Browser``: the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON
  messages on file descriptors 3 and 4, no port to find or to leave open), for a page a
  test must use: type into it, read it back with JavaScript, record every request it
  makes, take a screenshot of a given size.

Both keep Chromium off the network: no background services, component updates, sync or
QUIC, and every host name resolves to nothing, so a page that tried to fetch anything from
the internet would fail, and ``Browser`` records the attempt.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser")
OFFLINE_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)  # fmt: skip


def find_chromium() -> str:
    """Chromium's path, or a skip (a failure with ``HARNESS_REQUIRE_CHROMIUM=1``)."""
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    reason = "chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("HARNESS_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}; HARNESS_REQUIRE_CHROMIUM=1 requires it")
    pytest.skip(reason)


def render(
    chromium: str,
    url: str,
    profile: Path,
    screenshot: Path | None = None,
    window: tuple[int, int] = (1400, 1000),
) -> str:
    """The DOM of ``url`` after Chromium ran its scripts (and a screenshot, if asked)."""
    args = [
        chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000",
        f"--window-size={window[0]},{window[1]}",
    ]  # fmt: skip
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    done = subprocess.run([*args, "--dump-dom", url], capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode("utf-8")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


class BrowserError(AssertionError):
    """Chromium answered a DevTools command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium and one page in it, driven over the DevTools protocol.

    ``requests`` lists every request the page started (``Network.requestWillBeSent``), in
    order, as ``(url, resource type)``, so a test can assert that a page fetched nothing.
    """

    def __init__(self, chromium: str, profile: Path, window: tuple[int, int] = (1400, 1000)):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # the child reads commands on fd 3 and answers on fd 4
            commands, answers = os.dup(to_browser_r), os.dup(from_browser_w)  # either may be 3
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        self._process = subprocess.Popen(
            [chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             f"--window-size={window[0]},{window[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, pass_fds=(3, 4),  # kept open by the child, after fds() made them
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.window = window
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            self.page(f"{domain}.enable")
        # Offline as far as the page can tell, besides host names that resolve to nothing.
        self.page("Network.emulateNetworkConditions", offline=True, latency=0,
                  downloadThroughput=-1, uploadThroughput=-1)  # fmt: skip
        self.page("Emulation.setDeviceMetricsOverride", width=window[0], height=window[1],
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):  # it may be gone already
            self.call("Browser.close", timeout=10)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        found = json.loads(message)
        if "method" in found:  # an event
            self.events.append(found)
            if found["method"] == "Network.requestWillBeSent":
                request = found["params"]
                self.requests.append((request["request"]["url"], request.get("type", "")))
        return found

    def call(self, method: str, *, session: str | None = None, timeout: float = 60,
             **params: Any) -> dict[str, Any]:  # fmt: skip
        """Send a DevTools command and return its result."""
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page (its session)."""
        return self.call(method, session=self._session, **params)

    def wait_for_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event["method"] == method:
                self.events.remove(event)
                return event
        while True:
            message = self._read(deadline)
            if message.get("method") == method:
                self.events.remove(message)
                return message

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self.events.clear()
        self.page("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", session=self._session, timeout=timeout, expression=expression,
            returnByValue=True, awaitPromise=True,
        )  # fmt: skip
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 60) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"{expression!r} stayed falsy for {timeout:.0f} s")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as a user would (input events included)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.page("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)  # fmt: skip

    def screenshot(self, path: Path, *, full_height: int | None = None) -> Path:
        """A PNG of the viewport (``full_height``: of that much of the page, from the top)."""
        params: dict[str, Any] = {"format": "png"}
        if full_height is not None:
            params["clip"] = {"x": 0, "y": 0, "width": self.window[0], "height": full_height,
                              "scale": 1}  # fmt: skip
            params["captureBeyondViewport"] = True
        data = self.page("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
