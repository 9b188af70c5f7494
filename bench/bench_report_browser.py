"""The report's rows in a browser: how soon a long run's table shows, and how fast it answers.

Builds a run of ``--rows`` PubMedQA rows (the 1,000 bundled ones repeated with distinct
ids, as bench_providers.py does) with a local model (``python:harness.baselines:
context_overlap``) and two offline metrics, writes its report with ``harness report``, and
opens it in headless Chromium (Debian's ``chromium``; driven as the tests drive it,
``tests/browser.py``), offline, from ``file://``. It times, inside the page: from opening
the file to the rows shown (``data-rows-ready``), a search keystroke (``cancer``) and a
sort by a metric, each with the layout it causes.

The baseline is the same page listing every matching row (its ``PAGE`` set to Infinity:
one table row element per row, as the report did before it listed a page at a time),
opened alternately with it in the same run; the ratios printed are the page's times over
the baseline's.

Run: ``python bench/bench_report_browser.py [--rows 10000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_providers import write_rows  # noqa: E402
from browser import BROWSERS, Browser, BrowserError  # noqa: E402

PAGED = "var PAGE = 500;"
EVERY_ROW = "var PAGE = Infinity;"
SEARCH = (
    "(() => { const t = performance.now(); const s = document.getElementById('search');"
    " s.value = 'cancer'; s.dispatchEvent(new Event('input')); document.body.offsetHeight;"
    " return performance.now() - t; })()"
)
SORT = (
    "(() => { const t = performance.now(); [...document.querySelectorAll('#row-table th')]"
    ".find(th => th.textContent.startsWith('token_f1')).click(); document.body.offsetHeight;"
    " return performance.now() - t; })()"
)


def harness(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"harness {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def build(scratch: Path, rows: int) -> Path:
    """The report of a ``rows``-row run, written in ``scratch``."""
    env = {**os.environ, "HARNESS_HOME": str(scratch / "home"), "PYTHONPATH": str(REPO)}
    data = scratch / "rows.jsonl"
    write_rows(data, rows)
    harness(env, "data", "import", str(data), "--name", "bench", "--input", "question",
            "--expected", "answer", "--context", "context")  # fmt: skip
    started = time.perf_counter()
    model = "python:harness.baselines:context_overlap"
    harness(env, "run", "--data", "bench", "--model", model, "--metric", "token_f1",
            "--metric", "rougeL", "--no-mlflow", "--run-name", "long")  # fmt: skip
    page = scratch / "report.html"
    harness(env, "report", "long", "-o", str(page))
    print(
        f"{rows:,} rows run and reported in {time.perf_counter() - started:.1f} s; "
        f"the report is {page.stat().st_size / 2**20:.1f} MB",
        flush=True,
    )
    return page


def measure(
    chromium: str, page: Path, profile: Path, timeout_s: float
) -> tuple[float, float, float] | None:
    """Seconds from opening ``page`` to its rows shown, milliseconds of a search and of a
    sort; None if the rows did not show (or the page stopped answering) in ``timeout_s``."""
    with Browser(chromium, profile) as browser:
        started = time.perf_counter()
        try:
            browser.open(page.as_uri())
            browser.wait_until("document.body.dataset.rowsReady === 'true'", timeout=timeout_s)
            ready = time.perf_counter() - started
            search = browser.evaluate(SEARCH)
            browser.evaluate(
                "(() => { const s = document.getElementById('search'); s.value = '';"
                " s.dispatchEvent(new Event('input')); })()"
            )
            sort = browser.evaluate(SORT)
        except BrowserError:  # it stopped answering (tests/browser.py waits 60 s a call)
            return None
        if browser.requests != [(page.as_uri(), "Document")]:
            sys.exit(f"the page made requests: {browser.requests}")
    return ready, search, sort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per opening")
    args = parser.parse_args()
    chromium = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if chromium is None:
        sys.exit("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        paged = build(scratch, args.rows)
        html = paged.read_text(encoding="utf-8")
        if html.count(PAGED) != 1:
            sys.exit(f"the report's script has no {PAGED!r}: this benchmark needs updating")
        every = scratch / "every-row.html"
        every.write_text(html.replace(PAGED, EVERY_ROW), encoding="utf-8")
        results: dict[str, list[tuple[float, float, float] | None]] = {"paged": [], "every": []}
        for n in range(args.repeat):  # alternating, a fresh browser profile each time
            for name, page in (("every", every), ("paged", paged)):
                profile = scratch / f"profile-{name}-{n}"
                results[name].append(measure(chromium, page, profile, args.timeout))
    print(f"report of {args.rows:,} rows in headless Chromium, {args.repeat} openings each:")
    for k, (label, unit) in enumerate(
        (("rows shown after opening", "s"), ("search keystroke", "ms"), ("sort by token_f1", "ms"))
    ):
        paged_k = [r[k] for r in results["paged"] if r is not None]
        every_k = [r[k] for r in results["every"] if r is not None]
        if len(paged_k) < len(results["paged"]):
            sys.exit(f"the report's rows did not show within {args.timeout:.0f} s")
        versus = (
            f"every row listed {', '.join(f'{v:.2f}' for v in every_k)} {unit} (median "
            f"{statistics.median(every_k):.2f}): ratio "
            f"{statistics.median(paged_k) / statistics.median(every_k):.2f}"
            if every_k
            else f"every row listed: its rows never showed within {args.timeout:.0f} s"
        )
        missed = len(results["every"]) - len(every_k)
        if every_k and missed:
            versus += f" ({missed} of its openings never showed its rows)"
        print(
            f"  {label}: {', '.join(f'{v:.2f}' for v in paged_k)} {unit} (median "
            f"{statistics.median(paged_k):.2f}) against {versus}",
            flush=True,
        )


if __name__ == "__main__":
    main()
