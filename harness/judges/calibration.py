"""Calibration: how often a judge agrees with human labels, before you trust it.

The labels live in a dataset column (any extra column of the import, e.g. PubMedQA's
``final_decision``). Each label is mapped to one of the judge's answers: through
``label_map`` first (``{"maybe": "no"}``), then as the judge's output type reads it (``yes``,
``true``, ``pass``, ``1`` for yes/no; an integer in range for a scale; a listed label).
Labels that do not map are excluded and counted; when none maps, ``calibrate`` raises
DataError before asking the judge anything. The judge grades each remaining row, and
``calibrate`` reports accuracy, Cohen's kappa (agreement beyond chance; quadratic-weighted
kappa too for scales), the confusion matrix and the rows where judge and human disagree,
and keeps the summary in the store (``harness.store.calibrations``) for run reports.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import DataError, JudgeParseError, MetricError, RunFailed
from harness.judges.output import OutputSpec

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.config import Home
    from harness.judges.judge import Judge
    from harness.store.datasets import Example
    from harness.store.rows import ScoreRow

__all__ = ["Calibration", "calibrate", "cohen_kappa"]


@dataclass
class Calibration:
    """Judge versus human labels on one dataset."""

    judge: str
    judge_version: str
    judge_model: str
    dataset: str
    label_column: str
    labels: list[str]  # the judge's answers, the order of the confusion matrix
    rows: int  # rows in the dataset (after limit)
    compared: int  # rows with both a human label and a judge verdict
    excluded: int  # rows whose human label did not map to a judge answer
    excluded_values: dict[str, int]  # those labels, most common first
    not_judged: int  # rows lacking a field the judge needs, or the run's output
    errors: list[dict[str, Any]]  # judge answers that failed: id and error
    accuracy: float | None
    kappa: float | None  # None when undefined (both raters used a single answer)
    weighted_kappa: float | None  # quadratic weights; scale judges only
    confusion: dict[str, dict[str, int]]  # human label -> judge label -> rows
    disagreements: list[dict[str, Any]]
    calls: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def failure(self) -> RunFailed | None:
        """Judge answers that failed (calls after their retries, or no usable verdict) make
        the calibration unreliable: the error to exit with (1), None when there were none."""
        if not self.errors:
            return None
        reasons = Counter(e["error"] for e in self.errors).most_common(2)
        return RunFailed(
            f"{len(self.errors)} of {self.compared + len(self.errors)} judge answers failed ("
            + "; ".join(f"{n} x {r}" for r, n in reasons)
            + "); the figures leave those rows out"
        )


def cohen_kappa(
    pairs: Sequence[tuple[str, str]], categories: Sequence[str], *, quadratic: bool = False
) -> float | None:
    """Cohen's kappa of (rater 1, rater 2) pairs; quadratic weights for ordinal categories.

    ``1 - sum(w * observed) / sum(w * expected)``, which is ``(p_o - p_e) / (1 - p_e)``
    unweighted. None when chance disagreement is zero (both raters used one category).
    """
    if not pairs:
        return None
    index = {c: i for i, c in enumerate(categories)}
    k, n = len(categories), len(pairs)
    observed = [[0] * k for _ in range(k)]
    for first, second in pairs:
        observed[index[first]][index[second]] += 1
    rows = [sum(r) for r in observed]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]

    def weight(i: int, j: int) -> float:
        if quadratic:
            return (i - j) ** 2 / (k - 1) ** 2
        return 0.0 if i == j else 1.0

    disagreement = sum(weight(i, j) * observed[i][j] for i in range(k) for j in range(k)) / n
    chance = sum(weight(i, j) * rows[i] * cols[j] for i in range(k) for j in range(k)) / n**2
    if chance == 0:
        return None
    return 1 - disagreement / chance


def human_label(value: Any, spec: OutputSpec, label_map: Mapping[str, str]) -> str | None:
    """The judge answer a human label stands for, or None when it maps to none."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    mapped = {str(k).strip().lower(): v for k, v in label_map.items()}.get(text.lower())
    candidate: Any = mapped if mapped is not None else value
    if spec.kind == "yes/no" and str(candidate).strip() in ("1", "0"):
        candidate = int(str(candidate).strip())
    try:
        return spec.coerce(candidate)
    except JudgeParseError:
        return None


