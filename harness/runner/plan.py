"""Planning a run: everything resolved and checked before anything is written.

``plan_run`` turns a ``RunConfig`` into a ``RunPlan`` (the dataset and its examples, the
provider, the template, the metrics and judges), so a typo in a metric name or template
leaves nothing behind; ``preflight`` checks what the calls need (keys, prices, rate-limit
settings, no credential in ``--param``) before the run is created.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import (
    DEFAULT_EXPERIMENT,
    MAX_JUDGE_SAMPLES,
    Home,
    load_toml,
    param_problem,
    param_warning,
    settings_file,
)
from harness.errors import ConfigError, DataError, MetricError
from harness.metrics import DEFAULT_METRICS, BatchMetric, Metric, get_metric
from harness.numbers import range_list
from harness.prompts import check_template, prompt_digest, run_template
from harness.providers import Provider, resolve
from harness.runner.config import RunConfig
from harness.runner.selection import check_slices, select_examples
from harness.store import datasets as dataset_store
from harness.store.datasets import DatasetInfo, Example
from harness.store.db import connect

if TYPE_CHECKING:
    from harness.judges import Judge
    from harness.store.runs import RunInfo

__all__ = [
    "SECRET_PARAMS",
    "RunPlan",
    "check_same_scoring",
    "param_warnings",
    "plan_run",
    "preflight",
]

# Parameters that could carry a credential into the run's stored config.
SECRET_PARAMS = frozenset({"api_key", "token", "headers", "extra_headers"})
# Names of harness's own run options: given as a --param (or a [sweep] key, which is one)
# they would go into every request's body, where a real API answers 400 for each call.
# ("seed" and "model" are not here: seed is a model parameter too, model a sweep axis.)
OPTION_PARAMS = {
    "judge": "--judge", "judges": "--judge", "judge_model": "--judge-model",
    "judge_samples": "--judge-samples", "metric": "--metric", "metrics": "--metric",
    "concurrency": "--concurrency", "data": "--data", "cache": "--cache", "limit": "--limit",
    "sample": "--sample", "stratify": "--stratify", "by": "--by", "max_cost": "--max-cost",
    "run_name": "--run-name", "experiment": "--experiment",
}  # fmt: skip


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
    judge_provider: Provider | None  # the run's --judge-model, for judges without their own
    batch: list[BatchMetric] = field(default_factory=list)
    judge_providers: dict[str, Provider] = field(default_factory=dict)  # by URI
    sample: dict[str, Any] | None = None  # a sampled run: what it asked for and came to
    notes: list[str] = field(default_factory=list)  # said to the user, e.g. metrics skipped
    definitions: dict[str, Any] = field(default_factory=dict)  # harness.scoring.versions

    def provider_for(self, judge: Judge) -> Provider:
        """The model a judge asks: its own (an MLflow GenAI metric's), else the run's."""
        if judge.model:
            return self.judge_providers[judge.model]
        assert self.judge_provider is not None
        return self.judge_provider

    @property
    def providers(self) -> list[Provider | None]:
        """Every provider the run calls (for the keys and prices checked before it)."""
        return [self.provider, self.judge_provider, *self.judge_providers.values()]

    @property
    def directions(self) -> dict[str, int]:
        """Each metric's and judge's direction: +1 higher is better, -1 lower, 0 neither."""
        found: dict[str, int] = {m.name: m.direction for m in self.metrics}
        found.update({b.name: b.direction for b in self.batch})
        found.update({j.name: j.direction for j in self.judges})
        return found

    @property
    def binary(self) -> list[str]:
        """The metrics and judges whose every score is 0 or 1: a metric that declares it, a
        judge whose answers are 0 and 1 asked once (the mean of several samples is not)."""
        found = [m.name for m in self.metrics if m.binary]
        if self.config.judge_samples == 1:
            found += [j.name for j in self.judges if j.output.binary]
        return sorted(found)

    @property
    def bounds(self) -> dict[str, list[float | None]]:
        """The metrics and judges whose every score lies in a known range, with it: a 0/1
        metric's [0, 1], a bounded scale's (token F1, ROUGE), a judge's answers (its
        scale, else [0, 1]; the mean of several samples stays in it). An open side is
        null (latency's [0, null]): JSON has no infinity."""
        found = {m.name: range_list(m.range) for m in self.metrics if m.range is not None}
        found.update({b.name: range_list(b.bounds) for b in self.batch if b.bounds is not None})
        found.update({j.name: range_list(j.output.bounds) for j in self.judges})
        return dict(sorted(found.items()))

    @property
    def judge_models(self) -> dict[str, str]:
        """Each judge's model URI, as its feedback's source."""
        return {j.name: self.provider_for(j).uri for j in self.judges}

    def stored_config(self) -> dict[str, Any]:
        """The configuration the run's row keeps: the options, which way each metric is
        better (``directions``: compare, check and the report read it, since a ``python:``
        metric or a kind is known to no registry), which score only 0 or 1 (``binary``: the
        method of their intervals and tests), the range each bounded one scores in
        (``bounds``: where its t intervals are cut) and, for a run with judges, what they
        resolved to: each judge's model URI (its own, else ``--judge-model`` or
        harness.toml), its version (a judge whose prompt or scale changed is another judge)
        and its answers from worst to best (what a report draws its bars over). Each
        metric's version and what defined it (``metric_versions``, ``metric_sources``:
        ``harness.scoring.versions``) let compare and check tell a metric redefined between
        two runs, as ``judge_versions`` a judge."""
        stored = {
            **self.config.as_dict(),
            "directions": self.directions,
            "binary": self.binary,
            "bounds": self.bounds,
        }
        if self.definitions:
            stored["metric_versions"] = {n: d.version for n, d in self.definitions.items()}
            stored["metric_sources"] = {n: d.source for n, d in self.definitions.items()}
        if self.judges:
            if self.judge_provider is not None:
                stored["judge_model_uri"] = self.judge_provider.uri
            stored["judge_models"] = self.judge_models
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
            "metrics": ",".join([m.name for m in self.metrics] + [b.name for b in self.batch]),
            "cache_mode": c.cache,
            "concurrency": str(c.concurrency),
            "harness_version": __version__,
        }
        params.update({f"param.{k}": str(v) for k, v in sorted(c.params.items())})
        if self.sample is not None:
            params["sample"] = f"{self.sample['rows']} of {self.sample['population']}"
            params["sample_seed"] = str(self.sample["seed"])
            if self.sample["stratify"]:
                params["sample_stratify"] = self.sample["stratify"]
        if c.by:
            params["by"] = ",".join(c.by)
        if self.judges:
            params["judges"] = ",".join(f"{j.name}@{j.version}" for j in self.judges)
            params["judge_model"] = ",".join(sorted(set(self.judge_models.values())))
            params["judge_samples"] = str(c.judge_samples)
        return params


