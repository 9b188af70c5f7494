"""Rate limiters on a fake clock, the budget's reservations, and the token estimates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.calls.budget import Budget
from harness.calls.limits import (
    RateLimiter,
    RateLimits,
    estimate_input_tokens,
    estimate_tokens,
    requested_output_tokens,
)
from harness.errors import BudgetExceeded, ConfigError
from harness.providers import resolve


class FakeClock:
    """Time that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_requests_per_minute_space_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=120, clock=clock, sleep=clock.sleep)

    async def five() -> list[float]:
        sent = []
        for _ in range(5):
            await limiter.acquire(0)
            sent.append(clock.now)
        return sent

    sent = asyncio.run(five())
    # A bucket of one second's worth (2 requests), then one every half second.
    assert sent == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])


def test_tokens_per_minute_and_settling_with_real_usage() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)  # 100/s

    async def go() -> None:
        await limiter.acquire(100)  # the whole bucket
        limiter.settle(100, 300)  # it really used 300: 200 tokens of debt
        await limiter.acquire(50)

    asyncio.run(go())
    assert clock.now == pytest.approx(2.5)  # repay 200, then gather 50, at 100 a second


def test_a_request_larger_than_the_bucket_still_goes_out() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, clock=clock, sleep=clock.sleep)  # 10/s

    async def go() -> None:
        await limiter.acquire(500)
        await limiter.acquire(5)

    asyncio.run(go())
    assert clock.now == pytest.approx(49.5)  # the first waits for nothing; the debt is repaid


def test_limits_per_scheme_with_model_overrides() -> None:
    limits = RateLimits(
        {
            "providers": {
                "openai": {
                    "requests_per_minute": 500,
                    "tokens_per_minute": 10_000,
                    "base_url": "http://x",
                }
            },
            "rate_limits": {"openai:/gpt-4o": {"requests_per_minute": 50}},
        }
    )
    mini, big = resolve("openai:/gpt-4o-mini"), resolve("openai:/gpt-4o")
    assert limits.limits_for(mini) == {"requests_per_minute": 500, "tokens_per_minute": 10_000}
    assert limits.limits_for(big) == {"requests_per_minute": 50, "tokens_per_minute": 10_000}
    assert limits.limiter(mini) is limits.limiter(resolve("openai:/gpt-4o-mini"))
    assert limits.limiter(mini) is not limits.limiter(big)
    assert limits.limiter(resolve("ollama:/llama3")) is None
    with pytest.raises(ConfigError, match="requests_per_minute must be a positive number"):
        RateLimits({"providers": {"openai": {"requests_per_minute": 0}}})


def test_budget_waits_for_calls_in_flight_before_giving_up() -> None:
    budget = Budget(1.0)

    async def go() -> list[str]:
        events = []
        first = await budget.reserve(lambda: 0.6)

        async def second() -> None:
            await budget.reserve(lambda: 0.6)  # no room while the first holds 0.6
            events.append("second reserved")

        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append("first settles")
        budget.settle(first, 0.2)  # it cost less than feared: room for the second
        await task
        with pytest.raises(BudgetExceeded, match=r"--max-cost budget of \$1.0000"):
            await budget.reserve(lambda: 0.9)  # too much even if the 0.6 held cost nothing
        budget.settle(0.6, 0.6)
        with pytest.raises(BudgetExceeded):
            await budget.reserve(lambda: 0.3)  # 0.8 spent, nothing in flight: no room
        return events

    assert asyncio.run(asyncio.wait_for(go(), 10)) == ["first settles", "second reserved"]
    assert budget.spent_usd == pytest.approx(0.8)


def test_budget_estimates_calibrate_on_real_usage() -> None:
    budget = Budget(1.0)
    messages = [{"role": "user", "content": "word " * 100}]
    guessed_in, guessed_out = budget.estimate_tokens("openai:/m", messages, {})
    assert guessed_out == 256
    budget.settle(
        0.0,
        0.0,
        uri="openai:/m",
        estimated_input=guessed_in,
        input_tokens=guessed_in * 2,
        output_tokens=40,
    )
    again_in, again_out = budget.estimate_tokens("openai:/m", messages, {})
    assert (again_in, again_out) == (guessed_in * 2, 40)
    assert budget.estimate_tokens("openai:/m", messages, {"max_tokens": 7})[1] == 7


def test_token_estimates() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("a b c d e f g h i j") == 13  # many short words
    assert estimate_input_tokens([{"role": "user", "content": "abcd" * 10}]) == 14
    assert requested_output_tokens({"max_completion_tokens": 9.0}) == 9
    assert requested_output_tokens({"max_tokens": True}) is None


def test_requests_per_minute_in_harness_toml_paces_a_real_run(
    home: Path, qa_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run on the fake server, with room for 8 calls at once: harness.toml's 240 requests
    a minute (4 a second, a burst of one second's worth) spreads the 20 calls out, as the
    server's arrival times show."""
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.testing import FakeLLMServer

    rate, burst = 240 / 60, 4
    (home / "harness.toml").write_text("[providers.openai]\nrequests_per_minute = 240\n")
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        runner = CliRunner()
        assert runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"]).exit_code == 0
        done = runner.invoke(
            cli,
            ["run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match",
             "--concurrency", "8", "--no-mlflow"],
        )  # fmt: skip
        assert done.exit_code == 0, done.stderr
        arrivals = sorted(r["time"] for r in server.stats()["requests"])
    assert len(arrivals) == 20
    # A burst, then one every 1/rate seconds: the 20 arrivals span at least (20 - burst - 1)
    # / rate seconds (5% slack for the server's clock). Unpaced, 8 at a time, they take
    # milliseconds. (Single gaps are not compared: a first connection can arrive late.)
    span = arrivals[-1] - arrivals[0]
    assert span >= (20 - burst - 1) / rate * 0.95, [round(a - arrivals[0], 3) for a in arrivals]
