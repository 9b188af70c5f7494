"""Printing for the CLI: JSON documents on stdout, tables through rich."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from harness.wording import plural

if TYPE_CHECKING:
    from pathlib import Path

    from harness.runner.sweep import SweepResult
    from harness.store.runs import RunInfo


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """One JSON document on stdout, nothing else (the --json contract)."""
    click.echo(json.dumps(_clean(document), indent=2, ensure_ascii=False, default=str))


def _plain(value: Any) -> Any:
    """A cell or header as rich ``Text``: what a model wrote (or a column, a run, a slice
    value is named) shows as it is. As a str it was read as rich's markup: `[b]x[/b]` lost
    its tags, `[/x]` raised MarkupError (a traceback from `runs show --rows`), and an
    escape sequence reached the terminal."""
    from rich.text import Text

    from harness.numbers import controls_escaped

    return Text(controls_escaped("" if value is None else str(value)))


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(_plain(column), overflow="fold")
    for row in rows:
        table.add_row(*(_plain(v) for v in row))
    import sys

    # Piped output gets a fixed, wide table rather than rich's 80-column default.
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    if title:  # a line of its own: as the table's title it would wrap at a narrow table's width
        console.print(_plain(title), highlight=False, soft_wrap=True)
    console.print(table)


def print_renderables(renderables: Sequence[Any], *, width: int = 160) -> None:
    """Rich renderables (tables, text) on stdout, one after another; piped output gets
    ``width`` columns rather than rich's 80."""
    import sys

    from rich.console import Console

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else width)
    for renderable in renderables:
        console.print(renderable)


