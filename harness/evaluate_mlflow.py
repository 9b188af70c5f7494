"""``mlflow.evaluate``'s own arguments as ``harness.evaluate`` reads them: the evaluators and
environments it runs, MLflow 3's ``model_id`` and ``model_config`` (None only),
``evaluator_config`` (nested under ``"default"`` or not; ``metric_prefix`` refused) and
MLflow's model URIs (``endpoints:/NAME``; a logged model's ``runs:/``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import ConfigError, ModelURIError

__all__ = ["check_mlflow_arguments", "default_evaluator_config", "harness_uri"]


def check_mlflow_arguments(
    evaluators: str | Sequence[str] | None,
    env_manager: str,
    custom_artifacts: Any,
    evaluator_config: Any,
    model_id: Any = None,
    model_config: Any = None,
) -> None:
    named = [evaluators] if isinstance(evaluators, str) else list(evaluators or [])
    if any(name != "default" for name in named):
        raise ConfigError(f"harness runs MLflow's default evaluator only, not {named}")
    if env_manager != "local":
        raise ConfigError(f"harness runs models in this environment (env_manager={env_manager!r})")
    if custom_artifacts:
        raise ConfigError("harness does not run custom_artifacts; read result.tables instead")
    if model_id is not None:  # MLflow 3: link the results to an existing LoggedModel
        raise ConfigError(
            f"model_id={model_id!r} is not supported: harness links each run to a LoggedModel "
            "of its own, one per model URI, prompt and params (the run's tag "
            "harness.model_id); drop model_id="
        )
    if model_config is not None:  # MLflow: pyfunc.load_model(model, model_config=...)
        raise ConfigError(
            "model_config= configures an MLflow model loaded from a URI, which harness does "
            "not load: give the model's settings as params= (generation parameters), "
            "prompt= and system="
        )
    if not isinstance(evaluator_config, Mapping):
        return  # refused by evaluate's type checks, naming the argument
    if default_evaluator_config(evaluator_config, evaluators).get("metric_prefix"):
        # MLflow prefixes every metric and the table's artifact; ignored, a second evaluation
        # in the same MLflow run would overwrite the first's under the same names.
        raise ConfigError(
            "evaluator_config['metric_prefix'] is not supported: harness names metrics as "
            "it stores them; evaluate each model in its own MLflow run "
            "(with mlflow.start_run(nested=True):)"
        )


def default_evaluator_config(
    evaluator_config: Mapping[str, Any] | None, evaluators: str | Sequence[str] | None
) -> dict[str, Any]:
    """The default evaluator's config: MLflow also takes it nested under its name
    (``{"default": {"col_mapping": ...}}``), the only form it accepts with ``evaluators=[...]``,
    unless ``evaluators`` is the one name ``"default"``, which takes the config flat."""
    config = dict(evaluator_config or {})
    nested = config.get("default")
    if not isinstance(evaluators, str) and isinstance(nested, Mapping):
        return dict(nested)
    return config


def harness_uri(model: str) -> str:
    """``model`` as harness names it: MLflow's ``endpoints:/NAME`` (a Databricks serving
    endpoint, under the default deployments target) is ``databricks:/NAME``; a logged MLflow
    model's URI is refused saying what to pass instead."""
    scheme, sep, rest = model.partition(":/")
    rest = rest.lstrip("/")
    if not sep or not rest:
        return model
    target = os.environ.get("MLFLOW_DEPLOYMENTS_TARGET", "databricks")
    if scheme == "endpoints" and target.startswith("databricks"):
        return f"databricks:/{rest}"
    if scheme in ("runs", "models"):
        raise ModelURIError(
            f"model={model!r} is a logged MLflow model, which harness does not load: pass the "
            "URI of the model it calls (openai:/MODEL, databricks:/ENDPOINT, ...) with its "
            "prompt= and system=, or a function of the row dict that calls it"
        )
    return model
