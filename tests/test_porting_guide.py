"""The porting guide's harness examples (docs/python-api.md) run as written.

Each ``<!-- harness-example: NAME -->`` block is executed in order in one namespace, as
cells of a notebook, with what a Databricks notebook provides: ``spark`` (a local session),
an OpenAI key and base URL (the fake LLM server) and a tracking URI (a SQLite file). Then
the runs are checked where the guide says they are: in the user's MLflow runs.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.testing import FakeLLMServer

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
EXAMPLE = re.compile(r"<!-- harness-example: (\w+) -->\n```python\n(.*?)\n```", re.S)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall(GUIDE.read_text(encoding="utf-8"))


def test_the_guide_has_the_four_examples() -> None:
    assert [name for name, _ in examples()] == ["qa", "spark", "judge", "versions"]


def test_the_guide_names_each_model_types_default_metrics() -> None:
    """The porting table listed question-answering's defaults only: a script ported with
    model_type="text-summarization" or "text" found its metrics' names nowhere (MLflow's
    rouge1/v1/mean is harness's rouge1/mean)."""
    from harness.api import MODEL_TYPE_METRICS

    rows = GUIDE.read_text(encoding="utf-8").splitlines()
    for model_type, names in MODEL_TYPE_METRICS.items():
        row = [r for r in rows if r.startswith(f"| default metrics of `{model_type}`: ")]
        assert len(row) == 1, model_type
        harness_side = row[0].split(" | ")[1]
        assert [n for n in names if f"`{n}`" not in harness_side] == [], model_type


@pytest.fixture
def notebook(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    from harness.runner.spark import spark_session

    replies = {"score: Your numerical score": "score: 4\njustification: Clear and on topic."}
    with FakeLLMServer(replies=replies) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-guide")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "user.db"))
        monkeypatch.chdir(tmp_path)
        spark, owned = spark_session("local[1]")
        try:
            yield {"spark": spark, "server": server}
        finally:
            if owned:
                spark.stop()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_the_harness_examples_run_as_written(notebook: dict[str, Any], home: Path) -> None:
    import mlflow

    server = notebook.pop("server")
    namespace: dict[str, Any] = dict(notebook)
    for name, code in examples():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, f"docs/python-api.md:{name}", "exec"), namespace)  # noqa: S102
    paid = server.stats()["requests_total"]
    assert paid > 0

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("qa-evaluation")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert len(runs) == 5  # qa, qa-on-spark, qa-with-judges, prompt-v1, prompt-v2
    qa = client.get_run(namespace["run"].info.run_id)
    assert qa.info.status == "FINISHED"  # ended by the user's `with`, not by harness
    assert {"token_f1/mean", "latency/mean", "exact_match/mean"} <= set(qa.data.metrics)
    judged = runs["qa-with-judges"].data.metrics
    assert judged["professionalism/v1/mean"] == 4.0
    assert {"professionalism/v1/variance", "answer_similarity/v1/p90"} <= set(judged)
    versions = {
        r.data.params["prompt_version"] for r in runs.values() if "prompt_version" in r.data.params
    }
    assert versions == {"v1", "v2"}
    assert runs["qa-on-spark"].data.metrics["token_f1/mean"] == qa.data.metrics["token_f1/mean"]
    assert list(namespace["runs"]["params.prompt_version"].sort_values()) == ["v1", "v2"]

    # "Run it again and no model is called": the first example, as written, once more.
    server.reset()
    name, code = examples()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, f"docs/python-api.md:{name}", "exec"), namespace)  # noqa: S102
    assert server.stats()["requests_total"] == 0
    again = client.get_run(namespace["run"].info.run_id).data.metrics
    assert again["token_f1/mean"] == qa.data.metrics["token_f1/mean"]
