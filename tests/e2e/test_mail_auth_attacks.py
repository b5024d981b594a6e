"""Issue 10, as an attacker sees it: a sender who writes into our
Authentication-Results field (a quoted MAIL FROM local part, a HELO
argument, a signature's quoted-printable `i=`) or forges one in a way a
simple reader would miss (nested comments, a quoted authserv-id);
malformed and piled-up DKIM-Signature fields; huge and numerous TXT
records (over TCP after a truncated UDP answer); DNS that never answers
(temperror, never fail, and never a refusal). Real clients: smtplib for
SMTP, pyspf and dkimpy for the verdicts to compare with.
"""

import base64
import hashlib
import re
import smtplib
import threading
import time

import dkim
import dns.resolver
import pytest
import spf

from conftest import PASSWORDS
from fake_dns import DnsServer
from test_mail_auth import ALICE, BOB, auth_results, dkimpy_key, dnsfunc, resolver, result, wait_for_mail

CAROL = "carol@acme.test"  # her tenant only stamps DMARC failures: the field can be read back

BIG_SPF = "v=spf1 " + " ".join(f"ip4:10.{i // 250}.{i % 250}.1" for i in range(2000)) + " ip4:127.0.0.1 -all"
RECORDS = {
    "client.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    "evil.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    "_dmarc.evil.test": {"TXT": ["v=DMARC1; p=reject"]},
    # A domain that refuses what fails DMARC: SPF fails for everyone.
    "bank.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject"]},
    # SPF records an attacker (or a careless operator) publishes.
    "big.test": {"TXT": [BIG_SPF]},  # ~30 KB: truncated over UDP, whole over TCP
    "many.test": {"TXT": [f"unrelated-{i}={'x' * 200}" for i in range(150)] + ["v=spf1 ip4:127.0.0.1 -all"]},
    "twice.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all"]},
    "loop.test": {"TXT": ["v=spf1 include:loop.test -all"]},
    "deep.test": {"TXT": ["v=spf1 " + " ".join(f"include:n{i}.deep.test" for i in range(12)) + " -all"]},
    **{f"n{i}.deep.test": {"TXT": ["v=spf1 ?all"]} for i in range(12)},
    "junk.test": {"TXT": ["v=spf1 ip4:127.0.0.1 bogus:mechanism -all"]},
    # DNS that never answers, for each look-up of the checks.
    "dslow.test": {"TXT": ["v=spf1 -all"]},
    "bigkey._domainkey.evil.test": {"TXT": ["v=DKIM1; k=rsa; p=" + "A" * 40_000]},
}
SILENT = {"_dmarc.dslow.test", "slow._domainkey.evil.test", "slowspf.test"}


@pytest.fixture(scope="module")
def fake_dns():
    fake = DnsServer(RECORDS, silent=SILENT)
    yield fake
    fake.close()


@pytest.fixture
def mx(make_server, fake_dns):
    users = {ALICE: PASSWORDS[ALICE], BOB: PASSWORDS[BOB], CAROL: "carol-secret"}
    return make_server(
        config={
            "dns": {"nameservers": [fake_dns.address], "timeout": "1s"},
            "mail_auth": {"verify": True, "timeout": "10s"},
            "tenants": {"acme": {"domains": ["acme.test"], "plugin_config": {"dmarc": {"reject": "stamp"}}}},
        },
        users=users,
    )


