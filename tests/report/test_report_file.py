"""The report as a file: self-contained, the same bytes every time, small, written safely.

The size limit is measured on all 1,000 PubMedQA rows with five metrics and two judges
(``big_run``): the judges are a local ``python:`` judge (``report_models.judge``) writing
rationales as long as a real judge's, run through the real run path, so the file holds
what a real run's does.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_models import EVIL_OUTPUT
from report_runs import CANDIDATE_PROMPT, JUDGES, PUBMEDQA, ReportHome, invoke, ok, run_id

from harness.store.runs import list_runs
from harness.testing import FakeLLMServer

SIZE_LIMIT = 2_000_000
# Attributes through which HTML or SVG loads something.
LOADING = {"src", "href", "srcset", "action", "formaction", "poster", "data", "xlink:href",
           "background", "ping", "manifest", "cite", "longdesc", "imagesrcset"}  # fmt: skip
# A reference to anything outside the file: an attribute or CSS url() with a scheme or a
# protocol-relative address, an @import, or elements that load by nature.
OUTSIDE = re.compile(
    r"""(?:\b(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//))"""
    r"""|(?:url\(\s*["']?\s*(?!data:)[a-z/])|(?:@import)|(?:<(?:link|img|iframe|object|embed|"""
    r"""audio|video|source|base)\b)""",
    re.IGNORECASE,
)


def unpack(html: str) -> dict:
    """The per-row data a report carries (base64 of gzipped JSON)."""
    match = re.search(r'<script type="application/octet-stream" id="rows-data">([^<]*)</script>',
                      html)  # fmt: skip
    assert match, "no rows in the report"
    return json.loads(gzip.decompress(base64.b64decode(match.group(1))))


def reports(report_home: ReportHome, tmp_path: Path) -> dict[str, str]:
    home = report_home.home
    texts = {}
    for name, args in {
        "run": ["candidate"],
        "comparison": ["base", "candidate"],
    }.items():
        texts[name] = ok(invoke(home, "report", *args, "-o", "-")).stdout
    junit, page = tmp_path / "junit.xml", tmp_path / "check.html"
    checked = invoke(home, "check", "candidate", "--baseline", "base", "--junit", str(junit),
                     "--report", str(page), "--no-mlflow")  # fmt: skip
    # Exit 1 is also what the runner gives for an exception the command did not handle:
    # only a verdict's own exit (SystemExit) or none counts here.
    assert checked.exit_code in (0, 1, 3) and isinstance(
        checked.exception, (SystemExit, type(None))
    ), (checked.output, repr(checked.exception))
    texts["check"] = page.read_text(encoding="utf-8")
    return texts


class References(HTMLParser):
    """Every attribute value, and the text of every <style> and <script>, of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.code: list[tuple[str, str]] = []  # (tag, text) of style and script
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        self._inside = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.code.append((self._inside, data))


def test_a_report_refers_to_nothing_outside_itself(report_home: ReportHome, tmp_path: Path
                                                    ) -> None:  # fmt: skip
    for name, page in reports(report_home, tmp_path).items():
        found = [m.group(0) for m in OUTSIDE.finditer(page)]
        assert not found, (name, found)
        parsed = References()
        parsed.feed(page)
        linking = [
            (tag, attribute, value)
            for tag, attribute, value in parsed.attributes
            if (attribute in LOADING and not value.startswith("#"))  # in-page links only
            or re.search(r"https?:|url\(", value)
        ]
        assert not linking, (name, linking)
        assert ("a", "href", "#rows") in parsed.attributes  # the parser sees the links
        for tag, text in parsed.code:
            assert "http://" not in text and "https://" not in text, (name, tag)
            assert "@import" not in text and "url(" not in text, (name, tag)
        # The only scripts are the page's own, inline; the rows are data, not code.
        assert re.findall(r"<script\b[^>]*>", page) == [
            '<script type="application/octet-stream" id="rows-data">',
            "<script>",
        ], name
        # An output that is markup is text wherever it shows: escaped, or packed in the rows.
        assert "img" not in {tag for tag, _, _ in parsed.attributes}, name
        assert "<img" not in page and "<script>document" not in page, name
        rows = unpack(page)["rows"]
        evil = next(r for r in rows if r["id"] == report_home.evil_id)
        assert any(run and run["output"] == EVIL_OUTPUT for run in evil["runs"])
    # The pattern finds what it is meant to find.
    for bad in ('<img src="x.png">', "src='https://cdn.example/x.js'", "href=//cdn.example/f",
                "url(/x.png)", "@import 'x.css'", '<link rel="stylesheet">'):  # fmt: skip
        assert OUTSIDE.search(bad), bad


def facts(html: str, card: int = 0) -> dict[str, str]:
    """A run's "what was run" list, term -> text (without the unfolded block)."""
    cards = html.split('<dl class="facts">')[1:]
    dl = cards[card].split("</dl>")[0]
    return {
        unescape(term): unescape(re.sub(r"<details>.*?</details>", "", text, flags=re.S))
        for term, text in re.findall(r"<dt>(.*?)</dt>\n<dd[^>]*>(.*?)</dd>", dl, re.S)
    }


def test_what_was_run_is_what_the_store_and_mlflow_hold(
    report_home: ReportHome, report_server: FakeLLMServer
) -> None:
    from mlflow.tracking import MlflowClient

    from harness.config import resolve_home
    from harness.store.exports import load_run_record

    home = report_home.home
    record = load_run_record(home / "harness.duckdb", report_home.candidate)
    info, config = record.info, record.info.config
    shown = facts(report_home.cli_report)
    assert shown["run"] == f"candidate ({info.run_id})"
    assert shown["model"] == "python:report_models:answer"
    assert shown["dataset"].startswith(f"qa@{info.dataset_version} (digest ")
    # The digest MLflow was given for the prompt, and the template itself one click away.
    logged = MlflowClient(tracking_uri=resolve_home(home).tracking_uri).get_run(info.mlflow_run_id)
    assert shown["prompt"] == f"digest {logged.data.params['prompt_digest']}"
    assert f"<summary>show</summary><pre>{escape(CANDIDATE_PROMPT)}</pre>" in (
        report_home.cli_report
    )
    assert shown["judges"] == ", ".join(f"{j}@{config['judge_versions'][j]}" for j in JUDGES)
    assert shown["judge model"] == "openai:/gpt-4o-mini, 3 samples per row"
    assert shown["status"] == "finished, 40 rows"
    error = record.rows().set_index("id").loc[report_home.fail_id, "error"]
    assert shown["errors"] == f"1 row failed: 1 × {error}"
    # Every judge answer in the store was a call sent (39 rows, 2 judges, 3 samples).
    judged = record.scores()
    sent = int((judged["source"] == "llm_judge").sum())
    assert sent == 39 * 2 * 3
    assert shown["judge calls"].startswith(f"{sent} sent, 0 from cache; tokens ")
    assert shown["model calls"] == "0 sent, 0 from cache, 39 local; tokens 0 in / 0 out; 1 failed"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC, took \d+\.\d s",
                        shown["started"])  # fmt: skip

    # The base again from the cache alone: every judge answer comes from it, and what it
    # saved is what the base paid. (Replay sends nothing; the server's address is the one
    # the base's requests were keyed with.)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": report_server.openai_base_url}
    sent_before = report_server.stats()["requests_total"]
    ok(invoke(home, "run", "--data", "qa", "--model", "python:harness.baselines:context_overlap",
              "--metric", "token_f1", *[a for j in JUDGES for a in ("--judge", j)],
              "--judge-model", "openai:/gpt-4o-mini", "--cache", "replay",
              "--run-name", "replayed", "--no-mlflow", env=env))  # fmt: skip
    assert report_server.stats()["requests_total"] == sent_before
    base = facts(ok(invoke(home, "report", "base", "-o", "-")).stdout)
    replayed = facts(ok(invoke(home, "report", "replayed", "-o", "-")).stdout)
    paid = re.search(r"cost (\$[0-9.]+)$", base["judge calls"])
    assert paid and base["judge calls"].startswith("80 sent, 0 from cache; ")
    assert replayed["judge calls"].startswith("0 sent, 80 from cache; tokens 0 in / 0 out")
    assert replayed["judge calls"].endswith(f"; the cache saved {paid.group(1)}")
    assert replayed["cache mode"] == "replay"


