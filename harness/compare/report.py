"""``harness report``: the HTML report of one run, of a comparison, or of a check.

One run: ``harness.report.run_report``. Several: ``harness.compare.compare`` on them, then
the same page with the comparison first (``harness.compare.render.html``) and every row of
every run in the table, each candidate's flipped rows marked by the same
``harness.compare.rows.flipped_rows`` that lists them. A check (``harness check --report``)
adds its gates above the comparison it was decided on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from harness.compare.comparison import DEFAULT_ROWS, Margin, compare, parse_margin
from harness.compare.render.html import check_section, comparison_section
from harness.compare.result import CandidateResult, CheckResult, Comparison
from harness.compare.rows import flipped_rows
from harness.compare.sources import LoadedRun, load_run, run_scores
from harness.config import Home, resolve_home
from harness.errors import ConfigError
from harness.report import Flips, ReportRun, Section, render_report, run_report
from harness.slices import DEFAULT_MAX_VALUES, max_values

__all__ = [
    "check_report",
    "comparison_report",
    "default_report_name",
    "default_report_target",
    "report_refs",
]


def report_refs(
    refs: Sequence[str],
    *,
    home: str | os.PathLike[str] | Home | None = None,
    cluster: str | None = None,
    margins: Sequence[str] = (),
    rows: int = DEFAULT_ROWS,
    by: Sequence[str] = (),
    max_slices: int | None = None,
) -> str:
    """The report of the run ``refs`` names, or, for several, of the comparison of the
    first (the base) with the others: a run id, tag, name or run file each. ``by``
    columns slice each run, and the comparison (``harness compare --by``), with at most
    ``max_slices`` values each (else ``[slices] max_values`` in harness.toml, else 50)."""
    if not refs:
        raise ConfigError("harness report needs at least one run")
    home = resolve_home(home)
    limit = max_values(max_slices, home.settings) if by else DEFAULT_MAX_VALUES
    loaded = [load_run(ref, home) for ref in refs]
    if len(loaded) == 1:
        if cluster or margins:
            raise ConfigError("--cluster and --margin apply to a comparison: name two runs or more")
        return run_report(loaded[0].record, db_path=home.db_path, by=by, max_slices=limit)
    parsed: dict[str | None, Margin] = dict(parse_margin(m) for m in margins)
    comparison = compare(loaded[0], loaded[1:], cluster=cluster, margins=parsed, rows=rows,
                         by=by, max_slices=limit)  # fmt: skip
    return comparison_report(comparison, loaded[0], loaded[1:], home=home, max_slices=limit)


def default_report_name(refs: Sequence[str], run_ids: Sequence[str] = (), *,
                        with_ids: bool = False) -> str:  # fmt: skip
    """``report-RUN.html`` or ``report-BASE-vs-CANDIDATE.html``, from what the user typed
    (a run file by its name without the suffix). A name that loses characters to become a
    file name (letters other than a-z, spaces) carries its run's id from ``run_ids`` too,
    as every name does ``with_ids``: two runs never share a name that way."""
    import re
    from pathlib import Path

    from harness.store.exports import SUFFIXES, is_run_file

    names = []
    for i, ref in enumerate(refs):
        # A run file by its file name; a run by all of its name: `team-a/nightly` is not
        # `team-b/nightly`, whose report-nightly.html it replaced.
        name = Path(ref).name if is_run_file(ref) or Path(ref).is_file() else ref
        for suffix in SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
        if i < len(run_ids) and (with_ids or safe != name):
            safe = f"{safe}-{run_ids[i][:12]}" if safe else run_ids[i][:12]
        names.append(safe or "run")
    return "report-" + "-vs-".join(names) + ".html"


def default_report_target(refs: Sequence[str], html: str) -> tuple[str, str | None]:
    """Where ``harness report REFS`` writes ``html`` unless told: the default name, unless
    a file of that name is not a report of harness's (a file of the user's): that file is
    kept and the name carries each run's id. A report there is replaced, as a report of
    the same name typed again is the same runs' (a run rerun under its name: its report
    again). Returns the name and the file kept, if any; a file that is not a report under
    the second name too is bad input."""
    from harness.report import report_run_ids

    run_ids = report_run_ids(html) or ()
    target = default_report_name(refs, run_ids)
    if not _holds_something_else(target):
        return target, None
    unique = default_report_name(refs, run_ids, with_ids=True)
    if not _holds_something_else(unique):
        return unique, target
    raise ConfigError(f"{target} and {unique} hold something else than a report; "
                      "name the file with -o FILE")  # fmt: skip


def _holds_something_else(path: str) -> bool:
    """Whether a file at ``path`` is there and is not a report of harness's (its head
    names harness as its generator, as every report since the first did)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.read(4096)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return '<meta name="generator" content="harness ' not in head