def calibrate(
    judge: str,
    *,
    data: str,
    label: str,
    judge_model: str | None = None,
    home: str | os.PathLike[str] | Home | None = None,
    output: str | None = None,
    run: str | None = None,
    label_map: Mapping[str, str] | None = None,
    judges_file: str | None = None,
    guidelines: Sequence[str] = (),
    cache: str = "use",
    concurrency: int = 16,
    limit: int | None = None,
) -> Calibration:
    """Measure judge ``judge`` against the human labels in column ``label`` of ``data``.

    The output each row's judge grades comes from ``run`` (a run's stored outputs), else
    from column ``output``, else from an ``output`` column; a judge whose prompt has no
    ``{output}`` needs none. Judge calls go through the project's cache.
    """
    from harness.config import resolve_home
    from harness.judges.resolve import resolve_judges
    from harness.judges.session import judge_provider, judge_session
    from harness.metrics import ScoringRow
    from harness.store import datasets as dataset_store

    home = resolve_home(home)
    chosen = resolve_judges(
        [judge], home=home, judges_file=judges_file, guidelines=list(guidelines)
    )[0]
    info = dataset_store.resolve_dataset(home.db_path, data)
    examples = dataset_store.load_examples(home.db_path, info, limit=limit)
    outputs = _outputs(home, chosen, examples, output=output, run=run)
    provider = judge_provider(home, judge_model)
    spec = chosen.output
    for key, value in (label_map or {}).items():  # a typo would exclude the rows silently
        if str(value).strip() and human_label(value, spec, {}) is None:
            raise MetricError(
                f"--label-map {key}={value}: {str(value)!r} is not an answer of judge "
                f"{chosen.name!r} ({spec.describe()}); leave it empty to exclude those rows"
            )
    humans: dict[str, str] = {}
    excluded: Counter[str] = Counter()
    for example in examples:
        raw = _column(example, label)
        mapped = human_label(raw, spec, label_map or {})
        if mapped is None:
            excluded[str(raw)] += 1
        else:
            humans[example.id] = mapped
    if not humans:  # nothing to measure: asking the judge would be paid for nothing
        shown = ", ".join(f"{v!r} x{n}" for v, n in excluded.most_common(5))
        if len(excluded) > 5:
            shown += f" and {len(excluded) - 5} other label(s)"
        raise DataError(
            f"no label in column {label!r} is an answer of judge {chosen.name!r} "
            f"({spec.describe()}): {shown}; map them with --label-map LABEL=ANSWER"
        )
    todo = [e for e in examples if e.id in humans]
    no_output = 0
    if run is not None:  # rows the run has no output for cannot be graded
        no_output = sum(e.id not in outputs for e in todo)
        todo = [e for e in todo if e.id in outputs]

    async def work(caller: Caller) -> list[list[ScoreRow]]:
        return list(
            await asyncio.gather(
                *(
                    chosen.evaluate(
                        ScoringRow(e.input, outputs.get(e.id, ""), e.expected, e.context, None),
                        example_id=e.id,
                        caller=caller,
                        provider=provider,
                    )
                    for e in todo
                )
            )
        )

    scored, calls = judge_session(home, work, cache=cache, concurrency=concurrency)
    pairs: list[tuple[str, str]] = []
    errors, disagreements, not_judged = [], [], no_output
    for example, (score,) in zip(todo, scored, strict=True):
        if score.error:
            errors.append({"id": example.id, "error": score.error})
        elif score.label is None:
            not_judged += 1
        else:
            pairs.append((humans[example.id], score.label))
            if score.label != humans[example.id]:
                disagreements.append(
                    {
                        "id": example.id,
                        "input": example.input,
                        "output": outputs.get(example.id),
                        "human": humans[example.id],
                        "judge": score.label,
                        "rationale": score.rationale,
                    }
                )
    categories = list(spec.labels)
    confusion = {h: {j: 0 for j in categories} for h in categories}
    for h, j in pairs:
        confusion[h][j] += 1
    result = Calibration(
        judge=chosen.name,
        judge_version=chosen.version,
        judge_model=provider.uri,
        dataset=info.ref,
        label_column=label,
        labels=categories,
        rows=len(examples),
        compared=len(pairs),
        excluded=sum(excluded.values()),
        excluded_values=dict(excluded.most_common()),
        not_judged=not_judged,
        errors=errors,
        accuracy=sum(h == j for h, j in pairs) / len(pairs) if pairs else None,
        kappa=cohen_kappa(pairs, categories),
        weighted_kappa=cohen_kappa(pairs, categories, quadratic=True)
        if spec.kind == "scale"
        else None,
        confusion=confusion,
        disagreements=disagreements,
        calls=calls,
    )
    # Kept in the store, so the report of a run graded by this judge can show it.
    from harness.store.calibrations import save_calibration
    from harness.store.runs import get_run

    run_id = get_run(home.db_path, run).run_id if run is not None else None
    save_calibration(home.db_path, result, run_id=run_id)
    return result


def _column(example: Example, column: str) -> Any:
    if column in ("input", "context", "id"):
        return getattr(example, column)
    if column == "expected":
        return example.expected[0] if example.expected else None
    if column not in example.extra:
        known = ", ".join(sorted(example.extra)) or "none"
        raise DataError(f"the dataset has no column {column!r}; its other columns: {known}")
    return example.extra[column]


def _outputs(
    home: Home, judge: Judge, examples: list[Example], *, output: str | None, run: str | None
) -> dict[str, str]:
    """Example id -> the output the judge grades."""
    if run is not None and output is not None:
        raise MetricError("give either --run or --output, not both")
    if run is not None:
        from harness.store.runs import get_run, load_outputs

        info = get_run(home.db_path, run)
        table = load_outputs(home.db_path, info.run_id)
        return {
            r["id"]: r["output"] for r in table.to_dict("records") if isinstance(r["output"], str)
        }
    if output is None and "output" in judge.fields:
        if not examples or "output" not in examples[0].extra:
            raise MetricError(
                f"judge {judge.name!r} grades an output: name the column that "
                "holds it with --output COLUMN, or use a run's outputs with "
                "--run RUN_ID"
            )
        output = "output"
    if output is None:
        return {}
    values = {e.id: _column(e, output) for e in examples}
    return {k: "" if v is None else str(v) for k, v in values.items()}
