"""Numbered schema migrations for the DuckDB store.

Each migration is a function registered in order; ``apply_migrations`` runs those not
yet recorded in ``schema_migrations`` inside one transaction, on every writable connect.
Never edit a released migration: add a new one. ``tests/store/test_migrations.py`` opens
a database written at every earlier version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE datasets (
            name        VARCHAR NOT NULL,
            version     VARCHAR NOT NULL,   -- first 12 hex digits of digest
            digest      VARCHAR NOT NULL,   -- sha256 of the normalized rows
            n_rows      INTEGER NOT NULL,
            source      VARCHAR,            -- file path or 'dataframe'
            columns     JSON,               -- the column mapping used at import
            created_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE examples (
            dataset     VARCHAR NOT NULL,
            version     VARCHAR NOT NULL,
            position    INTEGER NOT NULL,
            id          VARCHAR NOT NULL,
            input       VARCHAR NOT NULL,
            expected    VARCHAR[],          -- zero or more acceptable answers
            context     VARCHAR,
            extra       JSON,               -- every other column of the source
            PRIMARY KEY (dataset, version, id)
        );
        CREATE TABLE runs (
            run_id          VARCHAR PRIMARY KEY,
            run_name        VARCHAR,
            dataset         VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL,
            model           VARCHAR NOT NULL,
            status          VARCHAR NOT NULL,   -- running | finished | failed
            config          JSON NOT NULL,
            metrics         JSON,
            usage           JSON,
            rows_total      INTEGER NOT NULL,
            errors          INTEGER,
            mlflow_run_id   VARCHAR,
            created_at      TIMESTAMP NOT NULL,
            finished_at     TIMESTAMP
        );
        CREATE TABLE outputs (
            run_id          VARCHAR NOT NULL,
            example_id      VARCHAR NOT NULL,
            output          VARCHAR,
            error           VARCHAR,
            latency_s       DOUBLE,
            input_tokens    INTEGER,
            output_tokens   INTEGER,
            cost_usd        DOUBLE,
            request_key     VARCHAR,
            cached          BOOLEAN,
            created_at      TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, example_id)
        );
        CREATE TABLE scores (
            run_id          VARCHAR NOT NULL,
            example_id      VARCHAR NOT NULL,
            metric          VARCHAR NOT NULL,
            sample          INTEGER NOT NULL,   -- judge sample index; 0 for metrics
            value           DOUBLE,
            label           VARCHAR,            -- a judge's verdict label, if any
            rationale       VARCHAR,
            raw             VARCHAR,            -- a judge's raw answer
            error           VARCHAR,
            source          VARCHAR NOT NULL,   -- code | llm_judge
            request_key     VARCHAR,
            cached          BOOLEAN,
            PRIMARY KEY (run_id, example_id, metric, sample)
        );
        """
    )


@migration
def m002_run_tags(con: duckdb.DuckDBPyConnection) -> None:
    # A tag is a name a user pins on one run (`harness runs tag RUN baseline`), usable
    # wherever a run id is. Tagging another run with the same name moves the tag.
    con.execute(
        """
        CREATE TABLE run_tags (
            name        VARCHAR PRIMARY KEY,
            run_id      VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL
        );
        """
    )


@migration
def m003_app_request_keys(con: duckdb.DuckDBPyConnection) -> None:
    # The cache keys of the calls a python: model's own code made (harness.intercept), in
    # the order it made them; NULL for rows whose model made none.
    con.execute("ALTER TABLE outputs ADD COLUMN app_request_keys VARCHAR[]")


@migration
def m004_run_owner_and_reasons(con: duckdb.DuckDBPyConnection) -> None:
    """Who runs a run (so a dead one shows as interrupted), why it ended, what failed.

    A run's status is now one of running, finished, failed, interrupted (a signal; or a
    running run whose process is gone) and stopped (--max-cost).
    """
    con.execute(
        """
        ALTER TABLE runs ADD COLUMN reason VARCHAR;       -- why it failed or was stopped
        ALTER TABLE runs ADD COLUMN failures JSON;        -- kind of call -> {failed, reasons}
        ALTER TABLE runs ADD COLUMN pid INTEGER;          -- the process that runs (ran) it
        ALTER TABLE runs ADD COLUMN host VARCHAR;         -- ...on this host
        ALTER TABLE runs ADD COLUMN pid_started DOUBLE;   -- ...started then (pids are reused)
        ALTER TABLE runs ADD COLUMN mlflow_error VARCHAR; -- why MLflow logging failed, if it did
        """
    )


