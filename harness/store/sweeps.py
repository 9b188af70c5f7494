"""Finding a sweep and its child runs in DuckDB.

A sweep has no table of its own: each child run stores ``config["sweep"]`` (the sweep's
id, the values of its point, the MLflow parent run's id and the ``--run-name`` the sweep
was given), so the children are the runs whose stored config names the sweep.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import RunNotFound
from harness.store.db import connect
from harness.store.runs import _RUN_COLUMNS, RunInfo, _run_info

__all__ = ["find_sweep_id", "sweep_children", "sweeps_hidden_by"]

_SWEEP_ID = "json_extract_string(r.config, '$.sweep.id')"


def sweep_children(db_path: Path, ref: str) -> list[RunInfo]:
    """The runs of the sweep ``ref`` names (its id, or its MLflow parent run's id), in the
    order they ran; [] when no run belongs to such a sweep."""
    sql = (
        f"SELECT {_RUN_COLUMNS} FROM runs r "
        f"WHERE {_SWEEP_ID} = ? "
        "OR json_extract_string(r.config, '$.sweep.parent_mlflow_run_id') = ? "
        "ORDER BY r.created_at, r.run_id"
    )
    with connect(db_path, read_only=True) as con:
        return [_run_info(row, db_path) for row in con.execute(sql, [ref, ref]).fetchall()]


def find_sweep_id(db_path: Path, ref: str) -> tuple[str, str | None] | None:
    """The id of the sweep ``ref`` names, and a note when the choice needs saying; None
    when it names none.

    In order, as ``find_run`` takes a run: the sweep's id or its MLflow parent run's id;
    then, when ``ref`` is not a tag, a run id or a run name (which name a run), the
    ``--run-name`` the sweep was given (the newest sweep of that name, with a note when
    several have it); then an unambiguous prefix of a sweep id. A prefix that starts
    several sweep ids, or a sweep id and run ids, raises RunNotFound.
    """
    with connect(db_path, read_only=True) as con:
        whole = con.execute(
            f"SELECT {_SWEEP_ID} FROM runs r WHERE {_SWEEP_ID} = $ref "
            "OR json_extract_string(r.config, '$.sweep.parent_mlflow_run_id') = $ref LIMIT 1",
            {"ref": ref},
        ).fetchone()
        if whole:
            return str(whole[0]), None
        a_run = con.execute(
            "SELECT 1 FROM run_tags WHERE name = $ref UNION ALL "
            "SELECT 1 FROM runs WHERE run_id = $ref OR run_name = $ref LIMIT 1",
            {"ref": ref},
        ).fetchone()
        if a_run:
            return None
        named = con.execute(
            f"SELECT {_SWEEP_ID} AS id FROM runs r "
            "WHERE json_extract_string(r.config, '$.sweep.name') = ? "
            "GROUP BY id ORDER BY max(r.created_at) DESC",
            [ref],
        ).fetchall()
        started = con.execute(
            f"SELECT DISTINCT {_SWEEP_ID} AS id FROM runs r WHERE starts_with({_SWEEP_ID}, ?) "
            "ORDER BY id",
            [ref],
        ).fetchall()
        runs_started = con.execute(
            "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 2",
            [ref],
        ).fetchall()
    if named:
        note = None
        if len(named) > 1:
            others = ", ".join(str(r[0]) for r in named[1:4]) + (", ..." if len(named) > 4 else "")
            note = (
                f"{len(named)} sweeps are named {ref!r}; using the newest, {named[0][0]} "
                f"(the others: {others}; give a sweep's id for one of them)"
            )
        return str(named[0][0]), note
    if not started:
        return None
    if len(started) > 1:
        raise RunNotFound(f"sweep id {ref!r} is ambiguous: it starts {len(started)} sweeps")
    if runs_started:
        runs = f"run {runs_started[0][0]}" if len(runs_started) == 1 else "runs"
        raise RunNotFound(
            f"{ref!r} is ambiguous: it starts the id of sweep {started[0][0]} and of {runs}; "
            "give more of the id"
        )
    return str(started[0][0]), None


def sweeps_hidden_by(db_path: Path, tag: str) -> tuple[list[str], list[str]]:
    """The ids of the sweeps given the ``--run-name`` ``tag`` (newest first), and of those
    whose id ``tag`` starts: a tag is taken before either (``find_sweep_id``), so it would
    hide them."""
    with connect(db_path, read_only=True) as con:
        named = con.execute(
            f"SELECT {_SWEEP_ID} AS id FROM runs r "
            "WHERE json_extract_string(r.config, '$.sweep.name') = ? "
            "GROUP BY id ORDER BY max(r.created_at) DESC",
            [tag],
        ).fetchall()
        started = con.execute(
            f"SELECT DISTINCT {_SWEEP_ID} AS id FROM runs r WHERE starts_with({_SWEEP_ID}, ?) "
            "ORDER BY id",
            [tag],
        ).fetchall()
    return [str(r[0]) for r in named], [str(r[0]) for r in started]
