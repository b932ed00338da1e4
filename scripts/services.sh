# Services for the test suite: use the ones that answer, else start (and install) our own.
# Sourced by scripts/test.sh and scripts/bench.sh.

PG_PORT_DEFAULT=5432
PG_LOCAL_PORT=55432
PG_LOCAL_DIR="${TMPDIR:-/tmp}/aicc-test-pg"

_pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && echo "$d"
}

_pg_answers() { # host port
  .venv/bin/python - "$1" "$2" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres", dbname="postgres",
                connect_timeout=3).close()
PY
}

ensure_postgres() {
  if [ -n "${AICC_TEST_POSTGRES_URL:-}" ]; then
    echo "tests: PostgreSQL from AICC_TEST_POSTGRES_URL"; return 0
  fi
  if _pg_answers 127.0.0.1 "$PG_PORT_DEFAULT"; then
    export AICC_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT_DEFAULT}/postgres"
    echo "tests: PostgreSQL answering on 127.0.0.1:${PG_PORT_DEFAULT}"; return 0
  fi
  if ! _pg_bin >/dev/null; then
    echo "tests: installing Debian's postgresql"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
  fi
  local bin; bin=$(_pg_bin)
  local runas=()
  if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); fi
  if ! _pg_answers 127.0.0.1 "$PG_LOCAL_PORT"; then
    rm -rf "$PG_LOCAL_DIR"; mkdir -p "$PG_LOCAL_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_LOCAL_DIR"
    "${runas[@]}" "$bin/initdb" -D "$PG_LOCAL_DIR/data" -U postgres -A trust >/dev/null
    "${runas[@]}" "$bin/pg_ctl" -D "$PG_LOCAL_DIR/data" -l "$PG_LOCAL_DIR/log" -w \
      -o "-p $PG_LOCAL_PORT -k $PG_LOCAL_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  fi
  export AICC_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_LOCAL_PORT}/postgres"
  echo "tests: throwaway PostgreSQL on 127.0.0.1:${PG_LOCAL_PORT} ($PG_LOCAL_DIR)"
}
