"""``harness dev``: tools for trying and developing harness offline."""

from __future__ import annotations

import click

from harness.cli.options import Seconds


@click.group()
def dev() -> None:
    """Tools for trying harness offline (no API key, no network).

    \b
    Example:
      harness dev fake-llm -- harness run --data qa --model openai:/gpt-4o-mini
    """


@dev.command("fake-llm", context_settings={"ignore_unknown_options": True})
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(min=0, max=65535),
    help="Port on 127.0.0.1 (0: a free one). With a COMMAND, a free one if it is taken.",
)
@click.option(
    "--latency",
    default=0.0,
    show_default=True,
    type=Seconds(),
    help="Seconds each answer waits, to watch progress and concurrency.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def fake_llm(ctx: click.Context, port: int, latency: float, command: tuple[str, ...]) -> None:
    """A fake LLM server on 127.0.0.1 speaking the OpenAI, Anthropic, Databricks and Ollama
    wire formats: deterministic answers, and judge-shaped JSON (a score or a yes/no
    verdict) when a judge asks. The same server harness's tests use.

    With `-- COMMAND ...`: start it, run COMMAND with OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
    DATABRICKS_HOST, OLLAMA_HOST and placeholder keys pointing at it, stop it, and exit
    with COMMAND's exit code. Without: serve until Ctrl-C, after printing the `export`
    line to paste into another shell.

    \b
    Examples:
      harness dev fake-llm -- harness run --data pubmedqa --model openai:/gpt-4o-mini \\
          --judge faithfulness --judge-model openai:/gpt-4o-mini --limit 20
      harness dev fake-llm --port 8765
    """
    from harness.ports import claim_port, preferred_port
    from harness.testing.dev import run_with_fake_llm, serve_fake_llm

    given = ctx.get_parameter_source("port") is not click.core.ParameterSource.DEFAULT
    if command:
        # The default port while it is free: the base URL is in every cache key, so commands
        # wrapped one after another share their cache (a rerun sends nothing, a replay hits).
        port = claim_port("127.0.0.1", port) if given else preferred_port("127.0.0.1", port)
        ctx.exit(run_with_fake_llm(command, port=port, latency_s=latency))
    serve_fake_llm(port=claim_port("127.0.0.1", port), latency_s=latency, say=click.echo)
