"""Versioned configurations in MLflow: prompts in the prompt registry, configurations as models.

A harness run is ``dataset x model x prompt x params``. Two MLflow 3 registries keep the
last three comparable over time:

- **Prompt registry.** The run's template is a version of a registered prompt (named by
  the user, else ``<experiment>-prompt``). A new version is created only when the text
  changes: each version carries the harness prompt digest as a tag, and a run whose
  digest is already registered reuses that version. The template is stored in MLflow's
  double-brace form (``{{input}}``), so ``mlflow.genai.load_prompt(uri).format(input=...)``
  works; a system prompt makes it a chat prompt (system + user messages).
- **Model identity.** One ``LoggedModel`` per ``model URI + prompt digest + generation
  params`` in an experiment (tag ``harness.config_digest``), found again by later runs.
  Runs link to it as a model input, their metrics are logged against it (per dataset) and
  their traces carry its id, so MLflow's model pages compare one configuration's runs.
  A run given a model of the user's own (``RunRecord.model_id``) links to that one instead.

Everything goes through the client passed in (never MLflow's global tracking URI), and
the prompt and model links are the tags MLflow's own link functions write.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.entities.model_registry import PromptVersion
    from mlflow.tracking import MlflowClient

PROMPT_DIGEST_TAG = "harness.prompt_digest"
CONFIG_DIGEST_TAG = "harness.config_digest"
MODEL_ID_TAG = "harness.model_id"
MODEL_TYPE = "harness-config"
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"  # TraceTagKey.LINKED_PROMPTS, without the import
EXPERIMENT_IDS_TAG = "_mlflow_experiment_ids"  # lists a prompt on an experiment's Prompts tab
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_PROMPT_NAME_RULE = re.compile(r"^[A-Za-z0-9_.-]+$")
_PAGE = 100


@dataclass(frozen=True)
class ConfigIdentity:
    """What makes two runs "the same configuration": model, prompt and generation params."""

    model_uri: str
    prompt_digest: str
    params: dict[str, Any]

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the three parts."""
        canonical = json.dumps(
            {"model": self.model_uri, "prompt_digest": self.prompt_digest, "params": self.params},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def name(self) -> str:
        """A readable LoggedModel name: ``openai-gpt-4o-mini-<digest[:8]>``."""
        slug = _NAME_UNSAFE.sub("-", self.model_uri).strip("-")[:60] or "model"
        return f"{slug}-{self.digest[:8]}"


@dataclass(frozen=True)
class RegistryLinks:
    """What a run was linked to: its prompt version and its configuration's model."""

    prompt_name: str
    prompt_version: int
    model_id: str
    model_name: str

    @property
    def prompt_uri(self) -> str:
        return f"prompts:/{self.prompt_name}/{self.prompt_version}"

    @property
    def linked_prompts(self) -> str:
        """The ``mlflow.linkedPrompts`` value naming just this prompt version."""
        return json.dumps([{"name": self.prompt_name, "version": str(self.prompt_version)}])


def default_prompt_name(experiment: str) -> str:
    """``<experiment>-prompt``, with characters a prompt name may not hold replaced."""
    slug = _NAME_UNSAFE.sub("-", experiment).strip("-") or "harness"
    return f"{slug}-prompt"


def to_mlflow_template(template: str) -> str:
    """A harness (``str.format``) template in MLflow's form: ``{input}`` -> ``{{input}}``.

    Literal braces (``{{``/``}}`` in harness) become single braces; format specs and
    conversions (``{x!r:>5}``) are dropped, as MLflow templates have none.
    """
    parts = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            parts.append("{{" + field + "}}")
    return "".join(parts)


def mlflow_prompt(template: str, system: str | None) -> str | list[dict[str, str]]:
    """The registered form: text, or system + user chat messages when there is a system."""
    user = to_mlflow_template(template)
    if not system:
        return user
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def find_prompt_version(client: MlflowClient, name: str, digest: str) -> PromptVersion | None:
    """The oldest version of prompt ``name`` registered for ``digest``, or None."""
    if client.get_prompt(name) is None:
        return None
    found = None
    token = None
    while True:
        page = client.search_prompt_versions(name, max_results=_PAGE, page_token=token)
        for version in page:
            if version.tags.get(PROMPT_DIGEST_TAG) == digest and (
                found is None or int(version.version) < int(found.version)
            ):
                found = version
        token = page.token
        if not token:
            return found


def register_prompt_version(
    client: MlflowClient,
    *,
    name: str,
    template: str,
    system: str | None,
    digest: str,
    experiment_id: str,
    run_id: str,
) -> PromptVersion:
    """The version of prompt ``name`` for ``digest``: found, or registered as a new version."""
    if not _PROMPT_NAME_RULE.match(name):
        raise TrackingError(f"prompt name {name!r} may only hold letters, digits, '_', '-' and '.'")
    version = find_prompt_version(client, name, digest)
    if version is None:
        if client.get_prompt(name) is None:
            _create_prompt(client, name)
        version = client.create_prompt_version(
            name,
            mlflow_prompt(template, system),
            description=f"registered by harness run {run_id}",
            tags={PROMPT_DIGEST_TAG: digest},
        )
    _list_prompt_in_experiment(client, name, experiment_id)
    return version


def _create_prompt(client: MlflowClient, name: str) -> None:
    """Create prompt ``name``; another run (another process) may have just done it."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_prompt(name, description="Prompt templates of harness runs")
    except MlflowException as e:
        # Two runs started together in a fresh home both found no prompt: the second
        # create fails, and the prompt it wanted is there. Found alike by the next run.
        if e.error_code != "RESOURCE_ALREADY_EXISTS" or client.get_prompt(name) is None:
            raise


def _list_prompt_in_experiment(client: MlflowClient, name: str, experiment_id: str) -> None:
    """Add the experiment to the prompt's experiment list, as ``register_prompt`` does."""
    prompt = client.get_prompt(name)
    current = (prompt.tags.get(EXPERIMENT_IDS_TAG, "") if prompt else "").strip(",")
    ids = [i for i in current.split(",") if i]
    if experiment_id not in ids:
        # Commas on both ends, as MLflow writes it: its LIKE filter needs them.
        client.set_prompt_tag(name, EXPERIMENT_IDS_TAG, "," + ",".join([*ids, experiment_id]) + ",")


def find_or_create_model(
    client: MlflowClient,
    *,
    experiment_id: str,
    identity: ConfigIdentity,
    source_run_id: str,
    params: dict[str, str],
) -> LoggedModel:
    """The experiment's LoggedModel for ``identity``; created (READY) on first use."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_IS_EXTERNAL

    digest = identity.digest
    found = client.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{CONFIG_DIGEST_TAG}` = '{digest}'",
        order_by=[{"field_name": "creation_time", "ascending": True}],
        max_results=1,
    )
    if found:
        return found[0]
    model = client.create_logged_model(
        experiment_id,
        name=identity.name,
        source_run_id=source_run_id,
        # External: the "model" is a configuration of a served model, not files in MLflow.
        tags={CONFIG_DIGEST_TAG: digest, MLFLOW_MODEL_IS_EXTERNAL: "true"},
        params=params,
        model_type=MODEL_TYPE,
    )
    return client.finalize_logged_model(model.model_id, "READY")


def link_prompt_to_run(client: MlflowClient, run_id: str, version: PromptVersion) -> None:
    """Add the prompt version to the run's ``mlflow.linkedPrompts`` tag (the run page lists it)."""
    current = client.get_run(run_id).data.tags.get(LINKED_PROMPTS_TAG)
    updated = linked_prompts_value(current, version)
    if updated != current:
        client.set_tag(run_id, LINKED_PROMPTS_TAG, updated)


def link_prompt_to_model(client: MlflowClient, model: LoggedModel, version: PromptVersion) -> None:
    """Add the prompt version to the model's ``mlflow.linkedPrompts`` tag."""
    current = model.tags.get(LINKED_PROMPTS_TAG)
    updated = linked_prompts_value(current, version)
    if updated != current:
        client.set_logged_model_tags(model.model_id, {LINKED_PROMPTS_TAG: updated})


def linked_prompts_value(current: str | None, version: PromptVersion) -> str:
    """The ``mlflow.linkedPrompts`` JSON list with ``version`` added (once)."""
    entries = json.loads(current) if current else []
    entry = {"name": version.name, "version": str(version.version)}
    if entry not in entries:
        entries.append(entry)
    return json.dumps(entries)


def register_configuration(
    client: MlflowClient,
    *,
    experiment_id: str,
    run_id: str,
    prompt_name: str,
    template: str,
    system: str | None,
    identity: ConfigIdentity,
    model_params: dict[str, str],
    model_id: str | None = None,
) -> RegistryLinks:
    """Register the run's prompt version and configuration model and link the run to both.

    ``model_id`` names an existing LoggedModel to link instead of the configuration's own
    (``harness.evaluate(model_id=...)``, MLflow's active model), as ``mlflow.evaluate`` does."""
    version = register_prompt_version(
        client,
        name=prompt_name,
        template=template,
        system=system,
        digest=identity.prompt_digest,
        experiment_id=experiment_id,
        run_id=run_id,
    )
    links_params = {**model_params, "prompt_uri": f"prompts:/{version.name}/{version.version}"}
    if model_id is not None:
        model = client.get_logged_model(model_id)
    else:
        model = find_or_create_model(
            client,
            experiment_id=experiment_id,
            identity=identity,
            source_run_id=run_id,
            params=links_params,
        )
    link_prompt_to_run(client, run_id, version)
    link_prompt_to_model(client, model, version)
    client.set_tag(run_id, MODEL_ID_TAG, model.model_id)
    return RegistryLinks(
        prompt_name=version.name,
        prompt_version=int(version.version),
        model_id=model.model_id,
        model_name=model.name,
    )