def test_every_surface_writes_the_same_bytes(report_home: ReportHome) -> None:
    # `run --report`, the MLflow artifact and `harness report` later: one report.
    assert report_home.run_report == report_home.mlflow_report == report_home.cli_report
    assert "Not calibrated with this version and judge model" in report_home.run_report


def test_two_generations_are_byte_identical(report_home: ReportHome, tmp_path: Path) -> None:
    """Written by two processes with different hash seeds (set and dict order, if anything
    depended on them, would differ), from the same runs: the same bytes."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"compare-{seed}.html"
        done = subprocess.run(
            [sys.executable, "-m", "harness", "--home", str(report_home.home), "report",
             "base", "candidate", "-o", str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"report: {out}\n"
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    # The only moments it names are the runs' own: nothing says when it was written.
    from harness.store.runs import get_run

    db = report_home.home / "harness.duckdb"
    starts = {
        get_run(db, run).created_at.strftime("%Y-%m-%d %H:%M:%S")
        for run in (report_home.base, report_home.candidate)
    }
    moments = re.findall(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}", outputs[0].decode())
    assert set(moments) == starts


def test_the_report_of_1000_rows_with_five_metrics_and_two_judges_is_under_2_mb(
    big_run: tuple[Path, str], tmp_path: Path
) -> None:
    home, run_id = big_run
    out = tmp_path / "big.html"
    ok(invoke(home, "report", run_id, "-o", str(out)))
    size = out.stat().st_size
    html = out.read_text(encoding="utf-8")
    data = unpack(html)
    rows = data["rows"]
    assert len(rows) == 1000
    assert [m["name"] for m in data["metrics"]] == [
        "exact_match", "token_f1", "rougeL", "word_count", "latency", "faithfulness",
        "correctness",
    ]  # fmt: skip
    # Everything is there: every prompt's context, every output, every rationale.
    judged = [r for r in rows if not r["runs"][0].get("error")]
    assert len(judged) == 999
    assert all(len(r["runs"][0]["judges"]) == 2 for r in judged)
    rationale = sum(len(s[2]) for r in judged for v in r["runs"][0]["judges"].values() for s in v)
    assert rationale / (2 * len(judged)) > 200  # characters per rationale, as real ones
    contexts = sum(len(r.get("context") or "") for r in rows)
    assert contexts > 1_000_000  # what makes the rows large: PubMedQA's passages
    raw = len(json.dumps(data, ensure_ascii=False).encode())
    packed = len(html.split('id="rows-data">')[1].split("<")[0])
    print(f"\n1,000 rows, 5 metrics, 2 judges: report {size:,} bytes; rows as JSON {raw:,} "
          f"bytes, packed {packed:,}")  # fmt: skip
    assert size < SIZE_LIMIT


def test_report_options_and_mistakes(
    report_home: ReportHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = report_home.home
    # The default file name comes from what was typed.
    monkeypatch.chdir(tmp_path)
    written = ok(invoke(home, "report", "base", "candidate"))
    assert written.stdout == "report: report-base-vs-candidate.html\n"
    assert (tmp_path / "report-base-vs-candidate.html").stat().st_size > 10_000

    def refused(*args: str, message: str) -> None:
        result = invoke(home, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [f"error: {message}"]

    runs_before = len(list_runs(home / "harness.duckdb"))
    refused("report", "no-such-run", "-o", str(tmp_path / "x.html"),
            message="no run, tag or run name 'no-such-run'; see `harness runs list` (or give "
            "an exported run file)")  # fmt: skip
    assert not (tmp_path / "x.html").exists()
    missing = tmp_path / "nowhere" / "r.html"
    refused("report", "base", "-o", str(missing),
            message=f"cannot write {missing}: {missing.parent} does not exist")  # fmt: skip
    refused(
        "report",
        "base",
        "--margin",
        "0.1",
        message="--cluster and --margin apply to a comparison: name two runs or more",
    )
    refused("run", "--data", "qa", "--model", "echo", "--metric", "word_count",
            "--report", str(missing),
            message=f"cannot write {missing}: {missing.parent} does not exist")  # fmt: skip
    refused("run", "--data", "qa", "--model", "echo", "--dry-run", "--report", "r.html",
            message="--report writes one run's report, not --dry-run's; write each run's "
            "with `harness report RUN`, or compare them with `harness report BASE "
            "CANDIDATE...`")  # fmt: skip
    assert len(list_runs(home / "harness.duckdb")) == runs_before  # nothing was run


def test_an_empty_file_name_is_refused_before_anything_is_written(
    report_home: ReportHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o "$OUT"`, `--junit "$JUNIT"`, `--report "$PAGE"` with the variable unset: the
    report went to its default name, and the others failed as the folder "." after the
    check was printed, or after the run was stored."""
    home, cwd = report_home.home, tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    runs_before = len(list_runs(home / "harness.duckdb"))
    check = ["check", "candidate", "--baseline", "base", "--no-mlflow"]
    run = ["run", "--data", "qa", "--model", "echo", "--metric", "word_count", "--no-mlflow"]
    for args, option in [
        (["report", "base", "-o", ""], "'-o' / '--output'"),
        (["report", "base", "candidate", "--output="], "'-o' / '--output'"),
        ([*check, "--junit", ""], "'--junit'"),
        ([*check, "--report", ""], "'--report'"),
        ([*run, "--check", "--min", "word_count=0", "--junit", ""], "'--junit'"),
        ([*run, "--report", ""], "'--report'"),
    ]:
        result = invoke(home, *args)
        assert (result.exit_code, result.stdout) == (2, ""), (args, result.output)
        line = f"error: invalid value for {option}: needs a file name, got ''; see `"
        assert result.stderr.startswith(line), args  # then the command's --help, one line
        assert result.stderr.endswith(f" {args[0]} --help`\n") and result.stderr.count("\n") == 1
    assert list(cwd.iterdir()) == []  # no report under a default name
    assert len(list_runs(home / "harness.duckdb")) == runs_before  # nothing was run


