"""IMAP4rev1 (RFC 3501 and extensions) with Python's imaplib, a client
nobody here wrote: mail delivered over SMTP is read, flagged, searched,
copied, moved and expunged; sessions see each other's changes; POP3 and
IMAP share one mailbox; hostile input is refused cleanly."""

import imaplib
import re
import socket
import threading
import time

import pytest

from conftest import HOST, PASSWORDS, Raw

ALICE, BOB = "alice@localhost", "bob@localhost"


def deliver(server, n, to=ALICE, prefix="m"):
    with server.smtp() as s:
        for i in range(n):
            s.sendmail("sender@example.org", [to], f"Subject: {prefix}{i}\r\nFrom: Sender <sender@example.org>\r\n"
                       f"To: {to}\r\n\r\nbody of {prefix}{i}\r\n")


def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


def test_capability_login_logout(server):
    i = server.imap()
    caps = i.capabilities
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "LITERAL+", "NAMESPACE", "ID", "ENABLE", "UNSELECT",
                "SPECIAL-USE", "CHILDREN", "AUTH=PLAIN"):
        assert cap in caps, caps
    ok(i.login(ALICE, PASSWORDS[ALICE]))
    ok(i.noop())
    assert i.logout()[0] == "BYE"


def test_wrong_password_is_no(server):
    i = server.imap()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        i.login(ALICE, "wrong")
    ok(i.login(BOB, PASSWORDS[BOB]))


def test_authenticate_plain(server):
    i = server.imap()
    ok(i.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORDS[ALICE]}".encode()))
    ok(i.select("INBOX"))


def test_list_shows_special_use_folders(server):
    i = server.imap(ALICE)
    lines = [l.decode() for l in ok(i.list())]
    names = {l.rsplit(" ", 1)[1]: l for l in lines}
    assert set(names) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk"}, lines
    assert "\\Sent" in names["Sent"] and "\\Trash" in names["Trash"]
    # What MailKit sends once SPECIAL-USE is advertised (RFC 6154 5.1).
    typ, data = i._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    assert typ == "OK", data
    typ, data = i._untagged_response(typ, data, "LIST")
    special = sorted(l.decode().rsplit(" ", 1)[1] for l in data)
    assert special == ["Drafts", "Junk", "Sent", "Trash"], data


def test_select_fetch_flags_persist(server):
    deliver(server, 3)
    i = server.imap(ALICE)
    assert ok(i.select("INBOX")) == [b"3"]
    data = ok(i.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)"))
    # \Recent: this is the first session to see them (RFC 3501 2.3.2).
    assert len(data) == 3 and b"FLAGS (\\Recent)" in data[0]
    # BODY[] sets \Seen (RFC 3501 6.4.5); the message is as POP3 reads it.
    data = ok(i.fetch("2", "(BODY[])"))
    body = data[0][1]
    assert b"Subject: m1\r\n" in body and body.startswith(b"Return-Path: <sender@example.org>\r\n")
    assert b"\\Seen" in ok(i.fetch("2", "FLAGS"))[0]
    ok(i.store("3", "+FLAGS", "(\\Flagged $Work)"))
    i.logout()
    # Flags survive the session and a restart.
    server.restart()
    i = server.imap(ALICE)
    ok(i.select("INBOX", readonly=True))
    flags = ok(i.fetch("1:3", "FLAGS"))
    assert b"\\Seen" not in flags[0] and b"\\Seen" in flags[1]
    assert b"\\Flagged" in flags[2] and b"$Work" in flags[2]


def test_envelope_bodystructure_and_sections(server):
    deliver(server, 1)
    i = server.imap(ALICE)
    ok(i.select("INBOX"))
    data = ok(i.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.HEADER)"))
    text = b"".join(d if isinstance(d, bytes) else d[0] + d[1] for d in data)
    assert b'"m0"' in text and b'("Sender" NIL "sender" "example.org")' in text, text
    assert b'("text" "plain"' in text
    assert b"Subject: m0\r\n\r\n" in text
    assert b"\\Seen" not in ok(i.fetch("1", "FLAGS"))[0], "PEEK does not set \\Seen"


