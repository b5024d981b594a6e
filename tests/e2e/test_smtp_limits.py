"""Every SMTP limit is enforced and answered with the RFC's reply: command
line 512, text line 1000, message size (SIZE), 100 recipients, timeouts,
the session cap, the error cap."""

import smtplib
import socket
import time

import pytest

ALICE = "alice@localhost"


def begin(c, rcpts=(ALICE,)):
    """Greeting, EHLO, MAIL, RCPTs, DATA -> 354."""
    c.greeting()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == 250
    assert c.cmd("DATA")[0] == 354


# --- command line: 512 octets including CRLF (RFC 5321 4.5.3.1.4) ----------

def test_command_line_of_512_octets_is_accepted(server):
    with server.raw() as c:
        c.greeting()
        line = "NOOP " + "x" * 505
        assert len(line) + 2 == 512
        assert c.cmd(line)[0] == 250


def test_command_line_of_513_octets_is_500_5_5_2(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("NOOP " + "x" * 506)
        assert (code, text[:6]) == (500, "5.5.2 "), text
        # One reply for the long line, then the session is in step again.
        code, text = c.cmd("NOOP")
        assert code == 250, (code, text)


def test_huge_command_line_gets_one_reply_and_resyncs(server):
    with server.raw() as c:
        c.greeting()
        c.send(b"MAIL FROM:<" + b"a" * 200_000)
        code, text = c.reply()
        assert (code, text[:6]) == (500, "5.5.2 "), text
        c.send(b"@example.org>\r\nNOOP\r\n")
        assert c.reply()[0] == 250
        # Nothing of the long line was taken as a command.
        assert c.cmd("RCPT TO:<alice@localhost>")[0] == 503


# --- text line: 1000 octets including CRLF (RFC 5321 4.5.3.1.6) -------------

def test_text_line_of_1000_octets_is_accepted(server):
    line = b"y" * 998
    with server.raw() as c:
        begin(c)
        c.send(b"Subject: long\r\n\r\n" + line + b"\r\n.\r\n")
        assert c.reply()[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert line + b"\r\n" in msg


def test_text_line_of_1001_octets_is_554_5_6_0(server):
    with server.raw() as c:
        begin(c)
        c.send(b"Subject: long\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
        code, text = c.reply()
        assert (code, text[:6]) == (554, "5.6.0 "), text
        # The transaction is over, the session goes on.
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("DATA")[0] == 503
    assert server.count(ALICE) == 0


def test_very_long_text_line_is_refused_not_split(server):
    with server.raw() as c:
        begin(c)
        c.send(b"Subject: long\r\n\r\n" + b"z" * 3_000_000 + b"\r\n.\r\n")
        code, text = c.reply()
        assert (code, text[:6]) == (554, "5.6.0 "), text
    assert server.count(ALICE) == 0


# --- message size (RFC 1870) --------------------------------------------------

SIZE_LIMIT = 10_000


@pytest.fixture
def small(make_server):
    return make_server(config={"smtp": {"max_message_size": SIZE_LIMIT}})


def test_ehlo_advertises_configured_size(small):
    with small.raw() as c:
        c.greeting()
        assert f"\nSIZE {SIZE_LIMIT}\n" in c.cmd("EHLO client.test")[1]


def test_declared_size_over_limit_is_552_at_mail(small):
    with small.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        code, text = c.cmd(f"MAIL FROM:<s@example.org> SIZE={SIZE_LIMIT + 1}")
        assert (code, text[:6]) == (552, "5.3.4 "), text
        assert c.cmd(f"MAIL FROM:<s@example.org> SIZE={SIZE_LIMIT}")[0] == 250


def content_of(size: int) -> bytes:
    """`size` octets of content (CRLFs included, as RFC 1870 counts them)."""
    head = b"Subject: size\r\n\r\n"
    line = b"x" * 98 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    rest = size - len(head) - len(body)
    assert rest != 1
    body += b"" if rest == 0 else b"w" * (rest - 2) + b"\r\n"
    out = head + body
    assert len(out) == size
    return out


def test_message_exactly_at_size_limit_is_accepted(small):
    with small.raw() as c:
        begin(c)
        c.send(content_of(SIZE_LIMIT) + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
    (msg,) = small.mailbox(ALICE)
    assert msg.endswith(content_of(SIZE_LIMIT))


def test_message_over_size_limit_is_552_5_3_4(small):
    with small.raw() as c:
        begin(c)
        c.send(content_of(SIZE_LIMIT + 2) + b".\r\n")
        code, text = c.reply()
        assert (code, text[:6]) == (552, "5.3.4 "), text
        # The session is usable for the next message.
        assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: small\r\n\r\nok\r\n.")[0] == 250
    (msg,) = small.mailbox(ALICE)
    assert b"Subject: small" in msg


def test_oversized_stream_without_size_param_gets_552(small):
    """A client that lies (no SIZE) and streams megabytes is refused at the end."""
    with small.raw() as c:
        begin(c)
        chunk = (b"x" * 998 + b"\r\n") * 1000
        for _ in range(5):
            c.send(chunk)
        c.send(b".\r\n")
        assert c.reply()[0] == 552
    assert small.count(ALICE) == 0


def test_smtplib_size_refusal(small):
    with small.smtp() as s:
        assert s.does_esmtp and int(s.esmtp_features["size"]) == SIZE_LIMIT
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            # smtplib declares SIZE= when the server offers it.
            s.sendmail("s@example.org", [ALICE], content_of(SIZE_LIMIT + 100))
        assert e.value.smtp_code == 552


# --- recipients (RFC 5321 4.5.3.1.8, 4.5.3.1.10) ---------------------------------

def test_100_recipients_accepted_101st_is_452_4_5_3(server):
    """Loopback may relay, so 99 remote recipients plus alice: 100 in all."""
    rcpts = [ALICE] + [f"r{i}@example.net" for i in range(99)]
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@example.org>")
        # Pipelined, as a bulk sender would.
        c.send("".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
        codes = [c.reply()[0] for _ in rcpts]
        assert codes == [250] * 100
        code, text = c.cmd("RCPT TO:<one-too-many@example.net>")
        assert (code, text[:6]) == (452, "4.5.3 "), text
        code, text = c.cmd("RCPT TO:<and-another@example.net>")
        assert code == 452
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: many\r\n\r\nhi\r\n.")[0] == 250
    assert server.count(ALICE) == 1


def test_smtplib_101_recipients(server):
    rcpts = [ALICE] + [f"r{i}@example.net" for i in range(100)]
    with server.smtp() as s:
        refused = s.sendmail("s@example.org", rcpts, "Subject: 101\r\n\r\nhi\r\n")
    assert list(refused) == ["r99@example.net"]
    code, text = refused["r99@example.net"]
    assert code == 452 and text.startswith(b"4.5.3")
    assert server.count(ALICE) == 1


def test_configured_recipient_limit(make_server):
    srv = make_server(config={"smtp": {"max_recipients": 2}})
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@example.org>")
        assert c.cmd("RCPT TO:<alice@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<bob@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<x@example.net>")[0] == 452
        # A new transaction starts counting again.
        assert c.cmd("RSET")[0] == 250
        c.cmd("MAIL FROM:<s@example.org>")
        assert c.cmd("RCPT TO:<x@example.net>")[0] == 250


# --- timeouts (RFC 5321 4.5.3.2) --------------------------------------------------

def wait_for_421(c, within: float):
    c.sock.settimeout(within)
    t0 = time.monotonic()
    code, text = c.reply()
    elapsed = time.monotonic() - t0
    assert (code, text[:6]) == (421, "4.4.2 "), (code, text)
    assert c.closed(), "server did not close after 421"
    return elapsed


def test_command_timeout_421(make_server):
    srv = make_server(config={"smtp": {"command_timeout": "1s"}})
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        elapsed = wait_for_421(c, within=8)
        assert 0.8 <= elapsed < 5, elapsed


def test_command_timeout_is_per_command_not_per_session(make_server):
    srv = make_server(config={"smtp": {"command_timeout": "1s"}})
    with srv.raw() as c:
        c.greeting()
        # Active for ~2.5 s in all, never idle for 1 s.
        for _ in range(5):
            time.sleep(0.5)
            assert c.cmd("NOOP")[0] == 250


def test_data_timeout_421_and_nothing_delivered(make_server):
    srv = make_server(config={"smtp": {"data_timeout": "1s"}})
    with srv.raw() as c:
        begin(c)
        c.send(b"Subject: slow\r\n\r\nhalf a message\r\n")
        elapsed = wait_for_421(c, within=8)
        assert 0.8 <= elapsed < 5, elapsed
    assert srv.count(ALICE) == 0


# --- sessions and errors ----------------------------------------------------------

def connect_when_free(srv, deadline=5.0):
    """A session that got its 220: the harness's readiness probe (or a just
    closed session) may hold a slot for a moment after its client is gone."""
    end = time.monotonic() + deadline
    while True:
        c = srv.raw()
        code, text = c.reply()
        if code == 220:
            return c
        c.close()
        assert code == 421 and time.monotonic() < end, (code, text)
        time.sleep(0.05)


def test_max_sessions_421_4_3_2(make_server):
    srv = make_server(config={"smtp": {"max_sessions": 2}})
    first = connect_when_free(srv)
    second = connect_when_free(srv)
    try:
        with srv.raw() as third:
            code, text = third.reply()
            assert (code, text[:6]) == (421, "4.3.2 "), text
            assert third.closed()
        # The other listeners have their own caps.
        with srv.raw(srv.submission_port) as sub:
            sub.greeting()
        # A freed slot is usable again.
        assert first.cmd("QUIT")[0] == 221
        first.closed()
        connect_when_free(srv).close()
        assert second.cmd("NOOP")[0] == 250
    finally:
        first.close()
        second.close()


def test_too_many_errors_421_and_close(make_server):
    srv = make_server(config={"smtp": {"max_errors": 3}})
    with srv.raw() as c:
        c.greeting()
        assert c.cmd("BOGUS1")[0] == 500
        assert c.cmd("BOGUS2")[0] == 500
        assert c.cmd("BOGUS3")[0] == 500
        code, text = c.reply()
        assert code == 421, (code, text)
        assert c.closed()


def test_many_connections_do_not_exhaust_the_server(server):
    socks = []
    try:
        for _ in range(50):
            socks.append(socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5))
        for s in socks:
            assert s.recv(100).startswith(b"220 ")
    finally:
        for s in socks:
            s.close()
    # 50 is also the per-address limit ([clients]): the server frees the
    # slots as it notices the closes, so the next session may wait a moment.
    with connect_when_free(server) as c:
        assert c.cmd("NOOP")[0] == 250


@pytest.mark.parametrize(
    "command, reply",
    [
        (f"MAIL FROM:<{'l' * 65}@example.org>", "501 5.1.7"),
        (f"RCPT TO:<{'l' * 65}@localhost>", "501 5.1.3"),
        (f"RCPT TO:<r@{('d' * 62 + '.') * 4}dddd>", "501 5.1.3"),
    ],
    ids=["local-part-65-in-mail", "local-part-65-in-rcpt", "domain-256"],
)
def test_oversized_address_parts_are_501_rfc5321_4_5_3_1(server, command, reply):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        if command.startswith("RCPT"):
            assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
        code, text = c.cmd(command)
        assert f"{code} {text}".startswith(reply), (code, text)
        # At the limit itself the address is fine.
        assert c.cmd("RSET")[0] == 250
        assert c.cmd(f"MAIL FROM:<{'l' * 64}@example.org>")[0] == 250
