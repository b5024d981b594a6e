#!/usr/bin/env bash
# One very large mailbox (default 1,000,000 messages), filled straight
# through the store API (ferrymail-fill: SMTP would take hours), then timed
# over IMAP with imaplib: SELECT, FETCH 1:* (FLAGS), a UID FETCH of the last
# 100, and the server's peak memory. Not part of CI (the 100,000-message
# e2e test is); a benchmark to run by hand.
#
#   benches/imap_bigbox.sh                    # 1,000,000 messages, 5 runs
#   BENCH_BIGBOX=200000 benches/imap_bigbox.sh
#
# Loopback only (127.0.0.1:20143). Keeps the filled store in
# $BENCH_RUN_DIR/bigbox-data between runs of the same size.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
RUN=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-bigbox}; N=${BENCH_BIGBOX:-1000000}; RUNS=${BENCH_RUNS:-5}
PORT=${BENCH_FM_IMAP_PORT:-20143}; PASS=benchpass; USER_ADDR=big@bench.test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
FM_BIN=${BENCH_FERRYMAIL_BIN:-$CARGO_TARGET_DIR/release/ferrymail}
FILL=${BENCH_FILL_BIN:-$CARGO_TARGET_DIR/release/ferrymail-fill}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -q -p ferrymail -p ferrymail-benches)
fi
mkdir -p "$RUN"
cat > "$RUN/ferrymail.toml" <<TOML
data_dir = "$RUN/bigbox-data"
plugin_cache_dir = "$RUN/plugin-cache"
hostname = "mx.bench.test"
local_domains = ["bench.test"]
[smtp]
listen = ["127.0.0.1:20925"]
[imap]
listen = ["127.0.0.1:$PORT"]
[clients]
exempt = ["127.0.0.0/8"]
TOML
if [ "$(cat "$RUN/bigbox-count" 2>/dev/null)" != "$N" ]; then
    rm -rf "$RUN/bigbox-data"
    echo "$PASS" | "$FM_BIN" user add "$USER_ADDR" --password-stdin --config "$RUN/ferrymail.toml" >/dev/null
    echo "== filling $USER_ADDR with $N messages through the store API" >&2
    "$FILL" --store "$RUN/bigbox-data/store" --account "$USER_ADDR" --messages "$N"
    echo "$N" > "$RUN/bigbox-count"
fi
echo "== store on disk: $(du -sh "$RUN/bigbox-data/store" | cut -f1)" >&2
"$FM_BIN" serve --config "$RUN/ferrymail.toml" 2>> "$RUN/ferrymail.log" &
FM_PID=$!
trap 'kill $FM_PID 2>/dev/null; wait $FM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.1; done
python3 "$HERE/scripts/imap_bigbox.py" --port "$PORT" --user "$USER_ADDR" --password "$PASS" \
    --runs "$RUNS" --pid "$FM_PID" --expect "$N"