def test_uids_ascend_and_are_never_reused(server):
    deliver(server, 2)
    i = server.imap(ALICE)
    ok(i.select("INBOX"))
    uids = ok(i.uid("SEARCH", "ALL"))[0].split()
    ok(i.store("1:*", "+FLAGS", "(\\Deleted)"))
    ok(i.expunge())
    deliver(server, 1)
    ok(i.noop())
    new = ok(i.uid("SEARCH", "ALL"))[0].split()
    assert len(new) == 1 and int(new[0]) > max(int(u) for u in uids)


def test_search(server):
    deliver(server, 4)
    i = server.imap(ALICE)
    ok(i.select("INBOX"))
    ok(i.store("2,4", "+FLAGS", "(\\Answered)"))
    assert ok(i.search(None, "ANSWERED")) == [b"2 4"]
    assert ok(i.search(None, "UNANSWERED SUBJECT m2")) == [b"3"]
    assert ok(i.search("UTF-8", "BODY", "\"body of m0\"")) == [b"1"]
    assert ok(i.search(None, "OR SUBJECT m1 SUBJECT m3")) == [b"2 4"]
    assert ok(i.search(None, "NOT SUBJECT m")) == [b""]
    # Header searches after the first are answered from the rows it kept;
    # a message expunged takes its row along, a new one is found anyway.
    ok(i.store("2", "+FLAGS", "(\\Deleted)"))
    ok(i.expunge())
    deliver(server, 1, prefix="late")
    ok(i.noop())
    assert ok(i.search(None, "OR SUBJECT m1 SUBJECT late")) == [b"4"]
    assert ok(i.search(None, "FROM sender SUBJECT m")) == [b"1 2 3"]


def test_append_copy_move_with_uidplus(server):
    i = server.imap(ALICE)
    typ, data = i.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nunfinished\r\n")
    assert typ == "OK" and re.search(rb"APPENDUID \d+ 1\]", data[0]), data
    ok(i.create("Archive/2024"))
    ok(i.select("Drafts"))
    typ, data = i.copy("1", "Archive/2024")
    assert typ == "OK" and b"COPYUID" in data[0], data
    typ, data = i.uid("MOVE", "1", "Trash")
    assert typ == "OK", data
    assert ok(i.select("Drafts")) == [b"0"]
    assert ok(i.select("Trash")) == [b"1"]
    assert ok(i.select("Archive/2024")) == [b"1"]
    # TRYCREATE for a missing target (RFC 3501 6.4.7).
    typ, data = i.copy("1", "Nope")
    assert typ == "NO" and b"TRYCREATE" in data[0]


def test_create_rename_delete_subscribe(server):
    i = server.imap(ALICE)
    ok(i.create("Projects/Alpha"))
    ok(i.rename("Projects", "Work"))
    names = [l.decode().rsplit(" ", 1)[1] for l in ok(i.list('""', "Work/*"))]
    assert names == ["Work/Alpha"]
    ok(i.subscribe("Work/Alpha"))
    assert any(l.endswith(b"Work/Alpha") for l in ok(i.lsub()))
    ok(i.delete("Work/Alpha"))
    typ, _ = i.select("Work/Alpha")
    assert typ == "NO"
    typ, data = i.delete("INBOX")
    assert typ == "NO"
    # Non-ASCII names travel as modified UTF-7 (RFC 3501 5.1.3).
    ok(i.create("&ZeVnLIqe-"))
    assert any(l.endswith(b"&ZeVnLIqe-") for l in ok(i.list()))


