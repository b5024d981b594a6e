"""SMTP as RFC 5321 describes it, with real clients: every command, the EHLO
extensions, sequencing and syntax errors with enhanced status codes, trace
headers, local delivery and the relay rules."""

import re

import pytest

from conftest import PASSWORDS

ALICE, BOB = "alice@localhost", "bob@localhost"
ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3} ")


def test_greeting_is_220_with_hostname(make_server):
    srv = make_server(config={"hostname": "mx.ferry.test", "local_domains": ["localhost"]})
    with srv.raw() as c:
        code, text = c.greeting()
        assert text.startswith("mx.ferry.test "), text  # RFC 5321 4.3.1: domain first


def test_ehlo_advertises_extensions_rfc5321_4_1_1_1(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("EHLO client.test")
        assert code == 250
        lines = text.split("\n")
        assert lines[0].startswith("localhost"), lines
        keywords = {line.split(" ")[0]: line for line in lines[1:]}
        for ext in ["PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "STARTTLS", "AUTH"]:
            assert ext in keywords, f"{ext} not advertised: {lines}"
        assert keywords["SIZE"] == "SIZE 26214400"  # RFC 1870: the configured limit
        assert set(keywords["AUTH"].split()[1:]) >= {"PLAIN", "LOGIN"}


def test_helo_gets_a_plain_250_without_extensions(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("HELO client.test")
        assert code == 250 and "\n" not in text, text
        # HELO is enough for a transaction (RFC 5321 4.1.4).
        assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250


@pytest.mark.parametrize(
    "command, code, enhanced",
    [
        ("NOOP", 250, "2.0.0"),
        ("NOOP ignored argument", 250, "2.0.0"),
        ("RSET", 250, "2.0.0"),
        ("HELP", 214, "2.0.0"),
        ("VRFY alice", 252, "2.5.0"),  # default policy: cannot verify, will try (RFC 5321 3.5.3)
        ("VRFY <nobody@localhost>", 252, "2.5.0"),  # no user enumeration
        ("EXPN staff", 502, "5.5.1"),  # default policy: disabled
        ("VERB", 250, "2.0.0"),  # answered, not an error
        ("noop", 250, "2.0.0"),  # keywords are case-insensitive (RFC 5321 2.4)
    ],
)
def test_each_command_answered_with_enhanced_code(server, command, code, enhanced):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        got, text = c.cmd(command)
        assert got == code, (command, got, text)
        for line in text.split("\n"):
            assert line.startswith(enhanced + " "), (command, text)
        # The session goes on normally afterwards.
        assert c.cmd("NOOP")[0] == 250


def test_help_lists_the_commands(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("HELP")
        assert code == 214
        for cmd in "HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN VERB".split():
            assert cmd in text, (cmd, text)


def test_quit_221_and_close(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("QUIT")
        assert code == 221 and text.startswith("2.0.0 "), text
        assert c.closed(), "server kept the connection open after QUIT"


def test_smtplib_several_recipients_are_all_delivered(server):
    server.add_user("carol@localhost", "carol-pw")
    body = "Subject: to three\r\nFrom: <s@example.org>\r\n\r\nfor everyone\r\n"
    with server.smtp() as s:
        assert "pipelining" in s.esmtp_features
        refused = s.sendmail("s@example.org", [ALICE, BOB, "carol@localhost"], body)
        assert refused == {}
    for user, pw in [(ALICE, None), (BOB, None), ("carol@localhost", "carol-pw")]:
        p = server.pop3()
        p.user(user)
        p.pass_(pw or PASSWORDS[user])
        assert p.stat()[0] == 1, user
        text = b"\r\n".join(p.retr(1)[1])
        assert text.endswith(b"Subject: to three\r\nFrom: <s@example.org>\r\n\r\nfor everyone"), text
        # Several recipients: the Received header names none of them.
        assert b"for <" not in text
        p.quit()


def test_pipelined_transaction_rfc2920(server):
    """MAIL, several RCPTs and DATA in one write; the replies come in order."""
    with server.raw() as c:
        c.greeting()
        assert "PIPELINING" in c.cmd("EHLO client.test")[1]
        c.send(
            "MAIL FROM:<s@example.org>\r\n"
            f"RCPT TO:<{ALICE}>\r\n"
            "RCPT TO:<nobody@localhost>\r\n"
            f"RCPT TO:<{BOB}>\r\n"
            "DATA\r\n"
        )
        codes = [c.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 550, 250, 354], codes
        # The content, the next transaction and QUIT in one more write.
        c.send(
            "Subject: one\r\n\r\nfirst\r\n.\r\n"
            "MAIL FROM:<s@example.org>\r\n"
            f"RCPT TO:<{ALICE}>\r\n"
            "DATA\r\n"
        )
        code, text = c.reply()
        assert code == 250 and text.startswith("2.0.0 "), text
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
    alice = server.mailbox(ALICE)
    assert [m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in alice] == [b"one", b"two"]
    assert len(server.mailbox(BOB)) == 1


def test_received_and_return_path_headers_rfc5321_4_4(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO helo-name.client.test")
        assert c.cmd("MAIL FROM:<sender@example.org>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, text = c.cmd("Subject: trace\r\n\r\nbody\r\n.")
        assert code == 250
        queue_id = text.split()[-1]
    (msg,) = server.mailbox(ALICE)
    lines = msg.split(b"\r\n")
    # Return-Path first (RFC 5321 4.4: added at final delivery), then our Received.
    assert lines[0] == b"Return-Path: <sender@example.org>", msg
    assert lines[1].startswith(b"Received: from helo-name.client.test "), msg
    received = msg.split(b"\r\n", 1)[1].split(b"Subject:")[0]
    assert b"[127.0.0.1]" in received, received
    assert b"by localhost" in received and b"with ESMTP" in received, received
    assert f"id {queue_id}".encode() in received, (queue_id, received)
    assert f"for <{ALICE}>".encode() in received, received
    assert msg.endswith(b"Subject: trace\r\n\r\nbody\r\n")


def test_helo_gives_protocol_smtp_in_received(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("HELO old.client.test")
        c.cmd("MAIL FROM:<>")  # the null reverse-path (RFC 5321 4.5.5)
        c.cmd(f"RCPT TO:<{ALICE}>")
        c.cmd("DATA")
        assert c.cmd("x\r\n.")[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert msg.startswith(b"Return-Path: <>\r\nReceived: from old.client.test "), msg
    assert b"with SMTP id" in msg


def test_content_is_delivered_byte_exact(server):
    body = (
        b"From: <s@example.org>\r\nSubject: exact\r\nX-Tab:\tvalue\r\n\r\n"
        b"  leading spaces\r\n\r\n\r\ntrailing spaces   \r\n.\r\n..two\r\nend\r\n"
    )
    with server.smtp() as s:
        s.sendmail("s@example.org", [ALICE], body)  # smtplib dot-stuffs
    (msg,) = server.mailbox(ALICE)
    assert msg.endswith(body), msg


def test_8bitmime_body_roundtrips_rfc6152(server):
    body = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, 日本語, \xe9t\xe9\r\n".encode()
    with server.raw() as c:
        c.greeting()
        assert "8BITMIME" in c.cmd("EHLO client.test")[1]
        assert c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body + b".\r\n")
        assert c.reply()[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert msg.endswith(body)


def test_smtputf8_honoured_rfc6531(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        # Without the SMTPUTF8 parameter a non-ASCII address is refused ...
        code, text = c.cmd("MAIL FROM:<jörg@exämple.org>")
        assert code == 553 and text.startswith("5.6.7 "), (code, text)
        # ... with it, accepted and delivered.
        assert c.cmd("MAIL FROM:<jörg@exämple.org> SMTPUTF8")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: ünïcode\r\n\r\nhej\r\n.\r\n".encode())
        assert c.reply()[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert msg.startswith("Return-Path: <jörg@exämple.org>\r\n".encode()), msg
    assert "Subject: ünïcode".encode() in msg


def test_smtplib_smtputf8_sendmail(server):
    with server.smtp() as s:
        assert s.has_extn("smtputf8")
        s.sendmail("jörg@exämple.org", [ALICE], "Subject: x\r\n\r\nhi\r\n".encode(), mail_options=["SMTPUTF8"])
    assert server.count(ALICE) == 1


@pytest.mark.parametrize(
    "script, expected",
    [
        # RFC 5321 3.3 / 4.1.4: 503 for commands out of sequence.
        (["DATA"], (503, "5.5.1")),
        (["RCPT TO:<alice@localhost>"], (503, "5.5.1")),
        (["MAIL FROM:<a@example.org>", "MAIL FROM:<b@example.org>"], (503, "5.5.1")),
        (["MAIL FROM:<a@example.org>", "RCPT TO:<alice@localhost>", "RSET", "DATA"], (503, "5.5.1")),
        (["MAIL FROM:<a@example.org>", "RSET", "RCPT TO:<alice@localhost>"], (503, "5.5.1")),
        # RFC 5321 3.3: DATA with no accepted recipient: 554 (or 503).
        (["MAIL FROM:<a@example.org>", "RCPT TO:<nobody@localhost>", "DATA"], (554, "5.5.1")),
    ],
)
def test_bad_sequence(server, script, expected):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        for command in script[:-1]:
            c.cmd(command)
        code, text = c.cmd(script[-1])
        assert (code, text[:6]) == (expected[0], expected[1] + " "), (script, code, text)
        assert c.cmd("NOOP")[0] == 250


def test_mail_before_helo_is_503(server):
    with server.raw() as c:
        c.greeting()
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        assert code == 503 and text.startswith("5.5.1 "), text


@pytest.mark.parametrize(
    "command, code, enhanced",
    [
        ("FROBNICATE", 500, "5.5.2"),  # unknown command
        ("MAIL FROM:no-brackets", 501, "5.5.4"),
        ("MAIL FROM:<a@example.org> NOSUCHPARAM=1", 555, "5.5.4"),  # RFC 5321 4.1.1.11
        ("VRFY", 501, "5.5.4"),
        ("EHLO", 501, "5.5.4"),
        ("RCPT TO:<>", 501, None),
    ],
)
def test_syntax_errors(server, command, code, enhanced):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        if command.startswith("RCPT"):
            c.cmd("MAIL FROM:<a@example.org>")
        got, text = c.cmd(command)
        assert got == code, (command, got, text)
        assert ENHANCED.match(text + " "), text
        if enhanced:
            assert text.startswith(enhanced + " "), text


def test_unknown_local_user_550_5_1_1(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        code, text = c.cmd("RCPT TO:<nobody@localhost>")
        assert (code, text[:6]) == (550, "5.1.1 "), text
        # Domain part is case-insensitive; the account exists.
        assert c.cmd("RCPT TO:<Alice@LOCALHOST>")[0] == 250


def test_smtplib_reports_unknown_user(server):
    with server.smtp() as s:
        refused = s.sendmail("a@example.org", [ALICE, "ghost@localhost"], "Subject: x\r\n\r\ny\r\n")
        assert refused == {"ghost@localhost": (550, refused["ghost@localhost"][1])}
        assert refused["ghost@localhost"][1].startswith(b"5.1.1")
    assert server.count(ALICE) == 1


def test_postmaster_without_domain_rfc5321_4_5_1(server):
    """RFC 5321 4.5.1: a server MUST accept RCPT TO:<Postmaster> (no domain)."""
    server.add_user("postmaster@localhost", "pm-pw")
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        code, text = c.cmd("RCPT TO:<Postmaster>")
        assert code == 250, (code, text)
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: pm\r\n\r\nhi\r\n.")[0] == 250
    p = server.pop3("postmaster@localhost", "pm-pw")
    assert p.stat()[0] == 1
    p.quit()


def test_relay_from_relay_networks_is_accepted(server):
    """Loopback is in the default relay_networks: other domains are queued."""
    with server.smtp() as s:
        assert s.sendmail("a@example.org", ["someone@example.net"], "Subject: relay\r\n\r\nx\r\n") == {}


def test_relay_refused_554_5_7_1_outside_relay_networks(make_server):
    srv = make_server(config={"relay_networks": ["192.0.2.0/24"]})
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        code, text = c.cmd("RCPT TO:<someone@example.net>")
        assert (code, text[:6]) == (554, "5.7.1 "), text
        # Local delivery still works for unauthenticated strangers.
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: x\r\n\r\ny\r\n.")[0] == 250
    assert srv.count(ALICE) == 1


def test_relay_refused_with_empty_relay_networks(make_server):
    srv = make_server(config={"relay_networks": []})
    with srv.smtp() as s:
        refused = s.sendmail("a@example.org", [ALICE, "x@example.net"], "Subject: x\r\n\r\ny\r\n")
        assert set(refused) == {"x@example.net"} and refused["x@example.net"][0] == 554


def test_several_messages_in_one_session(server):
    with server.smtp() as s:
        for i in range(5):
            s.sendmail("a@example.org", [ALICE], f"Subject: n{i}\r\n\r\nbody {i}\r\n")
    msgs = server.mailbox(ALICE)
    assert [f"body {i}".encode() in m for i, m in enumerate(msgs)] == [True] * 5


def test_ehlo_resets_transaction_rfc5321_4_1_4(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd(f"RCPT TO:<{ALICE}>")
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("DATA")[0] == 503


def test_every_reply_has_an_enhanced_code_rfc2034(server):
    """With ENHANCEDSTATUSCODES advertised, every reply except the greeting,
    HELO/EHLO, 354 and 334 carries one (RFC 2034 3)."""
    script = [
        "NOOP", "HELP", "VRFY x", "EXPN x", "VERB", "RSET", "FROB", "MAIL FROM:bad",
        "RCPT TO:<alice@localhost>", "DATA", "MAIL FROM:<a@example.org>", "MAIL FROM:<a@example.org>",
        "RCPT TO:<ghost@localhost>", f"RCPT TO:<{ALICE}>", "RCPT TO:<>",
        "AUTH BOGUS", "RSET", "MAIL FROM:<a@example.org>", f"RCPT TO:<{ALICE}>", "DATA",
        "x\r\n.", "QUIT",
    ]
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        for command in script:
            code, text = c.cmd(command)
            if code in (354, 334):
                continue
            for line in text.split("\n"):
                assert ENHANCED.match(line), (command, code, text)
                assert line[0] == str(code)[0], (command, code, text)  # same class


def test_duplicate_recipient_gets_one_copy(server):
    with server.smtp() as s:
        s.sendmail("a@example.org", [ALICE, ALICE, "Alice@Localhost"], "Subject: dup\r\n\r\nx\r\n")
    assert server.count(ALICE) == 1


def test_empty_message_is_accepted_and_readable(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd(f"RCPT TO:<{ALICE}>")
        assert c.cmd("DATA")[0] == 354
        assert c.cmd(".")[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert msg.startswith(b"Return-Path: <a@example.org>\r\nReceived: ")


@pytest.mark.parametrize("name", ["[127.0.0.1]", "[IPv6:::1]", "client-without-dots"])
def test_ehlo_address_literals_and_bare_names(server, name):
    with server.raw() as c:
        c.greeting()
        assert c.cmd(f"EHLO {name}")[0] == 250
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd(f"RCPT TO:<{ALICE}>")
        c.cmd("DATA")
        assert c.cmd("x\r\n.")[0] == 250
    (msg,) = server.mailbox(ALICE)
    assert f"Received: from {name} ".encode() in msg
