"""harness.evaluate called from several threads of one process at once, on one home: a
notebook comparing two models side by side with a thread pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A fresh process (nothing migrated, no metric loaded yet) starts two evaluate calls at once.
_TWO_AT_ONCE = """
import sys, threading
import harness

def model(row):
    return str(row["input"])[:20]

def rows(tag):
    return [{"id": f"{tag}{i}", "input": f"question {tag} {i}", "expected": f"question {tag}"}
            for i in range(300)]

done, failed = [], []
def evaluate(tag):
    try:
        result = harness.evaluate(model, rows(tag), targets="expected", data_name=f"d{tag}",
                                  home=sys.argv[1])
        done.append((tag, result.result.rows_done, result.result.mlflow_run_id is not None))
    except BaseException as e:
        failed.append(f"{type(e).__name__}: {e}")
threads = [threading.Thread(target=evaluate, args=(tag,)) for tag in "ab"]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(done), failed)
"""


def test_two_evaluate_calls_in_two_threads_of_a_fresh_process_both_finish(tmp_path: Path) -> None:
    # Each failed one way or another: both migrating the new store ("Catalog write-write
    # conflict"), a read-only open beside a writable one ("different configuration"), a
    # metric looked up while the other thread loaded the built-ins ("unknown metric").
    done = subprocess.run(
        [sys.executable, "-c", _TWO_AT_ONCE, str(tmp_path / "home")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip().splitlines()[-1]
    assert said == "[('a', 300, True), ('b', 300, True)] []", said
