#!/usr/bin/env bash
# Agent submissions end to end on Postgres, written into BENCHMARKS.md (its agents section):
#   1. throughput: prompts to /agents/assistant/<id> through 1 and 2 hello-agents processes
#      (release build) sharing one Postgres, answered by the fake model server (no delay), until
#      every submission is settled;
#   2. kill -9: one of two processes is killed while it runs submissions (model replies stream
#      for ~0.5 s); time until the survivor has settled every submission the dead one owned,
#      with the default 30 s lease and with a 5 s lease.
# Uses BENCH_DATABASE_URL if set, else starts a throwaway PostgreSQL on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
INSTANCES=${INSTANCES:-50}
PER_INSTANCE=${PER_INSTANCE:-20}
source bench/postgres.sh
source bench/sections.sh

echo "== building (release)"
for product in flue-bench fake-model-server hello-agents; do swift build -c release --product "$product" >/dev/null; done
BIN=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/flue-agents-bench.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap 'cleanup; su postgres -c "${PG_BIN:-true}/pg_ctl -D ${PG_DIR:-/nonexistent}/data -m fast stop" >/dev/null 2>&1 || true' EXIT

FAKE_PORT=${FAKE_PORT:-18289}
FAKE="http://127.0.0.1:$FAKE_PORT"
"$BIN/fake-model-server" --port "$FAKE_PORT" > "$work/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf -o /dev/null "$FAKE/health" && break; sleep 0.05; done

# start_server NAME [VAR=value...]: starts hello-agents, sets <NAME>_PID, <NAME>_URL, <NAME>_OWNER.
start_server() {
  local name=$1; shift
  env PORT=0 HOST=127.0.0.1 LOG_LEVEL=info DATABASE_URL="$BENCH_DATABASE_URL" ANTHROPIC_API_KEY=bench \
    ANTHROPIC_BASE_URL="$FAKE" MODEL_SPECIFIER=anthropic/claude-fake "$@" \
    "$BIN/hello-agents" serve > "$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do grep -q 'listening on' "$work/$name.log" && break; sleep 0.05; done
  local port owner
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/$name.log" | head -1)
  owner=$(grep -o 'owner=owner_[a-z0-9-]*' "$work/$name.log" | head -1 | cut -d= -f2)
  printf -v "${name}_PID" '%s' "$pid"
  printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
  printf -v "${name}_OWNER" '%s' "$owner"
}
stop_servers() { cleanup_servers=("$@"); for pid in "${cleanup_servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
slow_replies() { # queue N scripted replies that stream 5 chunks 100 ms apart
  python3 -c "import json,sys; print(json.dumps([{'text':'one two three four five','chunkDelayMs':100}]*int(sys.argv[1])))" "$1" \
    | curl -sf -X POST -H 'content-type: application/json' --data-binary @- "$FAKE/_fake/script" >/dev/null
}

echo "== throughput, 1 process"
start_server A
one=$("$BIN/flue-bench" agents --targets "$A_URL" --database-url "$BENCH_DATABASE_URL" \
  --instances "$INSTANCES" --per-instance "$PER_INSTANCE")
echo "$one"
stop_servers "$A_PID"

echo "== throughput, 2 processes"
start_server A
start_server B
two=$("$BIN/flue-bench" agents --targets "$A_URL,$B_URL" --database-url "$BENCH_DATABASE_URL" \
  --instances "$INSTANCES" --per-instance "$PER_INSTANCE")
echo "$two"
stop_servers "$A_PID" "$B_PID"

kill_run() { # kill_run [VAR=value...]: two processes, prompts to A, A killed after 1.5 s; sets KILL_RESULT
  start_server A "$@"
  start_server B "$@"
  slow_replies 200
  KILL_RESULT=$("$BIN/flue-bench" agents --targets "$A_URL" --database-url "$BENCH_DATABASE_URL" \
    --instances 20 --per-instance 5 --kill-pid "$A_PID" --kill-owner "$A_OWNER" --kill-after-ms 1500)
  wait "$A_PID" 2>/dev/null || true
  stop_servers "$B_PID"
  curl -sf -X POST "$FAKE/_fake/reset" >/dev/null || true
}
echo "== kill -9, default lease (30 s, scan every 5 s)"
kill_run
kill_default=$KILL_RESULT
echo "$kill_default"
echo "== kill -9, 5 s lease (SUBMISSION_LEASE_SECONDS=5, RECOVERY_SCAN_SECONDS=1)"
kill_run SUBMISSION_LEASE_SECONDS=5 RECOVERY_SCAN_SECONDS=1
kill_short=$KILL_RESULT
echo "$kill_short"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
section=$(cat <<MD
<!-- agents:begin -->
## Agent submissions end to end

Produced by \`bench/agents.sh\` on $(date -u +%Y-%m-%d) (UTC), same machine class ($(nproc) cores, $cpu),
release builds of \`hello-agents\` and \`fake-model-server\`, one PostgreSQL on 127.0.0.1. A submission is
\`POST /agents/assistant/<id>\` → durable admission → claim under a lease → one streamed model turn
against the fake model server (Anthropic wire format, no delay) → session saved → settled. Prompts are
admitted by 64 concurrent clients over $INSTANCES instances × $PER_INSTANCE prompts (each instance is a FIFO,
so at most $INSTANCES run at once); the clock stops when the last one is settled in the database.

| servers | submissions | seconds | submissions/s | admission → settled p50 | p99 |
| --- | --- | --- | --- | --- | --- |
| 1 | $(field "$one" submissions) | $(field "$one" seconds) | $(field "$one" submissionsPerSecond) | $(field "$one" admissionToSettledP50Ms) ms | $(field "$one" admissionToSettledP99Ms) ms |
| 2 | $(field "$two" submissions) | $(field "$two" seconds) | $(field "$two" submissionsPerSecond) | $(field "$two" admissionToSettledP50Ms) ms | $(field "$two" admissionToSettledP99Ms) ms |

Both processes run on the same 2 cores as Postgres and the fake model, so a second process adds
coordination (and a second claimer per head) rather than CPU.

### kill -9 with submissions in flight

100 prompts (20 instances × 5) go to process A while B runs beside it; every model reply streams
5 chunks 100 ms apart. A is killed with SIGKILL 1.5 s after the first prompt. "Stranded" are the
submissions A was running at that moment (leased to A); B takes each over once its lease expires,
applies the recovery rules (resume from saved partial output, repeat a silent model request, requeue
an input that never reached the history) and settles it.

| lease / scan | stranded | kill → last stranded settled | kill → all 100 settled | completed | failed |
| --- | --- | --- | --- | --- | --- |
| 30 s / 5 s (defaults) | $(field "$kill_default" stranded) | $(field "$kill_default" killToStrandedSettledMs) ms | $(field "$kill_default" killToAllSettledMs) ms | $(field "$kill_default" completed) | $(field "$kill_default" failed) |
| 5 s / 1 s | $(field "$kill_short" stranded) | $(field "$kill_short" killToStrandedSettledMs) ms | $(field "$kill_short" killToAllSettledMs) ms | $(field "$kill_short" completed) | $(field "$kill_short" failed) |

The time is dominated by the lease (a live owner must be given the benefit of the doubt until its
lease runs out) plus up to one scan interval; \`SUBMISSION_LEASE_SECONDS\` and \`RECOVERY_SCAN_SECONDS\`
trade recovery time against renewal traffic.
<!-- agents:end -->
MD
)
write_section agents "$section"
echo "== wrote the agents section of BENCHMARKS.md"
