#!/usr/bin/env bash
# Haraka peer for benches/compare.sh (adapted from shared/bench/haraka_ctl.sh).
# Usage: haraka.sh setup|start|stop|pid|spool-count|clean-spool
# env: BENCH_HARAKA_PORT (2526) BENCH_RUN_DIR  BENCH_DOMAIN (bench.test)
#      BENCH_HARAKA_QUEUE (file|discard; file = write .eml + fsync before 250)
#      BENCH_HARAKA_CHAIN ("" or "4"; 4 = the four bench_chain_* plugins before the queue)
#      BENCH_HARAKA_NODES ("" = one worker) BENCH_HARAKA_LOGLEVEL (info)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN_DIR=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-cmp}; DIR=$RUN_DIR/haraka
PORT=${BENCH_HARAKA_PORT:-2526}; DOMAIN=${BENCH_DOMAIN:-bench.test}
QUEUE=${BENCH_HARAKA_QUEUE:-file}; CHAIN=${BENCH_HARAKA_CHAIN:-}; NODES=${BENCH_HARAKA_NODES:-}
export HARAKA_SPOOL=$RUN_DIR/haraka-spool
PIDF=$RUN_DIR/haraka.pid
alive() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
case "${1:-}" in
  setup)
    command -v haraka >/dev/null || npm install -g --no-audit --no-fund Haraka
    [ -d "$DIR/config" ] || haraka -i "$DIR" >/dev/null;;
  start)
    alive && { echo "haraka already running" >&2; exit 1; }
    [ -d "$DIR/config" ] || haraka -i "$DIR" >/dev/null
    mkdir -p "$DIR/plugins" "$HARAKA_SPOOL"; cp "$HERE"/haraka_plugins/*.js "$DIR/plugins/"
    q=queue/discard; [ "$QUEUE" = file ] && q=bench_queue_file
    # bench_rdns first: otherwise Haraka core does dns.reverse() against the system resolver.
    { echo bench_rdns
      [ "$CHAIN" = 4 ] && printf 'bench_chain_acl\nbench_chain_helo\nbench_chain_rcpt\nbench_chain_data\n'
      [ "$CHAIN" = 4 ] || echo rcpt_to.in_host_list
      echo "$q"; } > "$DIR/config/plugins"
    echo "$DOMAIN" > "$DIR/config/host_list"; echo "mx-haraka.$DOMAIN" > "$DIR/config/me"
    { echo "[main]"; echo "listen=127.0.0.1:$PORT"; [ -n "$NODES" ] && echo "nodes=$NODES"; true; } > "$DIR/config/smtp.ini"
    printf '[main]\nlevel=%s\ntimestamps=false\nformat=default\n' "${BENCH_HARAKA_LOGLEVEL:-info}" > "$DIR/config/log.ini"
    YES_REALLY_DO_DISCARD=1 HARAKA_FSYNC=1 BENCH_DOMAIN=$DOMAIN nohup haraka -c "$DIR" > "$RUN_DIR/haraka.log" 2>&1 &
    echo $! > "$PIDF"
    for _ in $(seq 1 100); do ss -ltn | grep -q "127.0.0.1:$PORT " && exit 0; sleep 0.2; done
    echo "haraka did not start: $RUN_DIR/haraka.log" >&2; exit 1;;
  stop) if alive; then pid=$(cat "$PIDF"); kill "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done; fi
        rm -f "$PIDF";;
  pid) cat "$PIDF";;
  spool-count) find "$HARAKA_SPOOL" -type f 2>/dev/null | wc -l;;
  clean-spool) if [ -d "$HARAKA_SPOOL" ]; then find "$HARAKA_SPOOL" -type f -delete; fi;;
  *) echo "usage: $0 setup|start|stop|pid|spool-count|clean-spool"; exit 2;;
esac
