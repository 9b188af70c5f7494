"""A sweep's grid: where its axes come from and the points they make, apart from running
the sweep (``harness.runner.sweep``) because they are pure (no run, store or MLflow) and
``harness run`` reads them before it knows a sweep is wanted (``run_command``).

Where sweeps come from (``sweep_options``): a ``--param KEY`` given more than once, more
than one ``--prompt``, or a ``[sweep]`` table in harness.toml::

    [sweep]
    temperature = [0, 0.7]
    prompt = ["@prompts/short.txt", "@prompts/long.txt"]   # relative to the home

``expand_grid`` makes every combination of the axes' values into a ``SweepPoint``: the
values shown in the sweep's table and the child's ``RunConfig``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.config import parse_param, read_text_arg, settings_file
from harness.errors import ConfigError
from harness.prompts import prompt_digest
from harness.runner.config import RunConfig

__all__ = [
    "CONFIG_AXES",
    "SWEEP_SETTINGS",
    "TEXT_AXES",
    "SweepOptions",
    "SweepPoint",
    "expand_grid",
    "sweep_options",
]

SWEEP_SETTINGS = "sweep"
TEXT_AXES = ("prompt", "system")  # values are TEXT or @FILE
# The most runs one sweep makes. Each point is a whole run over the eval set, checked before
# the first starts: a grid of 10 values on 6 axes (a million runs) was planned for minutes,
# growing to gigabytes, before anything was said.
MAX_SWEEP_POINTS = 1000
CONFIG_AXES = ("model", *TEXT_AXES)  # RunConfig fields; any other axis is a generation param


@dataclass(frozen=True)
class SweepOptions:
    """The run options split into fixed values and the axes of a sweep (``grid``)."""

    params: dict[str, Any]
    prompt: str | None  # TEXT or @FILE, None for the default prompt
    grid: dict[str, list[Any]]
    model: str | None = None  # the --model value, or a sweep's first model


@dataclass(frozen=True)
class SweepPoint:
    """One child of a sweep: the values that vary (as shown) and its full configuration."""

    values: dict[str, Any]
    config: RunConfig


def sweep_options(
    params: Sequence[str],
    prompts: Sequence[str],
    settings: Mapping[str, Any] | None = None,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    models: Sequence[str] = (),
    flags: Sequence[str] = (),
) -> SweepOptions:
    """Split ``--model``/``--param``/``--prompt`` values and harness.toml's ``[sweep]`` into
    fixed values and sweep axes (several ``--model`` values: a sweep across models). A key
    given on the command line replaces the same key of ``[sweep]`` (flag > harness.toml),
    as do the keys in ``flags`` (``system``: a ``--system`` given, which the caller keeps);
    ``@FILE`` values in ``[sweep]`` are relative to ``base_dir``.
    """
    values: dict[str, list[Any]] = {}
    if models:
        values["model"] = _once(models, [f"--model {m} is given" for m in models])
    given: dict[str, list[str]] = {}  # each key's --param items as typed
    for item in params:
        key, value = parse_param(item)
        values.setdefault(key, []).append(value)
        given.setdefault(key, []).append(item)
    from harness.runner.plan import SECRET_PARAMS

    for key, listed in values.items():
        if key in given:  # a credential's value is no part of a message
            shown = [f"{key}=..." if key in SECRET_PARAMS else item for item in given[key]]
            _once(listed, [f"--param {item} is given" for item in shown])
    if prompts:
        values["prompt"] = _once(prompts, [f"--prompt {_one_line(p)} is given" for p in prompts])
    where = settings_file(settings or {})  # messages begin with the file, as config's do
    table = (settings or {}).get(SWEEP_SETTINGS, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [sweep] must be a table of KEY = [VALUES]")
    for key, listed in table.items():
        if key in values or key in flags:
            continue
        if not isinstance(listed, list) or not listed:
            raise ConfigError(f"{where}: [sweep] {key} must be a non-empty list")
        text = [v for v in listed if not isinstance(v, str)] if key in TEXT_AXES else []
        if text:  # a prompt of 5 was an AttributeError traceback, a prompt of [5, 6] sent "5"
            raise ConfigError(f"{where}: [sweep] {key} must list text, got {text[0]!r}")
        _once(listed, [f"{where}: [sweep] {key} lists {_one_line(v)}" for v in listed])
        if key in TEXT_AXES:
            listed = [_relative_to(v, base_dir) for v in listed]
        values[key] = listed
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    for key, listed in values.items():
        if len(listed) == 1:
            fixed[key] = listed[0]
        else:
            grid[key] = listed
    prompt = fixed.pop("prompt", None)
    model = fixed.pop("model", None) if models else None
    for key in ("model", "system"):
        if key in fixed:  # a one-value [sweep] entry: only the flag may set these
            raise ConfigError(f"{where}: [sweep] {key} needs two or more values (or use --{key})")
    if "model" in grid:  # the sweep's children each set it; the base needs a valid one
        model = grid["model"][0]
    return SweepOptions(params=fixed, prompt=prompt, grid=grid, model=model)


def _relative_to(value: Any, base_dir: str | os.PathLike[str] | None) -> Any:
    if isinstance(value, str) and value.startswith("@") and base_dir is not None:
        path = Path(value[1:]).expanduser()
        return "@" + str(path if path.is_absolute() else Path(base_dir) / path)
    return value


def _once(values: Sequence[Any], said: Sequence[str]) -> list[Any]:
    """``values`` as a list; ConfigError when one repeats (by its JSON form: 0 and 0.0
    differ), with ``said[i]`` naming the repeat: a second run of a value would replay the
    first from the cache, and a value given twice by mistake would hide a missing one."""
    seen: set[str] = set()
    for i, value in enumerate(values):
        form = json.dumps(value, sort_keys=True, default=str)
        if form in seen:
            raise ConfigError(
                f"{said[i]} more than once; a sweep runs each value once (a second run of it "
                "would only replay the first from the cache)"
            )
        seen.add(form)
    return list(values)


def _one_line(value: Any) -> str:
    """A value as an error line shows it: text quoted when it has spaces, cut at 40."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = text if len(text) <= 40 else text[:39] + "…"
    return repr(text) if not text or any(c.isspace() for c in text) else text


