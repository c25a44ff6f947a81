#!/usr/bin/env bash
# The OpenAPI document tells the truth: the example server (debug build from `swift test`) with its
# fake model is checked by openapi-spec-validator and by schemathesis (every check, fixed seed,
# a bounded number of examples per operation, the coverage, fuzzing and stateful phases). The only
# exclusions are in ci/schemathesis.toml, each with its reason. Fails on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
PORT_UNDER_TEST=${SCHEMATHESIS_PORT:-18390}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-20261130}

command -v st >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "schemathesis==4.32.5"
command -v openapi-spec-validator >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check "openapi-spec-validator==0.9.0"

bin=$(swift build --show-bin-path)
log=$(mktemp /tmp/flue-schemathesis.XXXXXX.log)
# A 1 s long-poll so schemathesis's reads of live streams finish within its request timeout.
PORT=$PORT_UNDER_TEST LONG_POLL_TIMEOUT_SECONDS=1 "$bin/hello-agents" serve --fake-model >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
wait_for_http "http://127.0.0.1:$PORT_UNDER_TEST/health" 30 || { echo "the example server did not start:"; cat "$log"; exit 1; }

document=$(mktemp /tmp/flue-openapi.XXXXXX.json)
curl -sf "http://127.0.0.1:$PORT_UNDER_TEST/openapi.json" -o "$document" || { echo "no /openapi.json"; exit 1; }
openapi-spec-validator "$document" || exit 1

# Every Flue route the example serves is in the document (GET /health is the app's own route).
"$bin/hello-agents" routes | python3 -c '
import json, re, sys
doc = json.load(open(sys.argv[1]))
missing = []
for line in sys.stdin:
    method, path = line.split()[:2]
    if path == "/health":
        continue
    agent = re.fullmatch(r"/agents/([^/]+)/:id(/.*)?", path)
    key = "/agents/{name}/{id}" + re.sub(r":(\w+)", r"{\1}", agent.group(2) or "") if agent else re.sub(r":(\w+)", r"{\1}", path)
    operation = doc["paths"].get(key, {}).get(method.lower())
    if operation is None or (agent and agent.group(1) not in operation["parameters"][0]["schema"]["enum"]):
        missing.append(f"{method} {path}")
if missing:
    sys.exit("routes missing from /openapi.json: " + ", ".join(missing))
print("every served route is documented")
' "$document" || exit 1

# With API_TOKENS the document declares the bearer scheme and 401/429 on every operation; it must
# still be valid OpenAPI, and be served only to a caller with a token.
protected_port=$((PORT_UNDER_TEST + 1))
token=schemathesis-protected-token-0123
API_TOKENS=$token PORT=$protected_port "$bin/hello-agents" serve --fake-model >"$log.protected" 2>&1 &
protected=$!
wait_for_http "http://127.0.0.1:$protected_port/health" 30 || { echo "the protected server did not start:"; cat "$log.protected"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$protected_port/openapi.json")
[ "$status" = 401 ] || { echo "the protected document answered $status without a token"; exit 1; }
curl -sf -H "authorization: Bearer $token" "http://127.0.0.1:$protected_port/openapi.json" -o "$document.protected" || { echo "no protected /openapi.json"; exit 1; }
kill $protected; wait $protected 2>/dev/null
openapi-spec-validator "$document.protected" || exit 1

st --config-file ci/schemathesis.toml run "http://127.0.0.1:$PORT_UNDER_TEST/openapi.json" \
  --checks all --seed "$SEED" --max-examples "$EXAMPLES" --request-timeout 10 --no-color
status=$?
if ! kill -0 $server 2>/dev/null; then echo "the server died during the run:"; tail -50 "$log"; exit 1; fi
exit $status
