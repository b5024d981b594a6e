#!/usr/bin/env bash
# Counts the server's system calls per accepted message (issue 13 goal 3:
# at most one fsync-class call per 8 messages at 20 sessions, no futex or
# sched_yield storm): `strace -c -f` on the server during an smtp-source
# run of 2.3 KB messages to a local mailbox. Also prints the server's CPU
# time per message, its peak RSS, and the store's size on disk against the
# bytes of the messages it holds. Counts, unlike rates, do not depend on
# what else runs on the machine.
#   benches/scripts/syscalls.sh [messages (5000)] [sessions (20)]
# env: BENCH_FERRYMAIL_BIN (default $CARGO_TARGET_DIR/release/ferrymail)
#      BENCH_CONN_PER_MSG=1: one message per connection (default: persistent
#      sessions, smtp-source -d)
#      BENCH_PLUGINS=1: compare.sh's four extra plugins (rate-limit with a
#      kv counter per client, relay as an RCPT check, two header-filters on
#      DATA) in front of the default chain, to count what the chain costs
#      BENCH_TRACE=strace: the full table from `strace -c -f` (its overhead
#      slows the server several times, which changes how changes group);
#      default: `perf stat` counting syscall tracepoints (little overhead)
#      where perf works, else strace; BENCH_TRACE=0: no counting
set -euo pipefail
N=${1:-5000}; S=${2:-20}
T=${CARGO_TARGET_DIR:-/work/target}
FM=${BENCH_FERRYMAIL_BIN:-$T/release/ferrymail}
RUN=$(mktemp -d /tmp/ferrymail-syscalls.XXXXXX)
SMTP=$((21000 + RANDOM % 2000)); POP3=$((SMTP + 1))
PERSIST=-d; [ "${BENCH_CONN_PER_MSG:-0}" = 1 ] && PERSIST=""
CHAIN=""; PLUGINS=""
if [ "${BENCH_PLUGINS:-0}" = 1 ]; then
    . "$(dirname "$0")/four_plugins.sh"
    CHAIN=$FM_PLUGINS_CHAIN; PLUGINS=$FM_PLUGINS_TABLES
fi
cat > "$RUN/ferrymail.toml" <<TOML
data_dir = "$RUN/data"
hostname = "mx.bench.test"
local_domains = ["bench.test"]
$CHAIN
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
# No DNS here: SPF/DKIM/DMARC look-ups would each wait for their time-out
# (BENCH_FM_MAIL_AUTH=true: on).
[mail_auth]
verify = ${BENCH_FM_MAIL_AUTH:-false}
[log]
level = "${BENCH_FM_LOG_LEVEL:-info}"
$PLUGINS
TOML
"$FM" serve --config "$RUN/ferrymail.toml" 2> "$RUN/server.log" & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$POP3 " && break; sleep 0.1; done
for u in bench1 bench2 bench3 bench4; do
    echo benchpass | "$FM" user add "$u@bench.test" --password-stdin --config "$RUN/ferrymail.toml" >/dev/null
done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
spid=""; TRACE=${BENCH_TRACE:-perf}
if [ "$TRACE" = perf ] && ! perf stat -e syscalls:sys_enter_fdatasync true >/dev/null 2>&1; then TRACE=strace; fi
COUNTED="fsync fdatasync sync_file_range futex sched_yield pwrite64 write writev sendto recvfrom epoll_wait mmap munmap"
if [ "$TRACE" = perf ]; then
    perf stat -x, -o "$RUN/perf.txt" -p "$pid" $(for c in $COUNTED; do printf -- '-e syscalls:sys_enter_%s ' "$c"; done) & spid=$!
    sleep 1
elif [ "$TRACE" = strace ]; then
    strace -c -f -q -p "$pid" -o "$RUN/strace.txt" & spid=$!
    sleep 1
fi
cpu0=$(cpu); start=$(date +%s.%N)
# One local recipient per message.
/usr/sbin/smtp-source $PERSIST -s "$S" -m "$N" -l 2300 -f sender@client.test \
    -t bench1@bench.test 127.0.0.1:"$SMTP" >"$RUN/smtp-source.log" 2>&1 || true
end=$(date +%s.%N); cpu1=$(cpu)
if [ -n "$spid" ]; then kill -INT "$spid"; wait "$spid" 2>/dev/null || true; fi
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
accepted=$(grep -c '"accepted"\|accepted$\| accepted ' "$RUN/server.log" || true)
kill "$pid"; wait "$pid" 2>/dev/null || true; trap - EXIT
stored=$(du -sb "$RUN/data/store" | cut -f1)
tck=$(getconf CLK_TCK)
echo "messages=$N sessions=$S persistent=${PERSIST:+yes} seconds=$(echo "$end - $start" | bc) msg_per_s=$(echo "$N / ($end - $start)" | bc) accepted_log_lines=$accepted"
echo "server_cpu_ms_per_msg=$(echo "scale=3; ($cpu1 - $cpu0) * 1000 / $tck / $N" | bc) (user+sys, counted with: $TRACE)"
echo "peak_rss_kib=$rss store_bytes=$stored message_bytes=$((N * 2300)) ratio=$(echo "scale=2; $stored / ($N * 2300)" | bc)"
if [ "$TRACE" = perf ]; then
    awk -F, -v n="$N" '/sys_enter_/ {c=$1; sub(/.*sys_enter_/, "", $3); printf "%-16s %9d  %8.3f per message\n", $3, c, c / n; \
        if ($3 ~ /sync/) s += c} END {printf "fsync-class per message: %.3f (one per %.1f messages)\n", s / n, s ? n / s : 0}' "$RUN/perf.txt"
elif [ "$TRACE" = strace ]; then
    awk -v n="$N" 'NR<=2 || /fsync|fdatasync|sync_file_range|futex|sched_yield|pwrite|write|total/ {print} \
        /fsync|fdatasync|sync_file_range/ {s += $4} $NF=="futex" {f=$4} $NF=="sched_yield" {y=$4} \
        END {printf "per message: fsync-class %.3f, futex %.1f, sched_yield %.2f\n", s / n, f / n, y / n}' "$RUN/strace.txt"
    echo "(full table: $RUN/strace.txt)"
fi
