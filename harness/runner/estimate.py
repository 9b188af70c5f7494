"""``harness run --dry-run``: how many calls a run would make, and what they would cost.

Nothing is sent and nothing is written: the run is planned as ``harness run`` plans it
(same validation), each row's model request is built and looked up in the cache, and the
calls that would go out are counted with estimated tokens (see
``harness.calls.limits.estimate_tokens``) and priced. A judge call is built exactly when
the row's model answer is cached; otherwise the answer is assumed to be as long as the
model's output estimate. Answers are assumed to be ``max_tokens`` long when it is set, else
``DEFAULT_OUTPUT_TOKENS``; repair re-asks of a judge are not counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.calls.limits import (
    DEFAULT_OUTPUT_TOKENS,
    estimate_input_tokens,
    requested_output_tokens,
)
from harness.config import Home, resolve_home
from harness.wording import plural

if TYPE_CHECKING:
    from harness.cache.store import ResponseCache
    from harness.model_io import Message, ModelRequest
    from harness.providers.base import Provider
    from harness.runner.config import RunConfig


@dataclass
class CallEstimate:
    """Estimated calls of one kind (model or judge)."""

    calls: int = 0  # calls the run would make
    cached: int = 0  # of which the cache answers, for free
    local: int = 0  # of which run in process (python:, echo), for free
    input_tokens: int = 0  # of the calls that would be sent
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None when the model has no known price

    @property
    def to_send(self) -> int:
        return self.calls - self.cached - self.local

    def add(self, uri: str, input_tokens: int, output_tokens: int) -> None:
        from harness.providers.pricing import cost_usd

        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        cost = cost_usd(uri, input_tokens, output_tokens)
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "local": self.local,
            "to_send": self.to_send,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
        }


@dataclass
class RunEstimate:
    """What ``--dry-run`` reports."""

    dataset: str
    model: str
    judge_model: str | None
    rows: int
    model_calls: CallEstimate
    judge_calls: CallEstimate
    assumptions: list[str] = field(default_factory=list)
    max_cost: float | None = None  # --max-cost, the run's budget
    cache_mode: str = "use"  # --cache: in replay, a call to send is a miss that fails the run

    @property
    def cost_usd(self) -> float | None:
        costs = (self.model_calls.cost_usd, self.judge_calls.cost_usd)
        return None if None in costs else sum(c or 0.0 for c in costs)

    @property
    def over_max_cost(self) -> bool:
        """Whether the estimate is over --max-cost: the budget would stop the run."""
        cost = self.cost_usd
        return self.max_cost is not None and cost is not None and cost > self.max_cost

    @property
    def replay_misses(self) -> int:
        """Calls a ``--cache replay`` run would miss (0 in any other mode)."""
        if self.cache_mode != "replay":
            return 0
        return self.model_calls.to_send + self.judge_calls.to_send

    def as_dict(self) -> dict[str, Any]:
        cost = self.cost_usd
        return {
            "dry_run": True,
            "cache": self.cache_mode,
            "replay_misses": self.replay_misses,
            "dataset": self.dataset,
            "model": self.model,
            "judge_model": self.judge_model,
            "rows": self.rows,
            "calls": {"model": self.model_calls.as_dict(), "judge": self.judge_calls.as_dict()},
            "cost_usd": None if cost is None else round(cost, 6),
            "max_cost_usd": self.max_cost,
            "over_max_cost": self.over_max_cost,
            "assumptions": self.assumptions,
        }

    def lines(self) -> list[str]:
        """The estimate as text lines, for the CLI."""
        out = [f"dry run: {self.model} on {self.dataset}, {plural(self.rows, 'row')}; nothing sent"]
        for kind, est in (("model", self.model_calls), ("judge", self.judge_calls)):
            if not est.calls:
                continue
            cost = "unknown price" if est.cost_usd is None else f"~${est.cost_usd:.4f}"
            out.append(
                f"{kind} calls: {est.calls:,} ({est.cached:,} cached, {est.local:,} local, "
                f"{est.to_send:,} to send); ~{est.input_tokens:,} tokens in / "
                f"~{est.output_tokens:,} out; {cost}"
            )
        total = self.cost_usd
        out.append(
            "estimated cost: "
            + (
                "unknown (a model has no price; add it to [prices] in harness.toml)"
                if total is None
                else f"~${total:.4f}"
            )
        )
        if self.over_max_cost:
            out.append(
                f"warning: the estimate (~${total:.4f}) is over --max-cost ${self.max_cost:.4f}: "
                "the run would stop when it has spent that (`--resume` with a larger "
                "--max-cost goes on)"
            )
        if self.replay_misses:
            out.append(
                f"warning: {plural(self.replay_misses, 'call')} not in the cache: with --cache "
                "replay the run would fail at the first, sending nothing (it names what differs "
                "from the closest cached entry)"
            )
        out += [f"assumes {a}" for a in self.assumptions]
        return out


def estimate_run(
    config: RunConfig,
    *,
    home: str | os.PathLike[str] | Home | None = None,
    provider: Provider | None = None,
) -> RunEstimate:
    """Plan ``config`` as ``run_eval`` would and estimate its calls, tokens and cost."""
    from harness.metrics import ScoringRow
    from harness.prompts import render
    from harness.runner.plan import plan_run, preflight

    home = resolve_home(home)
    plan = plan_run(config, home, provider)
    preflight(
        config,
        home.settings,
        plan.providers,
        check_credentials=False,
        check_prices=False,
    )
    cache = _open_cache(home, config.cache)
    out_default = requested_output_tokens(config.params) or DEFAULT_OUTPUT_TOKENS
    model_est, judge_est = CallEstimate(), CallEstimate()
    try:
        for example in plan.examples:
            row = example.as_row(plan.dataset.columns)
            row["prompt"] = render(plan.template, row)
            messages: list[Message] = (
                [{"role": "system", "content": config.system}] if config.system else []
            )
            messages.append({"role": "user", "content": row["prompt"]})
            request = plan.provider.request(messages, config.params, row=row)
            answer = _count(model_est, plan.provider, request, cache, out_default)
            if not plan.judges:
                continue
            scoring = ScoringRow(
                input=example.input,
                output=answer or "",
                expected=example.expected,
                context=example.context,
                latency_s=None,
                id=example.id,
                extra=example.extra,
            )
            for judge in plan.judges:
                if judge.missing(scoring) is not None:
                    continue
                judge_provider = plan.provider_for(judge)
                params = judge.request_params(judge_provider, config.judge_samples)
                judge_out = requested_output_tokens(params) or DEFAULT_OUTPUT_TOKENS
                for sample in range(config.judge_samples):
                    judge_request = judge_provider.request(
                        judge.messages(scoring), params, sample_index=sample
                    )
                    extra = 0 if answer is not None else out_default  # the unknown answer
                    _count(
                        judge_est,
                        judge_provider,
                        judge_request,
                        cache if answer is not None else None,
                        judge_out,
                        extra,
                    )
    finally:
        if cache is not None:
            cache.close()
    assumptions = [
        f"~4 characters per token and {out_default} output tokens per model call"
        + ("" if requested_output_tokens(config.params) else " (set max_tokens to bound it)")
    ]
    if plan.judges:
        assumptions.append("one judge call per judge and sample (no repair re-asks)")
    return RunEstimate(
        plan.dataset.ref,
        plan.provider.uri,
        ", ".join(sorted({plan.provider_for(j).uri for j in plan.judges})) or None,
        len(plan.examples),
        model_est,
        judge_est,
        assumptions,
        config.max_cost,
        config.cache,
    )


def _open_cache(home: Home, mode: str) -> ResponseCache | None:
    if mode not in ("use", "replay") or not home.cache_dir.exists():
        return None  # never create a cache folder for a dry run
    from harness.cache.store import ResponseCache

    return ResponseCache(home.cache_dir, read_only=True)  # an estimate stores nothing


def _count(
    est: CallEstimate,
    provider: Provider,
    request: ModelRequest,
    cache: ResponseCache | None,
    output_tokens: int,
    extra_input: int = 0,
) -> str | None:
    """Count one call; return its cached answer's text when the cache holds it."""
    est.calls += 1
    if provider.local:
        est.local += 1
        return None
    if cache is not None:
        from harness.cache.keys import request_key
        from harness.errors import CacheCorrupt

        try:
            entry = cache.get(request_key(request))
        except CacheCorrupt:
            entry = None
        if entry is not None:
            est.cached += 1
            return entry.text
    est.add(provider.uri, estimate_input_tokens(request.messages) + extra_input, output_tokens)
    return None
