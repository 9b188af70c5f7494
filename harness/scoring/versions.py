"""What defined each metric of a run, and a short digest of it: the metric's version.

A run stores them (``metric_versions`` and ``metric_sources`` in its config, beside
``judge_versions``), so ``compare`` and ``check`` can say when one name stood for two
different checks in the two runs (a ``[metrics.NAME]`` table edited between them, say).
The version covers:

- a built-in metric: its name only (see :func:`builtin`);
- ``KIND:VALUE`` (``cites=regex:...``): the spec's text, and the text of a ``@FILE`` it reads;
- a ``[metrics.NAME]`` table: its content (and for ``python =``, the function's source);
- ``python:MODULE:FUNCTION`` and a Python object: the function's source text when
  ``inspect.getsource`` can get it, else its qualified name.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Definition", "builtin", "digest", "kind_spec", "python_object", "table"]


@dataclass(frozen=True)
class Definition:
    """Where a metric was defined (``the [metrics.cites] table``), and its version."""

    source: str
    version: str


def digest(identity: Mapping[str, Any]) -> str:
    """12 hex digits over ``identity``, as a judge's version is."""
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def builtin(name: str) -> Definition:
    """A metric of harness's own. Its version is its name alone, not harness's version:
    a metric changes only with a release, and most releases change none, so a harness
    upgrade between a baseline and a candidate would otherwise call every built-in
    metric of the two runs "defined differently", a false alarm that teaches users to
    ignore the note; a release that does change how one scores says so itself."""
    return Definition("built-in metric", digest({"builtin": name}))


def kind_spec(text: str, params: Mapping[str, Any], base_dir: Path) -> Definition:
    """``[LABEL=]KIND[:VALUE]`` given as text."""
    identity = {"spec": text.strip(), "files": _files(params, base_dir)}
    # Quoted as typed: repr would double a regex's backslashes in compare's note.
    return Definition(f"spec '{text.strip()}'", digest(identity))


def table(name: str, content: Mapping[str, Any], base_dir: Path, loaded: Any = None) -> Definition:
    """A ``[metrics.NAME]`` table; ``loaded`` is what its ``python =`` names, if it has one."""
    identity: dict[str, Any] = {"table": dict(content), "files": _files(content, base_dir)}
    if loaded is not None:
        identity["python"] = source_text(loaded)
    return Definition(f"[metrics.{name}] table", digest(identity))


def python_object(obj: Any, source: str) -> Definition:
    """``python:MODULE:FUNCTION`` (``source`` is that text), or an object from Python."""
    return Definition(source, digest({"python": source_text(obj)}))


def source_text(obj: Any) -> str:
    """A function's source (a harness Metric's ``fn``, an MLflow metric's ``eval_fn``),
    else the object's qualified name: what can be told of a compiled function or an
    object defined in a notebook cell."""
    for candidate in (obj, getattr(obj, "fn", None), getattr(obj, "eval_fn", None)):
        if candidate is None:
            continue
        try:
            return inspect.getsource(candidate)
        except (OSError, TypeError):
            continue
    found = obj if callable(obj) and hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(found, '__module__', '')}.{getattr(found, '__qualname__', repr(found))}"


def _files(params: Mapping[str, Any], base_dir: Path) -> dict[str, str]:
    """The text of each ``@FILE`` a kind reads (a json-schema's schema): a change to the
    file changes the check as much as one to the spec."""
    found = {}
    for value in params.values():
        if isinstance(value, str) and value.startswith("@"):
            path = (base_dir / value[1:]).expanduser()
            try:
                found[value] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return found
