"""`ferrymail store copy --from sled:PATH --to postgres:URL`: an
installation on the embedded store (accounts, a folder, flags, keywords, a
subscription, a deferred queue entry) moved into an empty PostgreSQL
database; a node on that database serves the same mail byte for byte
(read with poplib and imaplib), with the same passwords, and delivers the
queue on."""

import json
import re

from outbound_support import world  # noqa: F401 - fixture
from pg_cluster import ROLE_PASSWORD, pg, pg_node, pg_shared  # noqa: F401 - fixtures
from test_outbound import queue, wait_until

ALICE, BOB = "alice@localhost", "bob@localhost"


def imap_folder(node, folder: str) -> list[tuple[bytes, bytes]]:
    """(FLAGS, full message) of each message in `folder`, in order.
    \\Recent is left out: it is a session's, not the message's (RFC 3501
    2.3.2), and a node that never saw the mailbox selected shows every
    message as recent."""
    imap = node.imap(ALICE)
    try:
        typ, _ = imap.select(folder, readonly=True)
        assert typ == "OK", folder
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        return [(re.sub(rb"\\Recent ?| \\Recent", b"", part[0].split(b" BODY[]")[0]), part[1])
                for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()


def test_a_sled_installation_copied_to_postgres_serves_the_same_mail(make_server, pg, world):
    cluster, db = pg
    old = make_server(config=world.config())  # sled, the PASSWORDS accounts
    old.send(ALICE, body="first\r\n", subject="one")
    old.send(ALICE, body="second\r\n", subject="two")
    old.send(BOB, subject="three")
    imap = old.imap(ALICE)
    try:
        assert imap.create("Archive")[0] == "OK" and imap.subscribe("Archive")[0] == "OK"
        imap.select("INBOX")
        assert imap.uid("STORE", "1", "+FLAGS", "(\\Flagged $Work)")[0] == "OK"
        assert imap.uid("MOVE", "2", "Archive")[0] == "OK"
    finally:
        imap.logout()
    old.send("someone@down.test", subject="queued")  # the host is down: deferred
    wait_until(lambda: [e for e in queue(old) if e.get("attempts", 0) >= 1], what="a deferred queue entry")
    before = {
        "pop3": {u: old.mailbox(u) for u in (ALICE, BOB)},
        "inbox": imap_folder(old, "INBOX"),
        "archive": imap_folder(old, "Archive"),
    }
    old.stop()

    node = pg_node(make_server, cluster, db, "new", config=world.config(), start=False)
    target = f"postgres:{cluster.url(db)}"
    r = node.cli("store", "copy", "--from", f"sled:{old.data_dir}", "--to", target)
    assert r.returncode == 0, r.stderr
    assert "copied 2 accounts" in r.stdout and "3 messages" in r.stdout and "1 queue entries" in r.stdout, r.stdout
    assert ROLE_PASSWORD not in r.stdout + r.stderr

    node.start()
    # The same passwords log in; the same bytes come back.
    assert {u: node.mailbox(u) for u in (ALICE, BOB)} == before["pop3"]
    assert imap_folder(node, "INBOX") == before["inbox"]
    assert imap_folder(node, "Archive") == before["archive"]
    assert b"\\Flagged" in before["inbox"][0][0] and b"$Work" in before["inbox"][0][0]
    imap = node.imap(ALICE)
    try:
        typ, data = imap.lsub()
        assert typ == "OK" and any(b"Archive" in line for line in data), data
    finally:
        imap.logout()
    entries = queue(node)
    assert len(entries) == 1 and "someone@down.test" in json.dumps(entries), entries

    again = node.cli("store", "copy", "--from", f"sled:{old.data_dir}", "--to", target)
    assert again.returncode != 0 and "copy into an empty database" in again.stderr, again.stderr