def test_check_writes_its_report_next_to_the_junit_file(
    report_home: ReportHome, tmp_path: Path
) -> None:
    home = report_home.home
    junit, page = tmp_path / "junit.xml", tmp_path / "check.html"
    result = invoke(home, "check", "candidate", "--baseline", "base", "--max-drop",
                    "token_f1=0.5", "--min", "word_count=1000", "--junit", str(junit),
                    "--report", str(page), "--no-mlflow")  # fmt: skip
    assert result.exit_code == 1  # word_count is far below 1,000
    assert f"report: {page}" in result.stderr and junit.exists()
    html = page.read_text(encoding="utf-8")
    assert '<div class="banner fail">Fail: 1 of 2 gates failed: word_count min 1000</div>' in html
    assert 'data-gate="token_f1 max_drop 0.5"' in html and 'id="comparison"' in html
    assert len(unpack(html)["runs"]) == 2

    # `run --check --report`: the check's report, for the run just made.
    page = tmp_path / "run-check.html"
    ran = invoke(home, "run", "--data", "qa", "--model", "python:harness.baselines:top_sentence",
                 "--metric", "token_f1", "--no-mlflow", "--check", "--baseline", "base",
                 "--max-drop", "token_f1=0.5", "--report", str(page))  # fmt: skip
    assert ran.exit_code == 0, ran.output
    html = page.read_text(encoding="utf-8")
    assert '<div class="banner pass">Pass: the 1 gate passed</div>' in html


