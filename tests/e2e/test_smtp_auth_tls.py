"""Submission with AUTH (RFC 4954, RFC 6409) and STARTTLS (RFC 3207)
against the generated self-signed certificate."""

import base64
import poplib
import smtplib
import ssl
import time

import pytest

from conftest import PASSWORDS, unverified_tls

ALICE, BOB = "alice@localhost", "bob@localhost"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_submission_requires_auth_530(server):
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        code, text = c.cmd("MAIL FROM:<alice@localhost>")
        assert (code, text[:6]) == (530, "5.7.0 "), text


def test_submission_auth_plain_via_smtplib(server):
    with server.submission() as s:
        assert "PLAIN" in s.esmtp_features["auth"].split()
        code, text = s.login(ALICE, PASSWORDS[ALICE])  # smtplib picks PLAIN
        assert code == 235 and text.startswith(b"2.7.0"), text
        s.sendmail(ALICE, [BOB], "Subject: submitted\r\n\r\nhi bob\r\n")
    (msg,) = server.mailbox(BOB)
    assert b"with ESMTPA" in msg  # RFC 3848
    assert msg.startswith(b"Return-Path: <alice@localhost>\r\n")


def test_submission_auth_login_via_smtplib(server):
    with server.submission() as s:
        s.user, s.password = BOB, PASSWORDS[BOB]  # a password with spaces
        code, _ = s.auth("LOGIN", s.auth_login)
        assert code == 235
        s.sendmail(BOB, [ALICE], "Subject: login\r\n\r\nhi\r\n")
    assert server.count(ALICE) == 1


def test_auth_plain_initial_response_raw(server):
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        code, text = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        assert code == 235, text
        assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0x"))[0] == 503  # already authenticated
        assert c.cmd("MAIL FROM:<alice@localhost>")[0] == 250


def test_auth_login_two_step_raw(server):
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd(b64(ALICE))[0] == 334
        assert c.cmd(b64(PASSWORDS[ALICE]))[0] == 235


def test_wrong_password_535_after_delay(server):
    with server.submission() as s:
        t0 = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(ALICE, "wrong")
        assert time.monotonic() - t0 >= 0.18  # auth_failure_delay = 200ms
        assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")
        # Still not authenticated: MAIL is refused.
        assert s.mail(ALICE)[0] == 530
    with server.submission() as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("nobody@localhost", "whatever")


def test_auth_cancel_and_garbage(server):
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH PLAIN")[0] == 334
        code, text = c.cmd("*")  # RFC 4954 4: cancel
        assert code == 501, text
        assert c.cmd("AUTH PLAIN !!!not-base64!!!")[0] == 501
        assert c.cmd("AUTH CRAM-MD5")[0] == 504  # not offered
        assert c.cmd("AUTH PLAIN " + "A" * 20_000)[0] == 500  # over the line limit
        assert c.cmd("NOOP")[0] == 250


def test_auth_before_ehlo_and_during_transaction_are_503(server):
    with server.raw() as c:
        c.greeting()
        assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))[0] == 503
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))[0] == 503


def test_authenticated_client_may_relay_others_may_not(make_server):
    srv = make_server(config={"relay_networks": []})
    # Not authenticated: refused.
    with srv.smtp() as s:
        refused = s.sendmail("a@example.org", [ALICE, "far@example.net"], "Subject: x\r\n\r\ny\r\n")
        assert refused["far@example.net"][0] == 554
    # Authenticated on submission: accepted (queued for the MX of example.net).
    with srv.submission() as s:
        s.login(ALICE, PASSWORDS[ALICE])
        assert s.sendmail(ALICE, ["far@example.net"], "Subject: out\r\n\r\ny\r\n") == {}
    # Authenticated on port 25 too (AUTH is offered there on loopback).
    with srv.smtp() as s:
        s.login(BOB, PASSWORDS[BOB])
        assert s.sendmail(BOB, ["far@example.net"], "Subject: out\r\n\r\ny\r\n") == {}


