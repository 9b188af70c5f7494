"""Configuration and fault planning of the fake LLM server (see ``harness.testing.fake_llm``).

This module imports nothing heavy: the parent process uses ``FakeLLMConfig`` to validate
settings before it spawns the server, and the server process uses ``FaultPlanner`` to decide,
per request, which fault (if any) to inject and how long to wait first.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.wording import unknown_names

FAULT_KINDS: tuple[str, ...] = ("error_500", "error_429", "timeout", "drop", "malformed")
"""Every fault the server can inject, in the order the rates are laid out on [0, 1)."""

# "quota": the account cannot pay (OpenAI 429 insufficient_quota); "filtered": an answer the
# content filter stopped (finish_reason content_filter, stop_reason refusal). Script steps only.
SCRIPT_STEPS: tuple[str, ...] = (*FAULT_KINDS, "quota", "filtered", "ok")

Replies = list[str] | dict[str, str] | None


@dataclass(frozen=True)
class FakeLLMConfig:
    """Behaviour of the fake server; every field can be changed at runtime (``/_config``).

    Rates are probabilities in [0, 1] whose sum is at most 1: each request draws one number
    from a ``random.Random(seed)`` and falls into at most one fault. ``fault_script`` lists the
    fate of the first requests by name (``"error_429"``, ``"ok"``, ...) before the rates apply;
    with ``script_per_body`` it counts attempts of each distinct body instead of all requests.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    error_500_rate: float = 0.0
    error_429_rate: float = 0.0
    retry_after_s: float = 1.0
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int = 0
    replies: Replies = None
    fault_once_per_body: bool = False
    fault_script: str | tuple[str, ...] = ()  # a str is one step (normalised to a tuple)
    script_per_body: bool = False
    vary_with_temperature: bool = False
    max_recorded: int = 1000
    echo_key_in_errors: bool = False  # 500 and 429 messages repeat the key sent (a bad proxy)

    def __post_init__(self) -> None:
        for name in ("latency_s", "jitter_s", "retry_after_s", "hang_s"):
            value = getattr(self, name)
            # nan and inf passed `< 0`: a server whose every answer (or 429, or hang) never came
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"fake LLM server: {name} must be a number >= 0, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"fake LLM server: {name} must be a finite number, got {value!r}")
        for kind in FAULT_KINDS:
            rate = self.rate(kind)
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
                raise ConfigError(f"fake LLM server: {kind}_rate must be in [0, 1], got {rate!r}")
        if sum(self.rate(kind) for kind in FAULT_KINDS) > 1 + 1e-9:
            raise ConfigError("fake LLM server: the fault rates add up to more than 1")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"fake LLM server: seed must be an integer, got {self.seed!r}")
        if not isinstance(self.max_recorded, int) or self.max_recorded < 0:
            raise ConfigError("fake LLM server: max_recorded must be an integer >= 0")
        # Normalise the script so a JSON list, a tuple and None entries all mean the same.
        # A str is one step, not its characters ("error_429" was 9 unknown steps).
        given = (self.fault_script,) if isinstance(self.fault_script, str) else self.fault_script
        script = tuple("ok" if step is None else step for step in given)
        unknown = [step for step in script if step not in SCRIPT_STEPS]
        if unknown:
            raise ConfigError(
                f"fake LLM server: unknown fault_script step(s) {unknown}; "
                f"use {', '.join(SCRIPT_STEPS)}"
            )
        object.__setattr__(self, "fault_script", script)
        object.__setattr__(self, "replies", _check_replies(self.replies))

    def rate(self, kind: str) -> float:
        """The probability of fault ``kind`` (one of ``FAULT_KINDS``)."""
        return float(getattr(self, f"{kind}_rate"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FakeLLMConfig:
        """Build a config from a JSON-like mapping, rejecting unknown names."""
        return cls().replace(**data)

    def replace(self, **changes: Any) -> FakeLLMConfig:
        """A copy with ``changes`` applied; unknown names raise ``ConfigError``."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"fake LLM server: {unknown_names('setting', unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        data = dataclasses.asdict(self)
        data["fault_script"] = list(self.fault_script)
        return data


def _check_replies(replies: Any) -> Replies:
    if replies is None:
        return None
    if isinstance(replies, list | tuple) and all(isinstance(r, str) for r in replies):
        return list(replies) or None
    if isinstance(replies, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in replies.items()
    ):
        return dict(replies) or None
    raise ConfigError(
        "fake LLM server: replies must be a list of strings or a mapping of prompt "
        "substring to reply"
    )


@dataclass
class FaultPlan:
    """What the server does with one request: wait ``delay_s``, then inject ``fault`` or reply."""

    fault: str | None
    delay_s: float


@dataclass
class FaultPlanner:
    """Decides the fate of each request, deterministically for a given arrival order.

    Every request draws exactly two numbers (fault, jitter) so the sequence of decisions
    depends only on the seed and the number of requests before it, never on which faults
    were configured or skipped.
    """

    config: FakeLLMConfig
    _rng: random.Random = field(init=False)
    _arrivals: int = field(init=False, default=0)
    _body_arrivals: Counter[str] = field(init=False, default_factory=Counter)
    _faulted_bodies: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.restart(self.config)

    def restart(self, config: FakeLLMConfig) -> None:
        """Use ``config`` from now on and start the fault sequence from its beginning."""
        self.config = config
        self._rng = random.Random(config.seed)
        self._arrivals = 0
        self._body_arrivals.clear()
        self._faulted_bodies.clear()

    def plan(self, body_id: str) -> FaultPlan:
        """The fate of the next request, whose body hashes to ``body_id``."""
        config = self.config
        draw, jitter = self._rng.random(), self._rng.random()
        index = self._body_arrivals[body_id] if config.script_per_body else self._arrivals
        self._arrivals += 1
        self._body_arrivals[body_id] += 1
        fault: str | None = None
        if index < len(config.fault_script):
            step = config.fault_script[index]
            fault = None if step == "ok" else step
        else:
            threshold = 0.0
            for kind in FAULT_KINDS:
                threshold += config.rate(kind)
                if draw < threshold:
                    fault = kind
                    break
        if fault is not None and config.fault_once_per_body:
            if body_id in self._faulted_bodies:
                fault = None
            else:
                self._faulted_bodies.add(body_id)
        return FaultPlan(fault=fault, delay_s=config.latency_s + config.jitter_s * jitter)
