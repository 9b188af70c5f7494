"""Copy the prompt versions and logged models a run links to, and name them in the copy.

A harness run links to a version of a registered prompt (the param ``prompt_uri``,
``prompts:/NAME/N``, and the tag ``mlflow.linkedPrompts``) and to its configuration's
LoggedModel (the tag ``harness.model_id``, a model input, its metrics logged against the
model, each trace's ``mlflow.modelId``; see :mod:`harness.tracking.registry`).
:class:`LinkCopier` makes them exist on the target before the run's copy names them:

- A prompt version is looked up among the target's versions of the same prompt name by
  its content (template, response format, model config): the oldest match is reused, else
  a version is created with the local one's template, commit message and tags (the prompt
  too, with its description and tags, if the target has none of that name). The prompt is
  listed on the copied run's experiment (its Prompts tab), as registering it there would.
  Its number may differ on the target: the copy's ``prompt_uri`` and ``mlflow.linkedPrompts``
  (the run's, its traces' and the model's) name the target's version.
- A logged model is looked up in the copied run's experiment by the tag
  ``harness.source_model_id`` (the local model's id), set when it is created there with the
  local name, type, params and tags, and the source run's copy as its source run; then it
  gets the local status (READY). The copy's ``harness.model_id``, model input, model metrics
  and traces' ``mlflow.modelId`` name the target's model. A model found there again gets
  the local tags it lacks or holds with another value (a tag set on the local model after
  the first sync); as with a run's tags, one deleted locally stays on the target. The run's
  fingerprint holds the state of its models (``model_state``), so such a change is seen.

Both lookups make a second sync, and one resumed after a kill, find what the first created.
Databricks keeps prompts in Unity Catalog, under ``catalog.schema.name`` names that a local
prompt name is not: there, prompt versions are not copied (the report warns once per run)
and the copy keeps the local references; logged models are copied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.tracking.mlflow_names import Tag
from harness.tracking.registry import EXPERIMENT_IDS_TAG, LINKED_PROMPTS_TAG, MODEL_ID_TAG

if TYPE_CHECKING:
    from mlflow.entities import Run, TraceInfo

    from harness.tracking.sync_report import RunSync

__all__ = ["TAG_SOURCE_MODEL", "LinkCopier", "LocalLinks", "local_links"]

TAG_SOURCE_MODEL = "harness.source_model_id"
PROMPT_URI_PARAM = "prompt_uri"
_PROMPT_URI = re.compile(r"^prompts:/([^/@]+)/(\d+)$")
# Prompt tags that say where a prompt is listed in one store, not what it is.
_STORE_PROMPT_TAGS = (EXPERIMENT_IDS_TAG,)

Write = Callable[..., Any]  # write(fn, *args, **kwargs): every call that changes the target


@dataclass(frozen=True)
class LocalLinks:
    """The prompt versions ((name, version) pairs) and logged models a local run names."""

    prompts: tuple[tuple[str, str], ...]
    models: tuple[str, ...]
    model_inputs: tuple[str, ...]  # the run's model inputs (a subset of ``models``)

    def __bool__(self) -> bool:
        return bool(self.prompts or self.models)

    def fingerprint(self) -> list[Any]:
        return [list(self.prompts), list(self.models), list(self.model_inputs)]


def local_links(
    params: dict[str, str], tags: dict[str, str], run: Run, traces: list[TraceInfo] | None
) -> LocalLinks:
    """What ``run`` (read with ``get_run``: ``search_runs`` leaves out model inputs) and its
    traces link to."""
    prompts = set(_prompt_refs(params.get(PROMPT_URI_PARAM), tags.get(LINKED_PROMPTS_TAG)))
    models = {tags[MODEL_ID_TAG]} if tags.get(MODEL_ID_TAG) else set()
    inputs = {m.model_id for m in (run.inputs.model_inputs if run.inputs else None) or ()}
    for trace in traces or ():
        prompts.update(_prompt_refs(None, trace.tags.get(LINKED_PROMPTS_TAG)))
        if trace.trace_metadata.get(Tag.MODEL_ID):
            models.add(trace.trace_metadata[Tag.MODEL_ID])
    return LocalLinks(tuple(sorted(prompts)), tuple(sorted(models | inputs)), tuple(sorted(inputs)))


def _prompt_refs(prompt_uri: str | None, linked: str | None) -> list[tuple[str, str]]:
    found = []
    if prompt_uri and (match := _PROMPT_URI.match(prompt_uri)):
        found.append((match.group(1), match.group(2)))
    for entry in _linked_entries(linked) or ():
        found.append((str(entry["name"]), str(entry["version"])))
    return found


def _linked_entries(value: str | None) -> list[dict[str, Any]] | None:
    """The entries of an ``mlflow.linkedPrompts`` value, or None when it is not that."""
    try:
        entries = json.loads(value) if value else None
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    ok = all(isinstance(e, dict) and "name" in e and "version" in e for e in entries)
    return entries if ok else None


class LinkCopier:
    """Finds or creates on the target what local runs link to, and rewrites the references.

    ``source`` and ``target`` are ``MlflowClient``s; ``write(fn, *args)`` must be the only
    way anything changes on the target; ``id_map`` (local run id -> target run id) is the
    caller's. With ``prompts=False`` (Databricks) prompt versions are neither looked up nor
    copied. In a dry run nothing is created: what would be is counted once.
    """

    def __init__(
        self,
        source: Any,
        target: Any,
        write: Write,
        *,
        id_map: dict[str, str],
        prompts: bool,
        dry_run: bool,
    ) -> None:
        self.src, self.dst, self.write, self.id_map = source, target, write, id_map
        self.prompts, self.dry_run = prompts, dry_run
        self.versions: dict[tuple[str, str], str] = {}  # local (name, version) -> target version
        self.models: dict[str, str] = {}  # local model id -> target model id
        self._listed: set[tuple[str, str]] = set()  # (prompt, target experiment) listed there
        self._planned: set[Any] = set()  # what a dry run would create, counted once
        self._local_models: dict[str, Any] = {}  # local model id -> LoggedModel (None: gone)
        # Per local run: (key, step, timestamp) of a metric -> its model link on the target.
        self.metric_links: dict[str, dict[tuple[str, int, int], dict[str, Any]]] = {}

    def model_state(self, model_ids: tuple[str, ...]) -> list[Any]:
        """What of the local models a sync copies after their creation (tags, status), as a
        value to hash into the run's fingerprint: a tag set on a model changes it."""
        state: list[Any] = []
        for model_id in model_ids:
            local = self._local_model(model_id)
            if local is None:
                state.append([model_id, None])
            else:
                state.append([model_id, sorted(local.tags.items()), str(local.status)])
        return state

    def _local_model(self, model_id: str) -> Any | None:
        from mlflow.exceptions import MlflowException

        if model_id not in self._local_models:
            try:
                self._local_models[model_id] = self.src.get_logged_model(model_id)
            except MlflowException:
                self._local_models[model_id] = None
        return self._local_models[model_id]

    # --- making them exist ------------------------------------------------------------

    def copy(self, links: LocalLinks, experiment_id: str, result: RunSync) -> None:
        """Make the prompt versions and models of ``links`` exist in ``experiment_id``."""
        if links.prompts and not self.prompts:
            shown = ", ".join(f"prompts:/{n}/{v}" for n, v in links.prompts)
            result.warnings.append(
                f"prompt versions not copied ({shown}): Databricks keeps prompts in Unity "
                "Catalog (catalog.schema.name); the copy names the local versions"
            )
        for name, version in links.prompts if self.prompts else ():
            self._prompt(name, version, experiment_id, result)
        for model_id in links.models:
            self._model(model_id, experiment_id, result)

    def _prompt(self, name: str, version: str, experiment_id: str, result: RunSync) -> None:
        from mlflow.exceptions import MlflowException

        key = (name, version)
        if key not in self.versions and key not in self._planned:
            try:
                local = self.src.get_prompt_version(name, version)
            except MlflowException:
                local = None
            if local is None:
                result.warnings.append(
                    f"prompt version prompts:/{name}/{version} is not in the local registry; "
                    "the copy names it as it is"
                )
                self._planned.add(key)  # warned once
                return
            found = self._find_version(local)
            if found is None:
                result.prompts += 1
                if self.dry_run:
                    self._planned.add(key)
                    return
                if self.dst.get_prompt(name) is None:
                    prompt = self.src.get_prompt(name)
                    tags = prompt.tags if prompt else {}
                    tags = {k: v for k, v in tags.items() if k not in _STORE_PROMPT_TAGS}
                    description = prompt.description if prompt else None
                    self.write(self.dst.create_prompt, name, description, tags or None)
                found = self.write(
                    self.dst.create_prompt_version,
                    name,
                    local.template,
                    description=local.commit_message,
                    tags=dict(local.tags) or None,
                    response_format=local.response_format,
                    model_config=local.model_config,
                )
            self.versions[key] = str(found.version)
        if key in self.versions and not self.dry_run and (name, experiment_id) not in self._listed:
            prompt = self.dst.get_prompt(name)
            listed = (prompt.tags.get(EXPERIMENT_IDS_TAG, "") if prompt else "").strip(",")
            ids = [i for i in listed.split(",") if i]
            if experiment_id not in ids:  # commas on both ends, as MLflow writes it
                value = "," + ",".join([*ids, experiment_id]) + ","
                self.write(self.dst.set_prompt_tag, name, EXPERIMENT_IDS_TAG, value)
            self._listed.add((name, experiment_id))

    def _find_version(self, local: Any) -> Any | None:
        """The target's oldest version of the prompt with the local version's content."""
        if self.dst.get_prompt(local.name) is None:
            return None
        content = _content(local)
        found, token = None, None
        while True:
            page = self.dst.search_prompt_versions(local.name, max_results=100, page_token=token)
            for version in page:
                if _content(version) == content and (
                    found is None or int(version.version) < int(found.version)
                ):
                    found = version
            token = page.token
            if not token:
                return found

    def _model(self, model_id: str, experiment_id: str, result: RunSync) -> None:
        if model_id in self.models or model_id in self._planned:
            return
        local = self._local_model(model_id)
        if local is None:
            result.warnings.append(
                f"logged model {model_id} is not in the local store; the copy names it as it is"
            )
            self._planned.add(model_id)
            return
        found = []
        if experiment_id:  # "": an experiment a dry run would create
            found = self.dst.search_logged_models(
                experiment_ids=[experiment_id],
                filter_string=f"tags.`{TAG_SOURCE_MODEL}` = '{model_id}'",
                order_by=[{"field_name": "creation_time", "ascending": True}],
                max_results=1,
            )
        if found:
            target = found[0]
            tags = self._model_tags(local, experiment_id, result)
            # Set (or changed) locally since the model was copied; none is deleted there.
            missing = {k: v for k, v in tags.items() if target.tags.get(k) != v}
            result.model_tags += len(missing)
            if missing and not self.dry_run:
                self.write(self.dst.set_logged_model_tags, target.model_id, missing)
        else:
            result.models += 1
            if self.dry_run:
                self._planned.add(model_id)
                return
            tags = self._model_tags(local, experiment_id, result)
            target = self.write(
                self.dst.create_logged_model,
                experiment_id,
                name=local.name,
                source_run_id=self.id_map.get(local.source_run_id or ""),
                tags=tags,
                params={k: self.param(k, v) for k, v in local.params.items()},
                model_type=local.model_type,
            )
        if str(target.status) != str(local.status) and str(local.status) in ("READY", "FAILED"):
            # Created just now, or by a sync killed before it was finalized.
            self.write(self.dst.finalize_logged_model, target.model_id, local.status)
        self.models[model_id] = target.model_id
        for metric in local.metrics or ():
            links = self.metric_links.setdefault(metric.run_id or "", {})
            links[(metric.key, int(metric.step), int(metric.timestamp))] = {
                "model_id": target.model_id,
                "dataset_name": metric.dataset_name,
                "dataset_digest": metric.dataset_digest,
            }

    def _model_tags(self, local: Any, experiment_id: str, result: RunSync) -> dict[str, str]:
        """The local model's tags as its copy holds them; the prompt versions the model
        names exist on the target first, so its tags and params can name them."""
        for name, version in _prompt_refs(
            local.params.get(PROMPT_URI_PARAM), local.tags.get(LINKED_PROMPTS_TAG)
        ):
            if self.prompts:
                self._prompt(name, version, experiment_id, result)
        tags = {k: self.tag(k, v) for k, v in local.tags.items()}
        tags[TAG_SOURCE_MODEL] = local.model_id
        return tags

    # --- naming them in the copy ------------------------------------------------------

    def param(self, key: str, value: str) -> str:
        """A run's or model's param as the copy holds it."""
        if key == PROMPT_URI_PARAM and (match := _PROMPT_URI.match(value)):
            mapped = self.versions.get((match.group(1), match.group(2)))
            return f"prompts:/{match.group(1)}/{mapped}" if mapped else value
        return value

    def tag(self, key: str, value: str) -> str:
        """A run's, trace's or model's tag as the copy holds it."""
        if key == MODEL_ID_TAG:
            return self.models.get(value, value)
        if key == LINKED_PROMPTS_TAG:
            entries = _linked_entries(value)
            if entries is None:
                return value
            mapped = [
                {**e, "version": self.versions.get((str(e["name"]), str(e["version"])))}
                for e in entries
            ]
            if all(m["version"] is None for m in mapped):
                return value  # nothing to rename: kept byte for byte
            for entry, was in zip(mapped, entries, strict=True):
                entry["version"] = entry["version"] or was["version"]
            return json.dumps(mapped)
        return value

    def trace_metadata(self, metadata: dict[str, str]) -> dict[str, str]:
        """A trace's metadata with ``mlflow.modelId`` naming the model's copy."""
        model_id = metadata.get(Tag.MODEL_ID)
        if model_id in self.models:
            return {**metadata, Tag.MODEL_ID: self.models[model_id]}
        return metadata

    def trace_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return {k: self.tag(k, v) for k, v in tags.items()}

    def metric(self, local_run_id: str, metric: Any) -> Any:
        """A run metric to log on the copy: against the model's copy when it was locally."""
        from mlflow.entities import Metric

        key = (metric.key, int(metric.step), int(metric.timestamp))
        link = self.metric_links.get(local_run_id, {}).get(key, {})
        return Metric(metric.key, metric.value, metric.timestamp, metric.step, **link)

    def model_inputs(self, links: LocalLinks) -> list[str]:
        """The target ids of the models the run takes as inputs (those copied)."""
        return [self.models[m] for m in links.model_inputs if m in self.models]


def _content(version: Any) -> str:
    """What makes two prompt versions the same prompt: template, response format, config."""
    parts = [version.template, version.response_format, version.model_config]
    return json.dumps(parts, sort_keys=True, default=str)
