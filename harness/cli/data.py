"""``harness data``: import, sample, export, list and show eval sets."""

from __future__ import annotations

import click

from harness.cli.options import profile_option, spark_remote_option, verbose_option
from harness.cli.output import home_of, print_json, print_table
from harness.wording import plural


@click.group()
def data() -> None:
    """Eval sets: import files, list them, show their rows, export them.

    \b
    Example:
      harness data import questions.csv --name qa
    """


@data.command("import")
@click.argument("path", type=click.Path(dir_okay=True), required=False)
@click.option("--name", required=True, help="Dataset name; imports under one name are versions.")
@click.option(
    "--spark-table",
    metavar="NAME",
    help="Import a Spark table instead of a file (catalog.schema.table on Unity Catalog).",
)
@click.option(
    "--spark-sql",
    metavar="QUERY",
    help="Import the result of a Spark SQL query instead of a file.",
)
@spark_remote_option
@profile_option
@verbose_option
@click.option(
    "--input",
    "input_col",
    metavar="COL",
    help="Column with the question. [default: input, question or inputs]",
)
@click.option(
    "--expected",
    "expected_col",
    metavar="COL",
    help="Column with the expected answer, or a list of acceptable answers. "
    "[default: expected, answer, ground_truth or targets]",
)
@click.option(
    "--context",
    "context_col",
    metavar="COL",
    help="Column with retrieved context. [default: context]",
)
@click.option(
    "--id",
    "id_col",
    metavar="COL",
    help="Column with a unique row id, in every row. [default: id, else the row number]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def import_(
    ctx: click.Context,
    path: str,
    name: str,
    input_col: str | None,
    expected_col: str | None,
    context_col: str | None,
    id_col: str | None,
    spark_table: str | None,
    spark_sql: str | None,
    spark_remote: str | None,
    profile: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Import a CSV, TSV, JSONL, JSON or Parquet file, or a Spark table or query, as a
    dataset version.

    A version is named by the digest of its content: importing the same content again
    reports the existing version (and, if it is not the newest, which version `--data NAME`
    runs); changed content makes a new one. Columns named input,
    question, expected, answer, context or id (in any case) are found by themselves; a
    .csv may be separated by commas, semicolons, tabs or bars; a row with more fields than
    the header, or a header naming a column twice, is refused. A Spark table is read in
    batches, so it may be larger than memory; its rows give the same version as the same
    rows in a file.

    \b
    Examples:
      harness data import questions.csv --name qa --expected final_decision
      harness data import --spark-table main.evals.qa --name qa --spark-remote sc://host:15002
      harness data import --spark-sql "SELECT * FROM main.evals.qa WHERE split = 'test'" \\
          --name qa-test --spark-remote databricks --profile prod
    """
    mapping = dict(input=input_col, expected=expected_col, context=context_col, id=id_col)
    if spark_table is not None or spark_sql is not None:
        from harness.config import resolve_home
        from harness.errors import ConfigError
        from harness.runner.spark_session import SparkTarget
        from harness.spark_tables import import_spark_table

        if path is not None:
            raise ConfigError("give a file PATH or --spark-table/--spark-sql, not both")
        target = SparkTarget.resolve(
            resolve_home(home_of(ctx)).settings,
            remote=spark_remote,
            profile=profile,
            verbose=verbose,
        )
        result = import_spark_table(
            spark_table, sql=spark_sql, name=name, home=home_of(ctx), target=target, **mapping
        )
    else:
        from harness.data import import_file
        from harness.errors import ConfigError

        if path is None:
            raise ConfigError("harness data import needs a file PATH (or --spark-table NAME)")
        result = import_file(path, name=name, home=home_of(ctx), **mapping)
    if as_json:
        print_json(result.as_dict())
        return
    info = result.dataset
    verb = "imported" if result.created else "unchanged: already stored as"
    click.echo(
        f"{verb} {info.ref} ({plural(info.n_rows, 'row')}; columns: "
        + ", ".join(f"{k}={v}" for k, v in result.columns.items() if v)
        + ")"
        + (
            ""
            if result.newest == info.ref
            else f"; the newest version is {result.newest}, the one `--data {name}` runs: "
            f"give --data {info.ref} to run this one"
        )
    )


@data.command("sample")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("size", metavar="N|FRACTION")
@click.option("--name", required=True, help="Dataset to save the subset as (a new version).")
@click.option("--seed", type=int, default=0, show_default=True, help="Which random subset to take.")
@click.option(
    "--stratify", metavar="COLUMN", help="Keep each value's share of this column (within a row)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def sample(
    ctx: click.Context,
    ref: str,
    size: str,
    name: str,
    seed: int,
    stratify: str | None,
    as_json: bool,
) -> None:
    """Save a reproducible random subset of a dataset as a dataset version of its own.

    N rows, or a fraction such as 0.1, chosen as `harness run --sample` chooses them: the
    same seed gives the same rows on any machine. The subset is content-digested like any
    import, so sampling again with the same arguments changes nothing.

    \b
    Example:
      harness data sample pubmedqa 100 --seed 1 --stratify final_decision --name pubmedqa-100
    """
    from harness.data import sample_dataset

    result = sample_dataset(ref, size, name=name, seed=seed, stratify=stratify, home=home_of(ctx))
    if as_json:
        print_json(result.as_dict())
        return
    info = result.dataset
    verb = "saved" if result.created else "unchanged: already stored as"
    click.echo(f"{verb} {info.ref} ({plural(info.n_rows, 'row')}; {info.source})")


@data.command("export")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option("--version", metavar="V", help="The version to write. [default: the newest]")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to write: .jsonl (or .ndjson) or .csv, by its name.",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def export(
    ctx: click.Context, ref: str, version: str | None, output: str, force: bool, as_json: bool
) -> None:
    """Write a dataset version to a file that `harness data import` reads back to the
    same rows (the same version: importing it again under NAME changes nothing).

    The fields are written as the columns id, input, expected and context, every other
    column under its own name. A CSV holds text only: a version with a number, a list or
    an empty value among its other columns is refused; write .jsonl instead.

    \b
    Examples:
      harness data export qa -o qa.jsonl
      harness data export qa --version 3f2a9c -o qa-old.csv --force
    """
    from harness.data_export import export_dataset

    if version is not None:
        from harness.errors import ConfigError

        if "@" in ref:
            raise ConfigError(f"give the version in {ref} or with --version, not both")
        ref = f"{ref}@{version}"
    result = export_dataset(ref, output, force=force, home=home_of(ctx))
    if as_json:
        print_json(result.as_dict())
        return
    info = result.dataset
    click.echo(f"wrote {info.ref} ({plural(info.n_rows, 'row')}) to {output}")


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List datasets and their versions, newest first.

    \b
    Example:
      harness data list --json
    """
    from harness.config import resolve_home
    from harness.store.datasets import list_datasets

    infos = list_datasets(resolve_home(home_of(ctx)).db_path)
    if as_json:
        print_json([i.as_dict() for i in infos])
        return
    if not infos:
        click.echo("no datasets yet; import one with `harness data import PATH --name NAME`")
        return
    print_table(
        None,
        ["dataset", "version", "rows", "created", "source"],
        [
            [i.name, i.version, f"{i.n_rows:,}", i.created_at.strftime("%Y-%m-%d %H:%M"), i.source]
            for i in infos
        ],
    )


@data.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "--limit", default=10, show_default=True, type=click.IntRange(min=0), help="Rows to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print the dataset and rows as JSON.")
@click.pass_context
def show(ctx: click.Context, ref: str, limit: int, as_json: bool) -> None:
    """Show a dataset version and its first rows.

    \b
    Example:
      harness data show qa@3f2a9c --limit 5
    """
    from harness.config import resolve_home
    from harness.store.datasets import load_examples, resolve_dataset

    db_path = resolve_home(home_of(ctx)).db_path
    info = resolve_dataset(db_path, ref)
    examples = load_examples(db_path, info, limit=limit)
    if as_json:
        print_json(
            {
                **info.as_dict(),
                "examples": [
                    {
                        "id": e.id,
                        "input": e.input,
                        "expected": list(e.expected),
                        "context": e.context,
                        "extra": e.extra,
                    }
                    for e in examples
                ],
            }
        )
        return
    click.echo(
        f"{info.ref}  {plural(info.n_rows, 'row')}  digest {info.digest}  source {info.source}"
    )
    print_table(
        None,
        ["id", "input", "expected", "context"],
        [
            [e.id, _short(e.input), _short(" || ".join(e.expected)), _short(e.context)]
            for e in examples
        ],
    )
    if info.n_rows > len(examples):
        click.echo(f"... {plural(info.n_rows - len(examples), 'more row')} (--limit N)")


def _short(text: str | None, width: int = 80) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
