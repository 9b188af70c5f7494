"""A run's stored rows and scores, read back: as DataFrames (outputs joined with their
examples, in dataset order; the scores whole or only what aggregates read), counted, and the
cache keys they used. ``harness.store.runs`` imports them all too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.store.dataframes import frame
from harness.store.db import connect

if TYPE_CHECKING:
    import pandas as pd

OUTPUTS_SQL = """
    SELECT o.example_id AS id, e.input, e.expected, e.context, o.output, o.error,
           o.latency_s, o.input_tokens, o.output_tokens, o.cost_usd, o.request_key,
           o.cached, e.extra
    FROM outputs o
    JOIN runs r ON r.run_id = o.run_id
    LEFT JOIN examples e ON e.dataset = r.dataset AND e.version = r.dataset_version
                        AND e.id = o.example_id
    WHERE o.run_id = ?
    ORDER BY e.position
"""

SCORES_SQL = (
    "SELECT example_id, metric, sample, value, label, rationale, raw, error, source, "
    "request_key, cached FROM scores WHERE run_id = ? ORDER BY example_id, metric, sample"
)
# What the per-row table (``harness.runner.summary.results_table``) reads of each score:
# no raw answers, keys or cache flags.
TABLE_SCORES_SQL = (
    "SELECT example_id, metric, sample, value, label, rationale, error, source "
    "FROM scores WHERE run_id = ? ORDER BY example_id, metric, sample"
)
# What a run's aggregates read of each score: no text beyond the names and its error.
SCORE_VALUES_SQL = (
    "SELECT example_id, metric, sample, value, error, source "
    "FROM scores WHERE run_id = ? ORDER BY example_id, metric, sample"
)


# What a run's aggregates read of its scores when each row has one sample of each metric
# (``score_summary``), per metric: its values, whether a judge gave it, and its errors.
SCORE_SUMMARY_SQL = """
    SELECT metric,
           list(value) FILTER (WHERE value IS NOT NULL),
           bool_or(source = 'llm_judge'),
           count(error) FILTER (WHERE source = 'llm_judge'),
           count(error) FILTER (WHERE source = 'code'),
           max(sample)
    FROM scores WHERE run_id = ? GROUP BY metric
"""


# A metric's name, its values, whether a judge gave it, its judge errors and code errors.
MetricSummary = tuple[str, list[float], bool, int, int]


def score_summary(db_path: Path, run_id: str) -> list[MetricSummary] | None:
    """Per metric (by name): its stored values (NULLs left out, in no order), whether a
    judge gave it, its judge answers that failed and its rows a metric raised on; None when
    a row has more than one sample of a metric (``--judge-samples``), whose per-row means
    ``load_score_values`` and pandas compute. No DataFrame, no text but the names."""
    with connect(db_path, read_only=True) as con:
        found = con.execute(SCORE_SUMMARY_SQL, [run_id]).fetchall()
    if any(top for *_, top in found):
        return None
    summary = [
        (str(metric), list(values or ()), bool(judged), int(judge_errors), int(code_errors))
        for metric, values, judged, judge_errors, code_errors, _ in found
    ]
    return sorted(summary, key=lambda entry: entry[0])


def load_outputs(db_path: Path, run_id: str) -> pd.DataFrame:
    """Outputs joined with their examples, in dataset order (``frame``: ``.df()``'s frame
    for less memory; a run's end reads them)."""
    with connect(db_path, read_only=True) as con:
        return frame(con.sql(OUTPUTS_SQL, params=[run_id]))


def load_outputs_and_scores(db_path: Path, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_outputs`` and ``load_scores`` in one open of the store."""
    with connect(db_path, read_only=True) as con:
        outputs = frame(con.sql(OUTPUTS_SQL, params=[run_id]))
        return outputs, frame(con.sql(SCORES_SQL, params=[run_id]))


def load_table_rows(db_path: Path, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_outputs_and_scores`` with only what the per-row table reads of the scores
    (``TABLE_SCORES_SQL``), for a run's MLflow table: every filter of the scores the
    table makes copied the judges' raw answers and cache keys too."""
    with connect(db_path, read_only=True) as con:
        outputs = frame(con.sql(OUTPUTS_SQL, params=[run_id]))
        return outputs, frame(con.sql(TABLE_SCORES_SQL, params=[run_id]))


def rows_stored(db_path: Path, run_id: str) -> int:
    """How many of a run's rows are stored (``len(load_outputs(...))``, without them)."""
    with connect(db_path, read_only=True) as con:
        found = con.execute("SELECT count(*) FROM outputs WHERE run_id = ?", [run_id]).fetchone()
    return int(found[0]) if found else 0


def load_scores(db_path: Path, run_id: str) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return frame(con.sql(SCORES_SQL, params=[run_id]))


def load_score_values(db_path: Path, run_id: str) -> pd.DataFrame:
    """``load_scores`` without the scores' labels, rationales, raw answers and keys: what
    aggregates, batch metrics and slices read (``SCORE_VALUES_SQL``)."""
    with connect(db_path, read_only=True) as con:
        return frame(con.sql(SCORE_VALUES_SQL, params=[run_id]))


def request_keys(db_path: Path, run_id: str) -> set[str]:
    """Every cache key a run's model, judge and app calls used (for ``cache export --run``)."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT request_key FROM outputs WHERE run_id = ? AND request_key IS NOT NULL "
            "UNION SELECT request_key FROM scores WHERE run_id = ? AND request_key IS NOT NULL "
            "UNION SELECT unnest(app_request_keys) FROM outputs WHERE run_id = ?",
            [run_id, run_id, run_id],
        ).fetchall()
    return {r[0] for r in rows}
