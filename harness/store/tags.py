"""Run tags: names a user pins on runs (``harness runs tag RUN baseline``), and finding a
run by id, tag or run name.

A tag names one run at a time; tagging another run with the same name moves it, as a
baseline moves when a better run replaces it. A tag may not be another run's name or start
run ids, nor a sweep's ``--run-name`` or the start of sweep ids: it would hide them. A run
may take its own name as a tag: that pins it among the runs of that name. A run named
later like a tag (or like the start of a run id) is hidden all the same, so ``find_run``
says so in its note, and the commands that write (``runs delete``, ``runs log``) refuse
such a reference.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError, RunNotFound
from harness.store.db import connect
from harness.store.runs import RunInfo, get_run, list_runs
from harness.wording import plural

__all__ = ["find_run", "run_tags", "tag_run"]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def tag_run(db_path: Path, run_id: str, name: str) -> tuple[RunInfo, str | None]:
    """Pin ``name`` on the run ``run_id`` (an id or a prefix); return the run and the run
    the tag named before, if it moved."""
    name = name.strip()
    if not name or any(c.isspace() for c in name):
        raise ConfigError(f"a tag must be one word without spaces, not {name!r}")
    from harness.store.exports import SUFFIXES as RUN_FILE_SUFFIXES  # pyarrow: only here

    if name.lower().endswith(RUN_FILE_SUFFIXES):  # `runs show NAME` would read a file
        raise ConfigError(
            f"tag {name!r} ends like a run file ({', '.join(RUN_FILE_SUFFIXES)}), which "
            "commands read as a file: choose another name"
        )
    info = get_run(db_path, run_id)
    if name != info.run_id and _ids_starting(db_path, name):
        raise ConfigError(f"tag {name!r} would hide the run ids it starts; choose another name")
    named = _named(db_path, name, besides=info.run_id)
    # The tag would win over the name, for show and compare, and for delete. A run may take
    # its own name as a tag, though: that pins it among the runs of that name.
    if named and info.run_name != name:
        raise ConfigError(
            f"tag {name!r} is the name of {_runs(named)}; a tag must not hide a run name: "
            "choose another tag"
        )
    _check_sweeps(db_path, name, info)
    with connect(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        row = con.execute("SELECT run_id FROM run_tags WHERE name = ?", [name]).fetchone()
        con.execute("DELETE FROM run_tags WHERE name = ?", [name])
        con.execute(
            "INSERT INTO run_tags (name, run_id, created_at) VALUES (?, ?, ?)",
            [name, info.run_id, _now()],
        )
        con.execute("COMMIT")
    previous = row[0] if row and row[0] != info.run_id else None
    return info, previous


def _check_sweeps(db_path: Path, name: str, info: RunInfo) -> None:
    """Refuse a tag that is a sweep's ``--run-name`` or starts a sweep's id: `runs show
    NAME` takes a tag first, so it would show the run instead of the sweep. A run named
    NAME already hides the sweep, so it may take its own name as a tag."""
    from harness.store.sweeps import sweeps_hidden_by

    named, started = sweeps_hidden_by(db_path, name)
    if named and info.run_name != name:
        shown = ", ".join(named[:3]) + (", ..." if len(named) > 3 else "")
        sweeps = f"sweep {shown}" if len(named) == 1 else f"{len(named)} sweeps ({shown})"
        raise ConfigError(
            f"tag {name!r} is the name of {sweeps}; a tag must not hide a sweep's name: "
            "choose another tag"
        )
    if started:
        raise ConfigError(f"tag {name!r} would hide the sweep ids it starts; choose another name")


def run_tags(db_path: Path) -> dict[str, list[str]]:
    """run id -> its tags, sorted."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("SELECT run_id, name FROM run_tags ORDER BY name").fetchall()
    tags: dict[str, list[str]] = {}
    for run_id, name in rows:
        tags.setdefault(run_id, []).append(name)
    return tags


