"""What was run, in words: the facts a report lists for each run.

Everything comes from the run as stored (or as exported to a run file): its configuration,
its usage counters and its rows. Nothing depends on when the report is written.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from harness.numbers import clip, number
from harness.prompts import prompt_digest
from harness.sampling import describe_sample
from harness.store.scores import ERRORS, asked_metrics
from harness.wording import plural

if TYPE_CHECKING:
    from harness.report.rows import ReportRun

__all__ = ["Fact", "run_facts"]


@dataclass(frozen=True)
class Fact:
    """One line of "what was run": a term, its text, and optionally a block to unfold."""

    term: str
    text: str
    detail: str | None = None  # shown in a <details> block (a prompt template)
    warn: bool = False  # failed rows and the like


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "–"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _calls(counters: dict[str, Any]) -> str:
    text = (
        f"{counters.get('requests', 0):,} sent, {counters.get('cache_hits', 0):,} from cache"
        + (f", {counters['local_calls']:,} local" if counters.get("local_calls") else "")
        + f"; tokens {counters.get('input_tokens', 0):,} in / "
        f"{counters.get('output_tokens', 0):,} out"
    )
    if counters.get("errors"):
        text += f"; {counters['errors']:,} failed"
    if counters.get("cost_usd"):
        text += f"; cost ${counters['cost_usd']:.4f}"
    if counters.get("saved_cost_usd"):
        text += f"; the cache saved ${counters['saved_cost_usd']:.4f}"
    return text


def run_facts(run: ReportRun) -> list[Fact]:
    """The facts of ``run``, in the order a reader wants them."""
    info, record = run.record.info, run.record
    config = info.config
    template = run.template
    system = config.get("system")
    facts = [
        Fact("run", f"{info.run_name} ({info.run_id})" if info.run_name else info.run_id),
        Fact("model", info.model),
        Fact(
            "dataset",
            f"{info.dataset}@{info.dataset_version}"
            + (f" (digest {record.dataset_digest[:16]})" if record.dataset_digest else ""),
        ),
        Fact(
            "prompt",
            f"digest {prompt_digest(template, system)}"
            + ("" if config.get("prompt") else " (the default QA prompt)"),
            detail=template,
        ),
    ]
    if info.sample:  # --sample: which rows of the dataset, reproducibly
        facts.insert(3, Fact("sample", describe_sample(info.sample)))
    if system:
        facts.append(Fact("system prompt", clip(system, 80), detail=system))
    params = config.get("params") or {}
    facts.append(Fact("params", ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "none"))
    # Metrics given as Python objects (harness.evaluate) are named apart from the specs.
    metrics = [m for m in asked_metrics(config) if m not in set(config.get("judges") or [])]
    facts.append(Fact("metrics", ", ".join(metrics) or "the defaults"))
    judges = config.get("judges") or []
    if judges:
        versions = config.get("judge_versions") or {}
        facts.append(
            Fact("judges", ", ".join(f"{j}@{versions[j]}" if j in versions else j for j in judges))
        )
        models = sorted(set((config.get("judge_models") or {}).values()))
        model = ", ".join(models) or config.get("judge_model_uri") or config.get("judge_model")
        model = model or "–"
        samples = int(config.get("judge_samples") or 1)
        facts.append(
            Fact("judge model", model + (f", {samples} samples per row" if samples > 1 else ""))
        )
    scores = run.scores
    # A failed row: its model call failed, or a judge's answer did (as the page's "only
    # failed rows" filter, the run's own count and compare's errors have it).
    failed = int(scores.columns[ERRORS].sum())
    status = info.status + (
        f", {info.rows_done:,} of {plural(info.rows_total, 'row')}"
        if info.rows_done != info.rows_total
        else f", {plural(info.rows_done, 'row')}"
    )
    if info.reason and info.status != "finished":  # why it ended early, as `runs show` says
        status += f" (reason: {info.reason})"
    facts.append(Fact("status", status, warn=info.status != "finished"))
    if failed:
        reasons = Counter(clip(str(e), 120) for e in scores.model_errors if e is not None)
        reasons.update(clip(f"{judge}: {error}", 120) for _, judge, error in scores.judge_failures)
        text = f"{failed:,} {'row' if failed == 1 else 'rows'} failed: " + "; ".join(
            f"{n} × {reason}" for reason, n in reasons.most_common(3)
        )
        facts.append(Fact("errors", text, warn=True))
    else:
        facts.append(Fact("errors", "none"))
    usage = info.usage or {}
    for kind in ("model", "judge"):
        counters = usage.get(kind) or {}
        if any(counters.get(k) for k in ("requests", "cache_hits", "local_calls", "errors")):
            facts.append(Fact(f"{kind} calls", _calls(counters)))
    facts.append(Fact("cache mode", str(config.get("cache") or "use")))
    latency = [s for s in scores.latencies if s is not None and s == s]  # not NaN
    if latency:
        import numpy as np

        median = float(np.median(np.array(latency, dtype=float)))
        facts.append(Fact("model latency", f"median {number(median, 3)} s per row"))
    started, finished = info.created_at, info.finished_at
    when = _when(started)
    if finished is not None:
        seconds = (finished - started).total_seconds()
        if math.isfinite(seconds) and seconds >= 0:
            when += f", took {_duration(seconds)}"
    facts.append(Fact("started", when))
    if record.from_file:
        facts.append(Fact("read from", record.origin))
    return facts
