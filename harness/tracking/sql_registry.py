"""The run's prompt version and configuration model, found or registered with ``sqlite3``.

``harness.tracking.registry`` registers them through MLflow's client. In a verified SQLite
store (``harness.tracking.mlflow_sqlite``) this module does the same with the queries
MLflow's searches make (``find_links``) and the rows MLflow's client writes
(``register_links``: the prompt, its version, its listing on the experiment's Prompts tab,
the configuration's LoggedModel, or the user's own model found by its id), inside the run's
transaction.
tests/tracking/test_mlflow_sql.py registers a configuration both ways and compares every
row. What this module does not write (a name MLflow refuses, a registered model of that
name that is no prompt, a prompt text over MLflow's limit) it leaves to MLflow's API, which
reports it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING

from harness.tracking.mlflow_names import (
    LOGGED_MODEL_READY,
    MAX_REGISTRY_TAG_VALUE_LENGTH,
    MODELS_FOLDER,
    PROMPT_SOURCE,
    Tag,
)
from harness.tracking.registry import (
    _PROMPT_NAME_RULE,
    CONFIG_DIGEST_TAG,
    EXPERIMENT_IDS_TAG,
    LINKED_PROMPTS_TAG,
    MODEL_ID_TAG,
    MODEL_TYPE,
    PROMPT_DIGEST_TAG,
    ConfigIdentity,
    RegistryLinks,
    default_prompt_name,
    mlflow_prompt,
)

if TYPE_CHECKING:
    from harness.tracking.record import RunRecord

__all__ = ["find_links", "link_run", "register_links"]

_DELETED_VERSION = "Deleted_Internal"  # model_registry STAGE_DELETED_INTERNAL
_PROMPT_DESCRIPTION = "Prompt templates of harness runs"  # registry._create_prompt


def find_links(
    conn: sqlite3.Connection, record: RunRecord, experiment_id: int, experiment_name: str
) -> RegistryLinks | None:
    """The prompt version and model a run of ``record`` links to, if both exist already."""
    name, identity = _identity(record, experiment_name)
    if not _PROMPT_NAME_RULE.match(name):
        return None  # MLflow's API path reports it, on a run it marks FAILED
    if _registered_tag(conn, name, Tag.IS_PROMPT) != "true":
        return None
    listed = _registered_tag(conn, name, EXPERIMENT_IDS_TAG)
    if listed is None or f",{experiment_id}," not in listed:
        return None
    version = _version(conn, name, identity.prompt_digest)
    if record.model_id is not None:  # the user's own model, not the configuration's
        model = _model_by_id(conn, record.model_id)
    else:
        model = _model(conn, experiment_id, identity.digest)
    if version is None or model is None:
        return None
    return RegistryLinks(
        prompt_name=name, prompt_version=version, model_id=model[0], model_name=model[1]
    )


def _identity(record: RunRecord, experiment_name: str) -> tuple[str, ConfigIdentity]:
    """The prompt's name and the configuration of a run of ``record``."""
    from harness.prompts import prompt_digest

    name = record.prompt_name or default_prompt_name(experiment_name)
    digest = prompt_digest(record.prompt_template, record.system_prompt)
    model_uri = str(record.params.get("model") or record.config.get("model") or "")
    return name, ConfigIdentity(model_uri, digest, dict(record.generation_params))


def link_run(conn: sqlite3.Connection, run_id: str, links: RegistryLinks) -> list[tuple[str, str]]:
    """Link the model to the prompt version (a tag on the model, as MLflow's client sets it)
    and return the run's tags that link it to both; inside the caller's transaction."""
    entry = {"name": links.prompt_name, "version": str(links.prompt_version)}
    row = conn.execute(
        "SELECT tag_value, experiment_id FROM logged_model_tags WHERE model_id = ? AND tag_key = ?",
        (links.model_id, LINKED_PROMPTS_TAG),
    ).fetchone()
    entries = json.loads(row[0]) if row else []
    if entry not in entries:
        experiment_id = conn.execute(
            "SELECT experiment_id FROM logged_models WHERE model_id = ?", (links.model_id,)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (model_id, tag_key) DO UPDATE SET "
            "tag_value = excluded.tag_value",
            (links.model_id, experiment_id, LINKED_PROMPTS_TAG, json.dumps([*entries, entry])),
        )
    return [(LINKED_PROMPTS_TAG, links.linked_prompts), (MODEL_ID_TAG, links.model_id)]


