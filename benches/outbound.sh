#!/usr/bin/env bash
# Outbound throughput, in one run on one machine:
#   raw       smtp-source -> smtp-sink                    (the protocol ceiling)
#   ferrymail smtp-source -> ferrymail -> MX -> smtp-sink  (relaying, one domain)
#   postfix   smtp-source -> Postfix  -> smtp-sink         (the same relay path)
# 2 KB messages, 20 sessions in, up to 20 connections out to the one domain.
# Rate = messages / (first injected .. last one counted by the sink), so
# acceptance (with its fsync) and delivery are both in it, for both servers.
#
# Usage: benches/outbound.sh [messages=5000] [runs=3]
# Needs: postfix installed and set up by shared/bench/postfix_ctl.sh setup
# (smtp-source, smtp-sink; its listener on 127.0.0.1:2525) with
#   postconf -e 'transport_maps = inline:{ sink.test=smtp:[127.0.0.1]:2599 }'
# and a release build of ferrymail ($FM_BIN or $CARGO_TARGET_DIR/release).
# Loopback only; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
RUNS=${2:-3}
SESSIONS=20
SIZE=2048
SINK_PORT=2599
FM_PORT=${FM_PORT:-12525}
BIN=${FM_BIN:-${CARGO_TARGET_DIR:-target}/release/ferrymail}
WORK=$(mktemp -d /tmp/fm-outbound.XXXXXX)
PIDS=()
STARTED_POSTFIX=0
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if ((STARTED_POSTFIX)); then postfix stop >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

smtp-sink -c -4 -u nobody "127.0.0.1:$SINK_PORT" 1024 >"$WORK/sink.out" 2>&1 &
PIDS+=($!)
sink_count() { tr '\r' '\n' <"$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || echo 0; }

# sink.test's MX is the sink's host, served by the tests' loopback DNS server.
python3 benches/scripts/sink_dns.py >"$WORK/dns.port" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $WORK/dns.port ]] && break; sleep 0.1; done
DNS_PORT=$(cat "$WORK/dns.port")

cat >"$WORK/ferrymail.toml" <<EOF
data_dir = "$WORK/data"
hostname = "mx.ferry.test"
[smtp]
listen = ["127.0.0.1:$FM_PORT"]
[submission]
listen = []
[pop3]
listen = []
[clients]
# Load generators are one loopback client with hundreds of sessions.
exempt = ["127.0.0.0/8"]
[imap]
listen = []
[dns]
nameservers = ["127.0.0.1:$DNS_PORT"]
[delivery]
port = $SINK_PORT
max_connections_per_domain = 20
[log]
level = "warn"
EOF
"$BIN" serve --config "$WORK/ferrymail.toml" >"$WORK/ferrymail.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$FM_PORT) 2>/dev/null && break; sleep 0.1; done

if ! postfix status >/dev/null 2>&1; then
    postfix start >/dev/null 2>&1
    STARTED_POSTFIX=1
    sleep 1
fi
postfix_idle() { /work/shared/bench/postfix_ctl.sh wait-idle; }

# One measured run: inject N messages to port $1, wait until the sink has them.
run() {
    local port=$1 before start end
    before=$(sink_count)
    start=$(date +%s.%N)
    smtp-source -d -s $SESSIONS -m "$N" -l $SIZE -f src@client.test -t rcpt@sink.test "127.0.0.1:$port"
    for _ in $(seq 6000); do
        (($(sink_count) - before >= N)) && break
        sleep 0.05
    done
    end=$(date +%s.%N)
    (($(sink_count) - before >= N)) || { echo "timed out on port $port" >&2; exit 1; }
    python3 -c "print(f'{$N / ($end - $start):.0f}')"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A rates
for i in $(seq "$RUNS"); do
    rates[raw]+="$(run $SINK_PORT) "
    rates[ferrymail]+="$(run "$FM_PORT") "
    postfix_idle
    rates[postfix]+="$(run 2525) "
    postfix_idle
    echo "run $i done: raw=[${rates[raw]}] ferrymail=[${rates[ferrymail]}] postfix=[${rates[postfix]}]" >&2
done
raw=$(median ${rates[raw]})
fm=$(median ${rates[ferrymail]})
pf=$(median ${rates[postfix]})
echo "messages=$N size=$SIZE sessions=$SESSIONS runs=$RUNS (medians, messages/s)"
echo "raw smtp-source->smtp-sink: $raw   (runs: ${rates[raw]})"
echo "ferrymail relay:            $fm   (runs: ${rates[ferrymail]})"
echo "postfix relay:              $pf   (runs: ${rates[postfix]})"
python3 -c "print(f'ferrymail/postfix = {$fm / $pf:.2f}   ferrymail/raw = {$fm / $raw:.2f}   postfix/raw = {$pf / $raw:.2f}')"
