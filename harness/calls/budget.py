"""Money: the ``--max-cost`` budget of a run.

The budget reserves each call's estimated cost before it is sent and raises
``BudgetExceeded`` instead of sending a call that could take spending past the limit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from harness.calls.limits import (
    DEFAULT_OUTPUT_TOKENS,
    estimate_input_tokens,
    requested_output_tokens,
)
from harness.errors import BudgetExceeded

if TYPE_CHECKING:
    from harness.model_io import Message

__all__ = ["Budget"]


class Budget:
    """Spending of a run against ``--max-cost``: reserve before a call, settle after it."""

    def __init__(self, max_cost_usd: float, spent_usd: float = 0.0) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent_usd = spent_usd  # a resumed run starts with what it spent before
        self.reserved_usd = 0.0
        self._output_seen: dict[str, int] = {}
        self._input_ratio = (0, 0)  # (real, estimated) input tokens so far
        self._waiters: list[asyncio.Future[None]] = []

    def estimate_tokens(
        self, uri: str, messages: Iterable[Message], params: Mapping[str, Any]
    ) -> tuple[int, int]:
        """(input, output) tokens to reserve for a call: calibrated on the calls seen so far."""
        estimate = estimate_input_tokens(messages)
        real, guessed = self._input_ratio
        if guessed and real > guessed:  # the estimate ran low: scale it up, never down
            estimate = math.ceil(estimate * real / guessed)
        output = requested_output_tokens(params) or self._output_seen.get(
            uri, DEFAULT_OUTPUT_TOKENS
        )
        return estimate, output

    async def reserve(self, estimate: Callable[[], float]) -> float:
        """Hold a call's estimated cost; raise BudgetExceeded if it could pass the limit.

        While calls in flight hold reservations that leave no room, wait for them to
        settle (their real cost is usually below the estimate) and estimate again; give up
        only when the call would not fit even if everything in flight cost nothing.
        """
        while True:
            cost = estimate()
            if self.spent_usd + self.reserved_usd + cost <= self.max_cost_usd:
                self.reserved_usd += cost
                return cost
            if self.spent_usd + cost > self.max_cost_usd or self.reserved_usd <= 0:
                raise BudgetExceeded(
                    f"the next call (about ${cost:.4f}) could take spending past the "
                    f"--max-cost budget of ${self.max_cost_usd:.4f} (spent "
                    f"${self.spent_usd:.4f})"
                )
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def settle(
        self,
        reserved_usd: float,
        cost_usd: float | None,
        *,
        uri: str = "",
        estimated_input: int = 0,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Release a reservation and book what the call really cost (0 for a failed call)."""
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        self.spent_usd += cost_usd or 0.0
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # room may have been freed: let them estimate again
            if not waiter.done():
                waiter.set_result(None)
        if output_tokens is not None and uri:
            # Later calls without max_tokens assume the longest answer seen so far.
            self._output_seen[uri] = max(self._output_seen.get(uri, 0), output_tokens)
        if input_tokens is not None and estimated_input:
            real, guessed = self._input_ratio
            self._input_ratio = (real + input_tokens, guessed + estimated_input)
