"""``harness judges``: list the judges, calibrate one against human labels, compare two runs."""

from __future__ import annotations

from typing import Any

import click

from harness.cli.options import (
    cache_option,
    concurrency_option,
    guideline_option,
    judges_file_option,
)
from harness.cli.output import find_run_noted, fmt, home_of, print_json, print_table


@click.group()
def judges() -> None:
    """LLM judges: built-in, from harness.toml or --judges FILE, or registered in Python.

    \b
    Example:
      harness judges list
    """


@judges.command("list")
@judges_file_option
@guideline_option
@click.option("--json", "as_json", is_flag=True, help="Print the judges as JSON.")
@click.pass_context
def list_(
    ctx: click.Context, judges_file: str | None, guidelines: tuple[str, ...], as_json: bool
) -> None:
    """List the judges --judge accepts: output type, the fields they use, version.

    \b
    Example:
      harness judges list --judges my_judges.toml
    """
    from harness.config import resolve_home
    from harness.judges import available_judges

    found = available_judges(
        home=resolve_home(home_of(ctx)), judges_file=judges_file, guidelines=guidelines
    )
    rows: list[dict[str, Any]] = []
    for name, judge in sorted(found.items()):
        if judge is None:  # the guidelines judge, without guidelines
            rows.append(
                {
                    "name": name,
                    "origin": "builtin",
                    "output": "yes/no",
                    "fields": ["input", "output"],
                    "version": None,
                    "description": "yes/no: the output follows every --guideline "
                    "(pass --guideline TEXT)",
                }
            )
            continue
        rows.append(
            {
                "name": name,
                "origin": judge.origin,
                "output": judge.output.describe(),
                "fields": sorted(judge.fields),
                "version": judge.version,
                "description": judge.description,
            }
        )
    if as_json:
        print_json(rows)
        return
    print_table(
        None,
        ["judge", "origin", "output", "uses", "version", "description"],
        [
            [
                r["name"],
                r["origin"],
                r["output"],
                ", ".join(r["fields"]),
                r["version"] or "",
                r["description"],
            ]
            for r in rows
        ],
    )


