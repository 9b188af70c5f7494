"""``harness dev fake-llm``: the fake LLM server for people trying harness without an API key.

The same server the tests use (``FakeLLMServer``: OpenAI, Anthropic, Databricks and Ollama
wire formats on 127.0.0.1, deterministic answers, judge-shaped JSON when asked for a score, a
verdict or a label such as a pairwise winner). Two ways to use it:

- ``harness dev fake-llm -- COMMAND ...`` starts it, runs COMMAND with every provider's
  base URL and a placeholder key pointing at it, stops it, and exits with COMMAND's code;
- ``harness dev fake-llm`` serves in the foreground and prints the ``export`` line for
  another shell, until Ctrl-C.

The placeholder keys replace any real ones in COMMAND's environment, so a real key is never
sent to the fake server (nor a fake one anywhere else: every base URL points at it).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Sequence

from harness.errors import ConfigError
from harness.testing.fake_llm import FakeLLMServer

FAKE_KEY = "fake-key"


def client_env(server: FakeLLMServer) -> dict[str, str]:
    """The environment that sends every provider's calls to ``server``."""
    return {
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_API_KEY": FAKE_KEY,
        "ANTHROPIC_BASE_URL": server.anthropic_base_url,
        "ANTHROPIC_API_KEY": FAKE_KEY,
        "DATABRICKS_HOST": server.url,
        "DATABRICKS_TOKEN": FAKE_KEY,
        "OLLAMA_HOST": server.url,
    }


def export_line(env: dict[str, str]) -> str:
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def run_with_fake_llm(command: Sequence[str], *, port: int = 0, latency_s: float = 0.0) -> int:
    """Run ``command`` against a fake LLM server started for it; return its exit code."""
    if not command:
        raise ConfigError("nothing to run after --; e.g. harness dev fake-llm -- harness run ...")
    with FakeLLMServer(port=port, latency_s=latency_s) as server:
        env = {**os.environ, **client_env(server)}
        try:
            return subprocess.call(list(command), env=env)
        except FileNotFoundError:
            raise ConfigError(f"no such command: {command[0]}") from None
        except PermissionError:
            raise ConfigError(f"cannot run {command[0]}: permission denied") from None


def serve_fake_llm(
    *, port: int, latency_s: float = 0.0, say: Callable[[str], None] = print
) -> None:
    """Serve in the foreground until interrupted, after saying how to point harness at it."""
    server = FakeLLMServer(port=port, latency_s=latency_s).start()
    try:
        say(
            f"fake LLM server ready at {server.url} (OpenAI, Anthropic, Databricks and Ollama "
            "wire formats); Ctrl-C stops it. In another shell:"
        )
        say("  " + export_line(client_env(server)))
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