def carol_mail(srv, count=1, timeout=10.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        p = srv.pop3(CAROL, "carol-secret")
        try:
            n = p.stat()[0]
            if n >= count or time.monotonic() > deadline:
                assert n >= count, f"carol got {n} messages:\n{srv.log_tail()}"
                return [b"\r\n".join(p.retr(i)[1]) for i in range(1, n + 1)]
        finally:
            p.quit()
        time.sleep(0.1)


def transaction(srv, mail_from: str, rcpt: str, message: bytes, helo="client.test") -> tuple[int, bytes]:
    """One transaction with MAIL FROM written exactly as given (smtplib's
    sendmail would re-quote the address); the final reply."""
    with srv.smtp(ehlo=helo) as s:
        code, text = s.docmd(f"MAIL FROM:<{mail_from}>")
        assert code == 250, (code, text)
        assert s.rcpt(rcpt)[0] == 250
        try:
            return s.data(message)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error


def spoof(to: str, extra: str = "") -> bytes:
    """A message From the bank, which publishes p=reject and sends nothing from here."""
    return (f"{extra}From: <ceo@bank.test>\r\nTo: <{to}>\r\nSubject: urgent transfer\r\n"
            "Date: Thu, 03 Dec 2026 09:00:00 +0000\r\nMessage-ID: <spoof@bank.test>\r\n\r\nPay now.\r\n").encode()


def resinfo_methods(ar: str) -> list[str]:
    """The method of each resinfo, as a reader splitting on ';' sees it."""
    return [r.strip().split("=")[0] for r in ar.split(";")[1:]]


# --- writing into our field ----------------------------------------------------

INJECTIONS = {
    # RFC 5321 4.1.2 allows ';' and spaces in a quoted local part.
    "quoted mail from": dict(mail_from='"x; dmarc=pass"@evil.test'),
    # smtp-proto takes any non-blank EHLO argument; it lands in a comment.
    "helo": dict(mail_from="", helo="x;dmarc=pass"),
    # RFC 6376 3.5: i= is quoted-printable: =3B is ';'.
    "dkim i= tag": dict(mail_from="a@evil.test", extra="DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1;\r\n"
                        "\ti=x=3B=20dmarc=3Dpass@evil.test; h=from:to:subject; bh=AAAA; b=AAAAAAAAAAAA\r\n"),
}


@pytest.mark.parametrize("how", INJECTIONS)
def test_a_sender_cannot_write_a_dmarc_pass_into_our_field(mx, how):
    """The bank's p=reject is enforced however the sender dresses the
    envelope: the `dmarc` plugin reads the first dmarc= resinfo of our
    field, so a value of the sender's that ends our resinfo early would
    put their "dmarc=pass" ahead of our "dmarc=fail"."""
    case = INJECTIONS[how]
    args = dict(mail_from=case["mail_from"], helo=case.get("helo", "client.test"))
    code, text = transaction(mx, rcpt=BOB, message=spoof(BOB, case.get("extra", "")), **args)
    assert code == 550 and b"5.7.1" in text and b"DMARC" in text, (code, text)
    assert mx.count(BOB) == 0
    # The stamping tenant shows the field: one resinfo per method, ours.
    code, _ = transaction(mx, rcpt=CAROL, message=spoof(CAROL, case.get("extra", "")), **args)
    assert code == 250
    ar = auth_results(carol_mail(mx)[0])
    assert result(ar, "dmarc") == "fail" and "policy.dmarc=reject" in ar, ar
    assert resinfo_methods(ar).count("dmarc") == 1, ar
    assert "dmarc=pass" not in ar, ar


FORGED = [
    "Authentication-Results: ((nested) comment) localhost; dmarc=pass header.from=bank.test",
    'Authentication-Results: "localhost"; dmarc=pass header.from=bank.test',
    "Authentication-Results: (c) localhost. 1; dmarc=pass header.from=bank.test",
    "authentication-results :\r\n\tLOCALHOST;\r\n\tdmarc=pass header.from=bank.test",
]


@pytest.mark.parametrize("forged", FORGED)
def test_forged_results_claiming_our_name_are_removed_however_written_rfc8601_5(mx, forged):
    raw = f"{forged}\r\nFrom: <a@evil.test>\r\nTo: <{BOB}>\r\nSubject: forged\r\n\r\nx\r\n".encode()
    assert transaction(mx, "a@evil.test", BOB, raw)[0] == 250
    (msg,) = wait_for_mail(mx, BOB)
    head = msg.split(b"\r\n\r\n")[0].decode()
    fields = re.findall(r"^authentication-results\s*:", head, re.M | re.I)
    assert len(fields) == 1, head
    assert "bank.test" not in head, head


# --- malformed and piled-up signatures --------------------------------------------

# The body hash of "body\r\n" (relaxed, RFC 6376 3.4.4): a signature with it
# gets as far as the key look-up.
BH = base64.b64encode(hashlib.sha256(b"body\r\n").digest()).decode()
MALFORMED = {
    "garbage": "DKIM-Signature: this is not a tag list",
    "no b=": "DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1; h=from; bh=AAAA",
    "bad base64": "DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1; h=from; bh=!!!; b=%%%",
    "rsa-sha1 (RFC 8301)": "DKIM-Signature: v=1; a=rsa-sha1; d=evil.test; s=s1; h=from; bh=AAAA; b=AAAAAAAA",
    "unknown version": "DKIM-Signature: v=2; a=rsa-sha256; d=evil.test; s=s1; h=from; bh=AAAA; b=AAAAAAAA",
    "l= past the body": "DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1; l=99999999999999999999; h=from;"
                        " bh=AAAA; b=AAAAAAAA",
    "From not signed": "DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1; h=subject; bh=AAAA; b=AAAAAAAA",
    "huge key record": "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=evil.test; s=bigkey; h=from;"
                       f" bh={BH}; b=AAAAAAAA",
    "no key": f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=evil.test; s=nokey; h=from; bh={BH}; b=AAAAAAAA",
    "selector of a ( ": "DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=a(b; h=from; bh=AAAA; b=AAAAAAAA",
    "8-bit bytes": "DKIM-Signature: v=1; a=rsa-sha256; d=\xe9vil.test; s=\xff; h=from; bh=AAAA; b=AAAAAAAA",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_signature_is_no_pass_and_the_message_is_kept(mx, fake_dns, name):
    sig = MALFORMED[name]
    raw = f"{sig}\r\nFrom: <a@evil.test>\r\nTo: <{BOB}>\r\nSubject: malformed\r\n\r\nbody\r\n".encode("latin-1")
    assert transaction(mx, "a@evil.test", BOB, raw)[0] == 250
    (msg,) = wait_for_mail(mx, BOB)
    ar = auth_results(msg)
    dkim_result = result(ar, "dkim")
    assert dkim_result in {"fail", "neutral", "permerror", "policy"}, ar
    assert not dkim.verify(raw, dnsfunc=dnsfunc(fake_dns)), "dkimpy agrees it does not verify"
    # The sender's SPF passes: DMARC passes on that, whatever the signature.
    assert result(ar, "spf") == "pass" and result(ar, "dmarc") == "pass", ar
    assert "panicked" not in mx.log_text()


def test_signatures_past_the_first_ten_are_not_checked_rfc6376_6_1(mx, fake_dns):
    key, record = dkimpy_key("rsa")
    fake_dns.records["ten._domainkey.evil.test"] = {"TXT": [record]}
    body = b"From: <a@evil.test>\r\nTo: <bob@localhost>\r\nSubject: thirty\r\n\r\nThe body.\r\n"
    sig = dkim.sign(body, b"ten", b"evil.test", key, include_headers=[b"from", b"to", b"subject"])
    assert transaction(mx, "a@evil.test", BOB, sig * 30 + body)[0] == 250
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert result(ar, "dkim") == "pass" and ar.count("dkim=pass") == 10, ar
    assert "dkim=policy (not checked: 20 past the first 10)" in ar, ar


def test_a_signature_naming_too_many_fields_is_not_checked(mx):
    names = ["from"] + [f"x-absent-{i}" for i in range(150)]
    # Folded: an SMTP line holds 1,000 octets (RFC 5321 4.5.3.1.6).
    folded = ":\r\n\t".join(":".join(names[i:i + 20]) for i in range(0, len(names), 20))
    sig = f"DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=s1;\r\n\th={folded};\r\n\tbh={BH}; b=AAAAAAAA\r\n"
    raw = f"{sig}From: <a@evil.test>\r\nTo: <{BOB}>\r\nSubject: long h\r\n\r\nbody\r\n".encode()
    assert transaction(mx, "a@evil.test", BOB, raw)[0] == 250
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert "dkim=policy (not checked: 1 signing more than 100 fields)" in ar, ar


def test_a_pile_of_signatures_is_judged_at_once_while_other_sessions_carry_on(mx, fake_dns):
    """5,000 signatures by a published key, each naming 60 absent fields:
    mail-auth scans the header section per name and signature (5,000 x 60
    x 5,000); past 1,000 header fields none is checked."""
    key, record = dkimpy_key("rsa")
    fake_dns.records["pile._domainkey.evil.test"] = {"TXT": [record]}
    names = ":".join(["from", "to", "subject"] + [f"x-absent-{i}" for i in range(60)])
    sig = (f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=evil.test; s=pile;\r\n\th={names};\r\n"
           f"\tbh={BH}; b={'A' * 344}\r\n").encode()
    raw = sig * 5000 + f"From: <a@evil.test>\r\nTo: <{BOB}>\r\nSubject: pile\r\n\r\nbody\r\n".encode()
    other = {}

    def another_client():
        time.sleep(1)
        started = time.monotonic()
        with mx.smtp() as s:
            s.noop()
        other["took"] = time.monotonic() - started

    t = threading.Thread(target=another_client)
    t.start()
    started = time.monotonic()
    assert transaction(mx, "a@evil.test", BOB, raw)[0] == 250
    took = time.monotonic() - started
    t.join(30)
    print(f"5,000 signatures: {took:.2f}s; another client meanwhile: {other}")
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert "dkim=policy (5000 not checked: more than 1000 header fields)" in ar, ar[:300]
    assert took < 5, f"the message took {took:.1f}s"
    assert other["took"] < 1.5, f"another client waited {other['took']:.1f}s"


# --- huge and numerous TXT records ---------------------------------------------------

@pytest.mark.parametrize("domain", ["big.test", "many.test", "twice.test", "loop.test", "deep.test", "junk.test"])
def test_hostile_spf_records_get_pyspfs_verdict(mx, fake_dns, domain):
    sender = f"someone@{domain}"
    started = time.monotonic()
    assert transaction(mx, sender, BOB, f"From: <{sender}>\r\nTo: <{BOB}>\r\nSubject: x\r\n\r\nx\r\n".encode())[0] == 250
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert time.monotonic() - started < 10
    ours = result(ar, "spf")
    dns.resolver.default_resolver = resolver(fake_dns)
    try:
        theirs, _ = spf.check2(i="127.0.0.1", s=sender, h="client.test", timeout=5)
    finally:
        dns.resolver.default_resolver = None
    assert ours == theirs, f"ferrymail {ours}, pyspf {theirs}: {ar}"


# --- DNS that never answers --------------------------------------------------------

def test_a_key_lookup_that_times_out_is_dkim_temperror(mx, fake_dns):
    key, _ = dkimpy_key("rsa")
    body = b"From: <a@evil.test>\r\nTo: <bob@localhost>\r\nSubject: slow key\r\n\r\nThe body.\r\n"
    sig = dkim.sign(body, b"slow", b"evil.test", key, include_headers=[b"from", b"to", b"subject"])
    assert transaction(mx, "a@evil.test", BOB, sig + body)[0] == 250
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert result(ar, "dkim") == "temperror", ar


def test_a_dmarc_record_that_times_out_is_temperror_and_the_message_is_not_refused(mx):
    """SPF fails and the policy cannot be read: not a failure (RFC 7489
    6.6.3 ends the check), so no p=reject refusal on a guess."""
    raw = f"From: <a@dslow.test>\r\nTo: <{BOB}>\r\nSubject: slow dmarc\r\n\r\nx\r\n".encode()
    assert transaction(mx, "a@dslow.test", BOB, raw)[0] == 250
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert result(ar, "spf") == "fail" and result(ar, "dmarc") == "temperror", ar


def test_the_whole_check_deadline_gives_temperror_and_the_message_goes_on(make_server, fake_dns):
    srv = make_server(config={"dns": {"nameservers": [fake_dns.address], "timeout": "5s"},
                              "mail_auth": {"verify": True, "timeout": "1s"}})
    started = time.monotonic()
    raw = f"From: <a@slowspf.test>\r\nTo: <{BOB}>\r\nSubject: slow\r\n\r\nx\r\n".encode()
    assert transaction(srv, "a@slowspf.test", BOB, raw)[0] == 250
    took = time.monotonic() - started
    ar = auth_results(wait_for_mail(srv, BOB)[0])
    assert [result(ar, m) for m in ("spf", "dkim", "dmarc")] == ["temperror"] * 3, ar
    assert 0.9 < took < 4, f"{took:.1f}s"
