"""Every shape of data ``mlflow.evaluate`` takes, as a DataFrame ``harness.data`` can import.

- a pandas DataFrame, or a Spark DataFrame (imported through Arrow), as they are;
- a list of dicts: one row each (``mlflow.genai.evaluate``'s ``{"inputs": ...,
  "expectations": {"expected_response": ...}}`` records included);
- a list of strings, or a 1-D numpy array: the inputs, one per row;
- a 2-D numpy array (or a list of lists): feature columns named by ``feature_names``, else
  ``feature_1``, ``feature_2``, ... as MLflow names them;
- an ``mlflow.data`` dataset (``mlflow.data.from_pandas(df, targets=..., predictions=...)``,
  or ``from_spark``): its frame, and its targets and predictions columns.

With a list or an array, ``targets`` is the list (or array) of expected answers, as in
MLflow, and becomes a ``targets`` column. MLflow has no row ids: an ``id`` column that
repeats is not taken for them unless ``id=`` names it (``harness.data.import_dataframe``'s
``number_repeated_ids``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.data_files import storable_names
from harness.errors import DataError
from harness.wording import storable_value

__all__ = ["Frame", "to_frame"]


@dataclass
class Frame:
    """Data made into one DataFrame, and what the data itself said about its columns."""

    df: Any  # a pandas or Spark DataFrame
    targets: str | None = None  # the expected-answer column, when the data names one
    predictions: str | None = None  # the outputs column, when the data names one
    name: str | None = None  # the dataset's own name (an mlflow.data dataset's)


def to_frame(
    data: Any, *, targets: Any = None, feature_names: Sequence[str] | None = None
) -> Frame:
    """``data`` as a Frame; DataError in one line for a shape harness cannot read."""
    import pandas as pd

    if isinstance(data, pd.DataFrame) or type(data).__module__.startswith("pyspark."):
        if targets is not None and not isinstance(targets, str):
            raise DataError("with a DataFrame, targets= names the expected-answer column")
        return Frame(data, targets=targets)
    if _is_mlflow_dataset(data):
        if targets is not None:
            raise DataError(
                "with an mlflow.data dataset, the dataset names its targets; "
                "pass targets=None (as mlflow.evaluate requires)"
            )
        df = getattr(data, "df", None)
        if df is None:
            raise DataError(
                f"cannot read the rows of a {type(data).__name__}; use an mlflow.data pandas "
                "or Spark dataset, or a DataFrame"
            )
        return Frame(
            df,
            targets=getattr(data, "targets", None),
            predictions=getattr(data, "predictions", None),
            name=getattr(data, "name", None),
        )
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, dict) for r in data):
        if targets is not None and not isinstance(targets, str):
            raise DataError("with a list of dicts, targets= names the expected-answer key")
        # A lone surrogate (a JSON escape json.loads read) as its escape, as a file's:
        # pandas' strings (pyarrow's) cannot hold it, in a value or a column name.
        # Two keys that become one (``"k\udc00"`` beside ``"k\\udc00"``) are refused.
        rows = [
            storable_value(storable_names(_record(r), f"row {n}"))
            for n, r in enumerate(data, start=1)
        ]
        return Frame(pd.DataFrame(rows), targets=targets)
    if hasattr(data, "ndim") and hasattr(data, "tolist") or isinstance(data, (list, tuple)):
        return _features(data, targets, feature_names)
    raise DataError(
        f"cannot evaluate on a {type(data).__name__}: give a DataFrame, a list of dicts or "
        "strings, a numpy array, an mlflow.data dataset, a file path or a stored dataset name"
    )


def _is_mlflow_dataset(data: Any) -> bool:
    module = sys.modules.get("mlflow.data.dataset")
    return module is not None and isinstance(data, module.Dataset)


def _record(record: dict[str, Any]) -> dict[str, Any]:
    """An ``mlflow.genai.evaluate`` record's expected response as a column of its own."""
    expectations = record.get("expectations")
    if isinstance(expectations, dict) and "expected_response" in expectations:
        record = {**record, "expected_response": expectations["expected_response"]}
    return record


def _features(data: Any, targets: Any, feature_names: Sequence[str] | None) -> Frame:
    """A list or a numpy array of features (MLflow's rule: a flat list is one feature)."""
    import numpy as np
    import pandas as pd

    rows = storable_value(data.tolist() if hasattr(data, "tolist") else list(data))
    if not rows:
        raise DataError("the data has no rows")
    if not isinstance(rows[0], (list, tuple)):
        rows = [[value] for value in rows]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise DataError("every row of a list or array of features must have the same length")
    width = widths.pop()
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != width or len(set(names)) != width:
            raise DataError(
                f"feature_names must name each of the {width} feature(s) once, not {names}"
            )
    elif width == 1:
        names = ["inputs"]
    else:  # MLflow's names: feature_1 ... feature_N, zero-padded to N's digits
        digits = math.ceil(math.log10(width + 1))
        names = [f"feature_{str(i + 1).zfill(digits)}" for i in range(width)]
    df = pd.DataFrame(rows, columns=names)
    if targets is None:
        return Frame(df)
    if isinstance(targets, str):
        raise DataError(
            "with a list or an array, targets= is the list of expected answers, as in "
            "mlflow.evaluate"
        )
    labels = storable_value(targets.tolist() if isinstance(targets, np.ndarray) else list(targets))
    if len(labels) != len(df):
        raise DataError(f"targets has {len(labels)} values for {len(df)} rows")
    df["targets"] = labels
    return Frame(df, targets="targets")
