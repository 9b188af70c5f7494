"""Versioned configurations: prompt registry versions and LoggedModel identities, on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient
from test_mlflow_log import make_record  # tests/tracking is on sys.path

from harness.errors import TrackingError
from harness.tracking import log_run, tracking_uri_for
from harness.tracking.registry import (
    ConfigIdentity,
    default_prompt_name,
    linked_prompts_value,
    mlflow_prompt,
    to_mlflow_template,
)
from harness.tracking.sweep_log import finish_parent_run, start_parent_run


def record(
    template: str = "Answer: {input}",
    params: dict | None = None,
    experiment: str = "versions",
    **fields,
):
    rec = make_record(experiment=experiment)
    rec.prompt_template = template
    rec.generation_params = {"temperature": 0} if params is None else params
    for key, value in fields.items():
        setattr(rec, key, value)
    return rec


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store with four runs: A, A again, A with other params, and B (a new template)."""
    home = tmp_path_factory.mktemp("registry-home")
    uri = tracking_uri_for(home)
    runs = {
        "a1": log_run(record(), tracking_uri=uri, register=True),
        "a2": log_run(record(), tracking_uri=uri, register=True),
        "a_hot": log_run(record(params={"temperature": 0.7}), tracking_uri=uri, register=True),
        "b": log_run(record("Q: {input}\nA:"), tracking_uri=uri, register=True),
    }
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {"uri": uri, "client": client, "runs": runs,
            "get": lambda key: client.get_run(runs[key])}  # fmt: skip


def test_templates_become_mlflow_double_brace_templates():
    assert to_mlflow_template("Q: {input}\nC: {context}") == "Q: {{input}}\nC: {{context}}"
    # Literal braces in harness are doubled; in MLflow they are plain text.
    assert to_mlflow_template('JSON {{"a": {input!r:>3}}}') == 'JSON {"a": {{input}}}'
    assert mlflow_prompt("{input}", "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "{{input}}"},
    ]


def test_config_identity_is_stable_and_named_safely():
    one = ConfigIdentity("openai:/gpt-4o-mini", "abc", {"temperature": 0, "top_p": 1})
    same = ConfigIdentity("openai:/gpt-4o-mini", "abc", {"top_p": 1, "temperature": 0})
    other = ConfigIdentity("openai:/gpt-4o-mini", "abc", {"temperature": 0.7, "top_p": 1})
    assert one.digest == same.digest != other.digest
    assert one.name == f"openai-gpt-4o-mini-{one.digest[:8]}"
    assert default_prompt_name("team/my app") == "team-my-app-prompt"


def test_linked_prompts_value_adds_each_version_once():
    class Version:
        name, version = "p", 2

    once = linked_prompts_value(None, Version())
    assert json.loads(once) == [{"name": "p", "version": "2"}]
    assert linked_prompts_value(once, Version()) == once


def test_a_template_is_registered_once_per_text(store):
    client = store["client"]
    versions = {v.version: v for v in client.search_prompt_versions("versions-prompt")}
    assert sorted(versions) == [1, 2]
    assert versions[1].template == "Answer: {{input}}"
    assert versions[2].template == "Q: {{input}}\nA:"
    assert versions[1].format(input="2+2?") == "Answer: 2+2?"
    uris = {key: store["get"](key).data.params["prompt_uri"] for key in store["runs"]}
    assert uris == {
        "a1": "prompts:/versions-prompt/1",
        "a2": "prompts:/versions-prompt/1",
        "a_hot": "prompts:/versions-prompt/1",
        "b": "prompts:/versions-prompt/2",
    }
    tags = json.loads(store["get"]("b").data.tags["mlflow.linkedPrompts"])
    assert tags == [{"name": "versions-prompt", "version": "2"}]


def test_the_prompt_is_listed_in_its_experiment(store):
    client = store["client"]
    experiment_id = store["get"]("a1").info.experiment_id
    found = client.search_prompts(filter_string=f'experiment_id = "{experiment_id}"')
    assert [p.name for p in found] == ["versions-prompt"]


def test_runs_of_one_configuration_share_one_logged_model(store):
    client = store["client"]
    model_of = {key: store["get"](key).data.tags["harness.model_id"] for key in store["runs"]}
    assert model_of["a1"] == model_of["a2"]
    assert len({model_of["a1"], model_of["a_hot"], model_of["b"]}) == 3
    experiment_id = store["get"]("a1").info.experiment_id
    assert len(client.search_logged_models(experiment_ids=[experiment_id])) == 3
    model = client.get_logged_model(model_of["a1"])
    assert model.status == LoggedModelStatus.READY
    assert model.params["model"] == "echo"
    assert model.params["param.temperature"] == "0"
    assert model.params["prompt_uri"] == "prompts:/versions-prompt/1"
    assert model.source_run_id == store["runs"]["a1"]
    assert json.loads(model.tags["mlflow.linkedPrompts"]) == [
        {"name": "versions-prompt", "version": "1"}
    ]
    # Each run lists the model as an input, as mlflow.genai.evaluate does.
    inputs = store["get"]("a2").inputs.model_inputs
    assert [m.model_id for m in inputs] == [model_of["a1"]]


