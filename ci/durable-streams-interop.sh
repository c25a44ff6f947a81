#!/usr/bin/env bash
# Interop: the example server's run and agent streams read with the Durable Streams Python
# client from PyPI (catch-up, long-poll, SSE, resumed from a saved offset). Uses the debug build
# from `swift test`.
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
PORT_UNDER_TEST=${INTEROP_PORT:-18590}

python3 -m pip show durable-streams 2>/dev/null | grep -qx "Version: 0.1.0" \
  || python3 -m pip install -q --disable-pip-version-check "durable-streams==0.1.0"

bin=$(swift build --show-bin-path)
log=$(mktemp /tmp/flue-interop.XXXXXX.log)
PORT=$PORT_UNDER_TEST "$bin/hello-agents" serve --fake-model >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
base="http://127.0.0.1:$PORT_UNDER_TEST"
wait_for_http "$base/health" 30 || { echo "the example server did not start:"; cat "$log"; exit 1; }

run=$(curl -sf -X POST "$base/workflows/translate?wait=result" -H 'content-type: application/json' \
  -d '{"text":"Hello","language":"French"}') || { echo "the run failed"; exit 1; }
run_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["runId"])' <<<"$run")
curl -sf -X POST "$base/agents/assistant/interop?wait=result" -H 'content-type: application/json' \
  -d '{"message":"First"}' >/dev/null || { echo "the first prompt failed"; exit 1; }
# The second prompt without waiting: its 202 offset is where its events start (the saved offset).
receipt=$(curl -sf -X POST "$base/agents/assistant/interop" -H 'content-type: application/json' -d '{"message":"Second"}') \
  || { echo "the second prompt failed"; exit 1; }
offset=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["offset"])' <<<"$receipt")
submission=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["submissionId"])' <<<"$receipt")
curl -sf "$base/agents/assistant/interop/submissions/$submission?wait=result" >/dev/null || { echo "the second prompt did not settle"; exit 1; }

python3 ci/durable_streams_interop.py "$base" "$run_id" "$base/agents/assistant/interop" "$offset"
