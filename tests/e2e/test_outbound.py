"""Outbound delivery end to end: ferrymail resolves MX records from a
loopback DNS server and hands mail to sink SMTP servers on 127.0.0.x
(tests/e2e/outbound_support.py). Each test names the behaviour and the
RFC section it checks."""

import email
import email.policy
import json
import time

import dkim

from conftest import PASSWORDS
from outbound_support import ACCEPT, BACKUP2, DOWN1, MIXED, SEVENBIT, TEMPFAIL, TLS, world  # noqa: F401 - fixture
from test_mail_auth import dnsfunc, zone_record

SENDER = "alice@localhost"


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def queue(srv) -> list[dict]:
    return json.loads(srv.cli("queue", "list", "--json", check=True).stdout)


def reports(srv, user=SENDER) -> list[email.message.EmailMessage]:
    """The multipart/report messages in `user`'s mailbox."""
    out = []
    for raw in srv.mailbox(user):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def status_text(report) -> str:
    """The message/delivery-status part as text (RFC 3464 2)."""
    raw = report.as_bytes().decode(errors="replace").replace("\r\n", "\n")
    parts = raw.split("--" + report.get_boundary())
    return next(p for p in parts if "Content-Type: message/delivery-status" in p)


def test_delivers_to_the_mx_host(world, make_server):
    srv = make_server(config=world.config())
    srv.send("rcpt@accept.test", sender=SENDER, subject="to the mx")
    world.sinks.wait_for(lambda: world.sinks.received(ACCEPT), what="delivery")
    m = world.sinks.received(ACCEPT)[0]
    assert (m.mail_from, m.rcpts, m.helo) == (SENDER, ["rcpt@accept.test"], "mx.ferry.test")
    assert b"Subject: to the mx" in m.data and m.data.startswith(b"Received: ")
    wait_until(lambda: queue(srv) == [], what="an empty queue")


def test_one_transaction_carries_every_recipient_at_a_host(world, make_server):
    srv = make_server(config=world.config())
    srv.send(["a@accept.test", "b@accept.test"], sender=SENDER)
    world.sinks.wait_for(lambda: world.sinks.received(ACCEPT), what="delivery")
    time.sleep(0.3)
    got = world.sinks.received(ACCEPT)
    assert len(got) == 1 and sorted(got[0].rcpts) == ["a@accept.test", "b@accept.test"]
    assert world.sinks.transactions[ACCEPT] == 1


def test_tempfail_is_retried_and_attempts_are_visible(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "2s"}))
    srv.send("x@tempfail.test", sender=SENDER)
    entry = wait_until(lambda: next((e for e in queue(srv) if e["attempts"] >= 1), None), what="a first attempt")
    r = entry["recipients"][0]
    assert r["state"] == "deferred" and r["last_reply"].startswith("451 4.7.1"), r
    table = srv.cli("queue", "list", check=True).stdout
    assert entry["id"] in table and "451 4.7.1" in table and "x@tempfail.test" in table, table
    world.sinks.wait_for(lambda: world.sinks.received(TEMPFAIL), timeout=30, what="delivery after retries")
    assert world.sinks.transactions[TEMPFAIL] == 3, "two 4xx, then accepted"
    wait_until(lambda: queue(srv) == [], what="an empty queue")
    assert reports(srv) == [], "a delay under warn_after warns nobody"


def test_permanent_refusal_bounces_that_recipient_only_rfc3464(world, make_server):
    srv = make_server(config=world.config())
    srv.send(["good@mixed.test", "bad@mixed.test"], sender=SENDER, subject="mixed bag")
    world.sinks.wait_for(lambda: world.sinks.received(MIXED), what="delivery of the good one")
    assert world.sinks.received(MIXED)[0].rcpts == ["good@mixed.test"]
    (bounce,) = wait_until(lambda: reports(srv), what="a bounce")
    assert bounce["Return-Path"] == "<>", "DSNs come from the null sender (RFC 3464 2)"
    assert bounce.get_param("report-type") == "delivery-status"
    types = [p.get_content_type() for p in bounce.iter_parts()]
    assert types == ["text/plain", "message/delivery-status", "text/rfc822-headers"], types
    status = status_text(bounce)
    for field in ("Final-Recipient: rfc822; bad@mixed.test", "Action: failed", "Status: 5.1.1",
                  "Remote-MTA: dns; mx.mixed.test", "Diagnostic-Code: smtp; 550 5.1.1"):
        assert field in status, (field, status)
    assert "good@mixed.test" not in status
    assert "Subject: mixed bag" in bounce.as_string(), "original headers returned"


