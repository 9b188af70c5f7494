"""The run's prompt version and configuration model, found and linked with ``sqlite3``.

``harness.tracking.registry`` registers them through MLflow's client; a rerun of a
configuration only needs to find them again and link the new run to them, which this
module does in a verified SQLite store (``harness.tracking.mlflow_sqlite``) with the same
queries MLflow's searches make. When something is missing — a prompt text or
configuration never registered, a prompt not yet listed in the experiment — it returns
None and the run is logged through MLflow's API, which creates them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from harness.tracking.mlflow_names import Tag
from harness.tracking.registry import (
    _PROMPT_NAME_RULE,
    CONFIG_DIGEST_TAG,
    EXPERIMENT_IDS_TAG,
    LINKED_PROMPTS_TAG,
    MODEL_ID_TAG,
    PROMPT_DIGEST_TAG,
    ConfigIdentity,
    RegistryLinks,
    default_prompt_name,
)

if TYPE_CHECKING:
    from harness.tracking.record import RunRecord

__all__ = ["find_links", "link_run"]

_DELETED_VERSION = "Deleted_Internal"  # model_registry STAGE_DELETED_INTERNAL


def find_links(
    conn: sqlite3.Connection, record: RunRecord, experiment_id: int, experiment_name: str
) -> RegistryLinks | None:
    """The prompt version and model a run of ``record`` links to, if both exist already."""
    from harness.prompts import prompt_digest

    name = record.prompt_name or default_prompt_name(experiment_name)
    if not _PROMPT_NAME_RULE.match(name):
        return None  # MLflow's API path reports it, on a run it marks FAILED
    digest = prompt_digest(record.prompt_template, record.system_prompt)
    is_prompt = conn.execute(
        "SELECT value FROM registered_model_tags WHERE workspace = 'default' AND name = ? "
        "AND key = ?",
        (name, Tag.IS_PROMPT),
    ).fetchone()
    if is_prompt is None or is_prompt[0] != "true":
        return None
    listed = conn.execute(
        "SELECT value FROM registered_model_tags WHERE workspace = 'default' AND name = ? "
        "AND key = ?",
        (name, EXPERIMENT_IDS_TAG),
    ).fetchone()
    if listed is None or f",{experiment_id}," not in listed[0]:
        return None
    version = conn.execute(
        "SELECT v.version FROM model_versions v JOIN model_version_tags t "
        "ON t.workspace = v.workspace AND t.name = v.name AND t.version = v.version "
        "WHERE v.workspace = 'default' AND v.name = ? AND v.current_stage != ? "
        "AND t.key = ? AND t.value = ? ORDER BY v.version LIMIT 1",
        (name, _DELETED_VERSION, PROMPT_DIGEST_TAG, digest),
    ).fetchone()
    if version is None:
        return None
    model_uri = str(record.params.get("model") or record.config.get("model") or "")
    identity = ConfigIdentity(model_uri, digest, dict(record.generation_params))
    model = conn.execute(
        "SELECT m.model_id, m.name FROM logged_models m JOIN logged_model_tags t "
        "ON t.model_id = m.model_id WHERE m.experiment_id = ? AND m.lifecycle_stage != 'deleted' "
        "AND t.tag_key = ? AND t.tag_value = ? ORDER BY m.creation_timestamp_ms LIMIT 1",
        (experiment_id, CONFIG_DIGEST_TAG, identity.digest),
    ).fetchone()
    if model is None:
        return None
    return RegistryLinks(
        prompt_name=name, prompt_version=int(version[0]), model_id=model[0], model_name=model[1]
    )


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