def expand_grid(base: RunConfig, grid: Mapping[str, Sequence[Any]]) -> list[SweepPoint]:
    """Every combination of the grid's values applied to ``base``, in grid order."""
    if not grid:
        raise ConfigError("a sweep needs at least one KEY with values")
    for axis, listed in grid.items():
        _once(listed, [f"grid {axis} lists {_one_line(v)}" for v in listed])
    axes = list(grid)
    count = math.prod(len(grid[axis]) for axis in axes)
    if count > MAX_SWEEP_POINTS:
        sizes = " x ".join(f"{len(grid[axis])} {axis}" for axis in axes)
        raise ConfigError(
            f"a sweep of {count:,} runs ({sizes}) is more than the {MAX_SWEEP_POINTS:,} one "
            "sweep makes: narrow the grid, or sweep it in parts"
        )
    points = []
    for combo in itertools.product(*(grid[axis] for axis in axes)):
        config = replace(base, params=dict(base.params))
        shown: dict[str, Any] = {}
        for axis, value in zip(axes, combo, strict=True):
            if axis in TEXT_AXES:
                text = read_text_arg(str(value), f"--{axis}")
                setattr(config, axis, text)
                shown[axis] = _text_label(str(value), text)
            elif axis == "model":
                config.model = str(value)
                shown[axis] = config.model
            else:
                config.params[axis] = value
                shown[axis] = value
        label = " ".join(f"{k}={_short(v)}" for k, v in shown.items())
        config.run_name = f"{base.run_name} {label}" if base.run_name else label
        points.append(SweepPoint(shown, config))
    return points


def _text_label(raw: str, text: str | None) -> str:
    """A prompt as the table shows it: its file name, or ``#`` and its digest."""
    if raw.startswith("@"):
        return Path(raw[1:]).name
    return "#" + prompt_digest(text or "")[:8]


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
