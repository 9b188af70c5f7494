"""``mlflow.evaluate``'s own arguments as ``harness.evaluate`` reads them: the evaluators and
environments it runs, MLflow 3's ``model_id`` (or active model) and ``model_config`` (None
only), ``evaluator_config`` (nested under ``"default"`` or not; ``metric_prefix`` refused)
and MLflow's model URIs (``endpoints:/NAME``; a logged model's ``runs:/``); the part of
``evaluator_config`` a run stores, so ``harness run --resume`` scores as the call did."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import ConfigError, ModelURIError

__all__ = [
    "check_mlflow_arguments",
    "default_evaluator_config",
    "harness_uri",
    "linked_model",
    "stored_evaluator_config",
]

# Where MLflow reads the active model when none is set in the process (its public variable
# first, then the legacy one), as mlflow.get_active_model_id() does.
ACTIVE_MODEL_ENV = ("MLFLOW_ACTIVE_MODEL_ID", "_MLFLOW_ACTIVE_MODEL_ID")


def check_mlflow_arguments(
    evaluators: str | Sequence[str] | None,
    env_manager: str,
    custom_artifacts: Any,
    evaluator_config: Any,
    model_config: Any = None,
) -> None:
    if not isinstance(evaluators, str | Sequence | None):  # 5 was a TypeError traceback
        raise ConfigError(f"evaluators= takes a name or a list of names, not {evaluators!r}")
    named = [evaluators] if isinstance(evaluators, str) else list(evaluators or [])
    if any(name != "default" for name in named):
        raise ConfigError(f"harness runs MLflow's default evaluator only, not {named}")
    if env_manager != "local":
        raise ConfigError(f"harness runs models in this environment (env_manager={env_manager!r})")
    if custom_artifacts:
        raise ConfigError("harness does not run custom_artifacts; read result.tables instead")
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


def stored_evaluator_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The entries of ``config`` a run can store as they are (JSON gives each value back
    equal and of the same types), and the keys of the rest: a value JSON would change or
    cannot hold (a tuple, a Series, a function, a non-text key), text DuckDB cannot hold,
    or a credential (a key named like one, or the value of one in the environment). The run
    keeps the first so ``harness run --resume`` scores its rows with them; the second make
    it refuse, as it cannot score the rows as the call did."""
    from harness.runner.plan import SECRET_PARAMS
    from harness.secrets import scrub_secrets
    from harness.wording import storable_value

    stored: dict[str, Any] = {}
    left_out: list[str] = []
    for key, value in config.items():
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            text = None
        if (
            isinstance(key, str)
            and key not in SECRET_PARAMS
            and text is not None
            and scrub_secrets(text) == text
            and storable_value(key) == key
            and _same(storable_value(value), value)
            and _same(json.loads(text), value)
        ):
            stored[key] = value
        else:
            left_out.append(str(key))
    return stored, left_out


def _same(a: Any, b: Any) -> bool:
    """``a == b``, with the same types at every depth (``(1,) != [1]``, ``True != 1``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


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


def linked_model(model_id: str | None, log_to_mlflow: bool) -> tuple[str, str] | None:
    """The LoggedModel the run's MLflow results link to, as ``mlflow.evaluate`` picks it:
    ``model_id``, else MLflow's active model (``mlflow.set_active_model``, read only when the
    caller has imported MLflow: never imported for this; else MLflow's environment
    variable). Returned with how the call named it, for a message; None: harness's own."""
    if model_id is not None:
        if not log_to_mlflow:
            raise ConfigError(
                f"model_id={model_id!r} links the MLflow results to a LoggedModel, and "
                "log_to_mlflow=False logs none: drop one of them"
            )
        return model_id, f"model_id={model_id!r}"
    if not log_to_mlflow:
        return None
    mlflow = sys.modules.get("mlflow")
    active_model_id = getattr(mlflow, "get_active_model_id", None)
    if active_model_id is not None:
        active = active_model_id()
    else:
        active = next((os.environ[n] for n in ACTIVE_MODEL_ENV if os.environ.get(n)), None)
    if not active:
        return None
    return str(active), f"the active model {active!r} (mlflow.set_active_model)"
