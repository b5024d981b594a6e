#!/usr/bin/env python3
"""Times IMAP steps on one large mailbox with imaplib (used by
benches/imap_bigbox.sh): each run is a fresh connection doing LOGIN,
SELECT INBOX, FETCH 1:* (FLAGS UID RFC822.SIZE), SEARCH SUBJECT (every
message matches), UID FETCH of the last 100 messages' (FLAGS RFC822.SIZE
ENVELOPE) and LOGOUT. Prints medians (ms) and the
server's peak RSS."""
import argparse, imaplib, json, statistics, time

# One `* SEARCH` line numbers every message: ~7 MB at 1,000,000.
imaplib._MAXLINE = 64 * 1024 * 1024


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t) * 1000


def one_run(a):
    steps = {}
    c = imaplib.IMAP4("127.0.0.1", a.port)
    _, steps["login_ms"] = timed(lambda: c.login(a.user, a.password))
    (typ, data), steps["select_ms"] = timed(lambda: c.select("INBOX"))
    assert typ == "OK", data
    exists = int(data[0])
    if a.expect and exists != a.expect:
        raise SystemExit(f"mailbox has {exists} messages, expected {a.expect}")
    if not a.select_only:
        (typ, data), steps["fetch_flags_uid_size_all_ms"] = timed(lambda: c.fetch("1:*", "(FLAGS UID RFC822.SIZE)"))
        assert typ == "OK" and len(data) == exists, (typ, len(data))
        # A header every message has, so the whole mailbox is searched
        # (the first run after a fill also keeps each message's search row).
        (typ, data), steps["search_subject_all_ms"] = timed(lambda: c.search(None, "SUBJECT", "fill"))
        assert typ == "OK" and len(data[0].split()) == exists, (typ, len(data[0].split()))
        first = max(1, exists - 99)
        (typ, data), steps["fetch_last100_meta_ms"] = timed(
            lambda: c.fetch(f"{first}:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
        assert typ == "OK", typ
    c.logout()
    return exists, steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=20143)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--select-only", action="store_true")
    a = ap.parse_args()
    runs = []
    for _ in range(a.runs):
        exists, steps = one_run(a)
        runs.append(steps)
    out = {"messages": exists, "runs": a.runs}
    for key in runs[0]:
        vals = [r[key] for r in runs]
        out[key + "_median"] = round(statistics.median(vals), 1)
        out[key + "_all"] = [round(v, 1) for v in vals]
    if a.pid:
        out["server_peak_rss_mib"] = round((rss_kb(a.pid) or 0) / 1024, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
