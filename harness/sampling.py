"""Reproducible random subsets of an eval set: ``--sample N|FRACTION --seed S --stratify COL``.

**How rows are chosen.** Every example gets a key, the first 8 bytes of
``sha256("harness-sample-v1" NUL seed NUL example_id)`` read as an integer, and the sample is
the rows with the smallest keys (within each stratum, with ``--stratify``). The key depends
on nothing but the seed and the id, so:

- the same seed picks the same rows in every process and on every machine: no Python
  ``hash()`` (randomized per process by ``PYTHONHASHSEED``), no dependence on the order the
  rows were stored in or on a random generator's implementation;
- samples nest: with one seed, the 100 rows of ``--sample 100`` are among the 200 of
  ``--sample 200``, so growing a sample reuses every cached call of the smaller one;
- a new version of the eval set that adds or drops a few rows keeps the rest of the sample
  (a row's key does not change when other rows do), so its rerun is mostly cache hits; this
  needs ids of the rows' own: a file without an id column numbers its rows, and a row added
  or dropped before others renumbers them.

A seeded ``numpy`` generator over the sorted ids would also be reproducible, but it
reshuffles everything when one row is added, and neither of the last two properties holds.

**Stratified samples** keep each value's share of the whole set: stratum ``h`` with
``N_h`` of the ``N`` rows gets ``n·N_h/N`` rows rounded by Balinski and Young's quota
method (``allocate``): each stratum's count is within one row of its exact share, the
counts add up to ``n``, and no stratum loses a row when ``n`` grows, so stratified samples
nest too. Within a stratum, the rows with the smallest keys.

The chosen rows keep the eval set's order. Nothing here knows about DuckDB or examples:
callers pass ids and (for ``--stratify``) each row's stratum label.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from harness.errors import ConfigError, DataError
from harness.slices.labels import column_labels, example_fields

__all__ = [
    "DEFAULT_SEED",
    "SampleSpec",
    "allocate",
    "check_stratify",
    "choose_sample",
    "describe_sample",
    "parse_size",
    "sample_examples",
    "sample_key",
]

DEFAULT_SEED = 0
_KEY_PREFIX = "harness-sample-v1"  # part of every key: bump it only to change every sample


def sample_key(seed: int, example_id: str) -> int:
    """The row's place in the random order of ``seed``: a 64-bit integer."""
    text = f"{_KEY_PREFIX}\x00{seed}\x00{example_id}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def parse_size(value: Any, what: str = "--sample") -> int | float:
    """``100`` (rows) or ``0.1`` (a fraction of the rows) from a flag, a config or the API.

    A whole number of 1 or more is a count; a number with a decimal point (or a float)
    between 0 and 1 is a fraction. No fraction is above 1, so a whole number above 1 is a
    count however it is written (``1e3``, ``1000.0``: 1,000 rows). Raises ConfigError
    naming ``what`` for anything else.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} expects a number of rows or a fraction, got {value!r}")
    number: int | float
    if isinstance(value, (int, float)):
        number = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ConfigError(
                    f"{what} expects a number of rows (100) or a fraction (0.1), got {value!r}"
                ) from None
    if isinstance(number, float) and number.is_integer() and number > 1:
        number = int(number)
    if isinstance(number, int):
        if number < 1:
            raise ConfigError(f"{what} must be at least 1 row, got {number}")
        return number
    if not math.isfinite(number) or not 0 < number <= 1:
        raise ConfigError(f"{what} as a fraction must be above 0 and at most 1, got {number:g}")
    return number


@dataclass(frozen=True)
class SampleSpec:
    """What a sampled run asked for; stored with the run next to the ids it chose."""

    size: int | float  # rows, or a fraction of them
    seed: int = DEFAULT_SEED
    stratify: str | None = None

    def count(self, population: int, what: str = "--sample") -> int:
        """How many of ``population`` rows the sample holds. Raises DataError, naming
        ``what`` (the option or argument), when a count exceeds the rows there are."""
        if isinstance(self.size, float):
            return min(population, max(1, math.floor(self.size * population + 0.5)))
        if self.size > population:
            raise DataError(
                f"{what} {self.size} is more rows than the {population} there are "
                "(give a fraction such as 0.5, or fewer rows)"
            )
        return self.size

    def as_dict(self, population: int) -> dict[str, Any]:
        """What a sampled run stores and shows: the request, and the rows it came to."""
        return {
            "size": self.size,
            "seed": self.seed,
            "stratify": self.stratify,
            "rows": self.count(population),
            "population": population,
        }


def describe_sample(sample: Mapping[str, Any]) -> str:
    """A stored sample in words: ``100 of 1,000 rows (seed 0, stratified by final_decision)``."""
    how = f"seed {sample['seed']}"
    if sample.get("stratify"):
        how += f", stratified by {sample['stratify']}"
    return f"{sample['rows']:,} of {sample['population']:,} rows ({how})"


def allocate(counts: Sequence[int], n: int, tiebreak: Sequence[int] | None = None) -> list[int]:
    """Split ``n`` rows among strata of ``counts`` rows in proportion (the quota method).

    Balinski and Young's quota method hands out the rows one at a time, each to the
    stratum with the largest ``N_h / (a_h + 1)`` among those still below their exact share
    at the new size. So every stratum's count is within one row of ``n·N_h/N`` (both
    ways), and the method is house-monotone: no stratum loses a row when ``n`` grows, so
    stratified samples nest. Largest remainders, the usual rounding, is not (the Alabama
    paradox: by PubMedQA's ``final_decision``, 13 rows gave ``maybe`` 2 and 14 gave it 1).

    Ties between equal priorities go to the larger stratum, then to the one with the
    smaller ``tiebreak`` key (``choose_sample``: a key of the seed and the stratum's
    label), else to the earlier one, so the result is a function of the arguments alone.
    Hands out one row per step (``n`` steps of a heap over the strata).
    """
    total = sum(counts)
    if not 0 <= n <= total:
        raise ValueError(f"cannot take {n} of {total} rows")
    shares = [0 for _ in counts]
    keys = list(tiebreak) if tiebreak is not None else [0] * len(counts)

    # The largest N_h / (a_h + 1) first, compared exactly so that equal priorities tie:
    # below 2**26 rows a float quotient is exact enough (two different fractions of
    # numbers that size differ by more than a float's rounding), and ~10x as fast.
    exact = Fraction if total >= 2**26 else float

    def place(h: int) -> tuple[float | Fraction, int, int, int]:
        return (exact(-counts[h]) / (shares[h] + 1), -counts[h], keys[h], h)

    heap = [place(h) for h, c in enumerate(counts) if c]
    heapq.heapify(heap)
    waiting: list[tuple[float | Fraction, int, int, int]] = []
    for size in range(1, n + 1):
        # Eligible at this size: a_h below the exact share size·N_h/total.
        while True:
            entry = heapq.heappop(heap)
            h = entry[3]
            if shares[h] * total < size * counts[h]:
                break
            waiting.append(entry)
        shares[h] += 1
        if shares[h] < counts[h]:
            heapq.heappush(heap, place(h))
        for entry in waiting:
            heapq.heappush(heap, entry)
        waiting.clear()
    return shares


def choose_sample(
    ids: Sequence[str],
    n: int,
    seed: int,
    strata: Sequence[Hashable] | None = None,
) -> list[int]:
    """The positions (ascending) of the ``n`` rows of ``ids`` that the sample holds.

    ``strata[i]`` is row ``i``'s stratum (any hashable label, None included) when the
    sample is stratified.
    """
    if not 0 <= n <= len(ids):
        raise ValueError(f"cannot take {n} of {len(ids)} rows")
    keys = [sample_key(seed, example_id) for example_id in ids]
    if strata is None:
        chosen = sorted(range(len(ids)), key=lambda i: (keys[i], ids[i]))[:n]
        return sorted(chosen)
    if len(strata) != len(ids):
        raise ValueError("strata must have one label per row")
    groups: dict[Hashable, list[int]] = {}
    for i, label in enumerate(strata):
        groups.setdefault(label, []).append(i)
    labels = list(groups)  # first appearance: the eval set's order
    # Rows left over among strata with equal remainders (many small values of one size)
    # go in an order the seed picks: neither always the values the file lists first nor
    # one that depends on the rows' order.
    tiebreak = [sample_key(seed, f"stratum\x00{label!r}") for label in labels]
    shares = allocate([len(groups[label]) for label in labels], n, tiebreak)
    chosen = []
    for label, share in zip(labels, shares, strict=True):
        members = sorted(groups[label], key=lambda i: (keys[i], ids[i]))
        chosen.extend(members[:share])
    return sorted(chosen)


class _Example(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def input(self) -> str: ...
    @property
    def expected(self) -> Sequence[str]: ...
    @property
    def context(self) -> str | None: ...
    @property
    def extra(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=_Example)


def check_stratify(stratify: str | None) -> None:
    """Refuse an empty ``--stratify`` column (``--stratify "$COL"`` with COL unset): it
    would sample without strata, or run every row, and store the empty name."""
    if stratify == "":
        raise ConfigError("--stratify needs a column name, got ''")


def sample_examples(examples: Sequence[E], spec: SampleSpec, what: str = "--sample") -> list[E]:
    """The examples ``spec`` chooses, in their order. Raises ConfigError for a
    ``--stratify`` column no example has, DataError (naming ``what``) for more rows than
    there are."""
    check_stratify(spec.stratify)
    strata = None
    if spec.stratify:
        rows = [example_fields(e) for e in examples]
        strata = column_labels(rows, spec.stratify, "--stratify")
    n = spec.count(len(examples), what)
    return [examples[i] for i in choose_sample([e.id for e in examples], n, spec.seed, strata)]
