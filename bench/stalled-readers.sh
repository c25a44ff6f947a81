#!/usr/bin/env bash
# Stalled readers, written into BENCHMARKS.md (its stalled-readers section): one agent instance whose
# stream holds ~3 MB (3000 text deltas of 1 KiB), then READERS readers that connect with
# offset=-1&live=sse (or live=long-poll) and never read (4 KiB receive buffers). Measured for the
# release build of hello-agents (in-memory, fake model) in one run, four times: SSE with the kernel's
# send-buffer autotuning (SEND_BUFFER_BYTES=0, how the server behaved before the cap), SSE with the
# default cap, long-poll with the default cap, and SSE with the default cap under glibc's fixed mmap
# threshold (MALLOC_MMAP_THRESHOLD_=131072: the prompt's large buffers are returned to the system when
# freed, so the readers do not start in heap space the prompt left behind).
# Reported: process RSS before and with the readers, and the bytes queued in the server's sockets
# (/proc/net/tcp tx_queue, kernel memory). The stall timeout is raised so nobody is disconnected
# while measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
READERS=${READERS:-200}
PORT=${PORT:-18491}
source bench/sections.sh

echo "== building (release)"
swift build -c release --product hello-agents >/dev/null
BIN=$(swift build -c release --show-bin-path)

measure() { # measure LABEL LIVE [VAR=value...] -> one JSON line
  local label=$1 live=$2; shift 2
  env PORT=$PORT WRITE_STALL_TIMEOUT_SECONDS=600 "$@" "$BIN/hello-agents" serve --fake-model >/tmp/flue-stalled-bench.log 2>&1 &
  local pid=$!
  local up=no
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && { up=yes; break; }; sleep 0.05; done
  if [ $up = no ]; then echo "hello-agents did not start:" >&2; cat /tmp/flue-stalled-bench.log >&2; kill "$pid"; exit 1; fi
  python3 - "$PORT" "$READERS" "$pid" "$label" "$live" <<'PY'
import json, socket, sys, time, urllib.request
port, readers, pid, label, live = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def rss_kib():
    return int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
def queued_bytes():
    total = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1].endswith(":%04X" % port) and f[3] == "01":
            total += int(f[4].split(":")[0], 16)
    return total
message = " ".join(["x" * 1023] * 3000)
request = urllib.request.Request(f"http://127.0.0.1:{port}/agents/assistant/big?wait=result",
    data=json.dumps({"message": message}).encode(), headers={"content-type": "application/json"})
urllib.request.urlopen(request, timeout=300).read()
time.sleep(1)
before = rss_kib()
sockets = []
for _ in range(readers):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /agents/assistant/big?offset=-1&live={live} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sockets.append(s)
time.sleep(10)
stalled = rss_kib()
queued = queued_bytes()
urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read()
print(json.dumps({"label": label, "readers": readers, "rssBeforeKiB": before, "rssStalledKiB": stalled,
    "perReaderKiB": round((stalled - before) / readers, 1), "queuedMiB": round(queued / 1048576, 1),
    "queuedPerReaderKiB": round(queued / 1024 / readers, 1)}))
for s in sockets: s.close()
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== measuring ($READERS stalled readers on a ~3 MB stream)"
autotuned=$(measure "SSE, kernel autotuning (SEND_BUFFER_BYTES=0)" sse SEND_BUFFER_BYTES=0)
echo "$autotuned"
capped=$(measure "SSE, default cap (SEND_BUFFER_BYTES=262144)" sse)
echo "$capped"
longpoll=$(measure "long-poll, default cap" long-poll)
echo "$longpoll"
trimmed=$(measure "SSE, default cap, MALLOC_MMAP_THRESHOLD_=131072" sse MALLOC_MMAP_THRESHOLD_=131072)
echo "$trimmed"

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
row() { echo "| $(field "$1" label) | $(field "$1" rssBeforeKiB) | $(field "$1" rssStalledKiB) | $(field "$1" perReaderKiB) | $(field "$1" queuedMiB) | $(field "$1" queuedPerReaderKiB) |"; }
ratio=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(round(a["queuedPerReaderKiB"]/max(b["queuedPerReaderKiB"],0.1),1))' "$autotuned" "$capped")
section=$(cat <<MD
<!-- stalled-readers:begin -->
## Stalled readers

Produced by \`bench/stalled-readers.sh\` on $(date -u +%Y-%m-%d) (UTC), commit $(git describe --always --dirty), $(nproc) cores
($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), release build of \`hello-agents\`, in-memory, fake model.
One agent stream of ~3 MB (3000 \`text_delta\` events of 1 KiB); $READERS readers connect with
\`offset=-1&live=sse\` or \`live=long-poll\` (4 KiB receive buffers) and never read; measured 10 s later, all rows
in one run, each in a fresh process.
"Queued" is what the server's sockets hold in the kernel (\`/proc/net/tcp\` \`tx_queue\`).

| configuration | RSS before (KiB) | RSS with readers (KiB) | RSS per reader (KiB) | queued in sockets (MiB) | queued per reader (KiB) |
| --- | --- | --- | --- | --- | --- |
$(row "$autotuned")
$(row "$capped")
$(row "$longpoll")
$(row "$trimmed")

The send-buffer cap divides what each stalled reader holds in the kernel by $ratio. In the process, an SSE
reader reads its next batch only once the connection can take more, so a stalled reader holds at most
about two batches (NIO's 64 KiB high watermark plus one batch of at most \`readBatchBytes\`, 64 KiB,
framing included) beyond its socket;
a stalled long-poll reader's one response fits in its send buffer, after which the server holds nothing
for it but the connection. The first three rows reuse heap memory that the 3 MB prompt freed (their RSS
before is higher), so their per-reader figure understates; the last row has glibc return large
buffers to the system (\`MALLOC_MMAP_THRESHOLD_\`, which also fixes the allocator's thresholds), so it
starts lower and is the fairer figure for what a stalled SSE reader costs. A stalled connection is
reset after \`WRITE_STALL_TIMEOUT_SECONDS\` (this run raises it to 600 s to measure the stall itself),
which frees its kernel queue too; a stalled long-poll reader, whose response fits in its send buffer, is
closed by \`KEEP_ALIVE_TIMEOUT_SECONDS\`, and the kernel keeps its unsent bytes until TCP gives up.
<!-- stalled-readers:end -->
MD
)
write_section stalled-readers "$section"
echo "== wrote the stalled-readers section of BENCHMARKS.md"
