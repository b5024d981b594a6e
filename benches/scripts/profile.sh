#!/usr/bin/env bash
# Profiles ferrymail's inbound path (SMTP accept + local delivery) under a
# short ferrymail-load run. Output in $BENCH_RUN_DIR/profile/.
#   benches/scripts/profile.sh callgrind   # instruction counts (no HW counters needed)
#   benches/scripts/profile.sh perf        # perf record -e cpu-clock (time, incl. kernel)
# env: BENCH_PROFILE_MESSAGES (callgrind 1000 / perf 20000), BENCH_SESSIONS (20)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOL=${1:-callgrind}
RUN=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-cmp}/profile
T=${CARGO_TARGET_DIR:-/work/target}
FM=${BENCH_FERRYMAIL_BIN:-$T/release/ferrymail}; LOAD=${BENCH_LOAD_BIN:-$T/release/ferrymail-load}
SMTP=${BENCH_FM_SMTP_PORT:-20025}; POP3=${BENCH_FM_POP3_PORT:-20110}
rm -rf "$RUN"; mkdir -p "$RUN"
cat > "$RUN/ferrymail.toml" <<TOML
data_dir = "$RUN/data"
hostname = "mx.bench.test"
local_domains = ["bench.test"]
[smtp]
listen = ["127.0.0.1:$SMTP"]
[submission]
listen = ["127.0.0.1:20587"]
[pop3]
listen = ["127.0.0.1:$POP3"]
[clients]
# Load generators are one loopback client with hundreds of sessions.
exempt = ["127.0.0.0/8"]
[imap]
listen = []
TOML
case "$TOOL" in
  callgrind) n=${BENCH_PROFILE_MESSAGES:-1000}
     valgrind --tool=callgrind --callgrind-out-file="$RUN/callgrind.out" --separate-threads=no \
         "$FM" serve --config "$RUN/ferrymail.toml" 2> "$RUN/server.log" & pid=$!;;
  perf) n=${BENCH_PROFILE_MESSAGES:-20000}
     "$FM" serve --config "$RUN/ferrymail.toml" 2> "$RUN/server.log" & pid=$!;;
  *) echo "usage: $0 callgrind|perf"; exit 2;;
esac
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$POP3 " && break; sleep 0.1; done
for u in bench1 bench2 bench3 bench4; do echo benchpass | "$FM" user add "$u@bench.test" --password-stdin --config "$RUN/ferrymail.toml" >/dev/null; done
rcpts=bench1@bench.test,bench2@bench.test,bench3@bench.test,bench4@bench.test
if [ "$TOOL" = perf ]; then
    perf record -e cpu-clock -F 999 -g -p "$pid" -o "$RUN/perf.data" 2> "$RUN/perf.log" & ppid=$!
    sleep 0.5
fi
"$LOAD" smtp --port "$SMTP" --sessions "${BENCH_SESSIONS:-20}" --messages "$n" --rcpt "$rcpts" --timeout 600 | tee "$RUN/load.json"
if [ "$TOOL" = perf ]; then
    kill -INT $ppid; wait $ppid || true
    perf report -i "$RUN/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^$' | head -60 > "$RUN/perf-top.txt"
    perf report -i "$RUN/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^$' | head -80 > "$RUN/perf-inclusive.txt"
    echo "see $RUN/perf-top.txt and perf-inclusive.txt"
fi
kill "$pid"; wait "$pid" || true; trap - EXIT
if [ "$TOOL" = callgrind ]; then
    callgrind_annotate --inclusive=yes "$RUN/callgrind.out" 2>/dev/null | head -70 > "$RUN/callgrind-inclusive.txt"
    callgrind_annotate "$RUN/callgrind.out" 2>/dev/null | head -50 > "$RUN/callgrind-self.txt"
    echo "see $RUN/callgrind-inclusive.txt and callgrind-self.txt"
fi
