"""A finished run as MLflow should hold it: plain data the runner hands to ``harness.tracking``.

A module of its own so that the modules that log it (``mlflow_log``, ``traces``) and the
runner that builds it all import it from one place, and none of them from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

__all__ = ["RunRecord"]

# What a logged run holds, by name: both ways of logging (MLflow's API in ``mlflow_log``,
# SQL in ``sql_run``) and sync read these.
TABLE_ARTIFACT = "eval_results_table.json"
PROMPT_ARTIFACT = "prompt_template.txt"
CONFIG_ARTIFACT = "run_config.json"
REPORT_ARTIFACT = "report.html"
HARNESS_RUN_TAG = "harness.run_id"
TRACES_TAG = "harness.traces"
# MLflow's datasets.digest column is VARCHAR(36); a longer digest breaks on MySQL/Postgres
# servers a run is synced to. The full digest stays in the params.
MLFLOW_DIGEST_MAX = 36


@dataclass
class RunRecord:
    """Everything about a finished run that MLflow should hold; plain data from the runner."""

    run_id: str
    run_name: str | None
    experiment: str
    params: dict[str, str]
    metrics: dict[str, float]
    dataset_name: str
    dataset_version: str
    dataset_digest: str
    dataset_rows: int
    prompt_template: str
    config: dict
    started_at: float
    finished_at: float
    rows: pandas.DataFrame | None  # None in the head a run opens MLflow with (no rows yet)
    feedback: list[dict] = field(default_factory=list)
    # Judges that answer with labels of their own (rude/neutral/warm): the per-row table
    # gives their labels beside the numbers, their feedback's value is the label.
    labelled: list[str] = field(default_factory=list)
    parent_run_id: str | None = None  # the sweep's parent MLflow run
    prompt_name: str | None = None  # the prompt registry name; None = <experiment>-prompt
    system_prompt: str | None = None
    generation_params: dict[str, Any] = field(default_factory=dict)
    report_html: str | None = None  # the run's HTML report (harness.report), logged as report.html
    # More tables to log beside the per-row one, by artifact name (``slices_table.json``).
    tables: dict[str, pandas.DataFrame] = field(default_factory=dict)
    # An existing LoggedModel to link the run's metrics, model input and traces to, in place
    # of the configuration's own (``harness.evaluate(model_id=...)``, MLflow's active model).
    model_id: str | None = None
