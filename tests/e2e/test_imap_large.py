"""A 100,000-message mailbox over IMAP: SELECT, FETCH 1:* (FLAGS UID
RFC822.SIZE) and SEARCH complete with the server's memory bounded (no
message bodies are loaded for any of them). FM_TEST_IMAP_MESSAGES changes
the size."""

import os
import threading
import time

from conftest import PASSWORDS

ALICE = "alice@localhost"
N = int(os.environ.get("FM_TEST_IMAP_MESSAGES", "100000"))
BODY = ("x" * 74 + "\r\n") * 30  # ~2.5 KB messages


def rss_mb(pid: int, key: str = "VmRSS") -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split(key + ":")[1].split()[0]) // 1024


def test_a_large_mailbox_stays_fast_and_bounded(server):
    threads, per = 16, N // 16

    def deliver(k):
        with server.smtp() as s:
            for j in range(per):
                s.sendmail("sender@example.org", [ALICE], f"Subject: msg {k}-{j}\r\n\r\n{BODY}")

    workers = [threading.Thread(target=deliver, args=(k,)) for k in range(threads)]
    [w.start() for w in workers]
    [w.join() for w in workers]
    total = threads * per

    i = server.imap(ALICE)
    start = rss_mb(server.proc.pid)
    t = time.monotonic()
    typ, data = i.select("INBOX")
    select_s = time.monotonic() - t
    assert (typ, data) == ("OK", [str(total).encode()])
    t = time.monotonic()
    typ, data = i.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
    fetch_s = time.monotonic() - t
    assert typ == "OK" and len(data) == total
    t = time.monotonic()
    typ, data = i.search(None, "UNSEEN")
    assert typ == "OK" and len(data[0].split()) == total
    typ, data = i.uid("SEARCH", f"UID {total - 9}:*", "SUBJECT", '"msg"')
    search_s = time.monotonic() - t
    assert typ == "OK" and len(data[0].split()) == 10
    grew = rss_mb(server.proc.pid, "VmHWM") - start
    print(f"{total} messages: SELECT {select_s:.2f}s FETCH {fetch_s:.2f}s SEARCH {search_s:.2f}s, server +{grew} MB")
    # Generous for a loaded CI machine; loading every body would be ~250 MB.
    assert select_s < 10 and fetch_s < 20 and search_s < 20
    assert grew < 200, f"the server grew by {grew} MB"
    i.logout()
