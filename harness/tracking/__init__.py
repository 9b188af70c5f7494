"""MLflow logging for harness runs (and, in ``sync``, copying runs to other servers).

Importing this package does not import MLflow; ``log_run`` does, when called.
"""

from __future__ import annotations

from harness.tracking.mlflow_log import log_run
from harness.tracking.mlflow_store import DEFAULT_EXPERIMENT, tracking_uri_for
from harness.tracking.record import RunRecord

__all__ = ["DEFAULT_EXPERIMENT", "RunRecord", "log_run", "tracking_uri_for"]