def test_status(server):
    deliver(server, 2)
    i = server.imap(ALICE)
    data = ok(i.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"))[0].decode()
    assert "MESSAGES 2" in data and "UNSEEN 2" in data and "UIDNEXT 3" in data, data


def test_two_sessions_see_each_others_changes(server):
    deliver(server, 2)
    a, b = server.imap(ALICE), server.imap(ALICE)
    ok(a.select("INBOX"))
    ok(b.select("INBOX"))
    ok(a.store("1", "+FLAGS", "(\\Deleted)"))
    ok(a.expunge())
    typ, _ = b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [b"1"], b.untagged_responses
    deliver(server, 1)
    b.noop()
    assert b"2" in b.untagged_responses.get("EXISTS", []), b.untagged_responses


def test_idle_hears_of_new_mail_within_a_second(server):
    c = Raw(HOST, server.imap_port)
    c.line()
    c.send(f"a LOGIN {ALICE} \"{PASSWORDS[ALICE]}\"\r\n")
    while not c.line().startswith(b"a OK"):
        pass
    c.send("b SELECT INBOX\r\n")
    while not c.line().startswith(b"b OK"):
        pass
    c.send("c IDLE\r\n")
    assert c.line().startswith(b"+ ")
    start = time.monotonic()
    deliver(server, 1)
    assert c.line() == b"* 1 EXISTS"
    assert time.monotonic() - start < 1.5
    # New mail this session heard of first is its \Recent (RFC 3501 7.3.2).
    assert c.line() == b"* 1 RECENT"
    c.send("DONE\r\n")
    assert c.line().startswith(b"c OK")


def test_pop3_deletion_is_an_imap_expunge(server):
    deliver(server, 2)
    i = server.imap(ALICE)
    ok(i.select("INBOX"))
    p = server.pop3(ALICE)
    p.dele(1)
    p.quit()
    i.noop()
    assert i.untagged_responses.get("EXPUNGE") == [b"1"], i.untagged_responses
    # And an IMAP expunge is gone for POP3.
    ok(i.store("1", "+FLAGS", "(\\Deleted)"))
    ok(i.expunge())
    p = server.pop3(ALICE)
    assert p.stat()[0] == 0
    p.quit()


def test_hostile_input_is_refused_cleanly(server):
    c = Raw(HOST, server.imap_port)
    c.line()
    c.send("a LOGIN {4294967295}\r\n")
    assert c.line() == b"a NO [TOOBIG] literal too large"
    c.send("b FROB\r\n")
    assert c.line().startswith(b"b BAD")
    c.send("c SELECT INBOX\r\n")
    assert c.line().startswith(b"c BAD")
    c.send("d NOOP " + "x" * 70000)
    assert c.line().startswith(b"* BYE")
    assert c.closed()
    assert server.running


def test_sessions_per_user_are_limited(make_server):
    server = make_server({"imap": {"max_sessions_per_user": 2}})
    a, b = server.imap(ALICE), server.imap(ALICE)
    c = server.imap()
    with pytest.raises(imaplib.IMAP4.error, match="LIMIT"):
        c.login(ALICE, PASSWORDS[ALICE])
    # Another user is not affected; a closed session gives its seat back.
    server.imap(BOB).logout()
    a.logout()
    # The seat is given back when the server has closed that connection.
    for _ in range(50):
        try:
            ok(c.login(ALICE, PASSWORDS[ALICE]))
            break
        except imaplib.IMAP4.error:
            time.sleep(0.05)
    else:
        pytest.fail("the seat of a logged-out session was not given back")
    b.logout()


def test_fetching_every_body_holds_bounded_memory(server):
    """FETCH 1:* BODY[] of 200 MB of mail: the server reads contents in
    bounded batches and writes each out before the next."""
    i = server.imap(ALICE)
    msg = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 5000
    for _ in range(40):
        ok(i.append("INBOX", None, None, msg))
    ok(i.select("INBOX"))

    def mem(key):
        status = open(f"/proc/{server.proc.pid}/status").read()
        return int(status.split(key + ":")[1].split()[0]) // 1024

    before = mem("VmRSS")
    data = ok(i.fetch("1:*", "BODY.PEEK[]"))
    fetched = sum(len(d[1]) for d in data if isinstance(d, tuple))
    assert fetched == 40 * len(msg)
    grew = mem("VmHWM") - before
    assert grew < 120, f"the server grew by {grew} MB for a {fetched >> 20} MB FETCH"


def test_imaps_speaks_tls_from_the_first_byte_rfc8314(make_server):
    from conftest import HOST, IO_TIMEOUT, free_port, unverified_tls

    port = free_port()
    server = make_server({"imaps": {"listen": [f"{HOST}:{port}"]}, "tls": {"allow_plaintext_auth": "never"}})
    i = imaplib.IMAP4_SSL(HOST, port, ssl_context=unverified_tls(), timeout=IO_TIMEOUT)
    assert "AUTH=PLAIN" in i.capabilities and "STARTTLS" not in i.capabilities, i.capabilities
    ok(i.login(ALICE, PASSWORDS[ALICE]))
    ok(i.select("INBOX"))
    i.logout()
    # The plain port of the same server refuses logins before STARTTLS.
    plain = server.imap()
    assert "LOGINDISABLED" in plain.capabilities and "STARTTLS" in plain.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        plain.login(ALICE, PASSWORDS[ALICE])
    plain.starttls(ssl_context=unverified_tls())
    ok(plain.login(ALICE, PASSWORDS[ALICE]))
