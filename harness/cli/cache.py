"""``harness cache``: inspect, share and trim the response cache."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.output import home_of, print_json, print_table
from harness.wording import plural

if TYPE_CHECKING:
    from harness.cache.store import ResponseCache


def _cache_dir(ctx: click.Context) -> Path:
    from harness.config import resolve_home

    return resolve_home(home_of(ctx)).cache_dir


@contextmanager
def _open_cache(ctx: click.Context, *, read_only: bool = False) -> Iterator[ResponseCache]:
    """The project's cache, created if it is not there yet; ``read_only`` for a command that
    only reads (it can then read a cache folder it cannot write)."""
    from harness.cache.store import ResponseCache

    cache = ResponseCache(_cache_dir(ctx), read_only=read_only)
    try:
        yield cache
    finally:
        cache.close()


@click.group()
def cache() -> None:
    """The response cache: every model and judge call, keyed by a hash of the request.

    \b
    Example:
      harness cache stats
    """


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Entries, size on disk, age, and entries per model.

    \b
    Example:
      harness cache stats --json
    """
    from harness.cache.upkeep import cache_stats

    document = cache_stats(_cache_dir(ctx))
    if as_json:
        print_json(document)
        return
    click.echo(
        f"{plural(document['entries'], 'entry', 'entries')}, "
        f"{document['size_bytes'] / 1e6:.1f} MB in "
        f"{document['directory']}"
    )
    if document["oldest"]:
        click.echo(f"oldest {document['oldest']}, newest {document['newest']}")
    if document["entries"]:
        print_table(
            None,
            ["provider", "base url", "model", "entries"],
            [
                [m["provider"], m["base_url"] or "", m["model"], m["entries"]]
                for m in document["by_model"]
            ],
        )
    if document["unreadable"]:
        click.echo(
            f"{plural(document['unreadable'], 'entry', 'entries')} cannot be read (damaged): "
            "`harness cache verify` lists them, `harness cache prune` removes them"
        )


@cache.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--run",
    "run_ref",
    metavar="RUN",
    help="Only the calls of this run (a run id or a unique prefix, a tag, or a run name).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def export(ctx: click.Context, path: str, run_ref: str | None, as_json: bool) -> None:
    """Write a cassette: JSONL (gzipped if PATH ends in .gz), sorted by key, diffable.

    \b
    Example:
      harness cache export tests/cassettes/qa.jsonl.gz --run RUN_ID
      harness cache export tests/cassettes/qa.jsonl.gz --run baseline
    """
    from harness.cache.cassette import export_cassette
    from harness.config import resolve_home
    from harness.store.runs import request_keys
    from harness.store.tags import find_run

    keys = None
    if run_ref:
        db_path = resolve_home(home_of(ctx)).db_path
        info, note = find_run(db_path, run_ref)  # as `runs show` reads its RUN
        if note:
            click.echo(f"note: {note}", err=True)
        keys = request_keys(db_path, info.run_id)
    from harness.cache.readonly import nothing_cached

    if nothing_cached(_cache_dir(ctx)):  # nothing is cached yet: an export creates no cache
        from harness.cache.memory import MemoryCache

        written = export_cassette(MemoryCache(), path, keys)
    else:
        with _open_cache(ctx, read_only=True) as c:
            written = export_cassette(c, path, keys)
    if as_json:
        print_json({"path": path, "entries": written})
    else:
        click.echo(f"wrote {plural(written, 'entry', 'entries')} to {path}")


@cache.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, path: str, as_json: bool) -> None:
    """Merge a cassette into the cache. Idempotent; conflicting entries keep the local one.
    The whole file is checked first: one bad line (or a gzip cut short) imports nothing.

    \b
    Example:
      harness cache import tests/cassettes/qa.jsonl.gz
    """
    from harness.cache.cassette import check_cassette, import_cassette
    from harness.errors import CacheError

    try:  # a file that is not there, not a cassette, or damaged anywhere creates nothing
        check_cassette(path)
    except CacheError as exc:
        raise exc.extended("nothing imported") from None
    with _open_cache(ctx) as c:
        report = import_cassette(c, path)
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(
        f"added {report.added:,}, unchanged {report.unchanged:,}, "
        f"conflicts {len(report.conflicts):,}, invalid {len(report.invalid):,}"
    )
    for key in report.conflicts[:_LISTED]:
        click.echo(f"conflict: {key} differs from the local entry (kept the local one)")
    if len(report.conflicts) > _LISTED:
        click.echo(f"... and {len(report.conflicts) - _LISTED:,} more conflicts (--json lists all)")
    for line, problem in report.invalid[:_LISTED]:
        click.echo(f"invalid: line {line}: {problem}")


_LISTED = 10  # conflicts import lists one per line


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check every entry's checksum. Exit code 1 if any entry is corrupt.

    \b
    Example:
      harness cache verify
    """
    from harness.cache.readonly import nothing_cached

    problems: list[tuple[str, str]] = []
    total = 0
    if not nothing_cached(_cache_dir(ctx)):  # else nothing is cached: a check creates no cache
        with _open_cache(ctx, read_only=True) as c:
            problems = c.verify()
            total = len(c)
    if as_json:
        print_json({"entries": total, "problems": [{"key": k, "problem": p} for k, p in problems]})
    else:
        for key, problem in problems:
            click.echo(f"{key}: {problem}")
        from harness.cache.store import STORE_PROBLEM

        # A store problem (a missing value file and the folder it leaves) is no entry's.
        store = sum(key == STORE_PROBLEM for key, _ in problems)
        click.echo(
            f"{plural(total, 'entry', 'entries')} checked, {len(problems) - store} corrupt"
            + (f"; {plural(store, 'problem')} in the store itself" if store else "")
        )
    if problems:
        ctx.exit(1)


@cache.command()
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Remove entries created more than DAYS ago. Without it, remove only corrupt entries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def prune(ctx: click.Context, days: float | None, as_json: bool) -> None:
    """Remove old or corrupt entries.

    \b
    Example:
      harness cache prune --older-than 30
    """
    removed = 0
    if _cache_dir(ctx).exists():  # else nothing is cached yet: nothing to remove, no cache made
        with _open_cache(ctx) as c:
            removed = c.prune(days)
    if as_json:
        print_json({"removed": removed})
    else:
        click.echo(f"removed {plural(removed, 'entry', 'entries')}")


@cache.command()
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def clear(ctx: click.Context, yes: bool, as_json: bool) -> None:
    """Remove every entry (reruns will pay for every call again). Asks first, unless --yes.

    \b
    Example:
      harness cache clear --yes
    """
    if not yes:
        # Every paid response goes: --json (a script's flag) is no consent, and a script
        # without a terminal is told to say --yes rather than left waiting for an answer.
        if sys.stdin is None or not sys.stdin.isatty():
            from harness.errors import ConfigError

            raise ConfigError(
                "cache clear removes every cached response; with no terminal to ask, "
                "add --yes to confirm"
            )
        if not click.confirm("Remove every cached response?", err=as_json):
            click.echo("cache clear cancelled: nothing removed", err=True)
            ctx.exit(1)  # as click's abort: the command did not do what it says
    from harness.cache.upkeep import clear_cache

    removed = clear_cache(_cache_dir(ctx))
    if as_json:
        print_json({"removed": removed})
    else:
        click.echo(f"removed {plural(removed, 'entry', 'entries')}")
