"""What a failed run says to do next: the step appended to its error, by kind of failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import (
    CacheCorrupt,
    DiskFull,
    EndpointUnreachable,
    EnvironmentFault,
    HarnessError,
    NotWritable,
    ReplayMiss,
    RunDeleted,
)

if TYPE_CHECKING:
    from harness.runner.config import RunResult

__all__ = ["with_next_step"]


def with_next_step(error: HarnessError, run_id: str, result: RunResult | None) -> HarnessError:
    """The error a failed run raises: what failed, then what to do about it."""
    if isinstance(error, RunDeleted):  # nothing is left to resume
        error.result = result  # type: ignore[attr-defined]
        return error
    if isinstance(error, DiskFull):
        step = f"free space and run `harness run --resume {run_id}`"
    elif isinstance(error, NotWritable):
        step = f"make it writable, then `harness run --resume {run_id}`"
    elif isinstance(error, CacheCorrupt):  # replay: it cannot call the model instead
        step = (
            f"run {run_id} failed; once the cache holds good entries again (import their "
            f"cassette again), `harness run --resume {run_id}` goes on"
        )
    elif isinstance(error, EnvironmentFault):
        step = f"fix that, then `harness run --resume {run_id}`"
    elif isinstance(error, EndpointUnreachable):
        step = f"run {run_id} stopped; `harness run --resume {run_id}` goes on once it answers"
    elif isinstance(error, ReplayMiss):
        step = f"run {run_id} failed (see `harness runs show {run_id}`)"
    else:
        step = f"run {run_id} failed; `harness run --resume {run_id}` tries again"
    raised = error.extended(step)
    raised.result = result  # type: ignore[attr-defined]
    return raised
