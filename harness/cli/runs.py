"""``harness runs``: read runs back from DuckDB."""

from __future__ import annotations

import click

from harness.cli.output import fmt, home_of, print_json, print_table


@click.group()
def runs() -> None:
    """Runs stored in the project's DuckDB file."""


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def list_(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List runs, newest first."""
    from harness.config import resolve_home
    from harness.store.runs import list_runs

    infos = list_runs(resolve_home(home_of(ctx)).db_path, limit=limit)
    if as_json:
        print_json([i.as_dict() for i in infos])
        return
    if not infos:
        click.echo("no runs yet; start one with `harness run --data NAME --model URI`")
        return
    rows = []
    for i in infos:
        headline = next(iter(i.metrics.items()), None)
        rows.append(
            [
                i.run_id,
                i.created_at.strftime("%Y-%m-%d %H:%M"),
                i.status,
                f"{i.dataset}@{i.dataset_version}",
                i.model,
                f"{i.rows_done}/{i.rows_total}",
                i.errors if i.errors is not None else "",
                f"{headline[0]} {fmt(headline[1].get('mean'))}" if headline else "",
            ]
        )
    print_table(
        None,
        ["run", "created", "status", "dataset", "model", "rows", "errors", "first metric (mean)"],
        rows,
    )


@runs.command("show")
@click.argument("run_id")
@click.option("--rows", "with_rows", is_flag=True, help="Also show every row with its scores.")
@click.option("--json", "as_json", is_flag=True, help="Print the run (and rows) as JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: str, with_rows: bool, as_json: bool) -> None:
    """Show one run: configuration, metrics, calls; with --rows the per-row table."""
    from harness.config import resolve_home
    from harness.runner.summary import results_table
    from harness.store.runs import get_run, load_outputs, load_scores

    db_path = resolve_home(home_of(ctx)).db_path
    info = get_run(db_path, run_id)
    table = None
    if with_rows:
        table = results_table(load_outputs(db_path, info.run_id), load_scores(db_path, info.run_id))
    if as_json:
        document = info.as_dict()
        if table is not None:
            document["rows_table"] = table.to_dict(orient="records")
        print_json(document)
        return
    click.echo(
        f"run {info.run_id}  {info.status}  {info.model} on "
        f"{info.dataset}@{info.dataset_version}  {info.rows_done}/{info.rows_total} rows, "
        f"{info.errors or 0} errors"
    )
    if info.mlflow_run_id:
        click.echo(f"MLflow run {info.mlflow_run_id}")
    print_table(
        None,
        ["metric", "mean", "p50", "p90", "rows"],
        [
            [n, fmt(a.get("mean")), fmt(a.get("p50")), fmt(a.get("p90")), a.get("count")]
            for n, a in info.metrics.items()
        ],
    )
    for kind, c in info.usage.items():
        click.echo(
            f"{kind} calls: {c.get('requests', 0)} sent, {c.get('cache_hits', 0)} cached, "
            f"{c.get('errors', 0)} failed"
        )
    if table is not None:
        shown = [c for c in table.columns if c not in ("input_tokens", "output_tokens", "context")]
        print_table(
            None, shown, [[_cell(v) for v in row] for row in table[shown].itertuples(index=False)]
        )


def _cell(value: object, width: int = 60) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return fmt(value)
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