def check_experiment_name(name: str) -> None:
    """A new run's MLflow experiment: "" (an unset variable) went to the default one, and
    "  " made an experiment of that name."""
    if not name.strip():
        raise ConfigError(
            f"--experiment {name!r} is empty: give an experiment's name, or leave the option "
            f"out ({DEFAULT_EXPERIMENT})"
        )


def check_run_name(name: str | None) -> None:
    """A new run's name: "" (an unset variable) or "  " made a run that lists with no name
    and that no name finds (a sweep: its children named by their point alone)."""
    if name is not None and not name.strip():
        raise ConfigError(
            f"--run-name {name!r} is empty: give the run a name, or leave the option out"
        )


def plan_run(
    config: RunConfig,
    home: Home,
    provider: Provider | None = None,
    *,
    scoring_objects: Sequence[Any] = (),
    evaluator_config: Mapping[str, Any] | None = None,
    example_ids: Sequence[str] | None = None,
) -> RunPlan:
    """Resolve and check a run's configuration; raise HarnessError on anything wrong.

    ``scoring_objects`` are metric and judge objects given in Python (``harness.evaluate``);
    the plan's config names them in ``python_objects``. ``evaluator_config``:
    ``harness.evaluate``'s; None reads the one the config stored. ``example_ids``: the rows
    a sampled run stored (``--resume`` takes them, rather than choosing again).
    """
    if config.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {config.concurrency}")
    if not 1 <= config.judge_samples <= MAX_JUDGE_SAMPLES:
        raise ConfigError(
            f"--judge-samples must be from 1 to {MAX_JUDGE_SAMPLES} (each sample is a judge "
            f"call per row), got {config.judge_samples}"
        )
    if config.guidelines and "guidelines" not in config.judges:  # else read by nothing
        raise ConfigError(
            "--guideline is read by the guidelines judge only: add --judge guidelines"
        )
    if config.max_cost is not None and not config.max_cost >= 0:  # nan: a budget never met
        raise ConfigError(f"--max-cost must be positive, got {config.max_cost}")
    from harness.calls import CACHE_MODES

    if config.cache not in CACHE_MODES:
        raise ConfigError(
            f"unknown cache mode {config.cache!r}; use one of {', '.join(CACHE_MODES)}"
        )
    if config.python_objects and not scoring_objects:
        raise ConfigError(
            f"this run was scored with Python objects ({', '.join(config.python_objects)}); "
            "only harness.evaluate with those objects can score it again"
        )
    with connect(home.db_path, read_only=True):  # one open of the file for both reads
        dataset = dataset_store.resolve_dataset(home.db_path, config.data)
        examples, sample = select_examples(config, home.db_path, dataset, example_ids)
    check_slices(config, examples, home.settings)
    has_expected = any(e.expected for e in examples)
    has_context = any(e.context for e in examples)
    from harness.scoring import DataShape, check_scoring, resolve_scoring

    extra_columns = list(dict.fromkeys(k for e in examples[:1] for k in e.extra))
    # harness.evaluate's own, else (`harness run --resume`, `runs log`) the one the run stored
    evaluator = dict(
        (config.evaluator_config or {}) if evaluator_config is None else evaluator_config
    )
    shape = DataShape(
        fields=dict(dataset.columns),
        extra=tuple(extra_columns),
        col_mapping=dict(evaluator.pop("col_mapping", None) or {}),
        config=evaluator,
    )
    names = config.metrics or (
        []
        if scoring_objects
        else [m for m in DEFAULT_METRICS if has_expected or not get_metric(m).needs_expected]
    )
    scoring = resolve_scoring(
        names, scoring_objects, settings=home.settings, home=home.path, shape=shape
    )
    _check_unused_metric_tables(home, names)
    if scoring_objects:
        specs = set(names)
        objects = [n for n in scoring.names if n not in specs]
        config = dataclasses.replace(config, python_objects=objects)
    notes = []
    if not config.metrics and not scoring_objects and not has_expected:
        skipped = [m for m in DEFAULT_METRICS if m not in names]
        notes.append(
            f"default metrics {', '.join(skipped)} skipped: {dataset.ref} has no expected "
            "answers (map a column with --expected at import, targets= in harness.evaluate)"
        )
    template = run_template(config.prompt, has_context=has_context)
    available = {"id", "input", "expected", "context"} | {k for e in examples[:1] for k in e.extra}
    check_template(template, available, examples[0].as_row(dataset.columns) if examples else None)
    if provider is None:
        from harness.intercept.credentials import keys_for_replay

        # A python: model's module may build its SDK client on import: in replay it starts
        # with the placeholder keys the run's calls have (it sends nothing).
        scheme = config.model.partition(":")[0]
        options = dict(home.settings.get("providers", {}).get(scheme, {}))
        if config.retriever and scheme == "python":  # its list of ids, as evaluate built it
            options["ids"] = True
        with keys_for_replay(config.cache):
            provider = resolve(config.model, options)
    if provider.scheme == "column" and provider.model not in available - {"id", "input"}:
        raise DataError(
            f"{dataset.ref} has no column {provider.model!r} for {provider.uri}; its other "
            f"columns: {', '.join(sorted(available - {'id', 'input'})) or 'none'}"
        )
    from harness.judges.resolve import available_judges, resolve_judges

    judges: list[Any] = []
    if config.judges:
        judges = resolve_judges(
            config.judges, home=home, judges_file=config.judges_file, guidelines=config.guidelines
        )
    else:  # a --judges FILE, and harness.toml's [judges.NAME], are read and checked all the same
        available_judges(home=home, judges_file=config.judges_file, guidelines=config.guidelines)
    check_scoring(
        scoring,
        judges=judges,
        dataset=dataset.ref,
        has_expected=has_expected,
        has_context=has_context,
        columns=extra_columns,
    )
    judges += scoring.judges
    for judge in judges:  # as for metrics: fail before the run, not on every row
        _check_judge_params(judge.name, getattr(judge, "params", None) or {})
        for needed, what, present, python in (
            ("expected", "expected answers", has_expected, "targets="),
            ("context", "contexts", has_context, "context="),
        ):
            if needed in judge.needs and not present:
                raise MetricError(
                    f"judge {judge.name!r} needs {what}, and {dataset.ref} "
                    f"has none (map a column with --{needed} at import, "
                    f"{python} in harness.evaluate)"
                )
    judge_provider, judge_providers = _judge_providers(config, home, judges)
    return RunPlan(
        config,
        home,
        dataset,
        examples,
        provider,
        template,
        scoring.metrics,
        judges,
        judge_provider,
        scoring.batch,
        judge_providers,
        sample,
        notes,
        scoring.definitions,
    )