def test_a_run_file_is_reported_in_an_empty_home(report_home: ReportHome, tmp_path: Path) -> None:
    exported = tmp_path / "candidate.jsonl.gz"
    ok(invoke(report_home.home, "runs", "export", "candidate", str(exported)))
    empty = tmp_path / "empty-home"
    empty.mkdir()
    html = ok(invoke(empty, "report", str(exported), "-o", "-")).stdout
    assert f"<dt>read from</dt>\n<dd>{exported}</dd>" in html
    data = unpack(html)
    assert len(data["rows"]) == 40 and data["runs"][0]["label"] == "candidate"
    assert not (empty / "harness.duckdb").exists()  # reading a report writes nothing


def test_a_report_that_cannot_be_written_leaves_the_run_finished(
    report_home: ReportHome, tmp_path: Path
) -> None:
    """The report is written after the run is stored: when it cannot be (its folder went
    away; a full disk, on a real tmpfs where this machine lets a user mount one), the run
    stays finished, a warning and one line say how to write it, and the exit code is 74."""
    import shutil

    from harness.store.runs import get_run

    home = report_home.home
    gone = tmp_path / "gone"
    gone.mkdir()
    ran = invoke(home, "run", "--data", "qa", "--model", "python:report_models:drop_folder",
                 "--metric", "token_f1", "--no-mlflow", "--json", "--report",
                 str(gone / "r.html"), env={"HARNESS_TEST_DROP": str(gone)})  # fmt: skip
    doc = json.loads(ran.stdout)
    assert ran.exit_code == 74, ran.stderr
    assert doc["status"] == "finished" and doc["rows_done"] == 40 and doc["report"] is None
    assert get_run(home / "harness.duckdb", doc["run_id"]).status == "finished"
    [warning] = [w for w in doc["warnings"] if "report" in w]
    assert warning == (f"the report was not written (cannot write {gone / 'r.html'}: "
                       f"{gone} does not exist); write it with `harness report "
                       f"{doc['run_id']} -o {gone / 'r.html'}`")  # fmt: skip
    assert ran.stderr.strip().splitlines()[-1] == (
        f"error: the run is stored, but its report could not be written: cannot write "
        f"{gone / 'r.html'}: {gone} does not exist; write it with `harness report "
        f"{doc['run_id']} -o FILE`"
    )
    mountable = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=16k tmpfs {tmp_path}"],
        capture_output=True,
    ).returncode == 0  # fmt: skip
    if not mountable:
        print("\nno user namespace here: the full-disk half of this test did not run")
        return
    small = tmp_path / "small"
    small.mkdir()
    page = small / "r.html"
    command = (f"mount -t tmpfs -o size=16k tmpfs {small} && exec {sys.executable} -m harness "
               f"--home {home} run --data qa --model python:harness.baselines:top_sentence "
               f"--metric token_f1 --no-mlflow --json --report {page}")  # fmt: skip
    full = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    doc = json.loads(full.stdout)
    assert full.returncode == 74, full.stderr
    assert doc["status"] == "finished" and doc["report"] is None
    assert full.stderr.strip().splitlines() == [
        f"error: the run is stored, but its report could not be written: no space left on "
        f"device while writing {page}; write it with `harness report {doc['run_id']} -o FILE`"
    ]
    assert get_run(home / "harness.duckdb", doc["run_id"]).status == "finished"


