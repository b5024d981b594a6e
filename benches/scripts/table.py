#!/usr/bin/env python3
"""The comparison table from compare.sh's results.jsonl: medians per label
(warm-up and fill runs excluded), ferrymail beside each peer, and a ratio
that is always "ferrymail's advantage": > 1 means ferrymail did better
(higher rate, or lower time / latency / memory).

Usage: table.py results.jsonl [--machine TEXT] [--params TEXT]"""
import argparse, collections, json, statistics

HIGHER, LOWER = "higher", "lower"
# (workload, metric description, json key, better, ferrymail label, [(peer name, peer label)])
ROWS = []
for mode, conn in (("persistent", "persistent sessions"), ("conn-per-msg", "1 msg/connection")):
    fm = f"inbound-{mode}/ferrymail"
    pf, hk = f"inbound-{mode}/postfix", f"inbound-{mode}/haraka-fsync"
    w = f"inbound + local delivery ({conn})"
    ROWS += [
        (w, "delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, fm, [("Postfix", pf)]),
        (w, "accepted msg/s (250 after DATA)", "accept_msgs_per_s", HIGHER, fm, [("Postfix", pf), ("Haraka file+fsync", hk)]),
        (w, "p50 final-250 latency, ms", "p50_ms", LOWER, fm, [("Postfix", pf), ("Haraka file+fsync", hk)]),
        (w, "p99 final-250 latency, ms", "p99_ms", LOWER, fm, [("Postfix", pf), ("Haraka file+fsync", hk)]),
        (w, "peak memory (PSS, all processes), MiB", "pss_peak_mib", LOWER, fm, [("Postfix", pf), ("Haraka file+fsync", hk)]),
    ]
    ROWS += [
        (w, "share of the protocol ceiling (same client to smtp-sink), accepted msg/s", "accept_msgs_per_s", HIGHER, fm, [("smtp-sink", f"inbound-{mode}/sink")]),
        # RSS only for ferrymail: summed over Postfix's processes it counts
        # their shared pages many times (PSS above compares them).
        (w, "peak RSS of the server, MiB", "rss_peak_mib", LOWER, fm, []),
        (w, "store on disk / message bytes", "store_ratio", LOWER, f"inbound-{mode}/ferrymail-store", []),
    ]
# BENCH_ONLY=ab: this build against BENCH_AB_BIN, alternating (ratio > 1:
# this build did better).
for mode, conn in (("persistent", "persistent sessions"), ("conn-per-msg", "1 msg/connection")):
    w, b = f"A/B: this build (a) against BENCH_AB_BIN (b), {conn}", ("b", f"ab-{mode}/b")
    ROWS += [
        (w, "delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, f"ab-{mode}/a", [b]),
        (w, "accepted msg/s", "accept_msgs_per_s", HIGHER, f"ab-{mode}/a", [b]),
        (w, "p50 final-250 latency, ms", "p50_ms", LOWER, f"ab-{mode}/a", [b]),
        (w, "p99 final-250 latency, ms", "p99_ms", LOWER, f"ab-{mode}/a", [b]),
        (w, "peak RSS of the server, MiB", "rss_peak_mib", LOWER, f"ab-{mode}/a", [b]),
        (w, "store on disk / message bytes", "store_ratio", LOWER, f"ab-{mode}/a-store", [("b", f"ab-{mode}/b-store")]),
    ]
w = "system calls per message (smtp-source, 20 persistent sessions, benches/scripts/syscalls.sh)"
ROWS += [
    (w, "fsync-class calls (fsync, fdatasync, sync_file_range)", "fsync_per_msg", LOWER, "syscalls/ferrymail", []),
    (w, "futex", "futex_per_msg", LOWER, "syscalls/ferrymail", []),
    (w, "sched_yield", "yield_per_msg", LOWER, "syscalls/ferrymail", []),
    (w, "server CPU, ms", "cpu_ms_per_msg", LOWER, "syscalls/ferrymail", []),
]
w = "flat with store size (persistent, 4 rcpts)"
ROWS += [
    (w, "accepted msg/s, store already full (BENCH_FULL_STORE messages)", "accept_msgs_per_s", HIGHER, "fullstore/ferrymail-full", [("ferrymail, empty store", "fullstore/ferrymail-empty")]),
    (w, "POP3 STAT + LIST of the full mailbox, s", "stat_list_s", LOWER, "fullstore/pop3-full", []),
    (w, "store on disk / message bytes", "store_ratio", LOWER, "fullstore/ferrymail-store", []),
]
# ferrymail's 4 extra plugins run in front of its default chain (itself wasm
# plugins); "ferrymail, default chain only" is the same server without the
# four, measured in the same run: there the ratio is the four plugins' cost
# (< 1: slower / bigger with them).
w = "inbound, 4-plugin chain (persistent)"
hk, fm_default = ("Haraka file+fsync", "plugins-persistent/haraka-fsync"), ("ferrymail, default chain only", "plugins-persistent/ferrymail-default")
ROWS += [
    (w, "delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, "plugins-persistent/ferrymail", [fm_default]),
    (w, "accepted msg/s", "accept_msgs_per_s", HIGHER, "plugins-persistent/ferrymail", [hk, fm_default]),
    (w, "p50 final-250 latency, ms", "p50_ms", LOWER, "plugins-persistent/ferrymail", [hk, fm_default]),
    (w, "p99 final-250 latency, ms", "p99_ms", LOWER, "plugins-persistent/ferrymail", [hk, fm_default]),
    (w, "peak memory (PSS, all processes), MiB", "pss_peak_mib", LOWER, "plugins-persistent/ferrymail", [hk, fm_default]),
]
# Metrics (scraped each second) and the decision trace, each alone and
# both on, against both off, same server and run: the ratio is the cost of
# watching (< 1: slower with them on; issue 11's goal is within 3 %).
off = ("ferrymail, metrics and trace off", "observability/off")
for mode, what in (("on", "metrics + trace on"), ("metrics", "metrics only"), ("trace", "trace only")):
    w = f"inbound, {what} vs off (persistent)"
    ROWS += [
        (w, "delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, f"observability/{mode}", [off]),
        (w, "accepted msg/s", "accept_msgs_per_s", HIGHER, f"observability/{mode}", [off]),
        (w, "p50 final-250 latency, ms", "p50_ms", LOWER, f"observability/{mode}", [off]),
        (w, "p99 final-250 latency, ms", "p99_ms", LOWER, f"observability/{mode}", [off]),
    ]
w = "POP3 RETR all (one mailbox)"
ROWS += [
    (w, "login, s", "login_s", LOWER, "pop3/ferrymail", [("Dovecot", "pop3/dovecot")]),
    (w, "STAT + LIST, s", "stat_list_s", LOWER, "pop3/ferrymail", [("Dovecot", "pop3/dovecot")]),
    (w, "RETR all, msg/s", "retr_msgs_per_s", HIGHER, "pop3/ferrymail", [("Dovecot", "pop3/dovecot")]),
    (w, "peak memory (PSS, all processes), MiB", "pss_peak_mib", LOWER, "pop3/ferrymail", [("Dovecot", "pop3/dovecot")]),
]
for temp, prefix in (("warm", "imap"), ("cold", "imap-cold")):
    w = f"IMAP, one 10k-message mailbox ({temp})"
    dc = [("Dovecot", f"{prefix}/dovecot")]
    fm = f"{prefix}/ferrymail"
    ROWS += [
        (w, "connect + LOGIN, ms", "login_ms", LOWER, fm, dc),
        (w, "SELECT, ms", "select_ms", LOWER, fm, dc),
        (w, "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE), ms", "fetch_meta_ms", LOWER, fm, dc),
        (w, "FETCH 1:* BODY.PEEK[] (all bodies), ms", "fetch_body_ms", LOWER, fm, dc),
        (w, "SEARCH SUBJECT (every message), ms", "search_ms", LOWER, fm, dc),
        (w, "peak memory (PSS, all processes), MiB", "pss_peak_mib", LOWER, fm, dc),
    ]
w = "outbound relay to smtp-sink (persistent)"
ROWS += [
    (w, "relayed msg/s (sender's queue drained)", "deliver_msgs_per_s", HIGHER, "outbound-persistent/ferrymail", [("Postfix", "outbound-persistent/postfix")]),
    # The sink keeps nothing: what it accepted is "delivered".
    (w, "share of the ceiling (same client straight to smtp-sink), msg/s", "deliver_msgs_per_s", HIGHER, "outbound-persistent/ferrymail", [("smtp-sink", "outbound-persistent/sink")]),
]
# BENCH_ONLY=cluster: PostgreSQL, one node and three nodes on one database,
# against sled and Postfix in the same run; then the database's work per
# message, the figures from which throughput on bigger hardware follows.
w = "several nodes on one PostgreSQL (persistent, 4 rcpts)"
pg1, pg3 = "cluster/pg-1", "cluster/pg-3"
peers = [("Postfix", "cluster/postfix"), ("ferrymail on sled", "cluster/sled")]
ROWS += [
    (w, "1 node: delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, pg1, peers),
    (w, "1 node: accepted msg/s", "accept_msgs_per_s", HIGHER, pg1, peers),
    (w, "1 node: p50 final-250 latency, ms", "p50_ms", LOWER, pg1, peers),
    (w, "1 node: p99 final-250 latency, ms", "p99_ms", LOWER, pg1, peers),
    (w, "3 nodes: delivered msg/s (in mailbox)", "deliver_msgs_per_s", HIGHER, pg3, [("1 node", pg1)] + peers),
    (w, "3 nodes: p50 final-250 latency, ms", "p50_ms", LOWER, pg3, [("1 node", pg1)]),
]
for n in (1, 3):
    nodes = "1 node" if n == 1 else f"{n} nodes"
    ROWS += [
        (w, f"{nodes}: database statements per message", "db_statements_per_msg", LOWER, f"cluster/pg-{n}-db", []),
        (w, f"{nodes}: database commits per message", "db_commits_per_msg", LOWER, f"cluster/pg-{n}-db", []),
        (w, f"{nodes}: WAL bytes per message", "wal_bytes_per_msg", LOWER, f"cluster/pg-{n}-db", []),
        (w, f"{nodes}: database growth, bytes per message", "db_bytes_per_msg", LOWER, f"cluster/pg-{n}-db", []),
    ]
w = "idle SMTP connections (after EHLO)"
ROWS += [
    (w, "server memory per connection, KiB", "kib_per_conn", LOWER, "idle/ferrymail", [("Haraka", "idle/haraka")]),
    (w, "connections held", "open", HIGHER, "idle/ferrymail", [("Haraka", "idle/haraka")]),
]


def load(path):
    runs = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            label = r.get("label", "")
            if label.endswith("/warmup") or label.startswith("fill/"):
                continue
            if r.get("rss_peak_kb") is not None:
                r["rss_peak_mib"] = round(r["rss_peak_kb"] / 1024, 1)
            if r.get("pss_peak_kb") is not None:
                r["pss_peak_mib"] = round(r["pss_peak_kb"] / 1024, 1)
            for key in ("login_s", "select_s", "fetch_meta_s", "fetch_body_s", "search_s"):
                if r.get("proto") == "imap" and r.get(key) is not None:
                    r[key[:-2] + "_ms"] = round(r[key] * 1000, 1)
            if label == "outbound-persistent/sink":
                r.setdefault("deliver_msgs_per_s", r.get("accept_msgs_per_s"))
            if r.get("bytes_per_conn") is not None:
                r["kib_per_conn"] = round(r["bytes_per_conn"] / 1024, 1)
            runs[label].append(r)
    return runs


def median(runs, label, key):
    vals = [r[key] for r in runs.get(label, []) if r.get(key) is not None]
    return (statistics.median(vals), vals) if vals else (None, [])


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v < 10:
        return f"{v:.3g}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", default="")
    ap.add_argument("--params", default="")
    a = ap.parse_args()
    runs = load(a.results)
    if a.machine or a.params:
        print(f"Machine: {a.machine}. Parameters: {a.params}. Medians; ratio > 1 = ferrymail better.\n")
    print("| workload | metric | ferrymail | peer | peer value | ratio |")
    print("|---|---|---|---|---|---|")
    for workload, desc, key, better, fm_label, peers in ROWS:
        fm, fm_vals = median(runs, fm_label, key)
        if fm is None and not any(median(runs, p, key)[0] is not None for _, p in peers):
            continue
        for name, label in peers or [("-", None)]:
            peer, _ = median(runs, label, key) if label else (None, [])
            ratio = "n/a"
            if fm is not None and peer not in (None, 0) and fm != 0:
                ratio = f"{(fm / peer if better == HIGHER else peer / fm):.2f}x"
            print(f"| {workload} | {desc} | {fmt(fm)} | {name} | {fmt(peer)} | {ratio} |")
    failed = [(l, r.get("errors") or r.get("first_error")) for l, rs in runs.items() for r in rs if r.get("all_ok") is False]
    if failed:
        print(f"\nRuns with failures or lost messages: {len(failed)}:")
        for label, err in failed:
            print(f"- {label}: {err}")


if __name__ == "__main__":
    main()
