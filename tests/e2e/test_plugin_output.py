"""Issue 16 item 2: everything a plugin returns is untrusted input.

The malformed test plugin (plugins/tests/malformed) answers what an attacker's
plugin would; the host refuses each bad answer as that plugin's failure
(its `failure` policy: tempfail or skip) and the client sees one
well-formed reply and stays in step with the server.
"""

import smtplib
import socket

import pytest

from test_plugins import ALICE, DEFAULT_CHAIN, wasm

INJECT = "5.7.1\r\n250 2.1.5 ok\r\n354"
TEMPFAIL = (451, "4.3.0 Temporary policy failure, try again later")


def malformed_server(make_server, attack: str, failure: str = "tempfail"):
    return make_server(config={
        "plugins": {"malformed": {"path": str(wasm("test_malformed")), "failure": failure,
                                "config": {"attack": attack}}},
        "chain": ["malformed", *DEFAULT_CHAIN],
    })


def assert_in_step(c):
    """Nothing unread is waiting, and the next command gets its own answer."""
    c.sock.settimeout(0.5)
    try:
        extra = c.sock.recv(4096)
    except socket.timeout:
        extra = b""
    c.sock.settimeout(10)
    assert c.buf + extra == b"", f"unexpected bytes after the reply: {c.buf + extra!r}"
    assert c.cmd("NOOP")[0] == 250


@pytest.mark.parametrize("failure, expected", [("tempfail", TEMPFAIL), ("skip", (250, "2.1.0 Sender ok"))])
def test_reply_injection_in_the_enhanced_code_gives_one_wellformed_reply(make_server, failure, expected):
    srv = malformed_server(make_server, "mail-inject", failure)
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@example.org>") == expected
        assert_in_step(c)
    log = srv.log_text()
    assert "plugin=malformed" in log and "RFC 3463" in log, srv.log_tail()
    # The payload is logged escaped, never as lines of its own.
    assert "\n250 2.1.5 ok" not in log


def test_reply_injection_with_smtplib_session_stays_in_sync(make_server):
    srv = malformed_server(make_server, "rcpt-inject", "tempfail")
    with srv.smtp() as s:
        assert s.mail("a@example.org")[0] == 250
        assert s.rcpt(ALICE) == (TEMPFAIL[0], TEMPFAIL[1].encode())
        assert s.noop()[0] == 250
        assert s.rset()[0] == 250


def test_a_reject_with_a_success_code_is_not_a_success(make_server):
    srv = malformed_server(make_server, "reject-250", "tempfail")
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@example.org>") == TEMPFAIL
        assert_in_step(c)


@pytest.mark.parametrize("failure", ["tempfail", "skip"])
def test_header_injection_never_reaches_the_stored_message(make_server, failure):
    srv = malformed_server(make_server, "header-inject", failure)
    msg = b"From: <a@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"
    with srv.smtp() as s:
        if failure == "tempfail":
            with pytest.raises(smtplib.SMTPDataError) as refused:
                s.sendmail("a@example.org", [ALICE], msg)
            assert refused.value.smtp_code == 451
            assert s.noop()[0] == 250
        else:
            s.sendmail("a@example.org", [ALICE], msg)
    stored = srv.mailbox(ALICE)
    if failure == "tempfail":
        assert stored == []
    else:
        (m,) = stored
        assert b"X-Hostile" not in m and b"victim@example.org" not in m and b"forged body" not in m, m


def test_vrfy_reply_injection_gives_one_wellformed_reply(make_server):
    srv = malformed_server(make_server, "vrfy-inject", "tempfail")
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("VRFY alice") == TEMPFAIL
        assert_in_step(c)


def test_a_lent_message_is_unreachable_from_a_later_session(make_server):
    """Instance globals persist across sessions (documented), but the host's
    message handle dies with its call: a later RCPT reading through a kept
    handle traps instead of reading the earlier session's message."""
    srv = malformed_server(make_server, "stale-handle", "tempfail")
    srv.send(ALICE, body="SECRET-OF-SESSION-ONE\r\n")
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<b@example.org>")[0] == 250
        code, text = c.cmd(f"RCPT TO:<{ALICE}>")
        assert (code, text) == TEMPFAIL, text
    assert "SECRET" not in srv.log_text()
