# Sourced by the bench scripts: uses BENCH_DATABASE_URL if set, else starts a throwaway
# PostgreSQL on 127.0.0.1 (stopped on exit) and sets BENCH_DATABASE_URL and PSQL_URL.
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_DIR=$(mktemp -d /tmp/flue-bench-pg.XXXXXX)
  PG_PORT=${PG_PORT:-55433}
  chown postgres "$PG_DIR"
  su postgres -c "$PG_BIN/initdb -D $PG_DIR/data -U postgres -A trust" >/dev/null
  su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data -w -l $PG_DIR/log -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200' start" >/dev/null
  trap 'su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data -m fast stop" >/dev/null 2>&1 || true' EXIT
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE flue_bench'
  BENCH_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/flue_bench?sslmode=disable"
fi
PSQL_URL=${BENCH_DATABASE_URL%%\?*}