def test_run_metrics_are_the_models_metrics_per_dataset(store):
    client = store["client"]
    model_id = store["get"]("a1").data.tags["harness.model_id"]
    metrics = client.get_logged_model(model_id).metrics
    by_run = {(m.run_id, m.key): m for m in metrics}
    for key in ("a1", "a2"):
        metric = by_run[(store["runs"][key], "exact_match/mean")]
        assert metric.value == 0.25
        assert metric.dataset_name == "qa"
    assert {m.run_id for m in metrics} == {store["runs"]["a1"], store["runs"]["a2"]}


def test_traces_carry_the_model_id_and_the_prompt_version(store):
    client = store["client"]
    run = store["get"]("b")
    model_id = run.data.tags["harness.model_id"]
    traces = client.search_traces(locations=[run.info.experiment_id], model_id=model_id)
    assert len(traces) == len(make_record().rows)
    for trace in traces:
        assert trace.info.trace_metadata["mlflow.modelId"] == model_id
        assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
        linked = json.loads(trace.info.tags["mlflow.linkedPrompts"])
        assert linked == [{"name": "versions-prompt", "version": "2"}]


def test_named_prompts_with_a_system_prompt_are_chat_prompts(store):
    uri, client = store["uri"], store["client"]
    rec = record(experiment="named", prompt_name="support.answer", system_prompt="You are terse.")
    run_id = log_run(rec, tracking_uri=uri, register=True)
    assert client.get_run(run_id).data.params["prompt_uri"] == "prompts:/support.answer/1"
    version = client.get_prompt_version("support.answer", 1)
    assert version.template == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Answer: {{input}}"},
    ]
    # The system prompt is part of the prompt's identity: without it, a new version.
    rec = record(experiment="named", prompt_name="support.answer")
    run_id = log_run(rec, tracking_uri=uri, register=True)
    assert client.get_run(run_id).data.params["prompt_uri"] == "prompts:/support.answer/2"


def test_a_bad_prompt_name_fails_the_run(store):
    uri, client = store["uri"], store["client"]
    with pytest.raises(TrackingError, match="prompt name 'no spaces'"):
        log_run(record(experiment="bad", prompt_name="no spaces"), tracking_uri=uri, register=True)
    experiment = client.get_experiment_by_name("bad")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"


def test_registry_writes_to_the_home_not_to_mlflow_environment_uris(store, tmp_path, monkeypatch):
    stray = tmp_path / "stray-registry.db"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{stray}")
    log_run(record(experiment="env"), tracking_uri=store["uri"], register=True)
    assert not stray.exists()
    assert not (tmp_path / "stray-mlflow.db").exists()  # conftest's MLFLOW_TRACKING_URI
    versions = store["client"].search_prompt_versions("env-prompt")
    assert [v.version for v in versions] == [1]


def test_without_register_nothing_is_registered(store):
    client = store["client"]
    run = client.get_run(log_run(record(experiment="plain"), tracking_uri=store["uri"]))
    assert "prompt_uri" not in run.data.params
    assert "harness.model_id" not in run.data.tags
    assert client.search_logged_models(experiment_ids=[run.info.experiment_id]) == []
    assert client.get_prompt("plain-prompt") is None


def test_parent_and_child_runs(store):
    import pandas as pd

    uri = store["uri"]
    parent = start_parent_run(
        tracking_uri=uri,
        experiment="sweeps",
        run_name="sweep",
        params={"sweep.temperature": "[0, 1]"},
    )
    child = log_run(record(experiment="sweeps", parent_run_id=parent), tracking_uri=uri)
    table = pd.DataFrame({"temperature": [0, 1], "exact_match": [0.25, 0.5]}, dtype=object)
    finish_parent_run(
        parent, tracking_uri=uri, table=table, metrics={"exact_match/mean": 0.5},
        tags={"harness.sweep.best_run": child},
    )  # fmt: skip
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.info.run_name == "sweep"
    assert run.data.params == {"sweep.temperature": "[0, 1]"}
    assert run.data.metrics == {"exact_match/mean": 0.5}
    assert run.data.tags["harness.sweep"] == "parent"
    assert run.data.tags["harness.sweep.best_run"] == child
    saved = json.loads(Path(client.download_artifacts(parent, "sweep_comparison.json")).read_text())
    assert saved == {"columns": ["temperature", "exact_match"], "data": [[0, 0.25], [1, 0.5]]}
    nested = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert [r.info.run_id for r in nested] == [child]
    # A resumed child (logged again, replacing its first run) keeps its parent.
    resumed = log_run(record(experiment="sweeps"), tracking_uri=uri, replaces=child)
    assert client.get_run(resumed).data.tags["mlflow.parentRunId"] == parent
    assert client.get_run(child).info.lifecycle_stage == "deleted"