def _named(db_path: Path, name: str, *, besides: str | None = None) -> list[str]:
    """The ids of the runs named ``name`` (but ``besides``), newest first."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id FROM runs WHERE run_name = ? AND run_id IS DISTINCT FROM ? "
            "ORDER BY created_at DESC",
            [name, besides],
        ).fetchall()
    return [r[0] for r in rows]


def _runs(ids: list[str]) -> str:
    shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
    return f"run {shown}" if len(ids) == 1 else f"{len(ids)} runs ({shown})"


def _ids_starting(db_path: Path, prefix: str) -> int:
    with connect(db_path, read_only=True) as con:
        row = con.execute(
            "SELECT count(*) FROM runs WHERE starts_with(run_id, ?)", [prefix]
        ).fetchone()
    return int(row[0]) if row else 0


def find_run(db_path: Path, ref: str) -> tuple[RunInfo, str | None]:
    """The run that ``ref`` names, and a note when the choice needs saying.

    In order, as git takes a branch name before a commit's abbreviation: a tag, a whole
    run id, a run name (the newest run of that name, with a note when several have it),
    an unambiguous prefix of a run id. A tag or an id that hides runs of that name (named
    after the tag was made) wins, with a note naming them; a name that also starts run
    ids wins over them, with a note naming them.
    """
    if not ref:  # `harness runs delete "$RUN"`, unset: as a prefix it starts every run id
        raise RunNotFound(
            "no run named '': give a run id, a tag or a run name; see `harness runs list`"
        )
    with connect(db_path, read_only=True) as con:
        tagged = con.execute("SELECT run_id FROM run_tags WHERE name = ?", [ref]).fetchone()
        ids = con.execute(
            "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 3",
            [ref],
        ).fetchall()
    whole = [run_id for (run_id,) in ids if run_id == ref]
    if tagged or whole:
        info = get_run(db_path, tagged[0] if tagged else whole[0])
        hidden = _named(db_path, ref, besides=info.run_id)
        if not hidden:
            return info, None
        what = "the tag of" if tagged else "the id of"
        return info, (
            f"{ref!r} is {what} run {info.run_id}, which is used; {_runs(hidden)} "
            f"{'is' if len(hidden) == 1 else 'are'} named {ref!r} too"
        )
    named = [info for info in list_runs(db_path) if info.run_name == ref]  # newest first
    if named:
        notes = []
        if len(named) > 1:
            # A name with a space, or one that starts run ids, cannot be a tag: name another.
            tag_like = ref.strip() and not any(c.isspace() for c in ref) and not ids
            pinned = ref if tag_like else "NAME"
            notes.append(
                f"{len(named)} runs are named {ref!r}; using the newest, {named[0].run_id} "
                f"({named[0].created_at:%Y-%m-%d %H:%M}); pin one with "
                f"`harness runs tag RUN_ID {pinned}`"
            )
        # The name wins over an abbreviation, as in git; say which runs it hides.
        started = [run_id for (run_id,) in ids if run_id != named[0].run_id]
        if started:
            runs = f"run {started[0]}" if len(ids) < 3 and len(started) == 1 else "other runs"
            notes.append(
                f"{ref!r} is the name of run {named[0].run_id}, which is used; it also starts "
                f"the id of {runs} (give more of the id for {'it' if len(started) == 1 else 'one'})"
            )
        return named[0], "; ".join(notes) or None
    if len(ids) == 1:
        return get_run(db_path, ids[0][0]), None
    if ids:
        raise RunNotFound(f"run id {ref!r} is ambiguous: it starts several runs")
    from harness.store.sweeps import find_sweep_id, sweep_children

    sweep = find_sweep_id(db_path, ref)
    children = sweep_children(db_path, sweep[0]) if sweep else []
    if children:  # `harness report SWEEP`: name the runs that can be given instead
        listed = ", ".join(child.run_id for child in children)
        give = (  # one run is left when the others were deleted
            f"its id ({listed}); `harness runs show {ref}` shows it"
            if len(children) == 1
            else f"one of their ids ({listed}); `harness runs show {ref}` compares them"
        )
        which = f"; {sweep[1]}" if sweep and sweep[1] else ""  # the newest of a name, as shown
        raise RunNotFound(
            f"{ref!r} is a sweep of {plural(len(children), 'run')}, not a run: give {give}{which}"
        )
    raise RunNotFound(
        f"no run, tag or run name {ref!r}; see `harness runs list` (or give an exported run file)"
    )
