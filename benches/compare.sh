#!/usr/bin/env bash
# Side-by-side benchmark: ferrymail against Postfix, Dovecot and Haraka, same
# client (ferrymail-load), same workloads, one run. Prints a markdown table
# (medians of BENCH_RUNS runs) and keeps every run's JSON in $RUN/results.jsonl.
#
#   benches/compare.sh                    # full: installs peers if missing, ~30-45 min
#   BENCH_QUICK=1 benches/compare.sh      # smoke: small counts, 1 run
#   BENCH_ONLY="inbound pop3" benches/compare.sh
#   BENCH_ONLY=observability benches/compare.sh   # metrics, trace, both: each against both off
#   BENCH_ONLY=cluster benches/compare.sh   # sled, PostgreSQL 1 and 3 nodes, Postfix (needs postgresql)
#   BENCH_ONLY=ab BENCH_AB_BIN=/path/to/other/ferrymail benches/compare.sh
#                                         # this build (a) against another (b), alternating
#
# Loopback only. ferrymail listens on 127.0.0.1:20025 (SMTP) / 20110 (POP3);
# peers on their shared-harness ports (Postfix 2525/2527, Haraka 2526,
# Dovecot 1143/1110, smtp-sink 2599). Every setting is a BENCH_* variable
# (never FERRYMAIL_*: those are ferrymail's own configuration).
#
# Each workload is one function `wl_<name>`; a capability that lands later
# (plugin runtime, outbound relay, IMAP) fills in its `fm_<name>` function.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
export BENCH_RUN_DIR=${BENCH_RUN_DIR:-/tmp/ferrymail-bench-cmp}; RUN=$BENCH_RUN_DIR
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then def_msgs=2000; def_box=1000; def_idle=1000; def_runs=1; else def_msgs=20000; def_box=10000; def_idle=10000; def_runs=3; fi
MSGS=${BENCH_MESSAGES:-$def_msgs}; SESSIONS=${BENCH_SESSIONS:-20}; SIZE=${BENCH_SIZE:-2048}
BOX=${BENCH_MAILBOX:-$def_box}; IDLE=${BENCH_IDLE:-$def_idle}; RUNS=${BENCH_RUNS:-$def_runs}
MODES=${BENCH_MODES:-persistent conn-per-msg}
ONLY=${BENCH_ONLY:-inbound observability syscalls fullstore plugins pop3 imap outbound cluster idle}
FM_SMTP=${BENCH_FM_SMTP_PORT:-20025}; FM_POP3=${BENCH_FM_POP3_PORT:-20110}
FM_SUBM=${BENCH_FM_SUBMISSION_PORT:-20587}; FM_IMAP=${BENCH_FM_IMAP_PORT:-20143}
PF=${BENCH_PF_PORT:-2525}; PF_HOLD=${BENCH_PF_HOLD_PORT:-2527}; HARAKA=${BENCH_HARAKA_PORT:-2526}
DC_IMAP=${BENCH_DC_IMAP_PORT:-1143}; DC_POP3=${BENCH_DC_POP3_PORT:-1110}; SINK=${BENCH_SINK_PORT:-2599}
PASS=${BENCH_PASS:-benchpass}; DOMAIN=bench.test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
FM_BIN=${BENCH_FERRYMAIL_BIN:-$CARGO_TARGET_DIR/release/ferrymail}
LOAD=${BENCH_LOAD_BIN:-$CARGO_TARGET_DIR/release/ferrymail-load}
FILL=${BENCH_FILL_BIN:-$CARGO_TARGET_DIR/release/ferrymail-fill}
RESULTS=$RUN/results.jsonl
FM_PID=""; SINK_PID=""; STARTED_POSTFIX=0; DNS_PID=""; PG_NODES=()
mkdir -p "$RUN"; : > "$RESULTS"

log() { printf '== %s\n' "$*" >&2; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }

cleanup() {
    set +e
    fm_stop
    [ "${#PG_NODES[@]}" -gt 0 ] && pg_nodes_stop
    [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null
    "$HERE/peers/haraka.sh" stop >/dev/null 2>&1
    "$HERE/peers/dovecot.sh" stop >/dev/null 2>&1
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    [ "$STARTED_POSTFIX" = 1 ] && "$HERE/peers/postfix.sh" stop
}
trap cleanup EXIT

# ---------------------------------------------------------------- ferrymail
# fm_config [CHAIN_LINE [PLUGIN_TABLES]]: the config file; without
# arguments, ferrymail's default plugin chain (auth, local, relay, vrfy-expn,
# retry: the embedded wasm plugins, so every run goes through wasmtime).
# Compiled plugins are cached outside the data dir, as across a restart.
fm_config() {
    fm_write_config "$RUN/ferrymail.toml" "$RUN/ferrymail-data" "mx.$DOMAIN" "$FM_SMTP" "$FM_SUBM" "$FM_POP3" "$FM_IMAP" \
        "${1:-}" "${2:-}"
}
# fm_write_config FILE DATA_DIR HOSTNAME SMTP SUBMISSION POP3 IMAP TOP_LINES TABLES:
# one server's configuration (fm_config's; each cluster node's).
fm_write_config() {
    cat > "$1" <<TOML
data_dir = "$2"
plugin_cache_dir = "$RUN/ferrymail-plugin-cache"
hostname = "$3"
local_domains = ["$DOMAIN"]
relay_networks = ["127.0.0.0/8"]
$8
[smtp]
listen = ["127.0.0.1:$4"]
max_sessions = 20000
[submission]
listen = ["127.0.0.1:$5"]
[pop3]
listen = ["127.0.0.1:$6"]
[clients]
# Load generators are one loopback client with hundreds of sessions.
exempt = ["127.0.0.0/8"]
[imap]
listen = ["127.0.0.1:$7"]
# The peers check no SPF/DKIM/DMARC either, and on a machine without DNS
# every message would wait for the look-ups' time-out (BENCH_FM_MAIL_AUTH=true: on).
[mail_auth]
verify = ${BENCH_FM_MAIL_AUTH:-false}
[log]
level = "${BENCH_FM_LOG_LEVEL:-info}"
$9
TOML
}

# fm_start [CHAIN_LINE [PLUGIN_TABLES]]: fresh data dir, start, wait for the
# port, create the bench accounts.
fm_start() {
    fm_stop
    rm -rf "$RUN/ferrymail-data"; fm_config "$@"
    "$FM_BIN" serve --config "$RUN/ferrymail.toml" 2>> "$RUN/ferrymail.log" &
    FM_PID=$!
    for _ in $(seq 1 100); do ss -ltn | grep -q "127.0.0.1:$FM_POP3 " && break; sleep 0.1; done
    kill -0 "$FM_PID" || { echo "ferrymail did not start: $RUN/ferrymail.log" >&2; exit 1; }
    for u in bench1 bench2 bench3 bench4 imap10k; do
        echo "$PASS" | "$FM_BIN" user add "$u@$DOMAIN" --password-stdin --config "$RUN/ferrymail.toml" >/dev/null
    done
}

# fm_restart: start again on the data dir as it is.
fm_restart() {
    fm_stop
    "$FM_BIN" serve --config "$RUN/ferrymail.toml" 2>> "$RUN/ferrymail.log" &
    FM_PID=$!
    for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$FM_POP3 " && break; sleep 0.1; done
    kill -0 "$FM_PID" || { echo "ferrymail did not start: $RUN/ferrymail.log" >&2; exit 1; }
}

fm_stop() {
    if [ -n "$FM_PID" ] && kill -0 "$FM_PID" 2>/dev/null; then
        kill "$FM_PID"; wait "$FM_PID" 2>/dev/null || true
    fi
    FM_PID=""
}

fm_users() { local s=""; for u in "$@"; do s+="$u@$DOMAIN:$PASS,"; done; echo "${s%,}"; }
RCPTS="bench1@$DOMAIN,bench2@$DOMAIN,bench3@$DOMAIN,bench4@$DOMAIN"

# load LABEL ARGS...: one ferrymail-load run, result appended to $RESULTS.
load() { local label=$1; shift; "$LOAD" "$@" --label "$label" --json-out "$RESULTS" >/dev/null || log "run $label reported failures (see $RESULTS)"; }
mode_flag() { [ "$1" = conn-per-msg ] && echo --conn-per-msg || true; }

# -------------------------------------------------------------- peers setup
setup_peers() {
    [ "${BENCH_SKIP_SETUP:-0}" = 1 ] && return
    log "peers: install/configure if missing (postfix, dovecot, haraka)"
    if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then apt-get update -qq; fi
    "$HERE/peers/postfix.sh" setup >/dev/null
    "$HERE/peers/dovecot.sh" setup
    "$HERE/peers/haraka.sh" setup
}

postfix_up() {
    if ! postfix status >/dev/null 2>&1; then STARTED_POSTFIX=1; fi
    "$HERE/peers/postfix.sh" start
}

# smtp-sink on $SINK: accepts and discards (-u nobody: it may not run as root).
sink_up() { smtp-sink -4 -u nobody "127.0.0.1:$SINK" 1024 >/dev/null 2>&1 & SINK_PID=$!; sleep 0.3; }
sink_down() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""; }

