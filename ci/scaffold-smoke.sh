#!/usr/bin/env bash
# `flue init` end to end: scaffold a project that depends on this checkout by path, build it,
# start it against the fake model server, call /health and a workflow, stop it with SIGTERM.
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
repo=$(pwd)
FAKE_PORT=18190
APP_PORT=18191
bin=$(swift build --show-bin-path)
work=$(mktemp -d /tmp/flue-scaffold.XXXXXX)

echo "== flue init"
"$bin/flue" init "$work/demo-agents" --database sqlite --deploy sst --flue-path "$repo"
check "the project has a manifest, app, Dockerfile and sst.config.ts" \
  test -f "$work/demo-agents/Package.swift" -a -f "$work/demo-agents/Sources/App/App.swift" -a -f "$work/demo-agents/Dockerfile" -a -f "$work/demo-agents/sst.config.ts"
check "hadolint accepts the generated Dockerfile" hadolint "$work/demo-agents/Dockerfile"

echo "== swift build (the scaffolded project)"
(cd "$work/demo-agents" && swift build --product demo-agents 2>&1 | tail -3)
check "the scaffolded project builds" test -x "$work/demo-agents/.build/debug/demo-agents"

"$bin/fake-model-server" --port $FAKE_PORT >/dev/null 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
wait_for_http "http://127.0.0.1:$FAKE_PORT/health" 20

token=scaffold-smoke-token-0123456789
env PORT=$APP_PORT ANTHROPIC_API_KEY=sk-test ANTHROPIC_BASE_URL=http://127.0.0.1:$FAKE_PORT API_TOKENS="$token" \
  SQLITE_PATH="$work/demo.sqlite" "$work/demo-agents/.build/debug/demo-agents" serve >"$work/app.log" 2>&1 &
app=$!
check "GET /health answers 200" wait_for_http "http://127.0.0.1:$APP_PORT/health" 30
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$APP_PORT/workflows/greet" -H 'content-type: application/json' -d '{"name":"Ada"}')
check "with API_TOKENS set, a request without a token is refused (401)" test "$status" = 401
result=$(curl -s -X POST "http://127.0.0.1:$APP_PORT/workflows/greet?wait=result" -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"name":"Ada"}')
echo "  greet -> $result"
check "the greet workflow returns a structured result" grep -q '"greeting"' <<<"$result"
check "the run was persisted to the SQLite file" test -s "$work/demo.sqlite"
answer=$(curl -s -X POST "http://127.0.0.1:$APP_PORT/agents/assistant/ada?wait=result" -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"message":"Hi, I am Ada"}')
echo "  assistant -> $answer"
check "the assistant agent answers a prompt" grep -q '"text":"Echo: Hi, I am Ada"' <<<"$answer"
kill -TERM "$app"
wait "$app"; code=$?
check "SIGTERM exits 0" test "$code" -eq 0
finish
