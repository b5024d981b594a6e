"""POP3 (RFC 1939, 2449, 2595, 5034) with poplib and raw sockets: the
commands, deletion only at QUIT, exclusive maildrops, login failures,
byte-stuffing, limits."""

import base64
import poplib
import socket
import time

import pytest

from conftest import HOST, PASSWORDS, Raw, unverified_tls

ALICE, BOB = "alice@localhost", "bob@localhost"


def deliver(server, n, to=ALICE, prefix="m"):
    with server.smtp() as s:
        for i in range(n):
            s.sendmail("sender@example.org", [to], f"Subject: {prefix}{i}\r\n\r\nbody of {prefix}{i}\r\nline 2\r\nline 3\r\n")


def subject(lines) -> bytes:
    return next(l for l in lines if l.startswith(b"Subject: "))[9:]


class Pop:
    """Raw POP3 lines, for what poplib hides."""

    def __init__(self, server):
        self.c = Raw(HOST, server.pop3_port)
        assert self.line().startswith(b"+OK")

    def line(self) -> bytes:
        return self.c.line()

    def cmd(self, command: str | bytes) -> bytes:
        self.c.send(command + ("\r\n" if isinstance(command, str) else b"\r\n"))
        return self.line()

    def multiline(self) -> list[bytes]:
        out = []
        while (line := self.line()) != b".":
            out.append(line)
        return out

    def login(self, user=ALICE):
        assert self.cmd(f"USER {user}").startswith(b"+OK")
        assert self.cmd(f"PASS {PASSWORDS[user]}").startswith(b"+OK")

    def close(self):
        self.c.close()


def test_greeting_and_empty_maildrop(server):
    p = server.pop3()
    assert p.getwelcome().startswith(b"+OK")
    p.user(ALICE)
    assert p.pass_(PASSWORDS[ALICE]).startswith(b"+OK")
    assert p.stat() == (0, 0)
    assert p.list()[1] == []
    assert p.uidl()[1] == []
    assert p.quit().startswith(b"+OK")


def test_stat_list_retr_agree_on_sizes(server):
    deliver(server, 3)
    p = server.pop3(ALICE)
    count, total = p.stat()
    assert count == 3
    sizes = {int(n): int(sz) for n, sz in (l.split() for l in p.list()[1])}
    assert sorted(sizes) == [1, 2, 3]
    assert sum(sizes.values()) == total
    for n in (1, 2, 3):
        resp, lines, octets = p.retr(n)
        assert resp.startswith(b"+OK")
        exact = len(b"\r\n".join(lines)) + 2
        # RFC 1939: the size is the exact octet count with CRLF line ends.
        assert sizes[n] == octets == exact, (n, sizes[n], octets, exact)
        assert subject(lines) == f"m{n - 1}".encode()
        assert int(p.list(n).split()[2]) == sizes[n]  # "+OK n size"
    assert p.noop().startswith(b"+OK")
    p.quit()


def test_uidl_is_unique_and_stable_across_sessions(server):
    deliver(server, 3)
    p = server.pop3(ALICE)
    uids = dict(l.decode().split() for l in p.uidl()[1])
    assert len(set(uids.values())) == 3
    assert p.uidl(2).split()[1:] == [b"2", uids["2"].encode()]
    for uid in uids.values():
        assert 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in uid)  # RFC 1939 7
    p.dele(1)
    p.quit()
    p = server.pop3(ALICE)
    after = [l.decode().split()[1] for l in p.uidl()[1]]
    assert after == [uids["2"], uids["3"]]
    p.dele(2)  # the newest message
    p.quit()
    # A unique-id is never reused, not even the newest one's after deletion.
    deliver(server, 1, prefix="new")
    p = server.pop3(ALICE)
    now = [l.decode().split()[1] for l in p.uidl()[1]]
    assert now[0] == uids["2"] and now[1] not in uids.values()
    p.quit()


def test_top(server):
    deliver(server, 1)
    p = server.pop3(ALICE)
    full = p.retr(1)[1]
    blank = full.index(b"")
    resp, lines, _ = p.top(1, 0)
    assert resp.startswith(b"+OK")
    assert lines == full[: blank + 1]  # the header and the blank line
    assert p.top(1, 2)[1] == full[: blank + 3]
    assert p.top(1, 1000)[1] == full
    with pytest.raises(poplib.error_proto):
        p.top(2, 0)
    p.quit()


