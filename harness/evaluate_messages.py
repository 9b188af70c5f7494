"""``harness.evaluate``'s errors in its own words: the run's checks are the CLI's, and their
messages name flags (``--by topic: no row has that column``); ``evaluate`` names its
arguments instead (``by='topic': ...``)."""

from __future__ import annotations

import re

from harness.errors import HarnessError

__all__ = ["in_python_words", "row_dict_hint"]

# The run's own checks are the CLI's: a message that starts with one of these flags names
# evaluate's argument instead (`--by topic: no row has that column` -> `by='topic': ...`).
_FLAG_ARGUMENTS = {"--by": "by", "--sample": "sample", "--stratify": "stratify", "--seed": "seed"}
_LEADING_FLAG = re.compile(r"^(--[a-z]+) (\S+?)(?=: | is )")  # `--by X: `, `--sample N is `


# Other phrases of the run's checks that name a flag, each as evaluate's argument; in order
# (--spark-remote before --spark). A command in backquotes (`harness run --resume ID`) stays.
_FLAG_PHRASES = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"--max-slices N\b", "max_slices=N"),
        (r"^--max-slices must", "max_slices= must"),
        (r"^--stratify COLUMN needs --sample N", "stratify= needs sample=N"),
        (r"^--stratify needs a column name", "stratify= needs a column name"),
        (r"^--by needs a column name", "by= needs a column name"),
        (r"^--cache replay: ", "cache='replay': "),
        (r"^--judge needs a judge model", "judges= needs a judge model"),
        (r"pass --judge-model URI", "pass judge_model=URI"),
        (r"at least one --guideline TEXT", "at least one guideline: guidelines=[TEXT]"),
        (r"^--guideline is read by the guidelines judge only: add --judge guidelines",
         "guidelines= is read by the guidelines judge only: add 'guidelines' to judges="),
        (r"^--metric needs a value", "a metric needs a value"),
        (r"^--metric '", "metric '"),
        (r"^--param (\w+)=\.\.\. ", r"params={'\1': ...} "),
        (r"--max-cost (needs|budget)", r"max_cost= \1"),
        (r"^--spark takes no value or `databricks`",
         "spark= takes True, a SparkSession, an sc:// URL or 'databricks'"),
        (r"--spark-remote\b", "spark_remote="),
        (r"--spark databricks\b", "spark='databricks'"),
        (r"^--spark needs", "spark= needs"),
        (r" for column:(\S+); its other", r" for predictions='\1'; its other"),
        (r"^--profile names", "spark_profile= names"),
        (r"name one with --input \(inputs= in harness\.evaluate; columns are: (.*)\)$",
         r"name one with inputs=COLUMN; its columns: \1"),
        (r"; name one with LABEL=\.\.\. on the command line or \[metrics\.LABEL\] in "
         r"harness\.toml$",
         "; give each a name of its own: a function's (def NAME, not a lambda), "
         "make_metric(name=...), or a spec's LABEL= ('cites=regex:...')"),
    )
)  # fmt: skip


def in_python_words(error: HarnessError) -> None:
    """Rewrite ``error``'s message, made for the CLI, in ``evaluate``'s argument names."""
    message = error.message
    found = _LEADING_FLAG.match(message)
    if found is not None and found.group(1) in _FLAG_ARGUMENTS:
        value = found.group(2)
        shown = value if re.fullmatch(r"-?[0-9.]+", value) else repr(value)
        message = f"{_FLAG_ARGUMENTS[found.group(1)]}={shown}{message[found.end() :]}"
    for pattern, words in _FLAG_PHRASES:
        message = pattern.sub(words, message)
    if message != error.message:
        error.message = message
        error.args = (message,)


_MISSING_KEY = re.compile(r"^python:\S+ raised KeyError: '([^']*)'$")
# A function written for a DataFrame, given a row: row["question"] is its text, no Series.
_CELL_METHOD = re.compile(r"^python:\S+ raised AttributeError: '(str|list|NoneType)' object has")
# ... or a DataFrame's method called on the row itself (MLflow's documented model function
# loops over `inputs.iterrows()`); other attributes of a dict may be the function's own bug.
_FRAME_METHOD = re.compile(
    r"^python:\S+ raised AttributeError: 'dict' object has no attribute "
    r"'(iterrows|itertuples|apply|iloc|loc|columns|to_dict|to_numpy|shape|squeeze|index)'$"
)
_ROW_NAMES = {"id", "input", "expected", "expected_all", "context", "prompt"}


def row_dict_hint(reasons: list[str]) -> str:
    """For a model function that read a key the row dict lacks (``row["inputs"]``, as a
    function written for mlflow.evaluate reads its DataFrame's column), or called a
    Series' method on a cell (``row["inputs"].map(...)``) or a DataFrame's on the row
    (``inputs.iterrows()``): how the row names the data's columns. Empty for any other
    failure."""
    for reason in reasons:
        found = _MISSING_KEY.match(reason)
        if (
            (found is not None and found.group(1) not in _ROW_NAMES)
            or _CELL_METHOD.match(reason)
            or _FRAME_METHOD.match(reason)
        ):
            return (
                "; a model function gets one row as a dict: the input as row['input'], the "
                "expected answer as row['expected'], the context as row['context'] (each "
                "also under its column's name) and the data's other columns by name (not a "
                "DataFrame, as mlflow.evaluate's does)"
            )
    return ""