def _judge_providers(
    config: RunConfig, home: Home, judges: list[Any]
) -> tuple[Provider | None, dict[str, Provider]]:
    """The run's judge model (for judges without their own) and each judge's own model."""
    providers = home.settings.get("providers", {})
    own = {j.model for j in judges if getattr(j, "model", None)}
    judge_providers = {uri: resolve(uri, providers.get(uri.partition(":")[0], {})) for uri in own}
    if not any(not getattr(j, "model", None) for j in judges):
        return None, judge_providers
    judge_uri = config.judge_model or home.settings.get("judge_model")
    if not judge_uri:
        raise ConfigError(
            "--judge needs a judge model: pass --judge-model URI or set judge_model in harness.toml"
        )
    return resolve(judge_uri, providers.get(judge_uri.partition(":")[0], {})), judge_providers


def resumed_run(
    home: Home,
    reference: str,
    budget: float | None,
    evaluator_config: Mapping[str, Any] | None = None,
) -> tuple[RunInfo, RunConfig, list[str] | None]:
    """The run ``--resume`` goes on with, the configuration it goes on with (its own, with
    ``budget`` for the rest when one is given: the old one may be spent) and the ids of the
    examples it drew (a sample's). Raise ``ConfigError`` for a run with nothing to resume,
    or, unless ``evaluator_config`` is given again, one scored with evaluator_config values
    it could not store (the CLI's resume would score its rows without them)."""
    from harness.store import runs as run_store
    from harness.wording import plural

    previous = run_store.get_run(home.db_path, reference)
    config = RunConfig.from_dict(previous.config)
    if budget is not None:
        config = dataclasses.replace(config, max_cost=budget)
    if previous.status == "finished" and not previous.errors and not previous.mlflow_pending:
        from harness.store.scores import metric_failures

        failed = metric_failures(home.db_path, previous.run_id)
        raise ConfigError(
            f"run {previous.run_id} finished with no failed rows; nothing to resume"
            + (
                f" (a metric failed on {plural(failed, 'row')}: a resume does not score "
                "again; fix the metric and run the same command again, its calls come "
                "from the cache)"
                if failed
                else ""
            )
        )
    if config.evaluator_config_left_out and evaluator_config is None:
        raise ConfigError(
            f"run {previous.run_id} was scored with evaluator_config values a run cannot "
            f"store ({', '.join(config.evaluator_config_left_out)}), so a resume cannot score "
            "its rows as harness.evaluate did; call harness.evaluate again (the calls already "
            "made are cached)"
        )
    return previous, config, run_store.run_example_ids(home.db_path, previous.run_id)


