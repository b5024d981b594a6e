#!/usr/bin/env bash
# Counts the server's system calls per accepted message (issue 13 goal 3:
# at most one fsync-class call per 8 messages at 20 sessions, no futex or
# sched_yield storm): `strace -c -f` on the server during an smtp-source
# run of 2.3 KB messages over four local mailboxes. Also prints the store's
# size on disk against the bytes of the messages it holds, and peak RSS.
#   benches/scripts/syscalls.sh [messages (5000)] [sessions (20)]
# env: BENCH_FERRYMAIL_BIN (default $CARGO_TARGET_DIR/release/ferrymail)
set -euo pipefail
N=${1:-5000}; S=${2:-20}
T=${CARGO_TARGET_DIR:-/work/target}
FM=${BENCH_FERRYMAIL_BIN:-$T/release/ferrymail}
RUN=$(mktemp -d /tmp/ferrymail-syscalls.XXXXXX)
SMTP=$((21000 + RANDOM % 2000)); POP3=$((SMTP + 1))
cat > "$RUN/ferrymail.toml" <<TOML
data_dir = "$RUN/data"
hostname = "mx.bench.test"
local_domains = ["bench.test"]
[smtp]
listen = ["127.0.0.1:$SMTP"]
[submission]
listen = []
[pop3]
listen = ["127.0.0.1:$POP3"]
[clients]
# Load generators are one loopback client with hundreds of sessions.
exempt = ["127.0.0.0/8"]
[imap]
listen = []
[log]
level = "warn"
TOML
"$FM" serve --config "$RUN/ferrymail.toml" 2> "$RUN/server.log" & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$POP3 " && break; sleep 0.1; done
for u in bench1 bench2 bench3 bench4; do
    echo benchpass | "$FM" user add "$u@bench.test" --password-stdin --config "$RUN/ferrymail.toml" >/dev/null
done
strace -c -f -q -p "$pid" -o "$RUN/strace.txt" & spid=$!
sleep 1
start=$(date +%s.%N)
# One local recipient per message.
/usr/sbin/smtp-source -c -s "$S" -m "$N" -l 2300 -f sender@client.test \
    -t bench1@bench.test 127.0.0.1:"$SMTP" >"$RUN/smtp-source.log" 2>&1 || true
end=$(date +%s.%N)
kill -INT $spid; wait $spid 2>/dev/null || true
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill "$pid"; wait "$pid" 2>/dev/null || true; trap - EXIT
stored=$(du -sb "$RUN/data/store" | cut -f1)
echo "messages=$N sessions=$S seconds=$(echo "$end - $start" | bc) msg_per_s=$(echo "$N / ($end - $start)" | bc)"
echo "peak_rss_kib=$rss store_bytes=$stored message_bytes=$((N * 2300)) ratio=$(echo "scale=2; $stored / ($N * 2300)" | bc)"
awk -v n="$N" 'NR<=2 || /fsync|fdatasync|sync_file_range|futex|sched_yield|pwrite|write|total/ {print} \
    /fsync|fdatasync|sync_file_range/ {s += $4} END {printf "fsync-class calls per message: %.3f\n", s / n}' "$RUN/strace.txt"
echo "(full table: $RUN/strace.txt)"
