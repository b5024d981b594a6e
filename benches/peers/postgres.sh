#!/usr/bin/env bash
# A throw-away PostgreSQL for benches/compare.sh's cluster workload: initdb
# and pg_ctl in $BENCH_RUN_DIR/pg on a loopback port, as the e2e tests make
# theirs (tests/e2e/pg_cluster.py), with durability on (fsync,
# synchronous_commit: a 250 waits for the commit's flush, as on sled) and
# pg_stat_statements loaded, so the bench can count the statements and WAL
# bytes a message costs.
# Usage: postgres.sh setup|start|stop|url|stats|psql SQL
# env: BENCH_PG_PORT (25432) BENCH_RUN_DIR
set -euo pipefail
RUN_DIR=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-cmp}; DIR=$RUN_DIR/pg
PORT=${BENCH_PG_PORT:-25432}; DB=mail
bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# initdb refuses to run as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { as_pg "$(bin)/psql" -h "$DIR" -p "$PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
case "${1:-}" in
  setup)
    [ -n "$(bin)" ] || { apt-get update -qq; apt-get install -y -qq --no-install-recommends postgresql >/dev/null; };;
  start)
    "$0" stop 2>/dev/null || true
    rm -rf "$DIR"; mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    as_pg "$(bin)/initdb" -D "$DIR/data" -U postgres -E UTF8 --locale=C --auth-local=trust --auth-host=trust >/dev/null
    as_pg "$(bin)/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 -o "-p $PORT -k $DIR \
        -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on \
        -c shared_preload_libraries=pg_stat_statements" start >/dev/null
    as_pg "$(bin)/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -qAt \
        -c "CREATE ROLE ferrymail LOGIN" -c "CREATE DATABASE $DB OWNER ferrymail"
    psql_ "CREATE EXTENSION pg_stat_statements";;
  stop) [ -d "$DIR/data" ] && as_pg "$(bin)/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null;;
  url) echo "postgres://ferrymail@127.0.0.1:$PORT/$DB";;
  # Counters since the start, tab-separated: statements executed (each at
  # least one client/server exchange), COMMITs, WAL bytes, database bytes.
  stats) psql_ "SELECT (SELECT sum(calls) FROM pg_stat_statements),
                       (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE 'commit%'),
                       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
                       pg_database_size('$DB')" | tr '|' '\t';;
  psql) psql_ "$2";;
  *) echo "usage: $0 setup|start|stop|url|stats|psql SQL" >&2; exit 2;;
esac