def print_slices(tables: Sequence[Any]) -> None:
    """Each ``--by`` column's ``SliceTable``: per metric, the overall line, then a line per
    value (rows with a score, mean, 95% interval)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from harness.slices.labels import shown_value

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    for table in tables:
        shown = Table(show_edge=False, pad_edge=False)
        title = f"by {table.column}: {plural(len(table.slices), 'value')}; 95% intervals"
        if table.metrics:
            title += f": {table.methods()}"
        console.print(_plain(title), highlight=False, soft_wrap=True)
        for column in ("metric", table.column, "rows", "mean", "95% CI"):
            shown.add_column(_plain(column), overflow="fold")
        for metric in table.metrics:
            for s in [table.overall, *table.slices]:
                m = s.means[metric]
                shown.add_row(
                    *map(
                        _plain,
                        (
                            metric if s is table.overall else "",
                            shown_value(s.value, overall=s is table.overall),
                            f"{m.n:,}" if m.n == s.rows else f"{m.n:,} of {s.rows:,}",
                            fmt(m.mean) if m.n else "",
                            _slice_interval(m),
                        ),
                    )
                )
            shown.add_section()
        console.print(shown)


def _slice_interval(m: Any) -> str:
    """The 95% CI cell: says why a mean has none (one row, no spread); blank with no score."""
    from harness.slices.table import no_interval_words

    if m.low == m.low:
        return f"[{fmt(m.low, 3)}, {fmt(m.high, 3)}]"
    words = no_interval_words(m)
    return f"none ({words})" if words else ""


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


# What the metrics table shows of a metric, and a judge's failed answers (the calls' line).
_IN_THE_TABLE = frozenset({"mean", "p50", "p90", "count", "errors"})


def other_aggregates(metrics: dict[str, dict[str, Any]]) -> str | None:
    """The metrics' aggregates the table has no column for, in one line: an ``eval_fn``
    that returns one number (MLflow logs it under the metric's name) had a blank row,
    its value nowhere in the terminal; MLflow's ``variance``, a judge's ``agreement``."""
    parts = []
    for name, values in metrics.items():
        own = (name, name.split("/")[0])  # exact_match()'s "exact_match" is exact_match/v1
        shown = [
            fmt(value) if key in own else f"{key} {fmt(value)}"
            for key, value in values.items()
            if key not in _IN_THE_TABLE and value is not None
        ]
        if shown:
            parts.append(f"{name} {', '.join(shown)}")
    return f"over the run: {'; '.join(parts)}" if parts else None


def home_of(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("home")


def find_run_noted(db_path: Path, ref: str) -> RunInfo:
    """The run ``ref`` names (an id or a unique prefix, a tag, a run name), as every command
    that takes a RUN finds it; the note on stderr when several runs have that name."""
    from harness.store.tags import find_run

    info, note = find_run(db_path, ref)
    if note:
        click.echo(f"note: {note}", err=True)
    return info


def call_lines(
    calls: dict[str, dict[str, Any]], in_resume: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """One line per kind of call (model, judge, ...): sent, cached, local, failed, tokens.

    ``calls`` counts a run's calls in all its processes; for a resumed run, ``in_resume``
    (this process's alone) adds ``(M in this resume)`` to each count its earlier ones
    made larger: ``10 sent (4 in this resume)``.
    """
    lines = []
    for kind, c in calls.items():
        if not any(c.get(k) for k in ("requests", "cache_hits", "local_calls", "errors")):
            continue
        here = None if in_resume is None else in_resume.get(kind) or {}

        def count(counter: str, what: str, c: dict[str, Any] = c, here: Any = here) -> str:
            total = c.get(counter, 0)
            if here is None or here.get(counter, 0) == total:
                return f"{total:,} {what}"
            return f"{total:,} {what} ({here.get(counter, 0):,} in this resume)"

        line = (
            f"{kind} calls: {count('requests', 'sent')}, {count('cache_hits', 'from cache')}"
            + (f", {count('local_calls', 'local')}" if c.get("local_calls") else "")
            + (f", {count('errors', 'failed')}" if c.get("errors") else "")
            + f"; tokens {c.get('input_tokens', 0):,} in / {c.get('output_tokens', 0):,} out"
        )
        if c.get("cost_usd"):
            line += f"; cost ${c['cost_usd']:.4f}"
        if c.get("saved_cost_usd"):
            line += f"; cache saved ${c['saved_cost_usd']:.4f}"
        lines.append(line)
    return lines


def failure_lines(failures: dict[str, dict[str, Any]], top: int = 3) -> list[str]:
    """What failed, per kind of call, with the most common reasons (one line each)."""
    from harness.runner.config import FAILURE_UNITS

    lines = []
    for kind, entry in failures.items():
        unit = FAILURE_UNITS.get(kind, "call") + ("" if entry["failed"] == 1 else "s")
        lines.append(f"failed: {entry['failed']:,} {kind} {unit}")
        lines += [f"  {n} x {_one_line(reason)}" for reason, n in entry["reasons"][:top]]
    return lines


def _one_line(text: object, width: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def invocation() -> str:
    """How to type ``harness`` again in a hint: ``harness`` when that name on PATH is this
    program, else the path it was started by (``.venv/bin/harness`` before activating)."""
    import os
    import shutil
    import sys

    started = sys.argv[0] if sys.argv and sys.argv[0] else "harness"
    if os.path.basename(started) != "harness":
        return "harness"  # python -m harness, or a test runner: the name is the best hint
    on_path = shutil.which("harness")
    if on_path and os.path.realpath(on_path) == os.path.realpath(started):
        return "harness"
    relative = os.path.relpath(started)
    return relative if not relative.startswith("..") else os.path.abspath(started)


def _run_count(sweep: SweepResult) -> str:
    """``2 runs``, or ``1 of 3 runs`` for a sweep stopped before its last point ran."""
    if sweep.points and sweep.points > len(sweep.runs):
        return f"{len(sweep.runs)} of {sweep.points} runs"
    return plural(len(sweep.runs), "run")


def print_sweep(sweep: SweepResult) -> None:
    """A sweep's comparison table (``harness run`` at its end, ``harness runs show``):
    one row per child, ``*`` on the best, then where to find it again."""
    hidden = sweep.columns.index("mlflow_run_id")
    counts = {len(sweep.axes) + 2, len(sweep.axes) + 3}  # rows, errors (an axis may be "rows")
    print_table(
        f"sweep {sweep.sweep_id}: {_run_count(sweep)} over {', '.join(sweep.axes)}"
        + (f"; * = best {sweep.primary_metric}" if sweep.primary_metric else ""),
        ["", *(c for i, c in enumerate(sweep.columns) if i != hidden)],
        [
            [
                "*" if n == sweep.best else "",
                *(f"{v:,}" if i in counts else fmt(v) for i, v in enumerate(row) if i != hidden),
            ]
            for n, row in enumerate(sweep.rows)
        ],
    )
    if sweep.parent_mlflow_run_id:
        click.echo(
            f"MLflow parent run {sweep.parent_mlflow_run_id} (open it with `{invocation()} ui`)"
        )
    for run in sweep.runs:  # --by: each child's slices, named by what varies
        if run.result.slices:
            varied = ", ".join(f"{k}={fmt(v)}" for k, v in run.values.items())
            click.echo(f"run {run.result.run_id} ({varied}):")
            print_slices(run.result.slices)