def test_starttls_with_smtplib_then_auth(server):
    with server.submission() as s:
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=unverified_tls())
        assert code == 220
        s.ehlo("client.test")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        assert s.has_extn("auth")
        s.login(ALICE, PASSWORDS[ALICE])
        s.sendmail(ALICE, [BOB], "Subject: tls\r\n\r\nsecret\r\n")
        # The certificate is the generated self-signed one from data_dir/tls.
        presented = s.sock.getpeercert(binary_form=True)
    (msg,) = server.mailbox(BOB)
    assert b"with ESMTPSA" in msg
    expected = ssl.PEM_cert_to_DER_cert(server.tls_cert_file().read_text())
    assert presented == expected


def test_generated_certificate_verifies_for_hostname(server):
    """The self-signed certificate is valid for `hostname` (localhost)."""
    ctx = ssl.create_default_context(cafile=str(server.tls_cert_file()))
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        # Raises on a name or signature mismatch.
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        assert c.cmd("EHLO client.test")[0] == 250
        cert = c.sock.getpeercert()
    # Both name the host: subject CN (older clients, logs) and the one SAN.
    assert dict(rdn[0] for rdn in cert["subject"]) == {"commonName": "localhost"}
    assert cert["subjectAltName"] == (("DNS", "localhost"),)


def test_starttls_on_port_25_without_auth(server):
    with server.smtp() as s:
        s.starttls(context=unverified_tls())
        s.ehlo("client.test")
        s.sendmail("a@example.org", [ALICE], "Subject: tls25\r\n\r\nx\r\n")
    (msg,) = server.mailbox(ALICE)
    assert b"with ESMTPS " in msg


def test_starttls_discards_pipelined_plaintext_rfc3207_cve_2011_0411(server):
    """Commands sent in plaintext right behind STARTTLS must not run inside TLS."""
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        c.send("STARTTLS\r\nAUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}") + "\r\n")
        code, _ = c.reply()
        assert code == 220
        assert c.buf == b"", f"server answered the injected command before TLS: {c.buf!r}"
        tls = unverified_tls().wrap_socket(c.sock, server_hostname="localhost")
        c.sock, c.buf = tls, b""
        # No EHLO yet in the TLS session: the server forgot the old one ...
        assert c.cmd("MAIL FROM:<alice@localhost>")[0] == 503
        c.cmd("EHLO client.test")
        # ... and the injected AUTH never happened.
        code, text = c.cmd("MAIL FROM:<alice@localhost>")
        assert code == 530, (code, text)


def test_starttls_twice_and_with_arguments(server):
    with server.smtp() as s:
        # RFC 3207 4: "STARTTLS" CRLF takes no parameters.
        code, text = s.docmd("STARTTLS", "x")
        assert (code, text[:6]) == (501, b"5.5.4 "), text
        s.starttls(context=unverified_tls())
        s.ehlo("client.test")
        code, _ = s.docmd("STARTTLS")
        assert code == 503


def test_plaintext_auth_never_requires_tls(make_server):
    srv = make_server(config={"tls": {"allow_plaintext_auth": "never"}})
    with srv.submission() as s:
        assert not s.has_extn("auth"), "AUTH offered without TLS"
        code, text = s.docmd("AUTH", "PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        assert (code, text[:7]) == (538, b"5.7.11 "), text
        s.starttls(context=unverified_tls())
        s.ehlo("client.test")
        assert s.has_extn("auth")
        s.login(ALICE, PASSWORDS[ALICE])
        s.sendmail(ALICE, [BOB], "Subject: x\r\n\r\ny\r\n")
    # POP3 follows the same rule: no password in clear, and CAPA does not
    # offer a login it would refuse (RFC 2595 2.1) ...
    p = srv.pop3()
    capa = p.capa()
    assert "USER" not in capa and "SASL" not in capa and "STLS" in capa, capa
    with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
        p.user(BOB)
    p.quit()
    # ... but over STLS.
    p = srv.pop3()
    p.stls(context=unverified_tls())
    p.user(BOB)
    p.pass_(PASSWORDS[BOB])
    assert p.stat()[0] == 1
    p.quit()


def test_failed_tls_handshake_does_not_hurt_the_server(server):
    with server.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.send(b"this is not a TLS client hello\r\n" * 10)
        assert c.closed()
    with server.smtp() as s:
        assert s.noop()[0] == 250