# store_size LABEL MESSAGES: the stopped server's store on disk against the
# bytes of the messages it holds (each content is stored once, however many
# mailboxes it is filed in; $SIZE body bytes + ~300 of headers a message).
store_size() {
    local bytes; bytes=$(du -sb "$RUN/ferrymail-data/store" | cut -f1)
    printf '{"label": "%s", "store_bytes": %s, "store_ratio": %s}\n' "$1" "$bytes" \
        "$(echo "scale=3; $bytes / ($2 * ($SIZE + 300))" | bc | sed 's/^\./0./')" >> "$RESULTS"
}

# ---------------------------------------------------------------- workloads
# 1. Inbound accept + local delivery: "delivered" = visible in the mailbox
#    (ferrymail: POP3 STAT; Postfix: Maildir files). Haraka (file queue +
#    fsync, no mailbox) is the durable-acceptance reference.
wl_inbound() {
    local mode run
    for mode in $MODES; do
        for run in $(seq 1 "$RUNS"); do
            log "inbound $mode run $run: smtp-sink (the protocol ceiling: same client, a server that keeps nothing)"
            sink_up
            load "inbound-$mode/sink" smtp --port "$SINK" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                --rcpt "$RCPTS" $(mode_flag "$mode")
            sink_down
            log "inbound $mode run $run: ferrymail"
            fm_start
            load "inbound-$mode/ferrymail" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                --rcpt "$RCPTS" $(mode_flag "$mode") --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" \
                --pop3-port "$FM_POP3" --watch-pid "$FM_PID"
            fm_stop
            store_size "inbound-$mode/ferrymail-store" "$MSGS"
            log "inbound $mode run $run: postfix"
            postfix_up; "$HERE/peers/postfix.sh" wait-idle; "$HERE/peers/postfix.sh" clean-maildirs; sync
            load "inbound-$mode/postfix" smtp --port "$PF" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                --rcpt "$RCPTS" $(mode_flag "$mode") --count-maildirs /home/bench1/Maildir,/home/bench2/Maildir,/home/bench3/Maildir,/home/bench4/Maildir \
                --watch-pid "$("$HERE/peers/postfix.sh" pid)"
            log "inbound $mode run $run: haraka (file queue + fsync)"
            BENCH_HARAKA_QUEUE=file "$HERE/peers/haraka.sh" start; "$HERE/peers/haraka.sh" clean-spool
            load "inbound-$mode/haraka-fsync" smtp --port "$HARAKA" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                --rcpt "$RCPTS" $(mode_flag "$mode") --count-cmd "$HERE/peers/haraka.sh spool-count" \
                --watch-pid "$("$HERE/peers/haraka.sh" pid)"
            "$HERE/peers/haraka.sh" stop
        done
    done
    "$HERE/peers/postfix.sh" clean-maildirs
}

# 1a. A/B (only when asked: BENCH_ONLY=ab): the same inbound workload on this
#     build ("a") and on BENCH_AB_BIN ("b", e.g. the commit before a change),
#     alternating run by run so both see the same background load.
wl_ab() {
    local run mode bin
    [ -n "${BENCH_AB_BIN:-}" ] || { echo "BENCH_ONLY=ab needs BENCH_AB_BIN=/path/to/ferrymail" >&2; exit 2; }
    for mode in $MODES; do
        for run in $(seq 1 "$RUNS"); do
            for bin in a b; do
                log "ab $mode run $run: ferrymail $bin"
                if [ "$bin" = a ]; then fm_start; else FM_BIN=$AB_BIN fm_start; fi
                load "ab-$mode/$bin" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                    --rcpt "$RCPTS" $(mode_flag "$mode") --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" \
                    --pop3-port "$FM_POP3" --watch-pid "$FM_PID"
                fm_stop
                store_size "ab-$mode/$bin-store" "$MSGS"
            done
        done
    done
}

