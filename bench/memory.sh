#!/usr/bin/env bash
# Memory under sustained load, written into BENCHMARKS.md (its memory section): the release build of
# hello-agents (in-memory store; the fake model server in a process of its own, so its memory is not
# counted) completes RUNS workflow runs (`summarize?wait=result`,
# CONNECTIONS connections, flue-bench workflow-runs); process RSS idle, then after the runs once the
# retention pass that follows them ran. Twice, each in a fresh process: with the default retention (the
# in-memory store keeps 1,000 ended runs and 1,000 settled submissions) and with retention off.
# SWIFT_BUILD_FLAGS passes flags to `swift build` (e.g. --scratch-path DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50000}
CONNECTIONS=${CONNECTIONS:-16}
PORT=${PORT:-18493}
source bench/sections.sh
read -r -a flags <<< "${SWIFT_BUILD_FLAGS:-}"

echo "== building (release)"
for product in hello-agents flue-bench fake-model-server; do swift build -c release "${flags[@]}" --product "$product" >/dev/null; done
BIN=$(swift build -c release "${flags[@]}" --show-bin-path)

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

FAKE_PORT=${FAKE_PORT:-18494}
"$BIN/fake-model-server" --port "$FAKE_PORT" >/tmp/flue-memory-fake.log 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$FAKE_PORT/health" && break; sleep 0.05; done
model_env=(ANTHROPIC_BASE_URL="http://127.0.0.1:$FAKE_PORT" ANTHROPIC_API_KEY=fake-key MODEL_SPECIFIER=anthropic/fake-model)

measure() { # measure LABEL [VAR=value...] -> one JSON line
  local label=$1; shift
  env PORT=$PORT "${model_env[@]}" "$@" "$BIN/hello-agents" serve >/tmp/flue-memory-bench.log 2>&1 &
  local pid=$!
  local up=no
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && { up=yes; break; }; sleep 0.05; done
  if [ $up = no ]; then echo "hello-agents did not start:" >&2; cat /tmp/flue-memory-bench.log >&2; kill "$pid"; exit 1; fi
  sleep 1
  local idle; idle=$(rss_kib "$pid")
  local load
  load=$("$BIN/flue-bench" workflow-runs --url "http://127.0.0.1:$PORT" --runs "$RUNS" --connections "$CONNECTIONS")
  local loaded; loaded=$(rss_kib "$pid")
  sleep 3  # the retention pass after the last run (every second under a count bound)
  local after; after=$(rss_kib "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$label" "$idle" "$loaded" "$after" "$load" <<'PY'
import json, sys
label, idle, loaded, after, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
print(json.dumps({"label": label, "idleMiB": round(idle / 1024, 1), "loadedMiB": round(loaded / 1024, 1),
    "afterMiB": round(after / 1024, 1), "ratio": round(after / idle, 2), "runsPerSecond": load["runsPerSecond"],
    "failed": load["failed"]}))
PY
}

echo "== retention on (defaults)"
on=$(measure "retention on (defaults: 1,000 records)")
echo "$on"
echo "== retention off"
off=$(measure "retention off" RETENTION_MAX_AGE_HOURS=0 RETENTION_MAX_RECORDS=0)
echo "$off"

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
row() { echo "| $(field "$1" label) | $(field "$1" idleMiB) | $(field "$1" loadedMiB) | $(field "$1" afterMiB) | $(field "$1" ratio) | $(field "$1" runsPerSecond) | $(field "$1" failed) |"; }
section=$(cat <<MD
<!-- memory:begin -->
## Memory under sustained load

Produced by \`bench/memory.sh\` on $(date -u +%Y-%m-%d) (UTC), commit $(git describe --always --dirty), $(nproc) cores
($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), release build of \`hello-agents\`, in-memory
store, fake model server in its own process. $RUNS workflow runs (\`POST /workflows/summarize?wait=result\`, $CONNECTIONS connections, the
release \`flue-bench workflow-runs\`), each row a fresh process in the same run. RSS idle (1 s after start),
right after the last run, and 3 s later (after the next retention pass); ratio = after / idle.

| configuration | idle RSS (MiB) | after the runs (MiB) | 3 s later (MiB) | ratio | runs/s | failed |
| --- | --- | --- | --- | --- | --- | --- |
$(row "$on")
$(row "$off")

With retention the in-memory store keeps the newest 1,000 ended runs and 1,000 settled submissions
(\`RETENTION_MAX_RECORDS\`) and passes run every second; without it every run, its stream and its events stay
in memory for the life of the process.
<!-- memory:end -->
MD
)
write_section memory "$section"
echo "== wrote the memory section of BENCHMARKS.md"
