"""Wall time of harness.tracking.log_run for synthetic runs, against the 15 s limit.

Usage: .venv/bin/python bench/bench_mlflow_log.py [ROWS ...]   (default: 1000 10000)

Each run has 3 judge feedbacks per row. Every case logs into a fresh project home, so the
SQLite store is created inside the timed call, as on a user's first run. ``import mlflow``
is timed once, separately, before the first case. ``cpu s`` is this process's CPU time:
on a busy machine it shows how much of the wall time was ours.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

# Run as a plain script from a checkout: make the repo importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LIMIT_S = 15.0
JUDGES = ("faithfulness", "relevance", "correctness")


def synthetic_record(n_rows: int, seed: int = 0):
    """A RunRecord of ``n_rows`` rows with exact_match and three judges per row."""
    import pandas as pd

    from harness.tracking import RunRecord

    rng = random.Random(seed)
    rows = []
    feedback = []
    for i in range(n_rows):
        row_id = f"q-{i:05d}"
        row = {
            "id": row_id,
            "input": f"Question {i}: what is {i} plus {i}? " + "context words " * 5,
            "expected": f"{2 * i} || {2 * i}.0",
            "context": "Arithmetic facts. " * 3,
            "output": f"The answer is {2 * i}.",
            "latency_s": rng.uniform(0.2, 2.0),
            "error": None if i % 50 else "ProviderTimeout: no answer in 30 s",
            "exact_match": float(i % 3 == 0),
        }
        for judge in JUDGES:
            score = rng.randint(1, 5)
            rationale = f"The answer to row {i} is judged {score}/5 for {judge}."
            row[f"{judge}/score"] = score
            row[f"{judge}/rationale"] = rationale
            feedback.append(
                {
                    "row_id": row_id,
                    "name": judge,
                    "value": score,
                    "rationale": rationale,
                    "source": "LLM_JUDGE",
                    "source_id": "openai:/gpt-4o-mini",
                }
            )
        rows.append(row)
    now = time.time()
    return RunRecord(
        run_id=f"{seed:04x}{n_rows:08x}",
        run_name=f"bench-{n_rows}",
        experiment="harness-bench",
        params={
            "model": "openai:/gpt-4o-mini",
            "dataset": f"bench@{n_rows}",
            "dataset_digest": "ab" * 32,
            "prompt_digest": "cd" * 32,
            "param.temperature": "0",
            "judges": ",".join(f"{j}@1" for j in JUDGES),
            "judge_model": "openai:/gpt-4o-mini",
            "cache_mode": "use",
            "harness_version": "0.1.0",
        },
        metrics={
            "exact_match/mean": 0.33,
            "latency/p90": 1.8,
            "model/input_tokens": 1234.0,
            "cost_usd": 0.12,
            "cache_hit_ratio": 0.5,
            "errors": float(n_rows // 50),
        },
        dataset_name="bench",
        dataset_version="ab" * 6,
        dataset_digest="ab" * 32,
        dataset_rows=n_rows,
        prompt_template="Answer the question: {input}",
        config={"model": "openai:/gpt-4o-mini", "concurrency": 8},
        started_at=now - 60,
        finished_at=now,
        rows=pd.DataFrame(rows),
        feedback=feedback,
    )


def main(sizes: list[int]) -> None:
    start = time.perf_counter()
    import mlflow  # noqa: F401 - timed on its own, outside every case

    print(f"import mlflow: {time.perf_counter() - start:.2f} s")
    from harness.tracking import log_run, tracking_uri_for

    print(f"{'rows':>7} {'traces':>6} {'wall s':>7} {'/ 15 s':>7} {'ms/row':>7} {'cpu s':>7}")
    for n_rows in sizes:
        record = synthetic_record(n_rows)
        for traces in (False, True):
            with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as home:
                uri = tracking_uri_for(Path(home))
                start, cpu_start = time.perf_counter(), time.process_time()
                log_run(record, tracking_uri=uri, traces=traces)
                wall = time.perf_counter() - start
                cpu = time.process_time() - cpu_start
            print(
                f"{n_rows:>7} {'yes' if traces else 'no':>6} {wall:>7.2f} "
                f"{wall / LIMIT_S:>7.2f} {1000 * wall / n_rows:>7.3f} {cpu:>7.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sizes", nargs="*", type=int, default=[1000, 10000], metavar="ROWS",
        help="rows of each synthetic run logged (default: 1000 10000)",
    )  # fmt: skip
    main(parser.parse_args().sizes)
