"""The data shapes mlflow.evaluate takes, read as harness datasets (harness.frames)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data import import_dataframe
from harness.errors import DataError
from harness.frames import to_frame


def stored(frame_df: pd.DataFrame, home: Path, **mapping: str | None) -> list[tuple]:
    from harness.store.datasets import load_examples, resolve_dataset

    ref = import_dataframe(frame_df, name="shapes", home=home, **mapping).dataset.ref
    info = resolve_dataset(home / "harness.duckdb", ref)
    return [(e.input, e.expected) for e in load_examples(home / "harness.duckdb", info)]


def test_a_list_of_strings_is_the_inputs_and_targets_a_list(home: Path) -> None:
    frame = to_frame(["What is 2+2?", "Capital of France?"], targets=["4", "Paris"])
    assert frame.targets == "targets"
    assert stored(frame.df, home, expected=frame.targets) == [
        ("What is 2+2?", ("4",)),
        ("Capital of France?", ("Paris",)),
    ]


def test_numpy_arrays_one_and_two_dimensional(home: Path) -> None:
    flat = to_frame(np.array(["a?", "b?"]), targets=np.array(["A", "B"]))
    assert list(flat.df.columns) == ["inputs", "targets"]
    grid = to_frame(np.array([["q1", "c1"], ["q2", "c2"]]), feature_names=["question", "context"])
    assert list(grid.df.columns) == ["question", "context"]
    assert stored(grid.df, home) == [("q1", ()), ("q2", ())]
    unnamed = to_frame([["a", "b", "c"]] * 2)  # MLflow's names for unnamed features
    assert list(unnamed.df.columns) == ["feature_1", "feature_2", "feature_3"]


def test_a_list_of_dicts_and_mlflow_3_records(home: Path) -> None:
    frame = to_frame(
        [
            {"inputs": "What is 2+2?", "expectations": {"expected_response": "4"}},
            {"inputs": "Capital of France?", "expectations": {"expected_response": "Paris"}},
        ]
    )
    assert stored(frame.df, home) == [("What is 2+2?", ("4",)), ("Capital of France?", ("Paris",))]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Starting with pandas")
def test_an_mlflow_dataset_brings_its_targets_predictions_and_name() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.data

    df = pd.DataFrame({"q": ["x?"], "a": ["X"], "o": ["x"]})
    dataset = mlflow.data.from_pandas(df, targets="a", predictions="o", name="qa-set")
    frame = to_frame(dataset)
    assert (frame.targets, frame.predictions, frame.name) == ("a", "o", "qa-set")
    assert frame.df.equals(df)
    with pytest.raises(DataError, match="the dataset names its targets; pass targets=None"):
        to_frame(dataset, targets="a")


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (["a", "b"], {"targets": ["A"]}, "targets has 1 values for 2 rows"),
        (["a"], {"targets": "answer"}, "targets= is the list of expected answers"),
        ([["a", "b"], ["c"]], {}, "every row of a list or array of features must have"),
        (np.array([["a", "b"]]), {"feature_names": ["x"]}, "feature_names must name each of the 2"),
        (42, {}, "cannot evaluate on a int: give a DataFrame, a list of dicts"),
        ([], {}, "the data has no rows"),
    ],
)
def test_shapes_harness_cannot_read_fail_in_one_line(
    data: object, options: dict, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        to_frame(data, **options)


def test_two_keys_one_lone_surrogate_apart_are_refused() -> None:
    """Before: a row with the keys ``"k\\udc00"`` and ``"k\\\\udc00"`` (its escape, as
    text) became one column silently, the second value winning; a file import refused it.
    Now harness.evaluate's list of dicts does too."""
    with pytest.raises(DataError, match=r"row 2: columns .* would both be stored as k\\udc00"):
        to_frame([{"inputs": "q"}, {"inputs": "q", "k\udc00": 1, "k\\udc00": 2}])
    assert list(to_frame([{"inputs": "q", 1: "x"}]).df.columns) == ["inputs", 1]


def test_a_lone_surrogate_in_a_list_is_read_as_its_escape(home: Path) -> None:
    """Before: pandas (over pyarrow) raised "UnicodeEncodeError: 'utf-8' codec can't encode
    character '\\ud800'" out of harness.evaluate, a traceback, for a list of dicts or of
    strings holding a lone surrogate (a JSON escape read by json.loads). It is now its
    escape, as a file's is: in a value, a key (a column name) and the targets."""
    records = to_frame([{"inputs": "q\ud800", "ground_truth": "a", "k\udc00": ["v\ud800"]}])
    assert list(records.df.columns) == ["inputs", "ground_truth", "k\\udc00"]
    assert records.df.iloc[0].to_dict() == {
        "inputs": "q\\ud800",
        "ground_truth": "a",
        "k\\udc00": ["v\\ud800"],
    }
    strings = to_frame(["q\ud800"], targets=["a\udc00"])
    assert stored(strings.df, home, expected=strings.targets) == [("q\\ud800", ("a\\udc00",))]
