# Shared helpers for the CI smoke scripts: assertions that count, and HTTP waits.
passed=0
failed=0
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "  ok   $what"; else failed=$((failed + 1)); echo "  FAIL $what"; fi
}
wait_for_http() { # wait_for_http URL SECONDS
  local deadline=$((SECONDS + $2))
  until curl -sf -o /dev/null "$1"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
