#!/usr/bin/env bash
# How cassette.jsonl.gz and baseline.jsonl were made. Run it again after changing the eval
# set, the prompt or the judges, and commit what it writes.
#
# This example records against harness's fake LLM server (harness/testing), so it needs no
# account and costs nothing; its "model" answers with the first sentence of the prompt and
# its judges answer by hash, so the numbers mean nothing. In your project, record against
# the real provider instead: drop the server and OPENAI_BASE_URL, set OPENAI_API_KEY, and
# keep the rest.
set -euo pipefail
cd "$(dirname "$0")"

# The base URL is part of every request's cache key, so check.sh sets the same one.
PORT=8765
export OPENAI_BASE_URL="http://127.0.0.1:${PORT}/v1" OPENAI_API_KEY="fake-key"
python -m harness.testing.fake_llm --port "$PORT" &
SERVER=$!
trap 'kill $SERVER' EXIT
until python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${PORT}/_stats')" 2>/dev/null; do
    sleep 0.2
done

HARNESS_HOME="$(mktemp -d)"
export HARNESS_HOME
harness data import evalset.jsonl --name pubmedqa-ci
RUN=$(harness run --data pubmedqa-ci --model openai:/example-model --prompt @prompt.txt \
    --metric token_f1 --metric rougeL \
    --judge faithfulness --judge correctness --judge-model openai:/example-judge \
    --run-name baseline --no-mlflow --json | python -c "import json, sys; print(json.load(sys.stdin)['run_id'])")
harness cache export cassette.jsonl.gz --run "$RUN"   # every model and judge answer of the run
harness runs export "$RUN" baseline.jsonl              # the baseline CI compares with
rm -rf "$HARNESS_HOME"