def test_the_next_mx_is_tried_when_the_preferred_is_down_rfc5321_5_1(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@backup.test", sender=SENDER)
    world.sinks.wait_for(lambda: world.sinks.received(BACKUP2), what="delivery to the backup MX")
    assert not world.sinks.received(DOWN1)
    assert "mx1.backup.test" in srv.log_text(), "the preferred host was tried first"


def test_implicit_mx_when_the_domain_has_none_rfc5321_5_1(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@implicit.test", sender=SENDER)
    world.sinks.wait_for(lambda: any(m.rcpts == ["x@implicit.test"] for m in world.sinks.received(ACCEPT)), what="delivery")


def test_null_mx_bounces_at_once_rfc7505(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@nullmx.test", sender=SENDER)
    (bounce,) = wait_until(lambda: reports(srv), timeout=10, what="a bounce")
    assert "Status: 5.1.10" in status_text(bounce)
    assert sum(world.sinks.connections.values()) == 0
    assert queue(srv) == []


def test_nonexistent_domain_fails_permanently(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@nx.test", sender=SENDER)
    (bounce,) = wait_until(lambda: reports(srv), timeout=10, what="a bounce")
    status = status_text(bounce)
    assert "Status: 5.1.2" in status and "NXDOMAIN" in status and "Remote-MTA" not in status


def test_servfail_defers_without_a_bounce(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}))
    srv.send("x@servfail.test", sender=SENDER)
    entry = wait_until(lambda: next((e for e in queue(srv) if e["attempts"] >= 1), None), what="an attempt")
    assert entry["recipients"][0]["last_reply"].startswith("451 4.4.3"), entry
    assert entry["recipients"][0]["state"] == "deferred"
    assert reports(srv) == []


def test_delay_warning_once_then_bounce(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1s", "warn_after": "2s", "give_up_after": "6s"}))
    srv.send("x@down.test", sender=SENDER, subject="patience")
    both = wait_until(lambda: (r := reports(srv)) and len(r) >= 2 and r, timeout=30, what="warning and bounce")
    time.sleep(1.5)
    both = reports(srv)
    actions = [("delayed" if "Action: delayed" in status_text(r) else "failed") for r in both]
    assert actions == ["delayed", "failed"], actions
    assert "Status: 4." in status_text(both[0])
    assert both[0]["Subject"].startswith("Delayed Mail") and both[1]["Subject"].startswith("Undelivered")
    assert "Subject: patience" in both[1].as_string()
    wait_until(lambda: queue(srv) == [], what="an empty queue")


def test_no_report_is_ever_sent_for_the_null_sender_rfc5321_6_1(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@nx.test", sender="")
    wait_until(lambda: queue(srv) == [], timeout=10, what="an empty queue")
    assert srv.count("alice@localhost") == 0 and srv.count("bob@localhost") == 0
    assert "no bounce: the sender is <>" in srv.log_text()


def test_starttls_is_used_when_offered_rfc3207(world, make_server):
    srv = make_server(config=world.config())
    srv.send("x@tls.test", sender=SENDER)
    world.sinks.wait_for(lambda: world.sinks.received(TLS), what="delivery")
    assert world.sinks.received(TLS)[0].tls


def test_required_tls_defers_when_not_offered(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}, delivery={"starttls": "require"}))
    srv.send("x@accept.test", sender=SENDER)
    entry = wait_until(lambda: next((e for e in queue(srv) if e["attempts"] >= 1), None), what="an attempt")
    assert "4.7.4" in entry["recipients"][0]["last_reply"], entry
    assert not world.sinks.received(ACCEPT)


def test_verified_tls_refuses_an_unknown_certificate(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}, delivery={"tls_verify": "verify"}))
    srv.send("x@tls.test", sender=SENDER)
    entry = wait_until(lambda: next((e for e in queue(srv) if e["attempts"] >= 1), None), what="an attempt")
    assert "TLS handshake" in entry["recipients"][0]["last_reply"], entry
    assert not world.sinks.received(TLS), "no plaintext fallback when verification was asked for"


