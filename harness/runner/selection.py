"""Which rows a run evaluates, and how it will slice them: checked before the run exists.

Every row of the dataset version, or the first ``--limit`` rows, or a reproducible random
``--sample`` of them (``harness.sampling``: a stable hash of the seed and each example id,
stratified by ``--stratify``). A resumed sampled run takes the ids it stored instead of
choosing again, so it finishes exactly the rows it started with.

``--by`` columns are checked against the chosen rows: a column no row has, or one with more
values than ``--max-slices`` allows, is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DataError
from harness.runner.config import RunConfig
from harness.sampling import SampleSpec, check_stratify, parse_size, sample_examples
from harness.slices import check_by, check_value_count, column_labels, example_fields, max_values
from harness.store import datasets as dataset_store
from harness.store.datasets import DatasetInfo, Example

__all__ = ["check_slices", "example_labels", "select_examples"]


def select_examples(
    config: RunConfig,
    db_path: Path,
    dataset: DatasetInfo,
    example_ids: Sequence[str] | None = None,
) -> tuple[list[Example], dict[str, Any] | None]:
    """The run's examples, in dataset order, and for a sampled run what it stores about its
    sample (``SampleSpec.as_dict``). ``example_ids``: the ids a sampled run stored."""
    check_stratify(config.stratify)
    if config.sample is None:
        if config.stratify:
            raise ConfigError("--stratify COLUMN needs --sample N (or a fraction such as 0.1)")
        return dataset_store.load_examples(db_path, dataset, limit=config.limit), None
    if config.limit is not None:
        raise ConfigError("--limit takes the first rows and --sample a random subset: choose one")
    if isinstance(config.sample_seed, bool) or not isinstance(config.sample_seed, int):
        raise ConfigError(f"--seed must be a whole number, got {config.sample_seed!r}")
    spec = SampleSpec(parse_size(config.sample), config.sample_seed, config.stratify)
    population = dataset_store.load_examples(db_path, dataset)
    if example_ids is not None:
        wanted = set(example_ids)
        chosen = [e for e in population if e.id in wanted]
        if len(chosen) != len(wanted):
            raise DataError(
                f"{dataset.ref} no longer holds {len(wanted) - len(chosen):,} of the rows this "
                "run sampled"
            )
    else:
        chosen = sample_examples(population, spec)
    description = spec.as_dict(len(population))
    description["rows"] = len(chosen)
    return chosen, description


def example_labels(examples: Sequence[Example], column: str, option: str) -> list[str | None]:
    """Each example's value of ``column`` as a label (``harness.slices.labels``)."""
    return column_labels([example_fields(e) for e in examples], column, option)


def check_slices(
    config: RunConfig, examples: Sequence[Example], settings: Mapping[str, Any]
) -> None:
    """Refuse ``--by`` columns no row has or with too many values (ConfigError, exit 2)."""
    check_by(config.by)
    if not config.by:
        if config.max_slices is not None:
            max_values(config.max_slices, settings)  # still a bad value if it is one
        return
    limit = max_values(config.max_slices, settings)
    for column in dict.fromkeys(config.by):
        check_value_count(column, example_labels(examples, column, "--by"), limit)
