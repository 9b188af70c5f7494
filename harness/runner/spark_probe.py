"""Before any row goes to Spark: ask the executors what a task would find there.

A run's first Spark job is a probe: one small task per core the run will use, each
building the run's providers from their URIs and settings exactly as a task would, and
sending back, **by name only**, which key variables it can see, the base URL each provider
would call and the harness version installed there. Nothing is sent to a model.

The driver then refuses to start, in one line (exit 2), when an executor:

- cannot import harness, or runs another version of it than the driver;
- lacks a provider's key (``OPENAI_API_KEY``, ``DATABRICKS_TOKEN``, ...): keys reach
  executors through the cluster's environment (on Databricks, a secret scope referenced
  from the cluster's environment variables), never inside a task;
- would call another base URL than the driver (``OPENAI_BASE_URL`` set on one side only):
  its answers would be cached under keys a local rerun never asks for.

So a missing key fails before any row is paid for. ``python:`` and ``echo`` models run on
the driver and are not probed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, RunFailed

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.providers import Provider
    from harness.runner.spark_session import SparkHandle

__all__ = ["ProbeTarget", "probe_executors"]


@dataclass(frozen=True)
class ProbeTarget:
    """A provider as the driver sees it: what each executor is compared against."""

    uri: str
    options: dict[str, Any]
    base_url: str  # redacted

    @classmethod
    def of(cls, provider: Provider, settings: dict[str, Any]) -> ProbeTarget:
        from harness.providers._http import redact_url

        options = (settings.get("providers") or {}).get(provider.scheme, {})
        return cls(provider.uri, dict(options), redact_url(provider.base_url or ""))


def probe_executors(
    handle: SparkHandle, targets: list[ProbeTarget], n_tasks: int
) -> list[dict[str, Any]]:
    """Run the probe on ``n_tasks`` tasks; raise ConfigError naming what is missing.

    Returns the reports (one per task) when every executor can run the run's tasks.
    """
    from harness._version import __version__

    if not targets:
        return []
    reports = _run(handle, targets, n_tasks)
    versions = sorted({r["harness"] for r in reports} - {__version__})
    if versions:
        raise ConfigError(
            f"the Spark executors run harness {', '.join(versions)}, the driver {__version__}: "
            f"install harness {__version__} on the cluster"
        )
    failures = [p for r in reports for p in r["providers"] if p["error"]]
    missing = sorted({p["key_env"] for p in failures if p["missing_key"]})
    if missing:
        uris = sorted({p["uri"] for p in failures if p["missing_key"]})
        tasks = sum(1 for r in reports if any(p["missing_key"] for p in r["providers"]))
        raise ConfigError(
            f"the Spark executors cannot see {' or '.join(missing)} (needed by "
            f"{', '.join(uris)}; missing in {tasks} of {len(reports)} probe tasks): set it in "
            "the cluster's environment, e.g. from a Databricks secret scope (see "
            "docs/databricks.md); nothing was sent"
        )
    if failures:
        raise ConfigError(f"on the Spark executors: {failures[0]['error']}")
    for target in targets:
        urls = {p["base_url"] for r in reports for p in r["providers"] if p["uri"] == target.uri}
        seen = sorted(urls - {target.base_url})
        if seen:
            raise ConfigError(
                f"the Spark executors would send {target.uri} to {seen[0]}, the driver to "
                f"{target.base_url}: set the same base URL on both (the provider's *_BASE_URL "
                "variable in the cluster's environment, or base_url in harness.toml)"
            )
    return reports


def visible_keys(reports: list[dict[str, Any]]) -> list[str]:
    """The key variables every probe task could see (names only), for a progress note."""
    seen = [{p["key_env"] for p in r["providers"] if p["has_key"]} for r in reports]
    return sorted(set.intersection(*seen)) if seen else []


def _run(handle: SparkHandle, targets: list[ProbeTarget], n_tasks: int) -> list[dict[str, Any]]:
    spark = handle.session
    wanted = [(t.uri, t.options) for t in targets]

    def task(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return probe_task(wanted, batches)

    try:
        rows = spark.range(0, n_tasks, 1, n_tasks).mapInArrow(task, "report string").collect()
    except Exception as e:  # noqa: BLE001 - Py4J/Spark Connect errors have no common type
        if "No module named 'harness'" in str(e):
            raise ConfigError(
                "the Spark executors cannot import harness: install it on the cluster "
                "(the same version as here)"
            ) from None
        raise RunFailed(handle.failure("the Spark probe failed", e)) from None
    return [json.loads(row[0]) for row in rows]


def probe_task(
    wanted: list[tuple[str, dict[str, Any]]], batches: Iterable[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """On an executor: one report (JSON) per partition; never a key's value."""
    import os
    import socket

    import pyarrow as pa

    from harness._version import __version__

    if not sum(batch.num_rows for batch in batches):
        return
    report = {
        "harness": __version__,
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "providers": [_provider_report(uri, options) for uri, options in wanted],
    }
    yield pa.RecordBatch.from_pydict({"report": [json.dumps(report)]})


def _provider_report(uri: str, options: dict[str, Any]) -> dict[str, Any]:
    import re

    from harness.errors import HarnessError
    from harness.providers import resolve
    from harness.providers._http import HTTPProvider, redact_url

    report: dict[str, Any] = {"uri": uri, "key_env": None, "has_key": False}
    report.update(base_url="", missing_key=False, error=None)
    try:
        provider = resolve(uri, options)
        report["base_url"] = redact_url(provider.base_url or "")
        if isinstance(provider, HTTPProvider):
            report["key_env"] = provider.key_env_name
            report["has_key"] = provider.has_key
            provider.check_credentials()
    except HarnessError as e:  # our own messages name variables, never their values
        report["error"] = str(e)
        # A plain variable is named in the summary; anything else (a profile) by its error.
        named = re.fullmatch(r"[A-Z_][A-Z0-9_]*", report["key_env"] or "") is not None
        report["missing_key"] = named and not report["has_key"]
    return report