def check_same_scoring(previous: RunInfo, plan: RunPlan) -> None:
    """Refuse to resume with a judge or metric that is not the one the run's rows were
    scored by.

    Judges and metrics are resolved again from their definitions (harness.toml, the
    --judges file, a python: module), and a changed one would score the remaining rows
    while the rows done keep the old one's scores, under the version the run stored: one
    column, two judges (or two checks). Runs stored before metrics had versions have none
    to compare with.
    """
    metric_versions = previous.config.get("metric_versions") or {}
    for name, definition in plan.definitions.items():
        was = metric_versions.get(name)
        if was is not None and was != definition.version:
            raise ConfigError(
                f"metric {name!r} changed since run {previous.run_id} started (now: "
                f"{definition.source}); resuming would score its remaining rows with another "
                "metric; restore its definition to resume, or start a new run (the calls "
                "already made are cached)"
            )
    versions = previous.config.get("judge_versions") or {}
    models = previous.config.get("judge_models") or {}
    for judge in plan.judges:
        was, now = versions.get(judge.name), judge.version
        model = plan.provider_for(judge).uri
        if was is not None and was != now:
            change, what = f"version {was} then, {now} now", "definition"
        elif models.get(judge.name) not in (None, model):
            change, what = f"it asked {models[judge.name]}, now {model}", "model"
        else:
            continue
        raise ConfigError(
            f"judge {judge.name!r} changed since run {previous.run_id} started ({change}); "
            f"resuming would grade its remaining rows with another judge; restore its {what} "
            "to resume, or start a new run (the calls already made are cached)"
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
    options = [key for key in config.params if key in OPTION_PARAMS]
    if options:
        key = options[0]
        raise ConfigError(
            f"param {key!r} (--param or a [sweep] key) is a harness option, not a model "
            f"parameter: it would be sent in every request; use {OPTION_PARAMS[key]}"
        )
    for key, value in config.params.items():  # --param's are checked as they are read
        problem = param_problem(key, value)
        if problem:
            raise ConfigError(f"params {problem}")
    set_prices(settings.get("prices") or {}, settings_file(settings))
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


def _check_unused_metric_tables(home: Home, names: list[str]) -> None:
    """A ``[metrics.NAME]`` table of a kind that no ``--metric`` names is still checked, as
    docs/config.md says of every table (a ``python =`` one is imported only when used)."""
    from harness.scoring import resolve_spec
    from harness.scoring.specs import table_names

    tables = home.settings.get("metrics") or {}
    for name in table_names(home.settings):
        table = tables[name]
        if name not in names and not (isinstance(table, dict) and "python" in table):
            resolve_spec(name, settings=home.settings, home=home.path)


def _check_judge_params(name: str, params: Mapping[str, Any]) -> None:
    """A judge's ``params`` are sent in each of its requests, as ``--param`` is in the
    model's: a credential or one of harness's options is refused there too."""
    for key in params:
        if key in SECRET_PARAMS:
            raise ConfigError(
                f"judge {name!r}: params {key!r} would store a credential with the run; "
                "keys are read from environment variables only (e.g. OPENAI_API_KEY)"
            )
        if key in OPTION_PARAMS:
            raise ConfigError(
                f"judge {name!r}: params {key!r} is a harness option, not a model parameter: "
                f"it would be sent in every judge request; use {OPTION_PARAMS[key]}"
            )


def param_warnings(
    given: Mapping[str, str], config: RunConfig, home: Home, objects: Sequence[Any] = ()
) -> list[str]:
    """The warnings for the parameter names nearly known (``config.param_warning``): of
    ``given`` (each name -> where it was given: ``--param``, ``FILE: [sweep]``, ``params``),
    of the params of the judges ``config`` asks for and of the judges among ``objects``
    (``harness.evaluate``'s ``judges=[make_judge(...)]``). Said once, before the run (or a
    sweep's runs) starts: by ``harness run`` on stderr (in --json's warnings), by
    ``harness.evaluate`` as an ``UnknownParamWarning``."""
    found = [param_warning(key, where) for key, where in given.items()]
    if objects:
        from harness.judges.judge import Judge

        for judge in objects:
            if isinstance(judge, Judge):
                found += [
                    param_warning(key, f"judge {judge.name!r}: params") for key in judge.params
                ]
    if config.judges:
        from harness.judges.resolve import resolve_judges

        tables = dict(home.settings.get("judges") or {})
        files = dict.fromkeys(tables, settings_file(home.settings))
        if config.judges_file:  # read by resolve_judges first: it wins, as there
            path = Path(config.judges_file).expanduser()
            files.update(dict.fromkeys(load_toml(path).get("judges") or {}, str(path)))
        judges = resolve_judges(
            config.judges, home=home, judges_file=config.judges_file, guidelines=config.guidelines
        )
        for judge in judges:
            file = files.get(judge.name)
            where = f"{file}: [judges.{judge.name}]: " if file else ""
            found += [
                param_warning(key, f"{where}judge {judge.name!r}: params")
                for key in getattr(judge, "params", None) or {}
            ]
    return [warning for warning in found if warning]
