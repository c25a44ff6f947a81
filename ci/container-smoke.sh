#!/usr/bin/env bash
# Container contract, emulated without a Docker engine: the release binary built like the
# Dockerfile's build stage, run as an unprivileged user under tini with only the environment the
# image and the SST service would give it. Needs TEST_DATABASE_URL and a built fake-model-server.
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL must point at a Postgres database}"
FAKE_PORT=18189
APP_PORT=8080

echo "== release build (as in the Dockerfile)"
swift build -c release --product hello-agents --static-swift-stdlib -Xlinker -s >/dev/null || exit 1
work=$(mktemp -d /tmp/flue-container.XXXXXX)
install -m 0755 "$(swift build -c release --show-bin-path)/hello-agents" "$work/hello-agents"
chmod 0755 "$work"
id flue >/dev/null 2>&1 || useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flue
binary_bytes=$(stat -c %s "$work/hello-agents")

"$(swift build --show-bin-path)/fake-model-server" --port $FAKE_PORT >/dev/null 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
wait_for_http "http://127.0.0.1:$FAKE_PORT/health" 20 || { echo "fake model server did not start"; exit 1; }

# start_app LOGFILE [extra env...]: starts the server as user flue under tini; sets $pid (tini's)
start_app() {
  local log=$1; shift
  setpriv --reuid=flue --regid=flue --init-groups --inh-caps=-all \
    env -i PATH=/usr/bin:/bin PORT=$APP_PORT ANTHROPIC_API_KEY=sk-test MODEL_SPECIFIER=anthropic/claude-sonnet-4-6 \
    ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE_PORT "$@" \
    tini -s -- "$work/hello-agents" serve >"$log" 2>&1 &
  pid=$!
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
rss_kib() { local pid; pid=$(pgrep -P "$1" hello-agents | head -1); awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

echo "== startup, in-memory"
t0=$(date +%s%N)
start_app "$work/memory.log"
check "GET /health answers 200 (in-memory)" wait_for_http "http://127.0.0.1:$APP_PORT/health" 20
memory_ms=$(ms_since "$t0")
sleep 1
memory_rss=$(rss_kib "$pid")
check "runs as the unprivileged user flue" test "$(ps -o user= -p "$(pgrep -P "$pid" hello-agents | head -1)")" = flue
kill -TERM "$pid"; wait "$pid"; code=$?
check "SIGTERM (idle) exits 0" test "$code" -eq 0

echo "== startup with Postgres (migrate), workflow, SSE, SIGTERM with work in flight"
t0=$(date +%s%N)
start_app "$work/postgres.log" DATABASE_URL="$TEST_DATABASE_URL"
check "GET /health answers 200 (Postgres)" wait_for_http "http://127.0.0.1:$APP_PORT/health" 30
postgres_ms=$(ms_since "$t0")
result=$(curl -s -X POST "http://127.0.0.1:$APP_PORT/workflows/summarize?wait=result" -H 'content-type: application/json' -d '{"text":"A long text."}')
check "a workflow run completes (?wait=result)" grep -q '"summary"' <<<"$result"
instance="smoke-$(date +%s%N)"
answer=$(curl -s -X POST "http://127.0.0.1:$APP_PORT/agents/assistant/$instance?wait=result" -H 'content-type: application/json' -d '{"message":"Hello agent"}')
check "an agent prompt is answered (?wait=result)" grep -q '"text":"Echo: Hello agent"' <<<"$answer"
status=$(psql "${TEST_DATABASE_URL%%\?*}" -tAc "SELECT status FROM flue_submissions WHERE instance_id = '$instance'")
check "the submission is settled in Postgres ($status)" test "$status" = completed
curl -s -X POST "http://127.0.0.1:$FAKE_PORT/_fake/script" -d '[{"text":"one two three four five six seven eight","chunkDelayMs":250,"toolCalls":[{"name":"finish","arguments":{"translation":"Bonjour","confidence":"high"}}]}]'
receipt=$(curl -s -X POST "http://127.0.0.1:$APP_PORT/workflows/translate" -H 'content-type: application/json' -d '{"text":"Hello","language":"French"}')
run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["runId"])' "$receipt")
check "a run is admitted (202 receipt)" test -n "$run_id"
curl -sN "http://127.0.0.1:$APP_PORT/runs/$run_id?offset=-1&live=sse" >"$work/sse.txt" &
reader=$!
sleep 0.7
t0=$(date +%s%N)
kill -TERM "$pid"; wait "$pid"; code=$?
drain_ms=$(ms_since "$t0")
check "SIGTERM with a run in flight exits 0" test "$code" -eq 0
check "exit within the 30 s grace period" test "$drain_ms" -lt 30000
wait "$reader"
check "the SSE reader got the run's events" grep -q '"type":"run_start"' "$work/sse.txt"
check "the SSE response ended with a control frame" test "$(grep '^event:' "$work/sse.txt" | tail -1)" = "event: control"
status=$(psql "${TEST_DATABASE_URL%%\?*}" -tAc "SELECT status FROM flue_runs WHERE run_id = '$run_id'")
check "the accepted run was not lost: it completed during the drain ($status)" test "$status" = completed

echo "== figures"
echo "exec -> first 200 /health, in-memory: ${memory_ms} ms"
echo "exec -> first 200 /health, Postgres (migrate + connect): ${postgres_ms} ms"
echo "idle RSS (in-memory): ${memory_rss} KiB"
echo "stripped binary: ${binary_bytes} bytes"
echo "drain on SIGTERM with one run in flight: ${drain_ms} ms"
finish