@migration
def m005_run_samples(con: duckdb.DuckDBPyConnection) -> None:
    # A sampled run (`--sample N --seed S [--stratify COL]`) keeps what it asked for and
    # the example ids it chose, so `--resume` finishes exactly those rows and `runs show`
    # and `compare` can say what the run is a sample of. Runs over every row (or the first
    # --limit rows) store neither.
    con.execute(
        """
        ALTER TABLE runs ADD COLUMN sample JSON;  -- {size, seed, stratify, rows, population}
        CREATE TABLE run_examples (
            run_id      VARCHAR NOT NULL,
            example_id  VARCHAR NOT NULL,
            PRIMARY KEY (run_id, example_id)
        );
        """
    )


@migration
def m006_judge_calibrations(con: duckdb.DuckDBPyConnection) -> None:
    # `harness judges calibrate`: a judge (name, version, model) measured against human
    # labels. Kept so a report can show how far to trust the judges of a run.
    con.execute(
        """
        CREATE TABLE judge_calibrations (
            calibration_id  VARCHAR PRIMARY KEY,
            judge           VARCHAR NOT NULL,
            judge_version   VARCHAR NOT NULL,
            judge_model     VARCHAR NOT NULL,
            dataset         VARCHAR NOT NULL,   -- NAME@VERSION of the labels
            label_column    VARCHAR NOT NULL,
            run_id          VARCHAR,            -- the run whose outputs were graded, if any
            labels          JSON NOT NULL,      -- the judge's answers: the matrix's order
            confusion       JSON NOT NULL,      -- human label -> judge label -> rows
            compared        INTEGER NOT NULL,
            excluded        INTEGER NOT NULL,
            accuracy        DOUBLE,
            kappa           DOUBLE,
            weighted_kappa  DOUBLE,
            created_at      TIMESTAMP NOT NULL
        );
        """
    )


@migration
def m007_run_owner_since_boot(con: duckdb.DuckDBPyConnection) -> None:
    # When a run's process started, as the kernel counts it (seconds since boot) with the
    # boot's id: unmoved when the wall clock is stepped, unlike pid_started (Linux only;
    # harness.store.owner). Runs recorded before keep NULLs and their epoch start time.
    con.execute(
        """
        ALTER TABLE runs ADD COLUMN pid_boot VARCHAR;         -- the host's boot id then
        ALTER TABLE runs ADD COLUMN pid_since_boot DOUBLE;    -- seconds from that boot
        """
    )


@migration
def m008_run_mlflow_opened_run_id(con: duckdb.DuckDBPyConnection) -> None:
    # The MLflow run a run's logging opened, stored as soon as it is known (with a batch of
    # rows, or as the run stops): a run interrupted, stopped or failed leaves it holding
    # the rows logged so far, and `runs show` names it. mlflow_run_id is set only once
    # logging completed; runs recorded before keep NULL.
    con.execute("ALTER TABLE runs ADD COLUMN mlflow_opened_run_id VARCHAR")


@migration
def m009_token_counts_bigint(con: duckdb.DuckDBPyConnection) -> None:
    # A server that reported 2**31 tokens or more (a count gone wrong on its side: 2**32 - 1
    # for "unknown") failed every batch holding that answer, and, the answer being cached,
    # every resume of the run: the counts are stored as they were reported, up to 2**63 - 1.
    con.execute(
        """
        ALTER TABLE outputs ALTER COLUMN input_tokens TYPE BIGINT;
        ALTER TABLE outputs ALTER COLUMN output_tokens TYPE BIGINT;
        """
    )


def apply_migrations(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the database to the newest schema; return how many migrations ran."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT now())"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    pending = [(i, fn) for i, fn in enumerate(MIGRATIONS, start=1) if i not in applied]
    if not pending:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        for version, fn in pending:
            fn(con)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [version, fn.__name__],
            )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # DuckDB may have rolled back already
            con.execute("ROLLBACK")
        raise
    return len(pending)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0) if row else 0
