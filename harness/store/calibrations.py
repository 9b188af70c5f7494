"""Judge calibrations (``harness judges calibrate``), kept so a run's report can show how
far its judges agree with people.

A calibration belongs to a judge as it was defined (its name and version, which hashes its
prompt, rubric and output type) and to the model that answered for it: change either and
it is another judge, whose calibration says nothing about this one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.store.db import connect

__all__ = ["StoredCalibration", "judge_calibrations", "save_calibration"]


@dataclass(frozen=True)
class StoredCalibration:
    """The summary of one calibration: enough to draw its confusion matrix."""

    calibration_id: str
    judge: str
    judge_version: str
    judge_model: str
    dataset: str
    label_column: str
    run_id: str | None
    labels: list[str]  # the order of the matrix's rows (human) and columns (judge)
    confusion: dict[str, dict[str, int]]  # human label -> judge label -> rows
    compared: int
    excluded: int
    accuracy: float | None
    kappa: float | None
    weighted_kappa: float | None
    created_at: datetime


_COLUMNS = (
    "calibration_id", "judge", "judge_version", "judge_model", "dataset", "label_column",
    "run_id", "labels", "confusion", "compared", "excluded", "accuracy", "kappa",
    "weighted_kappa", "created_at",
)  # fmt: skip


def save_calibration(db_path: Path, calibration: Any, *, run_id: str | None = None) -> str:
    """Store a ``harness.judges.Calibration``; return the new calibration's id."""
    calibration_id = uuid.uuid4().hex[:12]
    values = [
        calibration_id,
        calibration.judge,
        calibration.judge_version,
        calibration.judge_model,
        calibration.dataset,
        calibration.label_column,
        run_id,
        json.dumps(list(calibration.labels)),
        json.dumps(calibration.confusion),
        calibration.compared,
        calibration.excluded,
        calibration.accuracy,
        calibration.kappa,
        calibration.weighted_kappa,
        datetime.now(timezone.utc).replace(tzinfo=None),
    ]
    with connect(db_path) as con:
        con.execute(
            f"INSERT INTO judge_calibrations ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
            values,
        )
    return calibration_id


def judge_calibrations(
    db_path: Path, judges: Iterable[tuple[str, str | None]], judge_model: str | None
) -> list[StoredCalibration]:
    """The newest calibration of each judge in ``judges`` ((name, version) pairs; a version
    of None matches any version: runs from before versions were stored) answered by
    ``judge_model``, in the order of ``judges``. Judges never calibrated are left out."""
    found: list[StoredCalibration] = []
    if judge_model is None:
        return found
    with connect(db_path, read_only=True) as con:
        for name, version in judges:
            row = con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM judge_calibrations "
                "WHERE judge = ? AND judge_model = ? AND (? IS NULL OR judge_version = ?) "
                "ORDER BY created_at DESC, calibration_id LIMIT 1",
                [name, judge_model, version, version],
            ).fetchone()
            if row is not None:
                found.append(_calibration(row))
    return found


def _calibration(row: tuple[Any, ...]) -> StoredCalibration:
    record = dict(zip(_COLUMNS, row, strict=True))
    record["labels"] = json.loads(record["labels"])
    record["confusion"] = json.loads(record["confusion"])
    return StoredCalibration(**record)