# 1b. System calls per message (issue 13 goal 3): benches/scripts/syscalls.sh
#     (Postfix's smtp-source, 20 persistent sessions, 5,000 messages, perf
#     stat on syscall tracepoints). Counts do not depend on the machine's load.
wl_syscalls() {
    local out
    log "syscalls: ferrymail, smtp-source, $SESSIONS sessions, ${BENCH_SYSCALL_MESSAGES:-5000} messages"
    out=$(BENCH_FERRYMAIL_BIN="$FM_BIN" "$HERE/scripts/syscalls.sh" "${BENCH_SYSCALL_MESSAGES:-5000}" "$SESSIONS" 2>&1) || true
    echo "$out" >&2
    echo "$out" | awk '
        $1 == "futex" {f = $3} $1 == "sched_yield" {y = $3}
        /^fsync-class per message/ {s = $4}
        /^server_cpu_ms_per_msg/ {split($1, a, "="); c = a[2]}
        END {if (s != "") printf "{\"label\": \"syscalls/ferrymail\", \"fsync_per_msg\": %.3f, \"futex_per_msg\": %.2f, \"yield_per_msg\": %.3f, \"cpu_ms_per_msg\": %.3f}\n", s, f, y, c}' >> "$RESULTS"
}

# 1c. Flat with store size: inbound into an empty store, then into one
#     already holding $FULL messages (filled straight through the store API
#     by ferrymail-fill: SMTP would take hours for a million).
FULL=${BENCH_FULL_STORE:-1000000}; [ "$QUICK" = 1 ] && FULL=${BENCH_FULL_STORE:-20000}
wl_fullstore() {
    local run
    for run in $(seq 1 "$RUNS"); do
        log "fullstore run $run: ferrymail, empty store"
        fm_start
        load "fullstore/ferrymail-empty" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "$RCPTS" --watch-pid "$FM_PID"
        fm_stop
    done
    log "fullstore: filling a mailbox with $FULL messages (ferrymail-fill)"
    fm_start; fm_stop
    "$FILL" --store "$RUN/ferrymail-data/store" --account "imap10k@$DOMAIN" --messages "$FULL" --size "$SIZE" >&2
    fm_restart
    for run in $(seq 1 "$RUNS"); do
        log "fullstore run $run: ferrymail, $FULL messages stored"
        load "fullstore/ferrymail-full" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "$RCPTS" --watch-pid "$FM_PID"
    done
    # POP3 STAT + LIST of the full mailbox (RETR of all of it would take long).
    python3 - "$FM_POP3" "imap10k@$DOMAIN" "$PASS" >> "$RESULTS" <<'PY'
import json, poplib, sys, time
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=600)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
t = time.monotonic(); n = p.stat()[0]; p.list(); s = time.monotonic() - t
p.quit()
print(json.dumps({"label": "fullstore/pop3-full", "messages": n, "stat_list_s": round(s, 3)}))
PY
    fm_stop
    store_size "fullstore/ferrymail-store" "$((FULL + MSGS * (RUNS)))"
}

# 1d. The cost of watching (issue 11): ferrymail's inbound workload with
#    metrics (scraped every second, as Prometheus would) and the decision
#    trace each on alone and both on, against both off; the modes take
#    turns within each run so drift in the machine's load hits all alike.
#    BENCH_OBS_MODES picks modes (default: off metrics trace on).
#    ferrymail only: peers have no such switch.
FM_METRICS=${BENCH_FM_METRICS_PORT:-20925}
OBS_MODES=${BENCH_OBS_MODES:-off metrics trace on}
obs_tables() {
    local metrics="" trace="[trace]
enabled = false"
    case $1 in metrics|on) metrics="[metrics]
listen = [\"127.0.0.1:$FM_METRICS\"]" ;; esac
    case $1 in trace|on) trace="[trace]