def register_links(
    conn: sqlite3.Connection,
    record: RunRecord,
    experiment_id: int,
    experiment_name: str,
    experiment_location: str,
    run_id: str,
) -> RegistryLinks | None:
    """Register what ``find_links`` did not find, as ``registry.register_configuration``
    does through MLflow's client, then find it; None when MLflow's API must (see the
    module docstring). Inside the caller's transaction."""
    name, identity = _identity(record, experiment_name)
    if not _PROMPT_NAME_RULE.match(name):
        return None
    digest = identity.prompt_digest
    template = mlflow_prompt(record.prompt_template, record.system_prompt)
    text = template if isinstance(template, str) else json.dumps(template)
    kind = Tag.PROMPT_TYPE_TEXT if isinstance(template, str) else Tag.PROMPT_TYPE_CHAT
    if len(text) > MAX_REGISTRY_TAG_VALUE_LENGTH:
        return None
    now = int(time.time() * 1000)
    exists = conn.execute(
        "SELECT 1 FROM registered_models WHERE workspace = 'default' AND name = ?", (name,)
    ).fetchone()
    if exists is None:
        conn.execute(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, "
            "description, workspace) VALUES (?, ?, ?, ?, 'default')",
            (name, now, now, _PROMPT_DESCRIPTION),
        )
        _model_tag(conn, name, Tag.IS_PROMPT, "true")
    elif _registered_tag(conn, name, Tag.IS_PROMPT) != "true":
        return None  # a registered model, not a prompt: MLflow's API says so
    if _version(conn, name, digest) is None:
        latest = conn.execute(
            "SELECT MAX(version) FROM model_versions WHERE workspace = 'default' AND name = ?",
            (name,),
        ).fetchone()[0]
        version = int(latest or 0) + 1
        conn.execute(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
            "description, user_id, current_stage, source, run_id, status, status_message, "
            "run_link, storage_location, workspace) VALUES "
            "(?, ?, ?, ?, ?, NULL, 'None', ?, NULL, 'READY', NULL, NULL, ?, 'default')",
            (name, version, now, now, f"registered by harness run {run_id}",
             PROMPT_SOURCE, PROMPT_SOURCE),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO model_version_tags (key, value, name, version, workspace) "
            "VALUES (?, ?, ?, ?, 'default')",
            [
                (Tag.IS_PROMPT, "true", name, version),
                (Tag.PROMPT_TEXT, text, name, version),
                (Tag.PROMPT_TYPE, kind, name, version),
                (PROMPT_DIGEST_TAG, digest, name, version),
            ],
        )
        conn.execute(
            "UPDATE registered_models SET last_updated_time = ? "
            "WHERE workspace = 'default' AND name = ?",
            (now, name),
        )
    listed = (_registered_tag(conn, name, EXPERIMENT_IDS_TAG) or "").strip(",")
    ids = [i for i in listed.split(",") if i]
    if str(experiment_id) not in ids:  # commas on both ends, as MLflow writes it
        _model_tag(conn, name, EXPERIMENT_IDS_TAG, "," + ",".join([*ids, str(experiment_id)]) + ",")
    if record.model_id is None and _model(conn, experiment_id, identity.digest) is None:
        version_number = _version(conn, name, digest)
        model_id = f"m-{uuid.uuid4().hex}"
        conn.execute(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, "
            "creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, "
            "model_type, source_run_id, status_message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, NULL)",
            (model_id, experiment_id, identity.name,
             f"{experiment_location}/{MODELS_FOLDER}/{model_id}/artifacts", now, now,
             LOGGED_MODEL_READY, MODEL_TYPE, run_id),
        )  # fmt: skip
        params = {"model": identity.model_uri, "prompt_digest": digest}
        params.update({f"param.{k}": str(v) for k, v in sorted(identity.params.items())})
        params["prompt_uri"] = f"prompts:/{name}/{version_number}"
        conn.executemany(
            "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) "
            "VALUES (?, ?, ?, ?)",
            [(model_id, experiment_id, k, v) for k, v in params.items()],
        )
        conn.executemany(
            "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) "
            "VALUES (?, ?, ?, ?)",
            [(model_id, experiment_id, CONFIG_DIGEST_TAG, identity.digest),
             (model_id, experiment_id, Tag.MODEL_IS_EXTERNAL, "true")],
        )  # fmt: skip
    return find_links(conn, record, experiment_id, experiment_name)


def _registered_tag(conn: sqlite3.Connection, name: str, key: str) -> str | None:
    row = conn.execute(
        "SELECT value FROM registered_model_tags WHERE workspace = 'default' AND name = ? "
        "AND key = ?",
        (name, key),
    ).fetchone()
    return None if row is None else str(row[0])


def _model_tag(conn: sqlite3.Connection, name: str, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO registered_model_tags (key, value, name, workspace) "
        "VALUES (?, ?, ?, 'default') ON CONFLICT (workspace, key, name) DO UPDATE SET "
        "value = excluded.value",
        (key, value, name),
    )


def _version(conn: sqlite3.Connection, name: str, digest: str) -> int | None:
    row = conn.execute(
        "SELECT v.version FROM model_versions v JOIN model_version_tags t "
        "ON t.workspace = v.workspace AND t.name = v.name AND t.version = v.version "
        "WHERE v.workspace = 'default' AND v.name = ? AND v.current_stage != ? "
        "AND t.key = ? AND t.value = ? ORDER BY v.version LIMIT 1",
        (name, _DELETED_VERSION, PROMPT_DIGEST_TAG, digest),
    ).fetchone()
    return None if row is None else int(row[0])


def _model_by_id(conn: sqlite3.Connection, model_id: str) -> tuple[str, str] | None:
    """(id, name) of the live model ``model_id``, in any experiment; None: MLflow's API
    (``get_logged_model``) says it is not there."""
    row = conn.execute(
        "SELECT model_id, name FROM logged_models WHERE model_id = ? "
        "AND lifecycle_stage != 'deleted'",
        (model_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _model(conn: sqlite3.Connection, experiment_id: int, digest: str) -> tuple[str, str] | None:
    """(id, name) of the experiment's oldest live model of configuration ``digest``."""
    row = conn.execute(
        "SELECT m.model_id, m.name FROM logged_models m JOIN logged_model_tags t "
        "ON t.model_id = m.model_id WHERE m.experiment_id = ? AND m.lifecycle_stage != 'deleted' "
        "AND t.tag_key = ? AND t.tag_value = ? ORDER BY m.creation_timestamp_ms LIMIT 1",
        (experiment_id, CONFIG_DIGEST_TAG, digest),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))
