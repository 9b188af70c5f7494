"""MLflow's own names and limits, spelled out so the SQL writers need not import MLflow.

``import mlflow`` costs more than a second; the direct SQLite writers
(``harness.tracking.mlflow_sqlite`` and the modules that use it) need only these strings.
tests/tracking/test_mlflow_sql.py checks every one against MLflow's constant of the
same meaning, so an MLflow release that renames one fails there, not in a user's store.
"""

from __future__ import annotations

import posixpath
import re

__all__ = [
    "ARTIFACTS_FOLDER",
    "MAX_ENTITY_KEY_LENGTH",
    "MAX_PARAM_VAL_LENGTH",
    "MAX_REGISTRY_TAG_VALUE_LENGTH",
    "PROMPT_SOURCE",
    "PREVIEW_MAX_LENGTH",
    "TRACES_FOLDER",
    "MODELS_FOLDER",
    "Tag",
    "valid_key",
]

# SqlAlchemyStore.ARTIFACTS_FOLDER_NAME / TRACE_FOLDER_NAME / MODELS_FOLDER_NAME
ARTIFACTS_FOLDER = "artifacts"
TRACES_FOLDER = "traces"
MODELS_FOLDER = "models"
MAX_PARAM_VAL_LENGTH = 6000  # mlflow.utils.validation
MAX_ENTITY_KEY_LENGTH = 250  # mlflow.utils.validation: metric, param and tag keys
# mlflow.utils.validation.validate_param_and_metric_name (not on Windows, where ":" is out)
_KEY_CHARACTERS = re.compile(r"^[/\w.\- :]*$")
PREVIEW_MAX_LENGTH = 1000  # TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS (not Databricks)
LOGGED_MODEL_READY = 2  # LoggedModelStatus.READY.to_int()
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000  # MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
PROMPT_SOURCE = "prompt-template"  # mlflow.prompt.constants._STORE_PROMPT_SOURCE_PLACEHOLDER


class Tag:
    """Tag, metadata and attribute keys (``mlflow_tags``, ``mlflow.tracing.constant``)."""

    USER = "mlflow.user"
    SOURCE_NAME = "mlflow.source.name"
    SOURCE_TYPE = "mlflow.source.type"
    RUN_NAME = "mlflow.runName"
    RUN_TYPE = "mlflow.runType"
    RUN_TYPE_GENAI_EVALUATE = "genai_evaluate"
    LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"
    PARENT_RUN_ID = "mlflow.parentRunId"
    DATASET_CONTEXT = "mlflow.data.context"
    MODEL_IS_EXTERNAL = "mlflow.model.isExternal"
    ARTIFACT_LOCATION = "mlflow.artifactLocation"
    # traces
    SPANS_LOCATION = "mlflow.trace.spansLocation"
    SPANS_IN_TRACKING_STORE = "TRACKING_STORE"
    TRACE_NAME = "mlflow.traceName"
    SOURCE_RUN = "mlflow.sourceRun"
    MODEL_ID = "mlflow.modelId"
    TRACE_INPUTS = "mlflow.traceInputs"
    TRACE_OUTPUTS = "mlflow.traceOutputs"
    TRACE_INFO_FINALIZED = "mlflow.trace.infoFinalized"
    TRACE_SCHEMA_VERSION_KEY = "mlflow.trace_schema.version"
    TRACE_SCHEMA_VERSION = "3"
    MAX_CHARS_IN_TRACE_METADATA = 250
    TRUNCATION_SUFFIX = "..."
    ASSESSMENT_SOURCE_RUN_ID = "mlflow.assessment.sourceRunId"
    # span attributes
    SPAN_REQUEST_ID = "mlflow.traceRequestId"
    SPAN_TYPE = "mlflow.spanType"
    SPAN_INPUTS = "mlflow.spanInputs"
    SPAN_OUTPUTS = "mlflow.spanOutputs"
    # prompts (the model registry)
    IS_PROMPT = "mlflow.prompt.is_prompt"
    PROMPT_TEXT = "mlflow.prompt.text"
    PROMPT_TYPE = "_mlflow_prompt_type"
    PROMPT_TYPE_TEXT = "text"
    PROMPT_TYPE_CHAT = "chat"


def valid_key(name: str) -> bool:
    """Whether MLflow takes ``name`` as a metric, param or tag key (its validation's rules:
    the characters, a path that resolves to itself, the length). The SQL writers leave a
    run with any other key to MLflow's API, which refuses it with its own message."""
    normal = posixpath.normpath(name)
    return (
        bool(_KEY_CHARACTERS.match(name))
        and normal == name
        and normal != "."
        and not normal.startswith(("..", "/"))
        and len(name) <= MAX_ENTITY_KEY_LENGTH
    )
