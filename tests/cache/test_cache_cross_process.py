"""Two processes write the same cache at once; every entry is there and sound afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.cache import ResponseCache, request_key
from harness.model_io import ModelRequest

REPO = Path(__file__).resolve().parents[2]
PER_PROCESS = 150

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.cache import CacheEntry, ResponseCache, canonical_request, request_key
    from harness.model_io import ModelRequest, ModelResponse

    directory, go = Path(sys.argv[1]), Path(sys.argv[2])
    worker, count = int(sys.argv[3]), int(sys.argv[4])
    cache = ResponseCache(directory)
    while not go.exists():  # start together, so the writes interleave
        time.sleep(0.005)
    for i in range(count):
        req = ModelRequest(
            provider="openai", model="m", messages=({"role": "user", "content": f"q{i}"},),
            params={"temperature": 0.0}, sample_index=worker,
        )
        answer = ModelResponse(text=f"{worker}:{i}")
        entry = CacheEntry.from_response(canonical_request(req), answer)
        cache.set(request_key(req), entry)
        cache.get(request_key(req))  # readers and writers mix
    cache.close()
    """
)


def request(worker: int, i: int) -> ModelRequest:
    return ModelRequest(
        provider="openai",
        model="m",
        messages=({"role": "user", "content": f"q{i}"},),
        params={"temperature": 0.0},
        sample_index=worker,
    )


def test_two_processes_write_distinct_keys_concurrently(tmp_path) -> None:
    directory, go = tmp_path / "cache", tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    ResponseCache(directory).close()  # create the schema once, before the race
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(directory), str(go), str(w), str(PER_PROCESS)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in (1, 2)
    ]
    go.touch()
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr

    with ResponseCache(directory) as cache:
        assert len(cache) == 2 * PER_PROCESS
        for w in (1, 2):
            for i in range(PER_PROCESS):
                entry = cache.get(request_key(request(w, i)))
                assert entry is not None and entry.text == f"{w}:{i}"
        assert cache.verify() == []