def _labels(runs: Sequence[LoadedRun]) -> list[str]:
    """``base: NAME`` and ``candidate: NAME``, with the run id where two names are alike."""
    names = [run.ref.label for run in runs]
    labels = []
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        if names.count(name) > 1:
            name = f"{name} [{run.ref.run_id[:8]}]"
        role = "base" if i == 0 else "candidate" if len(runs) == 2 else f"candidate {i}"
        labels.append(f"{role}: {name}")
    return labels


def _flips(base: ReportRun, candidate: ReportRun, result: CandidateResult) -> Flips:
    """Every row of ``candidate`` that flipped, as ``compare`` decided (not only the first
    few it lists): the same function with the same margins, without a limit."""
    common = base.scores.rows.index.intersection(candidate.scores.rows.index, sort=False)
    margins = {m.metric: m.margin for m in result.metrics}
    worse, better = flipped_rows(base.scores, candidate.scores, common, margins,
                                 limit=len(common))  # fmt: skip
    return Flips(
        worse={r.example_id: [c.metric for c in r.worse] for r in worse.rows},
        better={r.example_id: [c.metric for c in r.better] for r in better.rows},
    )


def comparison_report(
    comparison: Comparison,
    base: LoadedRun,
    candidates: Sequence[LoadedRun],
    *,
    home: Home,
    lead: Sequence[Section] = (),
    title: str | None = None,
    max_slices: int | None = None,
) -> str:
    """The page of ``comparison`` (computed from ``base`` and ``candidates``); each run
    is sliced by the comparison's ``--by`` columns too, if it has any."""
    loaded = [base, *candidates]
    runs = [
        ReportRun(label, run.record, run_scores(run))
        for label, run in zip(_labels(loaded), loaded, strict=True)
    ]
    flips = [
        _flips(runs[0], run, result)
        for run, result in zip(runs[1:], comparison.candidates, strict=True)
    ]
    names = " vs ".join(run.ref.label for run in loaded)
    info = base.record.info
    return render_report(
        runs,
        title=title or f"harness report: {names}",
        subtitle=f"{len(candidates)} candidate{'s' if len(candidates) > 1 else ''} against "
        f"the base on {info.dataset}@{info.dataset_version}",
        lead=[*lead, comparison_section(comparison)],
        flips=flips,
        db_path=home.db_path,
        by=comparison.by,
        max_slices=max_slices,
    )


def _reload(ref: object, home: Home) -> LoadedRun:
    """A run of a result again, exactly: by its id when stored, by its file otherwise."""
    from harness.compare.result import RunRef

    assert isinstance(ref, RunRef)
    return load_run(ref.run_id if ref.origin == "store" else ref.origin, home)


def check_report(result: CheckResult, *, home: str | os.PathLike[str] | Home | None = None) -> str:
    """The page of a check: its gates, then the comparison it was decided on (if any), then
    the candidate (and baseline) as every report shows runs."""
    home = resolve_home(home)
    section = check_section(result)
    if result.candidate is None:  # nothing to look at: a replay miss stopped the run
        return render_report([], title="harness check", subtitle=result.summary(),
                             lead=[section])  # fmt: skip
    candidate = _reload(result.candidate, home)
    label = result.candidate.label
    if result.comparison is not None and result.baseline is not None:
        baseline = _reload(result.baseline, home)
        return comparison_report(result.comparison, baseline, [candidate], home=home,
                                 lead=[section], title=f"harness check: {label}")  # fmt: skip
    runs = [ReportRun(f"candidate: {label}", candidate.record, run_scores(candidate))]
    return render_report(
        runs,
        title=f"harness check: {label}",
        subtitle=result.summary(),
        lead=[section],
        db_path=home.db_path,
    )