enabled = true" ;; esac
    # (fm_config turns the SPF/DKIM/DMARC checks off, as in every workload.)
    printf '%s\n%s\n' "$metrics" "$trace"
}
wl_observability() {
    local run mode scraper
    for run in $(seq 1 "$RUNS"); do
        for mode in $OBS_MODES; do
            log "observability run $run: $mode (load average $(cut -d' ' -f1-3 /proc/loadavg))"
            fm_start "" "$(obs_tables "$mode")"
            scraper=""
            if [ "$mode" = metrics ] || [ "$mode" = on ]; then
                ( while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$FM_METRICS/metrics"; done ) & scraper=$!
            fi
            load "observability/$mode" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
                --rcpt "$RCPTS" --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" --pop3-port "$FM_POP3" --watch-pid "$FM_PID"
            if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true; fi
            fm_stop
        done
    done
}

# 2. Inbound through a 4-plugin chain. Haraka: bench_chain_{acl,helo,rcpt,data}
#    (connect ACL, HELO check, RCPT local domain, DATA size/header check +
#    add header) in front of its file queue. ferrymail: four embedded wasm
#    plugins prepended to its default chain (which every ferrymail run goes
#    through anyway), each called on every message, none refusing:
#      rate-limit     MAIL  per-client-IP kv counter, max far above the load  (~ acl)
#      rcpt-check     RCPT  builtin:relay: local domain? (host call) -> continue, x4 rcpts  (~ rcpt)
#      size-limit     DATA  builtin:header-filter, max_size 10 MiB, no stamp  (~ data: size)
#      header-filter  DATA  a deny rule that never matches + stamps X-Bench-Chain  (~ data: header)
#    No HELO plugin ships with ferrymail (Haraka's helo check runs once per
#    persistent session); dnsbl (needs DNS) and greylist (needs retries) are
#    left out. The same run also measures ferrymail with its default chain
#    alone ("ferrymail-default"), so the table shows the cost of the four.
. "$HERE/scripts/four_plugins.sh"
fm_plugins_load() {
    load "plugins-persistent/$1" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
        --rcpt "$RCPTS" --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" --pop3-port "$FM_POP3" --watch-pid "$FM_PID"
}
fm_plugins() {
    local run=$1
    log "plugins run $run: ferrymail, default chain"
    fm_start
    fm_plugins_load ferrymail-default
    fm_stop
    log "plugins run $run: ferrymail, 4 plugins + default chain"
    fm_start "$FM_PLUGINS_CHAIN" "$FM_PLUGINS_TABLES"
    fm_plugins_load ferrymail
    fm_stop
}
wl_plugins() {
    local run
    for run in $(seq 1 "$RUNS"); do
        fm_plugins "$run"
        log "plugins run $run: haraka, 4-plugin chain + file queue"
        BENCH_HARAKA_QUEUE=file BENCH_HARAKA_CHAIN=4 "$HERE/peers/haraka.sh" start; "$HERE/peers/haraka.sh" clean-spool
        load "plugins-persistent/haraka-fsync" smtp --port "$HARAKA" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "$RCPTS" --count-cmd "$HERE/peers/haraka.sh spool-count" --watch-pid "$("$HERE/peers/haraka.sh" pid)"
        "$HERE/peers/haraka.sh" stop
    done
}

# Dovecot's mailbox: imap10k's Maildir, filled once through Postfix.
fill_postfix_box() {
    local have; have=$("$HERE/peers/postfix.sh" maildir-count imap10k)
    if [ "$have" -ne "$BOX" ]; then
        log "filling imap10k Maildir with $BOX messages through postfix"
        postfix_up; "$HERE/peers/postfix.sh" clean-maildirs imap10k
        rm -f /home/imap10k/Maildir/dovecot* 2>/dev/null || true
        "$LOAD" smtp --port "$PF" --sessions 10 --messages "$BOX" --size "$SIZE" --rcpt "imap10k@$DOMAIN" \
            --count-maildirs /home/imap10k/Maildir --label fill/postfix >/dev/null
    fi
}

# 3. POP3: log in, STAT+LIST, RETR all of a $BOX-message mailbox. One
#    warm-up run (excluded), then $RUNS runs.
wl_pop3() {
    local run
    fm_start
    log "pop3: filling ferrymail imap10k@$DOMAIN with $BOX messages"
    "$LOAD" smtp --port "$FM_SMTP" --sessions 10 --messages "$BOX" --size "$SIZE" --rcpt "imap10k@$DOMAIN" --label fill/ferrymail >/dev/null
    for run in $(seq 0 "$RUNS"); do
        local suffix=""; [ "$run" = 0 ] && suffix=/warmup
        load "pop3/ferrymail$suffix" pop3 --port "$FM_POP3" --user "imap10k@$DOMAIN" --password "$PASS" --watch-pid "$FM_PID"
    done
    fm_stop
    fill_postfix_box; "$HERE/peers/dovecot.sh" start
    for run in $(seq 0 "$RUNS"); do
        local suffix=""; [ "$run" = 0 ] && suffix=/warmup
        load "pop3/dovecot$suffix" pop3 --port "$DC_POP3" --user imap10k --password "$PASS" --watch-pid "$("$HERE/peers/dovecot.sh" pid)"
    done
}

# 4. IMAP on the same $BOX-message mailbox: LOGIN, SELECT, FETCH 1:*
#    (FLAGS UID RFC822.SIZE ENVELOPE), FETCH 1:* BODY.PEEK[], SEARCH SUBJECT.
#    Cold: the server just restarted and the mailbox's files (ferrymail's
#    data dir; Dovecot's Maildir with its index files) evicted from the page
#    cache, so the first session reads them from disk; then one warm-up run
#    (excluded) and $RUNS warm runs. Dovecot's indexes are kept across the
#    restart, as a running server would have them.
evict() { python3 "$HERE/scripts/evict.py" "$@"; }
fm_restart() {
    fm_stop
    "$FM_BIN" serve --config "$RUN/ferrymail.toml" 2>> "$RUN/ferrymail.log" &
    FM_PID=$!
    for _ in $(seq 1 100); do ss -ltn | grep -q "127.0.0.1:$FM_IMAP " && break; sleep 0.1; done
}
fm_imap() {
    local run
    fm_start
    log "imap: filling ferrymail imap10k@$DOMAIN with $BOX messages"
    "$LOAD" smtp --port "$FM_SMTP" --sessions 10 --messages "$BOX" --size "$SIZE" --rcpt "imap10k@$DOMAIN" --label fill/ferrymail >/dev/null
    for run in $(seq 1 "$RUNS"); do
        fm_stop; evict "$RUN/ferrymail-data"; fm_restart
        load "imap-cold/ferrymail" imap --port "$FM_IMAP" --user "imap10k@$DOMAIN" --password "$PASS" --watch-pid "$FM_PID"
    done
    for run in $(seq 0 "$RUNS"); do
        local suffix=""; [ "$run" = 0 ] && suffix=/warmup
        load "imap/ferrymail$suffix" imap --port "$FM_IMAP" --user "imap10k@$DOMAIN" --password "$PASS" --watch-pid "$FM_PID"
    done
    fm_stop
}
wl_imap() {
    local run
    fm_imap
    fill_postfix_box
    for run in $(seq 1 "$RUNS"); do
        "$HERE/peers/dovecot.sh" stop; sleep 0.5; evict /home/imap10k/Maildir; "$HERE/peers/dovecot.sh" start
        load "imap-cold/dovecot" imap --port "$DC_IMAP" --user imap10k --password "$PASS" --watch-pid "$("$HERE/peers/dovecot.sh" pid)"
    done
    for run in $(seq 0 "$RUNS"); do
        local suffix=""; [ "$run" = 0 ] && suffix=/warmup
        load "imap/dovecot$suffix" imap --port "$DC_IMAP" --user imap10k --password "$PASS" --watch-pid "$("$HERE/peers/dovecot.sh" pid)"
    done
}

# 5. Outbound relay to smtp-sink: accepted for sink.test and relayed; done
#    when the sending server's queue is empty.
# ferrymail relays to smtp-sink: sink.test's MX is 127.0.0.1 (the tests'
# loopback DNS server, tests/e2e/fake_dns.py), delivery to the sink's port.
# Counted by its own metrics: attempts that ended "delivered".
fm_outbound() {
    local dns_port
    cat > "$RUN/fm-relayed.sh" <<SH
curl -s http://127.0.0.1:$FM_METRICS/metrics |
    awk '/^ferrymail_delivery_attempts_total\\{.*result="delivered"/ {s += \$NF} END {print s + 0}'
SH
    python3 "$HERE/scripts/sink_dns.py" > "$RUN/dns.port" &
    DNS_PID=$!
    for _ in $(seq 50); do [ -s "$RUN/dns.port" ] && break; sleep 0.1; done
    dns_port=$(cat "$RUN/dns.port")
    fm_start "" "[dns]
nameservers = [\"127.0.0.1:$dns_port\"]
[delivery]
port = $SINK
max_connections_per_domain = 20
[metrics]
listen = [\"127.0.0.1:$FM_METRICS\"]"
    load "outbound-persistent/ferrymail" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
        --rcpt "sink1@sink.test,sink2@sink.test" --count-cmd "sh $RUN/fm-relayed.sh" \
        --watch-pid "$FM_PID"
    fm_stop
    kill "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null || true; DNS_PID=""
}
wl_outbound() {
    local run
    sink_up
    for run in $(seq 1 "$RUNS"); do
        log "outbound run $run: smtp-source -> smtp-sink (the ceiling)"
        load "outbound-persistent/sink" smtp --port "$SINK" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "sink1@sink.test,sink2@sink.test"
        log "outbound run $run: ferrymail -> smtp-sink"
        fm_outbound
        log "outbound run $run: postfix -> smtp-sink"
        postfix_up; "$HERE/peers/postfix.sh" wait-idle
        load "outbound-persistent/postfix" smtp --port "$PF" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "sink1@sink.test,sink2@sink.test" --count-cmd "$HERE/peers/postfix.sh sent-count"
    done
    kill "$SINK_PID" 2>/dev/null; SINK_PID=""
}

# 5a. Several nodes on one PostgreSQL (BENCH_ONLY=cluster): the inbound
#     workload (persistent sessions) on sled, on PostgreSQL with one node and
#     with three nodes sharing the database (the sessions spread over the
#     three, as a DNS round robin would), and Postfix, in one run. On one
#     small machine three nodes share its CPUs with the database, so the
#     row to read for scaling on real hardware is the cost per message:
#     statements (each at least one round trip), commits, WAL and table bytes.
fm_node_config() { # fm_node_config K: node K's ports are the base ports + K
    local k=$1
    fm_write_config "$RUN/node$k.toml" "$RUN/node$k-data" "mx$k.$DOMAIN" \
        $((21025 + k)) $((21587 + k)) $((21110 + k)) $((21143 + k)) "" "[store]
backend = \"postgres\"
url = \"$("$HERE/peers/postgres.sh" url)\"
pool_size = ${BENCH_PG_POOL:-16}"
}
pg_nodes_start() { # pg_nodes_start N: a fresh database, N nodes on it, the bench accounts
    local k u
    "$HERE/peers/postgres.sh" start
    PG_NODES=()
    for k in $(seq 0 $(($1 - 1))); do
        rm -rf "$RUN/node$k-data"; fm_node_config "$k"
        "$FM_BIN" serve --config "$RUN/node$k.toml" 2>> "$RUN/node$k.log" &
        PG_NODES+=($!)
    done
    for k in $(seq 0 $(($1 - 1))); do
        for _ in $(seq 1 300); do ss -ltn | grep -q "127.0.0.1:$((21110 + k)) " && break; sleep 0.1; done
        kill -0 "${PG_NODES[$k]}" || { echo "node $k did not start: $RUN/node$k.log" >&2; exit 1; }
    done
    for u in bench1 bench2 bench3 bench4; do
        echo "$PASS" | "$FM_BIN" user add "$u@$DOMAIN" --password-stdin --config "$RUN/node0.toml" >/dev/null
    done
}
pg_nodes_stop() {
    local p
    for p in "${PG_NODES[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PG_NODES[@]}"; do wait "$p" 2>/dev/null || true; done
    PG_NODES=()
    "$HERE/peers/postgres.sh" stop || true
}
# pg_cost LABEL BEFORE AFTER MESSAGES: the database's work per message.
pg_cost() {
    local label=$1 msgs=$4 b a
    read -r -a b <<< "$2"; read -r -a a <<< "$3"
    python3 -c 'import json,sys; l,m=sys.argv[1],int(sys.argv[2]); b=[int(x) for x in sys.argv[3:7]]; a=[int(x) for x in sys.argv[7:11]]
print(json.dumps({"label": l, "db_statements_per_msg": round((a[0]-b[0])/m, 2), "db_commits_per_msg": round((a[1]-b[1])/m, 2),
                  "wal_bytes_per_msg": round((a[2]-b[2])/m), "db_bytes_per_msg": round((a[3]-b[3])/m)}))' \
        "$label" "$msgs" "${b[@]}" "${a[@]}" >> "$RESULTS"
}
wl_cluster() {
    local run n before ports
    "$HERE/peers/postgres.sh" setup
    for run in $(seq 1 "$RUNS"); do
        log "cluster run $run: ferrymail on sled"
        fm_start
        load "cluster/sled" smtp --port "$FM_SMTP" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "$RCPTS" --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" --pop3-port "$FM_POP3" --watch-pid "$FM_PID"
        fm_stop
        for n in 1 3; do
            log "cluster run $run: $n ferrymail node(s) on one PostgreSQL"
            pg_nodes_start "$n"
            ports=$(seq -s, 21026 $((21025 + n - 1)))
            before=$("$HERE/peers/postgres.sh" stats)
            load "cluster/pg-$n" smtp --port 21025 ${ports:+--also-ports "$ports"} --sessions "$SESSIONS" --messages "$MSGS" \
                --size "$SIZE" --rcpt "$RCPTS" --count-pop3 "$(fm_users bench1 bench2 bench3 bench4)" --pop3-port 21110 \
                --watch-pid "${PG_NODES[0]}"
            pg_cost "cluster/pg-$n-db" "$before" "$("$HERE/peers/postgres.sh" stats)" "$MSGS"
            pg_nodes_stop
        done
        log "cluster run $run: postfix"
        postfix_up; "$HERE/peers/postfix.sh" wait-idle; "$HERE/peers/postfix.sh" clean-maildirs; sync
        load "cluster/postfix" smtp --port "$PF" --sessions "$SESSIONS" --messages "$MSGS" --size "$SIZE" \
            --rcpt "$RCPTS" --count-maildirs /home/bench1/Maildir,/home/bench2/Maildir,/home/bench3/Maildir,/home/bench4/Maildir \
            --watch-pid "$("$HERE/peers/postfix.sh" pid)"
    done
    "$HERE/peers/postfix.sh" clean-maildirs
}

# 6. Memory held by $IDLE idle SMTP connections (greeting + EHLO, then idle).
wl_idle() {
    local run
    for run in $(seq 1 "$RUNS"); do
        log "idle run $run: ferrymail, $IDLE connections"
        fm_start
        load "idle/ferrymail" idle --port "$FM_SMTP" --connections "$IDLE" --ehlo --watch-pid "$FM_PID"
        fm_stop
        log "idle run $run: haraka, $IDLE connections"
        BENCH_HARAKA_QUEUE=discard "$HERE/peers/haraka.sh" start
        load "idle/haraka" idle --port "$HARAKA" --connections "$IDLE" --ehlo --watch-pid "$("$HERE/peers/haraka.sh" pid)"
        "$HERE/peers/haraka.sh" stop
    done
}

# --------------------------------------------------------------------- main
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building ferrymail and ferrymail-load (release)"
    (cd "$ROOT" && cargo build --release -q -p ferrymail -p ferrymail-benches)
fi
# Run copies of the binaries: a rebuild in the shared target dir during the
# run must not swap the server between workloads.
mkdir -p "$RUN/bin"
cp "$FM_BIN" "$RUN/bin/ferrymail"; cp "$LOAD" "$RUN/bin/ferrymail-load"; cp "$FILL" "$RUN/bin/ferrymail-fill"
FM_BIN=$RUN/bin/ferrymail; LOAD=$RUN/bin/ferrymail-load; FILL=$RUN/bin/ferrymail-fill
if [ -n "${BENCH_AB_BIN:-}" ]; then cp "$BENCH_AB_BIN" "$RUN/bin/ferrymail-b"; AB_BIN=$RUN/bin/ferrymail-b; fi
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT+="+dirty"; fi
STARTED=$(date -u +%Y-%m-%dT%H:%MZ); LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
setup_peers
# Dovecot checks passwords with the same argon2id parameters ferrymail uses
# (BENCH_DC_PLAIN=1: its PLAIN passwd-file instead, no hashing at all).
if [ "${BENCH_DC_PLAIN:-0}" != 1 ]; then BENCH_DC_PHC=$(echo "$PASS" | "$LOAD" phc); export BENCH_DC_PHC; fi
for w in ab inbound observability syscalls fullstore plugins pop3 imap outbound cluster idle; do
    if wants "$w"; then "wl_$w"; fi
done
"$HERE/scripts/table.py" "$RESULTS" --machine "$(nproc) vCPU, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)" \
    --params "messages=$MSGS sessions=$SESSIONS size=$SIZE mailbox=$BOX idle=$IDLE runs=$RUNS; ferrymail $COMMIT; $STARTED to $(date -u +%H:%MZ), load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$RUN/table.md"