def test_dele_marks_only_until_quit(server):
    deliver(server, 3)
    p = server.pop3(ALICE)
    _, total = p.stat()
    size1 = int(p.list(1).split()[2])
    assert p.dele(1).startswith(b"+OK")
    assert p.stat() == (2, total - size1)
    # Deleted messages vanish from listings but numbers are not reused.
    assert [l.split()[0] for l in p.list()[1]] == [b"2", b"3"]
    for op in (lambda: p.retr(1), lambda: p.dele(1), lambda: p.list(1), lambda: p.top(1, 0), lambda: p.uidl(1)):
        with pytest.raises(poplib.error_proto):
            op()
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, total)
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    p = server.pop3(ALICE)
    assert p.stat()[0] == 2
    assert [subject(p.retr(n)[1]) for n in (1, 2)] == [b"m0", b"m2"]
    p.quit()


def test_quit_without_dele_keeps_everything(server):
    deliver(server, 2)
    p = server.pop3(ALICE)
    p.retr(1)
    p.quit()
    assert server.count(ALICE) == 2


@pytest.mark.parametrize("how", ["close", "reset", "half-close"])
def test_dropped_connection_after_dele_deletes_nothing(server, how):
    deliver(server, 3)
    p = Pop(server)
    p.login()
    for n in (1, 2, 3):
        assert p.cmd(f"DELE {n}").startswith(b"+OK")
    if how == "reset":
        p.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if how == "half-close":
        p.c.sock.shutdown(socket.SHUT_WR)
        assert p.c.closed()
    p.close()
    # The maildrop lock is released when the server notices; wait for it.
    deadline = time.monotonic() + 5
    while True:
        try:
            q = server.pop3(ALICE)
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in str(e).encode() and time.monotonic() < deadline, e
            time.sleep(0.05)
    assert q.stat()[0] == 3
    q.quit()


def test_maildrop_in_use(server):
    deliver(server, 1)
    first = server.pop3(ALICE)
    second = server.pop3()
    second.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(PASSWORDS[ALICE])
    assert e.value.args[0].startswith(b"-ERR [IN-USE]"), e.value
    second.quit()
    # Another user's maildrop is not affected.
    server.pop3(BOB).quit()
    first.quit()
    # Released by QUIT.
    third = server.pop3(ALICE)
    assert third.stat()[0] == 1
    third.quit()


def test_wrong_password_is_auth_error_after_delay(server):
    for user, password in [(ALICE, "wrong"), ("nobody@localhost", "x")]:
        p = server.pop3()
        # USER never tells whether the mailbox exists (RFC 1939 13).
        assert p.user(user).startswith(b"+OK")
        t0 = time.monotonic()
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(password)
        assert time.monotonic() - t0 >= 0.18, "no auth_failure_delay"
        assert e.value.args[0].startswith(b"-ERR [AUTH]"), e.value
        # The session stays in AUTHORIZATION: a correct login still works.
        p.user(ALICE)
        assert p.pass_(PASSWORDS[ALICE]).startswith(b"+OK")
        p.quit()


def test_capa_rfc2449(server):
    p = Pop(server)
    assert p.cmd("CAPA").startswith(b"+OK")
    caps = {l.split()[0].decode(): l.decode() for l in p.multiline()}
    for cap in ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"]:
        assert cap in caps, caps
    assert "PLAIN" in caps["SASL"].split()
    p.login()
    assert p.cmd("CAPA").startswith(b"+OK")
    after = {l.split()[0].decode() for l in p.multiline()}
    assert "STLS" not in after and "TOP" in after and "UIDL" in after
    p.close()


def test_transaction_commands_before_login_are_refused(server):
    p = Pop(server)
    for command in ["STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0", "RSET"]:
        assert p.cmd(command).startswith(b"-ERR"), command
    p.close()
    p = Pop(server)
    assert p.cmd("PASS secret").startswith(b"-ERR")  # no USER before
    assert p.cmd("NOOP").startswith(b"-ERR")  # NOOP is TRANSACTION-only
    p.login()
    assert p.cmd("USER alice@localhost").startswith(b"-ERR")  # wrong state now
    assert p.cmd("QUIT").startswith(b"+OK")
    assert p.c.closed()


@pytest.mark.parametrize("command", ["RETR 0", "RETR 99", "RETR x", "DELE -1", "TOP 1", "LIST 1 2", "RETR 99999999999999999999999"])
def test_bad_arguments(server, command):
    deliver(server, 1)
    p = Pop(server)
    p.login()
    assert p.cmd(command).startswith(b"-ERR"), command
    assert p.cmd("STAT").startswith(b"+OK 1 ")
    p.close()


def test_unknown_command_and_long_line(server):
    p = Pop(server)
    assert p.cmd("FROB").startswith(b"-ERR")
    assert p.cmd("USER " + "a" * 300).startswith(b"-ERR")  # RFC 2449 4: 255 octets
    assert p.cmd("CAPA").startswith(b"+OK")
    p.multiline()
    p.close()


