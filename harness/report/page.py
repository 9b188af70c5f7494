"""The report page: one HTML file with its stylesheet, script, plots and rows inline.

The page is a Jinja2 template (autoescaped: every text from a run is escaped; the plots are
the only markup passed through, and ``harness.report.svg`` escapes their text itself). It
refers to nothing outside itself: no fonts (the system's), no scripts or styles from
elsewhere, no images but inline SVG, so it opens from disk, offline, and in MLflow's
artifact view. Nothing in it depends on when it was written, so the same runs give the
same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._version import __version__
from harness.memory import release_freed
from harness.numbers import ci, clip, mde, mean_ci, number, p_value, signed
from harness.report.facts import run_facts
from harness.report.rows import Flips, ReportRun, packed_rows
from harness.report.scores import judge_views, metric_views, report_metrics
from harness.report.slices import slice_views
from harness.slices.labels import shown_value
from harness.wording import plural

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

    from harness.store.calibrations import StoredCalibration

__all__ = ["Section", "environment", "markup", "render_report"]


@dataclass(frozen=True)
class Section:
    """A section placed before the run's own (a check's gates, a comparison)."""

    id: str
    title: str
    html: Markup


def markup(text: str) -> Markup:
    """Trusted HTML (a rendered template, a plot) that the page must not escape again."""
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 - only our own rendered templates and plots


def _thousands(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _arrow(direction: int) -> str:
    return {1: " ↑", -1: " ↓"}.get(direction, "")


@cache
def environment(package: str) -> jinja2.Environment:
    """A Jinja2 environment for the templates of ``package`` (its ``templates`` folder),
    with the number formats every surface shares as filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        number=number, signed=signed, ci=ci, mean_ci=mean_ci, p_value=p_value, clip=clip,
        thousands=_thousands, plural=plural, arrow=_arrow, mde=mde, slice_value=shown_value,
    )  # fmt: skip
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja2's cache of compiled templates, in its own per-user folder of the temporary
    directory: compiling the report's template took 25-45 ms of every report, loading it
    takes under 1 ms. A template whose source changed is compiled again (the cache checks
    its checksum). The cache only ever saves time: a folder it may not use (not ours, or
    no temporary directory at all) means no cache, and a file it cannot read or write
    means that template is compiled as if there were none."""
    import jinja2

    class _BestEffort(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            import pickle

            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):  # not what it wrote
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):  # a full or read-only disk: compile next time
                super().dump_bytecode(bucket)

    try:
        return _BestEffort()
    except (OSError, RuntimeError):  # RuntimeError: Jinja2 finds the folder unsafe
        return None


@cache
def _static(name: str) -> str:
    return resources.files("harness.report").joinpath("static", name).read_text(encoding="utf-8")


def find_calibrations(db_path: Path | None, run: ReportRun) -> list[StoredCalibration]:
    """The newest calibration of each of the run's judges, with their version and model."""
    config = run.record.info.config
    judges = config.get("judges") or []
    if db_path is None or not judges or not Path(db_path).exists():
        return []
    from harness.store.calibrations import judge_calibrations

    versions = config.get("judge_versions") or {}
    models = config.get("judge_models") or {}  # a judge with its own model: that one
    model = config.get("judge_model_uri") or config.get("judge_model")
    by_model: dict[str | None, list[str]] = {}
    for judge in judges:
        by_model.setdefault(models.get(judge) or model, []).append(judge)
    found = {  # one read of the store per judge model, not one per judge
        c.judge: c
        for judge_model, named in by_model.items()
        for c in judge_calibrations(db_path, [(j, versions.get(j)) for j in named], judge_model)
    }
    return [found[j] for j in judges if j in found]


def render_report(
    runs: Sequence[ReportRun],
    *,
    title: str,
    subtitle: str,
    lead: Sequence[Section] = (),
    flips: Sequence[Flips] = (),
    db_path: Path | None = None,
    by: Sequence[str] = (),
    max_slices: int | None = None,
    calibrations: Sequence[list[StoredCalibration]] | None = None,
) -> str:
    """The report of ``runs`` (one run, or a base and its candidates) as one HTML page.

    ``lead`` sections come first (a check, a comparison); ``flips`` marks each candidate's
    rows that got worse or better; ``db_path`` is the store the judges' calibrations are
    read from (none for a report with no store); ``by`` are the columns to slice each run
    by (at most ``max_slices`` values each), else each run's own ``--by`` columns;
    ``calibrations`` each run's (``find_calibrations``), when read already."""
    metrics = report_metrics(runs)
    if calibrations is None:
        calibrations = [find_calibrations(db_path, run) for run in runs]
    context = {
        "title": title,
        "subtitle": subtitle,
        "version": __version__,
        "run_ids": " ".join(run.record.info.run_id for run in runs),
        "lead": list(lead),
        "runs": [(run, run_facts(run)) for run in runs],
        "metrics": metric_views(runs, metrics),
        "judges": judge_views(runs, calibrations),
        "slices": slice_views(runs, by, max_slices),
    }
    packed = packed_rows(runs, metrics, flips)
    release_freed()  # the rows' Python objects and reads, before the page is made
    context |= {
        "css": markup(_static("report.css")),
        "js": markup(_static("report.js")),
    }
    page = environment("harness.report").get_template("report.html.j2").render(context)
    return _with_rows(page, packed)


# The element the page's rows go in (``report.html.j2``), empty as the template makes it.
_ROWS_DATA = '<script type="application/octet-stream" id="rows-data">'


def _with_rows(page: str, packed: str) -> str:
    """``page`` with the rows' data ``packed`` in its element, put in as the page is joined:
    the template would copy it into a text of its own (markup goes through ``escape``,
    which makes a new one) before it joins the page, 10 MB more of a 10,000-row report's
    peak. The element cannot be in the page's other text, whose ``<`` is escaped."""
    before, found, after = page.partition(_ROWS_DATA + "</script>")
    if not found:  # a page with no rows
        return page
    return "".join((before, _ROWS_DATA, packed, "</script>", after))
