"""Three ferrymail nodes on loopback ports sharing one throw-away
PostgreSQL cluster (pg_cluster.py): mail sent to one node is read from
another with poplib and imaplib, a deletion on one is seen on the others
(an IMAP IDLE on a third node hears it), and UIDs are the database's."""

import time

from conftest import HOST, PASSWORDS, Raw
from pg_cluster import pg, pg_node, pg_shared  # noqa: F401 - fixtures

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