def test_runs_named_like_paths_get_reports_of_their_own(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs named team-a/nightly and team-b/nightly both wrote report-nightly.html (the
    name's last path part, as a run file's), the second replacing the first's report."""
    data = tmp_path / "tiny.jsonl"
    data.write_text('{"input": "a", "expected": "a"}\n', encoding="utf-8")
    ok(invoke(home, "data", "import", str(data), "--name", "tiny"))
    names = ("team-a/nightly", "team-b/nightly")
    for name in names:
        ok(invoke(home, "run", "--data", "tiny", "--model", "echo", "--metric",
                  "exact_match", "--run-name", name, "--no-mlflow"))  # fmt: skip
    ids = {name: run_id(home, name) for name in names}
    monkeypatch.chdir(tmp_path)
    for name in names:
        page = f"report-{name.replace('/', '-')}-{ids[name]}.html"
        assert ok(invoke(home, "report", name)).stdout == f"report: {page}\n"
        html = (tmp_path / page).read_text(encoding="utf-8")
        assert f'<meta name="harness-runs" content="{ids[name]}">' in html
    assert not (tmp_path / "report-nightly.html").exists()


def test_default_names_never_take_another_runs_report(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs named in letters a file name drops (評価, 検証) once all wrote report-run.html,
    each over the last; a name that loses characters now carries the run id, and a file
    of the default name that is not a report is kept."""
    data = tmp_path / "tiny.jsonl"
    data.write_text('{"input": "a", "expected": "a"}\n{"input": "b", "expected": "c"}\n',
                    encoding="utf-8")  # fmt: skip
    ok(invoke(home, "data", "import", str(data), "--name", "tiny"))
    for name in ("評価", "検証", "ab", "a b", "a-b"):
        ok(invoke(home, "run", "--data", "tiny", "--model", "echo", "--metric",
                  "exact_match", "--run-name", name, "--no-mlflow"))  # fmt: skip
    ids = {name: run_id(home, name) for name in ("評価", "検証", "ab", "a b", "a-b")}
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    assert ok(invoke(home, "report", "評価")).stdout == f"report: report-{ids['評価']}.html\n"
    assert ok(invoke(home, "report", "検証")).stdout == f"report: report-{ids['検証']}.html\n"
    # Written again from the same run: the same file, the same bytes.
    first = (out / f"report-{ids['評価']}.html").read_bytes()
    assert ok(invoke(home, "report", "評価")).stdout == f"report: report-{ids['評価']}.html\n"
    assert (out / f"report-{ids['評価']}.html").read_bytes() == first
    # Typed as it is, a plain name stays the name; its report is rewritten in place.
    assert ok(invoke(home, "report", "ab")).stdout == "report: report-ab.html\n"
    assert ok(invoke(home, "report", "ab")).stdout == "report: report-ab.html\n"
    # 'a b' loses its space: the id says which run.
    assert ok(invoke(home, "report", "a b")).stdout == f"report: report-a-b-{ids['a b']}.html\n"
    # 'a-b' is typed as it is, but report-a-b.html is a file of someone else's: kept.
    (out / "report-a-b.html").write_text("mine", encoding="utf-8")
    kept = ok(invoke(home, "report", "a-b"))
    assert kept.stdout == f"report: report-a-b-{ids['a-b']}.html\n"
    assert kept.stderr == "note: kept report-a-b.html (not a report); wrote the report next to it\n"
    assert (out / "report-a-b.html").read_text(encoding="utf-8") == "mine"
    # 'ab' run again under its name: its report is the new run's, in the same file.
    ok(invoke(home, "run", "--data", "tiny", "--model", "echo", "--metric", "exact_match",
              "--run-name", "ab", "--no-mlflow"))  # fmt: skip
    again = run_id(home, "ab")
    assert again != ids["ab"]
    assert ok(invoke(home, "report", "ab")).stdout == "report: report-ab.html\n"
    assert f'<meta name="harness-runs" content="{again}">' in (out / "report-ab.html").read_text(
        encoding="utf-8"
    )
    # A comparison: each name as typed, or with its id.
    both = ok(invoke(home, "report", "ab", "評価"))
    assert both.stdout == f"report: report-ab-vs-{ids['評価']}.html\n"
    assert len(list(out.iterdir())) == 7  # and none written over another


def test_failed_rows_count_the_rows_whose_judge_failed(tmp_path: Path) -> None:
    """A row whose model call failed and another whose judge gave no verdict: the run
    counts 2 failed rows, as the page's "only failed rows" filter lists them, and so does
    its "errors" line, with the judge's reason beside the model's."""
    from report_runs import pubmedqa_rows

    rows = pubmedqa_rows(5)
    data = tmp_path / "five.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ok(invoke(tmp_path, "data", "import", str(data), "--name", "five"))
    env = {
        "HARNESS_TEST_FAIL_ID": str(rows[0]["id"]),
        "HARNESS_TEST_JUDGE_FAIL_TEXT": str(rows[1]["question"]),
    }
    ok(
        invoke(tmp_path, "run", "--data", "five", "--model", "python:report_models:answer",
               "--metric", "token_f1", "--judge", "correctness",
               "--judge-model", "python:report_models:flaky_judge", "--run-name", "flaky",
               "--no-mlflow", env=env),
        code=1,
    )  # fmt: skip
    shown = json.loads(ok(invoke(tmp_path, "runs", "show", "flaky", "--json")).stdout)
    assert shown["errors"] == 2
    html = ok(invoke(tmp_path, "report", "flaky", "-o", "-")).stdout
    flagged = [r for r in unpack(html)["rows"] if r["runs"][0].get("error") or any(
        s[3] for samples in r["runs"][0].get("judges", {}).values() for s in samples
    )]  # fmt: skip
    assert len(flagged) == 2
    (model_reason, _), (judge_reason, _) = (
        shown["failures"]["model"]["reasons"][0],
        shown["failures"]["judge"]["reasons"][0],
    )
    assert facts(html)["errors"] == (
        f"2 rows failed: 1 × {model_reason}; 1 × correctness: {judge_reason}"
    )


def test_the_report_of_a_one_row_run_says_1_row(tmp_path: Path) -> None:
    """The report of a `--limit 1` run said "..., 1 rows, finished" under its title."""
    ok(invoke(tmp_path, "data", "import", str(PUBMEDQA), "--name", "pubmedqa"))
    ok(invoke(tmp_path, "run", "--data", "pubmedqa", "--limit", "1", "--model",
              "python:harness.baselines:context_overlap", "--metric", "token_f1",
              "--run-name", "one", "--no-mlflow"))  # fmt: skip
    html = ok(invoke(tmp_path, "report", "one", "-o", "-")).stdout
    assert re.search(r"\b1 rows\b", html) is None
    assert "on pubmedqa@" in html and ", 1 row, finished</p>" in html


def test_a_mean_of_one_row_says_why_it_has_no_interval(tmp_path: Path) -> None:
    """A one-row run's card showed "0.3206 1 row" with no interval and no word why, where
    `harness compare` and its slice say "one row: an interval needs two or more"."""
    ok(invoke(tmp_path, "data", "import", str(PUBMEDQA), "--name", "pubmedqa"))
    ok(invoke(tmp_path, "run", "--data", "pubmedqa", "--limit", "1", "--model",
              "python:harness.baselines:context_overlap", "--metric", "token_f1",
              "--run-name", "one", "--by", "final_decision", "--no-mlflow"))  # fmt: skip
    html = ok(invoke(tmp_path, "report", "one", "-o", "-")).stdout
    card = re.search(r'<div class="metric" data-metric="token_f1">.*?</p>', html, re.S)
    assert card is not None
    assert '<span class="note no-interval">(one row: an interval needs two or more)</span>' in (
        card.group(0)
    )
    shown = json.loads(ok(invoke(tmp_path, "runs", "show", "one", "--json")).stdout)
    words = shown["slices"][0]["overall"]["metrics"]["token_f1"]["interval_note"]
    assert f"({words})" in card.group(0)


def test_a_run_stopped_early_says_why(tmp_path: Path, report_server: FakeLLMServer) -> None:
    """A run stopped at its --max-cost budget: "what was run" said "stopped, 14 of 40 rows"
    and not why, where `harness runs show` gives the reason."""
    from report_runs import pubmedqa_rows

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pubmedqa_rows(40)), encoding="utf-8")
    ok(invoke(tmp_path, "data", "import", str(data), "--name", "qa"))
    env = {"OPENAI_BASE_URL": report_server.openai_base_url, "OPENAI_API_KEY": "sk-test"}
    ok(
        invoke(tmp_path, "run", "--data", "qa", "--model", "openai:/gpt-4o", "--metric",
               "token_f1", "--max-cost", "0.01", "--concurrency", "1", "--cache", "off",
               "--run-name", "budget", "--no-mlflow", env=env),
        code=1,
    )  # fmt: skip
    shown = json.loads(ok(invoke(tmp_path, "runs", "show", "budget", "--json")).stdout)
    assert shown["status"] == "stopped" and shown["reason"].startswith("stopped at the --max-cost")
    html = ok(invoke(tmp_path, "report", "budget", "-o", "-")).stdout
    assert facts(html)["status"] == (
        f"stopped, {shown['rows_done']} of 40 rows (reason: {shown['reason']})"
    )
