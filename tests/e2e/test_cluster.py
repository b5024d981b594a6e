"""Three ferrymail nodes on loopback ports sharing one throw-away
PostgreSQL cluster (pg_cluster.py): mail sent to one node is read from
another with poplib and imaplib, a deletion on one is seen on the others
(an IMAP IDLE on a third node hears it), UIDs are the database's, and
the queue is one queue: a node killed with -9 in the middle of delivering
leaves its entries to the others once their leases run out — none lost,
duplicates counted."""

import time
import uuid
from collections import Counter

from conftest import HOST, PASSWORDS, Raw
from outbound_support import SLOW, world  # noqa: F401 - fixture
from pg_cluster import pg, pg_node, pg_shared  # noqa: F401 - fixtures
from test_outbound import queue, wait_until

ALICE = "alice@localhost"


def nodes(make_server, cluster, db, names=("a", "b", "c"), config=None, **store):
    out = [pg_node(make_server, cluster, db, n, config=config, **store) for n in names]
    out[0].add_user(ALICE, PASSWORDS[ALICE])
    return out


def idle(node, user=ALICE) -> Raw:
    """An IMAP session of `user` in IDLE on INBOX (raw, to read what IDLE says)."""
    c = Raw(HOST, node.imap_port)
    c.line()
    c.send(f"a LOGIN {user} \"{PASSWORDS[user]}\"\r\n")
    while not c.line().startswith(b"a OK"):
        pass
    c.send("b SELECT INBOX\r\n")
    while not c.line().startswith(b"b OK"):
        pass
    c.send("c IDLE\r\n")
    assert c.line().startswith(b"+ ")
    return c


def test_mail_sent_to_one_node_is_read_and_deleted_on_the_others(pg, make_server):
    cluster, db = pg
    a, b, c = nodes(make_server, cluster, db)
    watcher = idle(c)
    a.send(ALICE, body="sent to node a\r\n", subject="cluster-1")
    started = time.monotonic()
    assert watcher.line() == b"* 1 EXISTS", "node c's IDLE hears of mail node a accepted"
    heard_after = time.monotonic() - started
    # The first session to hear of it has it as \Recent (RFC 3501 2.3.2).
    assert watcher.line() == b"* 1 RECENT"

    # POP3 and IMAP on node b read what node a stored.
    assert b"sent to node a" in b.mailbox(ALICE)[0]
    imap = b.imap(ALICE)
    try:
        assert imap.select("INBOX") == ("OK", [b"1"])
        typ, data = imap.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject: cluster-1" in data[0][1]
    finally:
        imap.logout()

    # Deleted on b (POP3 DELE, committed at QUIT): gone on c and on a.
    pop = b.pop3(ALICE)
    pop.dele(1)
    pop.quit()
    assert watcher.line() == b"* 1 EXPUNGE", "node c's IDLE hears of node b's deletion"
    watcher.send("DONE\r\n")
    assert watcher.line().startswith(b"c OK")
    assert c.count(ALICE) == 0 and a.count(ALICE) == 0
    # UIDs are the database's: the next message is UID 2 whichever node takes it.
    c.send(ALICE, subject="cluster-2")
    imap = a.imap(ALICE)
    try:
        imap.select("INBOX")
        assert imap.uid("SEARCH", "ALL") == ("OK", [b"2"])
    finally:
        imap.logout()
    # A change returns once its notifications are back, so the IDLE has
    # heard by the time the sender has its 250.
    print(f"\nIDLE on node c heard node a's delivery {heard_after * 1000:.0f} ms after the 250")


N = 40


def test_kill9_of_the_delivering_node_another_delivers_after_the_lease(pg, make_server, world):
    """Node a accepts a batch for a slow remote host; b and c share the
    queue. a is killed with -9 while it holds leases; once they run out
    (queue_lease 3s) b or c delivers those entries. Nothing acknowledged is
    lost; duplicates (an attempt cut between the remote 250 and its commit)
    are counted and reported."""
    cluster, db = pg
    # Room for a few attempts at a time per node, so a holds leases at the kill.
    config = world.config(delivery={"max_connections": 3, "max_connections_per_domain": 3})
    world.sinks.behaviours[SLOW].delay = 0.4  # before each 354
    a, b, c = nodes(make_server, cluster, db, config=config, queue_lease="3s")
    tokens = [f"t{i}-{uuid.uuid4().hex[:6]}" for i in range(N)]
    with a.smtp() as s:
        for t in tokens:
            msg = f"From: <s@example.org>\r\nSubject: {t}\r\n\r\nbatch\r\n"
            assert not s.sendmail("s@example.org", [f"{t}@slow.test"], msg.encode())
    world.sinks.wait_for(lambda: len(world.sinks.received(SLOW)) >= 4, what="delivery under way")
    a.kill()
    killed = time.monotonic()
    # What a was delivering: the entries leased to it, frozen now that it is dead.
    leased = cluster.psql("SELECT convert_from(entry, 'UTF8') FROM queue WHERE lease_owner = 'a'", db)
    orphans = {t for t in tokens if t in leased}
    assert orphans, "node a held no leases at the kill; slow the sink down"

    def by_others():
        return {m.rcpts[0].split("@")[0] for m in world.sinks.received(SLOW) if m.helo != "a.ferry.test"}

    world.sinks.wait_for(lambda: by_others() >= orphans, timeout=60, what="a's entries delivered by b or c")
    took_over = time.monotonic() - killed
    world.sinks.wait_for(lambda: {m.rcpts[0].split("@")[0] for m in world.sinks.received(SLOW)} >= set(tokens),
                         timeout=60, what="every message delivered")
    wait_until(lambda: queue(b) == [], what="an empty queue")
    seen = Counter(m.rcpts[0].split("@")[0] for m in world.sinks.received(SLOW))
    by_node = Counter(m.helo for m in world.sinks.received(SLOW))
    lost = [t for t in tokens if seen[t] == 0]
    duplicates = sum(n - 1 for n in seen.values())
    print(f"\nkill -9 of node a holding {len(orphans)} leases: taken over and delivered {took_over:.1f} s after the "
          f"kill (lease 3 s); {duplicates} duplicates of {N}; deliveries per node {dict(by_node)}")
    assert not lost
    # A lease runs out no sooner than two renewals (1 s apart) after the last one.
    assert took_over >= 1.0, f"a's entries were taken {took_over:.1f} s after the kill, before the lease ran out"
    # Only attempts cut between the remote 250 and their commit repeat.
    assert duplicates <= len(orphans), f"{duplicates} duplicates for {len(orphans)} orphaned leases"
