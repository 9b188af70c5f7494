"""A fully cached rerun, end to end: 1 model call + 3 judge calls per row.

For each size (default 1,000, 10,000 and 100,000 rows) this builds a project home with a
synthetic eval set made from the bundled PubMedQA rows (each question made unique), fills
the cache with a cold run whose HTTP client answers in-process (``httpx.MockTransport``
with the fake server's own reply rules, so filling 400,000 calls does not take an hour),
then times what the issue measures: the real ``harness run`` command in a fresh process —
start-up, imports, 4 cache lookups per row, scoring, DuckDB writes and MLflow logging (the
table and one trace per row) — against a dead server address, so any miss would fail.
It checks that the rerun sent zero requests and hit the cache 4 x N times.

Prints, for each size, the rerun's wall time, its per-row cost, the ratio to the 10 s limit
(10,000 rows), and the growth factor between sizes (linear = 10x per 10x rows).

Run: ``python bench/bench_cached_rerun.py [--sizes 1000,10000] [--no-mlflow]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from harness.runner.config import RunConfig  # noqa: E402
from harness.runner.run import run_eval  # noqa: E402
from harness.testing._fake_llm_replies import (  # noqa: E402
    Conversation,
    content_text,
    count_tokens,
    default_reply,
)

LIMIT_10K_S = 10.0
JUDGES = ["faithfulness", "answer_relevance", "correctness"]
DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, any miss fails fast


def fake_openai(request: httpx.Request) -> httpx.Response:
    """The fake server's OpenAI route, in process."""
    body = json.loads(request.content)
    system = " ".join(content_text(m["content"]) for m in body["messages"] if m["role"] == "system")
    messages = tuple(
        (m["role"], content_text(m["content"])) for m in body["messages"] if m["role"] != "system"
    )
    wants_json = (body.get("response_format") or {}).get("type", "").startswith("json")
    conversation = Conversation(system, messages, wants_json=wants_json)
    text = default_reply(conversation)
    usage = {
        "prompt_tokens": count_tokens(conversation.prompt_text),
        "completion_tokens": count_tokens(text),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "usage": usage,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
        },
    )


def make_dataset(path: Path, rows: int) -> None:
    with open(REPO / "datasets/pubmedqa/pubmedqa_pqal.jsonl", encoding="utf-8") as f:
        source = [json.loads(line) for line in f]  # not splitlines(): texts hold U+2028
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            row = source[i % len(source)]
            f.write(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "question": f"{row['question']} (#{i})",
                        "context": row["context"],
                        "answer": row["answer"],
                    }
                )
                + "\n"
            )


def run_args(mlflow: bool, traces: bool = True) -> list[str]:
    args = [
        "run",
        "--data",
        "bench",
        "--model",
        "openai:/bench-model",
        "--judge-model",
        "openai:/bench-judge",
        "--concurrency",
        "64",
        "--metric",
        "token_f1",
        "--metric",
        "rougeL",
        "--json",
    ]
    for judge in JUDGES:
        args += ["--judge", judge]
    return args + ([] if mlflow else ["--no-mlflow"]) + ([] if traces else ["--no-traces"])


def measure(rows: int, mlflow: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        home = Path(tmp)
        env = {
            **os.environ,
            "HARNESS_HOME": str(home),
            "OPENAI_BASE_URL": DEAD_URL,
            "OPENAI_API_KEY": "sk-bench",
        }
        os.environ.update(
            {k: env[k] for k in ("HARNESS_HOME", "OPENAI_BASE_URL", "OPENAI_API_KEY")}
        )
        data = home / "bench.jsonl"
        make_dataset(data, rows)
        harness = [sys.executable, "-m", "harness"]
        subprocess.run(
            [*harness, "data", "import", str(data), "--name", "bench"],
            env=env,
            check=True,
            capture_output=True,
        )
        cold_started = time.perf_counter()
        config = RunConfig(
            data="bench",
            model="openai:/bench-model",
            metrics=["token_f1", "rougeL"],
            judges=JUDGES,
            judge_model="openai:/bench-judge",
            concurrency=64,
            mlflow=mlflow,
        )
        client = httpx.AsyncClient(transport=httpx.MockTransport(fake_openai))
        cold = run_eval(config, home=home, http_client=client)
        cold_s = time.perf_counter() - cold_started
        assert cold.errors == 0, cold.error_reasons
        timings = {"rows": rows, "cold_s": cold_s}
        for label, traces in (("rerun_s", True), ("rerun_no_traces_s", False)):
            if label == "rerun_no_traces_s" and not mlflow:
                continue
            started = time.perf_counter()
            done = subprocess.run(
                [*harness, *run_args(mlflow, traces)], env=env, capture_output=True, text=True
            )
            timings[label] = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"rerun failed ({done.returncode}): {done.stderr[-2000:]}")
            result = json.loads(done.stdout)
            calls = result["calls"]
            sent = calls["model"]["requests"] + calls["judge"]["requests"]
            hits = calls["model"]["cache_hits"] + calls["judge"]["cache_hits"]
            assert sent == 0, f"the rerun sent {sent} requests"
            assert hits == 4 * rows, f"expected {4 * rows} cache hits, got {hits}"
            assert result["metrics"] == cold_metrics(cold.metrics), "the rerun changed a metric"
        return timings


def cold_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return json.loads(json.dumps(metrics))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    mlflow = not args.no_mlflow
    print(
        f"cached rerun, 1 model + {len(JUDGES)} judge calls per row, "
        f"MLflow {'on (table + traces)' if mlflow else 'off'}"
    )
    results = []
    for rows in sizes:
        r = measure(rows, mlflow)
        results.append(r)
        line = (
            f"{rows:>7,} rows: rerun {r['rerun_s']:6.2f} s "
            f"({r['rerun_s'] / rows * 1e6:,.0f} us/row; cold fill {r['cold_s']:.1f} s)"
        )
        if rows == 10_000:
            line += f"  ratio to {LIMIT_10K_S:.0f} s limit: {r['rerun_s'] / LIMIT_10K_S:.2f}"
        if "rerun_no_traces_s" in r:
            line += f"\n{'':>13}without traces: {r['rerun_no_traces_s']:6.2f} s"
            if rows == 10_000:
                line += f"  ratio: {r['rerun_no_traces_s'] / LIMIT_10K_S:.2f}"
        print(line, flush=True)
    for a, b in zip(results, results[1:], strict=False):
        growth = b["rerun_s"] / a["rerun_s"]
        print(
            f"growth {a['rows']:,} -> {b['rows']:,} rows: x{growth:.1f} "
            f"(linear: x{b['rows'] / a['rows']:.0f})"
        )


if __name__ == "__main__":
    main()
