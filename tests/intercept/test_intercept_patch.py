"""The hooks in httpx follow the class they wrap: a module imported again (its entries taken
out of ``sys.modules``, as pytester's in-process runs do) has new classes, wrapped in turn,
each once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.testing import FakeLLMServer

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys

import httpx

import harness
from harness.intercept import patch

base, cassette = sys.argv[1], sys.argv[2]


def ask(question):
    import httpx  # the module as sys.modules has it now

    httpx.post(
        base + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        headers={"authorization": "Bearer sk-test-patch"},
    )


def layers(method):
    count = 0
    while hasattr(method, "__wrapped__"):
        count, method = count + 1, method.__wrapped__
    return count


first_class = httpx.HTTPTransport
with harness.replay(cassette, mode="use") as first:
    ask("Capital of France?")
for name in [n for n in sys.modules if n == "httpx" or n.startswith("httpx.")]:
    del sys.modules[name]
import httpx

assert httpx.HTTPTransport is not first_class
with harness.replay(cassette, mode="use") as second:
    ask("Capital of Egypt?")
with harness.replay(cassette, mode="use"):
    pass
print(json.dumps({
    "first": first.stats["app"]["requests"],
    "second": second.stats["app"]["requests"],
    "layers": [layers(first_class.handle_request), layers(httpx.HTTPTransport.handle_request)],
    "installed": "httpx.HTTPTransport.handle_request" in patch.installed(),
}))
"""


def test_a_module_imported_again_is_wrapped_again_once(tmp_path: Path) -> None:
    with FakeLLMServer() as server:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HARNESS_HOME": str(tmp_path),
            "OPENAI_BASE_URL": server.openai_base_url,
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, server.openai_base_url, str(tmp_path / "c.jsonl")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        sent = server.stats()["requests_total"]
    # Both calls went through harness (recorded), each class wrapped by one layer.
    assert json.loads(done.stdout) == {
        "first": 1,
        "second": 1,
        "layers": [1, 1],
        "installed": True,
    }
    assert sent == 2