@judges.command("calibrate")
@click.option(
    "--data",
    "data_ref",
    required=True,
    metavar="NAME[@VERSION]",
    help="Dataset holding the human labels.",
)
@click.option("--judge", "judge_name", required=True, metavar="NAME", help="Judge to check.")
@click.option(
    "--label",
    "label_column",
    required=True,
    metavar="COLUMN",
    help="Column with the human labels (e.g. final_decision).",
)
@click.option("--judge-model", metavar="URI", help="Model the judge calls.")
@click.option(
    "--output",
    "output_column",
    metavar="COLUMN",
    help="Column with the outputs to grade. [default: an `output` column]",
)
@click.option(
    "--run",
    "run_id",
    metavar="RUN",
    help="Grade this run's stored outputs (a run id, a tag or a run name).",
)
@click.option(
    "--label-map",
    "label_map",
    multiple=True,
    metavar="LABEL=ANSWER",
    help="Map a human label to a judge answer (e.g. maybe=no), repeatable; LABEL= "
    "excludes it. Labels that map to no answer are excluded and counted (if none maps, "
    "it is an error, exit 2, as is an ANSWER the judge cannot give).",
)
@judges_file_option
@guideline_option
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@cache_option("Cache mode for the judge calls.")
@concurrency_option("Judge requests in flight at once.")
@click.option(
    "--show",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many disagreeing rows to print.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_context
def calibrate_(
    ctx: click.Context,
    data_ref: str,
    judge_name: str,
    label_column: str,
    judge_model: str | None,
    output_column: str | None,
    run_id: str | None,
    label_map: tuple[str, ...],
    judges_file: str | None,
    guidelines: tuple[str, ...],
    limit: int | None,
    cache_mode: str,
    concurrency: int,
    show: int,
    as_json: bool,
) -> None:
    """Measure a judge against human labels: accuracy, Cohen's kappa, confusion matrix.

    Exit code 1 when judge answers failed (calls after their retries, or no usable
    verdict): the figures leave those rows out.

    \b
    Example:
      harness judges calibrate --data qa --run RUN_ID --judge correctness \\
          --label final_decision --judge-model openai:/gpt-4o-mini
    """
    from harness.config import resolve_home
    from harness.errors import ConfigError
    from harness.judges.calibration import calibrate

    mapping = {}
    for item in label_map:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--label-map expects LABEL=ANSWER, got {item!r}")
        mapping[key.strip()] = value.strip()
    if run_id is not None:
        run_id = find_run_noted(resolve_home(home_of(ctx)).db_path, run_id).run_id
    result = calibrate(
        judge_name,
        data=data_ref,
        label=label_column,
        judge_model=judge_model,
        home=home_of(ctx),
        output=output_column,
        run=run_id,
        label_map=mapping,
        judges_file=judges_file,
        guidelines=guidelines,
        cache=cache_mode,
        concurrency=concurrency,
        limit=limit,
    )
    if as_json:
        print_json(result.as_dict())
    else:
        _print_calibration(result, show)
    failed = result.failure()
    if failed is not None:
        raise failed


def _figure(value: float | None) -> str:
    return "n/a" if value is None else fmt(value)


def _print_calibration(result: Any, show: int) -> None:
    click.echo(
        f"judge {result.judge}@{result.judge_version} ({result.judge_model}) vs "
        f"{result.label_column} on {result.dataset}"
    )
    excluded = ", ".join(f"{v} x{n}" for v, n in result.excluded_values.items())
    click.echo(
        f"rows: {result.rows}; compared {result.compared}; excluded {result.excluded}"
        + (f" (labels that map to no judge answer: {excluded})" if excluded else "")
        + f"; not judged {result.not_judged}; judge errors {len(result.errors)}"
    )
    # None: no row compared, or (kappa) both sides gave one answer: there is no figure.
    line = f"accuracy {_figure(result.accuracy)}  Cohen's kappa {_figure(result.kappa)}"
    if result.weighted_kappa is not None:
        line += f"  quadratic-weighted kappa {fmt(result.weighted_kappa)}"
    click.echo(line)
    print_table(
        "confusion matrix (rows: human, columns: judge)",
        ["human", *result.labels],
        [[h, *(result.confusion[h][j] for j in result.labels)] for h in result.labels],
    )
    if result.disagreements and show:
        print_table(
            f"disagreements ({len(result.disagreements)}, first {show})",
            ["id", "human", "judge", "rationale"],
            [
                [d["id"], d["human"], d["judge"], _short(d["rationale"])]
                for d in result.disagreements[:show]
            ],
        )
    _print_calls(result.calls)


@judges.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--judge-model", metavar="URI", help="Model the pairwise judge calls.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N shared rows.")
@cache_option("Cache mode for the judge calls.")
@concurrency_option("Judge requests in flight at once.")
@click.option("--rows", "with_rows", is_flag=True, help="Also print every row's verdicts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_context
def compare(
    ctx: click.Context,
    run_a: str,
    run_b: str,
    judge_model: str | None,
    limit: int | None,
    cache_mode: str,
    concurrency: int,
    with_rows: bool,
    as_json: bool,
) -> None:
    """Compare two runs row by row with a pairwise judge, asked in both orders. RUN_A and
    RUN_B are run ids (or unique prefixes), tags or run names.

    A row is won by a run only when both orders agree; otherwise it is a tie (and counted
    as inconsistent: the judge preferred a position, not an answer). A row both runs
    answered with the same text is a tie, and the judge is not asked. Exit code 1 when
    rows could not be judged (judge calls that failed after their retries, or answers
    with no usable verdict).

    \b
    Example:
      harness judges compare RUN_A RUN_B --judge-model openai:/gpt-4o-mini
    """
    from harness.config import resolve_home
    from harness.judges.pairwise import compare_runs

    db_path = resolve_home(home_of(ctx)).db_path
    result = compare_runs(
        find_run_noted(db_path, run_a).run_id,
        find_run_noted(db_path, run_b).run_id,
        judge_model=judge_model,
        home=home_of(ctx),
        cache=cache_mode,
        concurrency=concurrency,
        limit=limit,
    )
    if as_json:
        print_json(result.as_dict())
    else:
        _print_comparison(result, with_rows)
    failed = result.failure()
    if failed is not None:
        raise failed


def _print_comparison(result: Any, with_rows: bool) -> None:
    t = result.totals
    click.echo(
        f"A = {result.run_a}, B = {result.run_b} on {result.dataset}; judge "
        f"{result.judge_model} (pairwise@{result.judge_version})"
    )
    print_table(
        None,
        ["compared", "A wins", "B wins", "ties", "inconsistent", "errors", "skipped", "A win rate"],
        [
            [
                t["compared"],
                t["wins_a"],
                t["wins_b"],
                t["ties"],
                t["inconsistent"],
                t["errors"],
                t["skipped"],
                fmt(t["win_rate_a"]),
            ]
        ],
    )
    if with_rows:
        print_table(
            None,
            ["id", "winner", "A first", "B first", "rationale (A first)"],
            [
                [
                    r.example_id,
                    r.winner or f"error: {r.error}",
                    r.a_first,
                    r.b_first,
                    _short(r.rationale_a_first),
                ]
                for r in result.rows
            ],
        )
    _print_calls(result.calls)


def _print_calls(calls: dict[str, dict[str, object]]) -> None:
    c = calls.get("judge", {})
    click.echo(
        f"judge calls: {c.get('requests', 0):,} sent, {c.get('cache_hits', 0):,} from cache"
        + (f", {c['local_calls']:,} local" if c.get("local_calls") else "")
        + f"; tokens {c.get('input_tokens', 0):,} in / {c.get('output_tokens', 0):,} out"
    )


def _short(text: object, width: int = 80) -> str:
    if text is None:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
