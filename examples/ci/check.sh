#!/usr/bin/env bash
# What CI runs: replay the eval from the committed cassette (no API key, no network) and
# check it against the committed baseline with the gates of harness.toml.
# Exit code: 0 pass, 1 a gate failed (or rows failed), 2 bad input, 3 cannot decide.
set -euo pipefail
cd "$(dirname "$0")"

export HARNESS_HOME="$PWD"    # harness.toml (gates, baseline) is here; so is what the run writes
# The address the cassette was recorded against (see record.sh): part of every request's
# cache key, never contacted in replay. With a real provider, leave it unset.
export OPENAI_BASE_URL="http://127.0.0.1:8765/v1"

harness data import evalset.jsonl --name pubmedqa-ci
harness cache import cassette.jsonl.gz
harness run --data pubmedqa-ci --model openai:/example-model --prompt @prompt.txt \
    --metric token_f1 --metric rougeL \
    --judge faithfulness --judge correctness --judge-model openai:/example-judge \
    --cache replay --run-name "candidate-${GITHUB_SHA:-local}" \
    --check --junit junit.xml --report report.html
