"""Planning a run: everything resolved and checked before anything is written.

``plan_run`` turns a ``RunConfig`` into a ``RunPlan`` (the dataset and its examples, the
provider, the template, the metrics and judges), so a typo in a metric name or template
leaves nothing behind; ``preflight`` checks what the calls need (keys, prices, rate-limit
settings, no credential in ``--param``) before the run is created.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import Home
from harness.errors import ConfigError, DataError, MetricError
from harness.metrics import DEFAULT_METRICS, Metric, get_metric
from harness.prompts import check_template, prompt_digest, run_template
from harness.providers import Provider, resolve
from harness.runner.config import RunConfig
from harness.store import datasets as dataset_store
from harness.store.datasets import DatasetInfo, Example

__all__ = ["SECRET_PARAMS", "RunPlan", "plan_run", "preflight"]

# Parameters that could carry a credential into the run's stored config.
SECRET_PARAMS = frozenset({"api_key", "token", "headers", "extra_headers"})


@dataclass
class RunPlan:
    """A validated run: everything resolved, nothing written yet."""

    config: RunConfig
    home: Home
    dataset: DatasetInfo
    examples: list[Example]
    provider: Provider
    template: str
    metrics: list[Metric]
    judges: list[Any]
    judge_provider: Provider | None

    def stored_config(self) -> dict[str, Any]:
        """The configuration the run's row keeps: the options and, for a run with judges,
        what they resolved to: the judge model's URI (``--judge-model`` or harness.toml),
        each judge's version (a judge whose prompt or scale changed is another judge) and
        its answers from worst to best (what a report draws its bars over)."""
        stored = self.config.as_dict()
        if self.judges and self.judge_provider is not None:
            stored["judge_model_uri"] = self.judge_provider.uri
            stored["judge_versions"] = {j.name: j.version for j in self.judges}
            stored["judge_labels"] = {
                j.name: sorted(j.output.labels, key=j.output.value_of) for j in self.judges
            }
        return stored

    @property
    def params(self) -> dict[str, str]:
        """The run's MLflow params."""
        from harness._version import __version__

        c = self.config
        params = {
            "model": self.provider.uri,
            "dataset": self.dataset.ref,
            "dataset_digest": self.dataset.digest,
            "prompt_digest": prompt_digest(self.template, c.system),
            "metrics": ",".join(m.name for m in self.metrics),
            "cache_mode": c.cache,
            "concurrency": str(c.concurrency),
            "harness_version": __version__,
        }
        params.update({f"param.{k}": str(v) for k, v in sorted(c.params.items())})
        if self.judges:
            params["judges"] = ",".join(f"{j.name}@{j.version}" for j in self.judges)
            params["judge_model"] = self.judge_provider.uri if self.judge_provider else ""
            params["judge_samples"] = str(c.judge_samples)
        return params


def plan_run(config: RunConfig, home: Home, provider: Provider | None = None) -> RunPlan:
    """Resolve and check a run's configuration; raise HarnessError on anything wrong."""
    if config.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {config.concurrency}")
    if config.judge_samples < 1:
        raise ConfigError(f"--judge-samples must be at least 1, got {config.judge_samples}")
    if config.max_cost is not None and config.max_cost < 0:
        raise ConfigError(f"--max-cost must be positive, got {config.max_cost}")
    from harness.calls import CACHE_MODES

    if config.cache not in CACHE_MODES:
        raise ConfigError(
            f"unknown cache mode {config.cache!r}; use one of {', '.join(CACHE_MODES)}"
        )
    dataset = dataset_store.resolve_dataset(home.db_path, config.data)
    examples = dataset_store.load_examples(home.db_path, dataset, limit=config.limit)
    has_expected = any(e.expected for e in examples)
    has_context = any(e.context for e in examples)
    names = config.metrics or [
        m for m in DEFAULT_METRICS if has_expected or not get_metric(m).needs_expected
    ]
    metrics = [get_metric(name) for name in dict.fromkeys(names)]
    for metric in metrics:
        if metric.needs_expected and not has_expected:
            raise MetricError(
                f"metric {metric.name!r} needs expected answers, and "
                f"{dataset.ref} has none (map a column with --expected at import)"
            )
    template = run_template(config.prompt, has_context=has_context)
    available = {"id", "input", "expected", "context"} | {k for e in examples[:1] for k in e.extra}
    check_template(template, available)
    if provider is None:
        provider = resolve(
            config.model, home.settings.get("providers", {}).get(config.model.partition(":")[0], {})
        )
    if provider.scheme == "column" and provider.model not in available - {"id", "input"}:
        raise DataError(
            f"{dataset.ref} has no column {provider.model!r} for {provider.uri}; its other "
            f"columns: {', '.join(sorted(available - {'id', 'input'})) or 'none'}"
        )
    judges: list[Any] = []
    judge_provider = None
    if config.judges:
        from harness.judges.resolve import resolve_judges

        judges = resolve_judges(
            config.judges, home=home, judges_file=config.judges_file, guidelines=config.guidelines
        )
        for judge in judges:  # as for metrics: fail before the run, not on every row
            for needed, what, present in (
                ("expected", "expected answers", has_expected),
                ("context", "contexts", has_context),
            ):
                if needed in judge.needs and not present:
                    raise MetricError(
                        f"judge {judge.name!r} needs {what}, and {dataset.ref} "
                        f"has none (map a column with --{needed} at import)"
                    )
        judge_uri = config.judge_model or home.settings.get("judge_model")
        if not judge_uri:
            raise ConfigError(
                "--judge needs a judge model: pass --judge-model URI "
                "or set judge_model in harness.toml"
            )
        judge_provider = resolve(
            judge_uri, home.settings.get("providers", {}).get(judge_uri.partition(":")[0], {})
        )
    return RunPlan(
        config, home, dataset, examples, provider, template, metrics, judges, judge_provider
    )


def preflight(
    config: RunConfig,
    settings: Mapping[str, Any],
    providers: Iterable[Provider | None],
    *,
    check_credentials: bool = True,
    check_prices: bool = True,
) -> None:
    """Everything about calls that can be wrong, checked before a run is created.

    Refuses credentials in ``--param``; installs the ``[prices]`` of harness.toml; checks
    each HTTP provider has its key (unless ``--cache replay``, which sends nothing); checks
    rate-limit settings; and, with ``--max-cost``, that every model has a known price.
    """
    from harness.calls.limits import RateLimits
    from harness.providers._http import HTTPProvider
    from harness.providers.pricing import price_of, set_prices

    secret = sorted(SECRET_PARAMS & set(config.params))
    if secret:
        raise ConfigError(
            f"--param {secret[0]}=... would store a credential with the run; keys are read "
            f"from environment variables only (e.g. OPENAI_API_KEY)"
        )
    set_prices(settings.get("prices") or {})
    RateLimits(settings)  # validates the tables
    for provider in providers:
        if provider is None:
            continue
        if check_credentials and isinstance(provider, HTTPProvider) and config.cache != "replay":
            provider.check_credentials()
        if (
            check_prices
            and config.max_cost is not None
            and not provider.local
            and price_of(provider.uri) is None
        ):
            raise ConfigError(
                f"--max-cost needs the price of {provider.uri}, which harness does not know; "
                f'add it to harness.toml: [prices] "{provider.uri}" = [INPUT, OUTPUT] '
                f"(USD per million tokens)"
            )
