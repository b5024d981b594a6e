#!/usr/bin/env bash
# Standalone Dovecot (IMAP + POP3 on the Postfix Maildirs) for benches/compare.sh
# (adapted from shared/bench/dovecot_ctl.sh). Usage: dovecot.sh setup|start|stop
# env: BENCH_DC_IMAP_PORT (1143) BENCH_DC_POP3_PORT (1110) BENCH_RUN_DIR BENCH_PASS (benchpass)
#      BENCH_DC_PHC: an argon2id PHC string of BENCH_PASS to store instead of
#      the plain password (compare.sh passes one made with ferrymail's
#      parameters, so both servers do the same work per login).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IMAP_PORT=${BENCH_DC_IMAP_PORT:-1143}; POP3_PORT=${BENCH_DC_POP3_PORT:-1110}
RUN_DIR=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-cmp}; PASS=${BENCH_PASS:-benchpass}
CONF=$RUN_DIR/dovecot.conf; USERS_FILE=$RUN_DIR/dovecot-users; PIDF=$RUN_DIR/dovecot/master.pid
mkdir -p "$RUN_DIR"
alive() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
case "${1:-}" in
  setup)
    command -v dovecot >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dovecot-core dovecot-imapd dovecot-pop3d;;
  start)
    alive && exit 0
    # The users file is rewritten at every start; a running instance keeps
    # the one it read.
    secret="{PLAIN}$PASS"; [ -n "${BENCH_DC_PHC:-}" ] && secret="{ARGON2ID}$BENCH_DC_PHC"
    : > "$USERS_FILE"; for u in imap10k bench1 bench2 bench3 bench4; do echo "$u:$secret" >> "$USERS_FILE"; done
    chmod 640 "$USERS_FILE"; chgrp dovecot "$USERS_FILE" 2>/dev/null || true
    sed -e "s#@IMAP_PORT@#$IMAP_PORT#; s#@POP3_PORT@#$POP3_PORT#; s#@RUN_DIR@#$RUN_DIR#g; s#@USERS_FILE@#$USERS_FILE#" \
        "$HERE/dovecot.conf.in" > "$CONF"
    doveconf -c "$CONF" -n > /dev/null
    dovecot -c "$CONF"
    for _ in $(seq 1 50); do ss -ltn | grep -q "127.0.0.1:$POP3_PORT " && break; sleep 0.2; done;;
  stop) if alive; then kill "$(cat "$PIDF")"; fi;;
  pid) cat "$PIDF";;
  *) echo "usage: $0 setup|start|stop|pid"; exit 2;;
esac
