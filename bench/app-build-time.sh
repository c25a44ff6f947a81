#!/usr/bin/env bash
# Build time of an application that keeps its state in memory, written into BENCHMARKS.md (its
# app-build-time section): a clean debug build of the FlueServer target (what such an app compiles
# besides its own few files) at BEFORE (default a61f178, when FlueServer still linked the SQLite and
# Postgres adapters) and at HEAD, one after the other, each in a fresh scratch directory with its
# dependencies already resolved (resolution is not timed). Also lists whether GRDB and PostgresNIO
# were compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:-a61f178}
source bench/sections.sh
root=$(pwd)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/before" >/dev/null 2>&1; git -C "$root" worktree remove --force "$work/after" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -q "$work/before" "$BEFORE"
git -C "$root" worktree add -q "$work/after" HEAD

measure() { # measure DIR -> "seconds drivers"
  local dir=$1 scratch="$work/scratch-$(basename "$1")"
  (cd "$dir" && swift package resolve --scratch-path "$scratch" >/dev/null 2>&1)
  local start end
  start=$(date +%s)
  local log="/tmp/app-build-time-$(basename "$dir").log"
  if ! (cd "$dir" && swift build --target FlueServer --scratch-path "$scratch" >"$log" 2>&1); then
    echo "build failed in $dir; see $log" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  end=$(date +%s)
  local drivers
  drivers=$(ls "$scratch/debug/Modules" 2>/dev/null | grep -E '^(GRDB|PostgresNIO)\.swiftmodule$' | sed "s/.swiftmodule//" | paste -sd, - || true)
  echo "$((end - start)) ${drivers:-none}"
}

echo "== clean debug build of FlueServer at $BEFORE"
read -r before_s before_drivers < <(measure "$work/before")
echo "   $before_s s (drivers compiled: $before_drivers)"
echo "== clean debug build of FlueServer at $(git rev-parse --short HEAD)"
read -r after_s after_drivers < <(measure "$work/after")
echo "   $after_s s (drivers compiled: $after_drivers)"
git -C "$root" worktree remove --force "$work/after" >/dev/null 2>&1 || true

cores=$(nproc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
ratio=$(python3 -c "print(f'{$after_s / $before_s:.2f}')")
write_section app-build-time "<!-- app-build-time:begin -->
## Build time of an app that keeps state in memory

\`bench/app-build-time.sh\` on $(date -u +%Y-%m-%d) (UTC), $cores cores ($cpu), commit $(git rev-parse --short HEAD):
a clean debug build of the \`FlueServer\` target, dependencies resolved beforehand, before and after
the server stopped linking the database adapters (the application now chooses its adapter), one
after the other on the same machine.

| revision | seconds | database drivers compiled |
| --- | --- | --- |
| $BEFORE (FlueServer linked FlueSQLite and FluePostgres) | $before_s | $before_drivers |
| $(git rev-parse --short HEAD) | $after_s | $after_drivers |

After / before: $ratio.
<!-- app-build-time:end -->"
echo "== BENCHMARKS.md updated (app-build-time)"