def test_byte_stuffing_on_retr_and_top(server):
    """Lines starting with '.' go through SMTP and come back identical."""
    body_lines = [b".", b"..", b".leading dot", b"..two dots", b"normal", b". space", b"...", b""]
    content = b"Subject: dots\r\n\r\n" + b"\r\n".join(body_lines) + b"\r\nend\r\n"
    with server.smtp() as s:
        s.sendmail("sender@example.org", [ALICE], content)
    p = server.pop3(ALICE)
    lines = p.retr(1)[1]
    blank = lines.index(b"")
    assert lines[blank + 1:] == body_lines + [b"end"]
    assert p.top(1, 4)[1][blank + 1:] == body_lines[:4]
    p.quit()
    # On the wire every line starting with '.' has one more.
    raw = Pop(server)
    raw.login()
    assert raw.cmd("RETR 1").startswith(b"+OK")
    wire = raw.multiline()
    assert wire[-len(body_lines) - 1:] == [b"..", b"...", b"..leading dot", b"...two dots", b"normal", b".. space", b"....", b"", b"end"]
    raw.close()


def test_large_message_roundtrip(server):
    body = b"".join(b"%06d " % i + b"x" * 90 + b"\r\n" for i in range(20_000))  # ~2 MB
    with server.smtp() as s:
        s.sendmail("sender@example.org", [ALICE], b"Subject: big\r\n\r\n" + body)
    p = server.pop3(ALICE)
    lines = p.retr(1)[1]
    assert b"\r\n".join(lines[lines.index(b"") + 1:]) + b"\r\n" == body
    p.quit()


def test_error_limit_closes_the_session(server):
    p = Pop(server)
    replies = []
    for _ in range(10):
        replies.append(p.cmd("FROB"))
    assert all(r.startswith(b"-ERR") for r in replies)
    assert p.c.closed(), "no limit on bad commands"


def test_pipelined_commands_rfc2449(server):
    deliver(server, 2)
    p = Pop(server)
    p.c.send(f"USER {ALICE}\r\nPASS {PASSWORDS[ALICE]}\r\nSTAT\r\nLIST\r\nDELE 1\r\nSTAT\r\nRSET\r\nSTAT\r\nQUIT\r\n")
    assert p.line().startswith(b"+OK")  # USER
    assert p.line().startswith(b"+OK")  # PASS
    assert p.line().startswith(b"+OK 2 ")
    assert p.line().startswith(b"+OK")
    assert len(p.multiline()) == 2
    assert p.line().startswith(b"+OK")  # DELE
    assert p.line().startswith(b"+OK 1 ")
    assert p.line().startswith(b"+OK")  # RSET
    assert p.line().startswith(b"+OK 2 ")
    assert p.line().startswith(b"+OK")  # QUIT
    assert p.c.closed()
    assert server.count(ALICE) == 2


def test_auth_plain_sasl_rfc5034(server):
    deliver(server, 1)
    p = Pop(server)
    token = base64.b64encode(f"\0{ALICE}\0{PASSWORDS[ALICE]}".encode()).decode()
    assert p.cmd(f"AUTH PLAIN {token}").startswith(b"+OK")
    assert p.cmd("STAT").startswith(b"+OK 1 ")
    p.close()
    p = Pop(server)
    assert p.cmd("AUTH PLAIN").startswith(b"+")
    bad = base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode()
    assert p.cmd(bad).startswith(b"-ERR [AUTH]")
    p.close()


def test_stls_rfc2595(server):
    deliver(server, 1)
    p = server.pop3()
    assert p.stls(context=unverified_tls()).startswith(b"+OK")
    p.user(ALICE)
    p.pass_(PASSWORDS[ALICE])
    assert p.stat()[0] == 1
    assert "STLS" not in p.capa()
    p.quit()


def test_idle_timeout_autologout_deletes_nothing(make_server):
    srv = make_server(config={"pop3": {"idle_timeout": "1s"}})
    deliver(srv, 1)
    p = Pop(srv)
    p.login()
    assert p.cmd("DELE 1").startswith(b"+OK")
    p.c.sock.settimeout(8)
    assert p.line().startswith(b"-ERR")  # the autologout notice
    assert p.c.closed()
    assert srv.count(ALICE) == 1


def test_max_sessions(make_server):
    srv = make_server(config={"pop3": {"max_sessions": 1}})
    first = Pop(srv)
    with Raw(HOST, srv.pop3_port) as second:
        assert second.line().startswith(b"-ERR [SYS/TEMP]")
        assert second.closed()
    first.close()


def test_mail_arrives_while_logged_in_is_not_shown_until_next_session(server):
    """RFC 1939 5: the maildrop is fixed for the session."""
    deliver(server, 1)
    p = server.pop3(ALICE)
    deliver(server, 1, prefix="late")
    assert p.stat()[0] == 1
    p.dele(1)
    p.quit()
    p = server.pop3(ALICE)
    assert p.stat()[0] == 1 and subject(p.retr(1)[1]) == b"late0"
    p.quit()