def test_8bit_body_is_made_quoted_printable_for_a_7bit_server_rfc6152_3(world, make_server):
    srv = make_server(config=world.config())
    text = "Grüße aus Köln, naïve café\r\n"
    body = f"Subject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}".encode()
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd(f"MAIL FROM:<{SENDER}> BODY=8BITMIME")[0] == 250
        assert c.cmd("RCPT TO:<rcpt@sevenbit.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body + b".\r\n")
        assert c.reply()[0] == 250
    world.sinks.wait_for(lambda: world.sinks.received(SEVENBIT), what="delivery")
    (m,) = world.sinks.received(SEVENBIT)
    assert all(b < 0x80 for b in m.data), "a 7-bit server got 8-bit octets"
    msg = email.message_from_bytes(m.data, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln" in m.data, m.data
    assert msg.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    wait_until(lambda: queue(srv) == [], what="an empty queue")


def submit_8bit(srv, to: str, extra_headers: str = "") -> str:
    """alice submits a UTF-8 text/plain message (BODY=8BITMIME); returns its text."""
    text = "Grüße aus Köln, naïve café\r\n"
    body = (f"{extra_headers}From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: signed 8bit\r\n"
            "Date: Thu, 03 Dec 2026 06:00:00 +0000\r\nMessage-ID: <8bit@localhost>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}")
    with srv.submission() as s:
        s.login(SENDER, PASSWORDS[SENDER])
        s.sendmail(SENDER, [to], body.encode(), mail_options=["BODY=8BITMIME"])
    return text


def test_signed_8bit_mail_reaches_a_7bit_server_with_a_valid_signature_rfc6376_5_3(world, make_server):
    """The signer makes the body quoted-printable before it signs, so the
    relay to a server without 8BITMIME changes nothing the signature covers."""
    srv = make_server(config=world.config(), start=False)
    name, record = zone_record(srv.cli("dkim", "keygen", "localhost", "--algorithm", "rsa2048", check=True).stdout)
    world.dns.records[name] = {"TXT": [record]}
    srv.start()
    text = submit_8bit(srv, "rcpt@sevenbit.test")
    world.sinks.wait_for(lambda: world.sinks.received(SEVENBIT), what="delivery")
    (m,) = world.sinks.received(SEVENBIT)
    assert all(b < 0x80 for b in m.data), "a 7-bit server got 8-bit octets"
    assert b"DKIM-Signature:" in m.data
    assert dkim.DKIM(m.data).verify(dnsfunc=dnsfunc(world.dns)), f"dkimpy refused:\n{m.data.decode()}"
    msg = email.message_from_bytes(m.data, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    wait_until(lambda: queue(srv) == [], what="an empty queue")


def test_8bit_mail_signed_by_someone_else_bounces_rather_than_break_the_signature_5_6_3(world, make_server):
    """No key of ours: the message keeps the signature it came with, and
    converting it for a 7-bit server would break that; the sender gets it
    back with the reason instead (RFC 6152 3 allows either)."""
    srv = make_server(config=world.config())
    foreign = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=elsewhere.test; s=s1;\r\n\th=from:subject; bh=AAAA; b=BBBB\r\n"
    submit_8bit(srv, "rcpt@sevenbit.test", extra_headers=foreign)
    (report,) = wait_until(lambda: reports(srv), what="a delivery report")
    status = status_text(report)
    assert "5.6.3" in status and "DKIM-signed" in report.as_string(), report.as_string()
    assert not world.sinks.received(SEVENBIT), "nothing was sent re-encoded"
