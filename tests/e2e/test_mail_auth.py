"""Issue 10: DKIM signing checked by dkimpy, DKIM/SPF/DMARC verification
checked against dkimpy's signatures and pyspf's verdicts on the same
records, served by the loopback DNS server, and the per-tenant DMARC
decision of the `dmarc` plugin (refuse, quarantine into Junk, stamp).
"""

import base64
import re
import time

import dkim
import dns.resolver
import pytest
import spf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from conftest import HOST, PASSWORDS
from fake_dns import DnsServer

ALICE, BOB = "alice@localhost", "bob@localhost"


def resolver(fake: DnsServer) -> dns.resolver.Resolver:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port = [HOST], fake.port
    r.timeout = r.lifetime = 3
    return r


def dnsfunc(fake: DnsServer):
    """dkimpy's TXT look-up, through the same fake DNS ferrymail uses."""
    res = resolver(fake)

    def txt(name, timeout=5):
        if isinstance(name, bytes):
            if not name.isascii():
                return None  # 8-bit octets from a hostile signature: no such name here
            name = name.decode()
        try:
            answer = res.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(next(iter(answer)).strings)
    return txt


def zone_record(keygen_output: str) -> tuple[str, str]:
    """(name, text) from the zone line `dkim keygen` prints: what an
    operator would paste into the zone, strings joined as DNS joins them."""
    line = next(l for l in keygen_output.splitlines() if " IN TXT " in l)
    name = line.split()[0].rstrip(".")
    return name, "".join(re.findall(r'"([^"]*)"', line))


def submit(srv, sender=ALICE, to=BOB, frm=None, body="Hello Bob.\r\n"):
    msg = (f"From: <{frm or sender}>\r\nTo: <{to}>\r\nSubject: signed mail\r\n"
           f"Date: Wed, 02 Dec 2026 16:00:00 +0000\r\nMessage-ID: <m1@localhost>\r\n\r\n{body}")
    with srv.submission() as s:
        s.login(sender, PASSWORDS[sender])
        s.sendmail(sender, [to], msg.encode())


def wait_for_mail(srv, user, count=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        box = srv.mailbox(user)
        if len(box) >= count:
            return box
        time.sleep(0.1)
    raise AssertionError(f"{user} got no mail:\n{srv.log_tail()}")


def signature_tags(msg: bytes) -> dict:
    """The tags of the first DKIM-Signature field, unfolded."""
    m = re.search(rb"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", msg, re.M | re.I)
    value = re.sub(rb"\s+", b"", m.group(1))
    return dict(t.split(b"=", 1) for t in value.split(b";") if b"=" in t)


def dkimpy_verifies(msg: bytes, fake: DnsServer) -> bool:
    try:
        return dkim.DKIM(msg).verify(dnsfunc=dnsfunc(fake))
    except dkim.DKIMException:  # e.g. "body hash mismatch"
        return False


def without_return_path(msg: bytes) -> bytes:
    # Return-Path is written on read (RFC 5321 4.4), above the signature.
    return re.sub(rb"^Return-Path: [^\r\n]*\r\n", b"", msg)


# --- outbound signing ---------------------------------------------------------

@pytest.mark.parametrize("algorithm, a_tag", [("ed25519", b"ed25519-sha256"), ("rsa2048", b"rsa-sha256")])
def test_submitted_mail_is_signed_and_dkimpy_verifies_it(make_server, algorithm, a_tag):
    srv = make_server(start=False)
    out = srv.cli("dkim", "keygen", "localhost", "--selector", "sel1", "--algorithm", algorithm, check=True).stdout
    name, text = zone_record(out)
    assert name == "sel1._domainkey.localhost"
    listed = srv.cli("dkim", "list", check=True).stdout.split("\t")
    assert listed[:4] == ["localhost", "sel1", "ed25519" if algorithm == "ed25519" else "rsa", "active"]
    assert listed[-1].strip() == text, "list shows the record keygen printed"
    fake = DnsServer({name: {"TXT": [text]}})
    try:
        srv.start()
        submit(srv)
        (msg,) = wait_for_mail(srv, BOB)
        signed = without_return_path(msg)
        assert signed.startswith(b"DKIM-Signature:"), "the signature is the last field added"
        sig = dkim.DKIM(signed)
        assert sig.verify(dnsfunc=dnsfunc(fake)), f"dkimpy refused it:\n{signed.decode()}"
        fields = signature_tags(signed)
        assert fields[b"a"] == a_tag and fields[b"d"] == b"localhost" and fields[b"s"] == b"sel1"
        signed_names = [h.strip().lower() for h in fields[b"h"].split(b":")]
        # RFC 6376 8.15: a present field is listed once more than it occurs.
        assert signed_names.count(b"from") == 2 and signed_names.count(b"subject") == 2
        assert b"received" not in signed_names
        tampered = signed.replace(b"Hello Bob.", b"Hello Bob!")
        assert not dkimpy_verifies(tampered, fake), "one changed body byte must fail"
    finally:
        fake.close()


def test_from_a_domain_without_key_or_of_another_tenant_goes_unsigned(make_server):
    srv = make_server(start=False)
    srv.cli("dkim", "keygen", "other.example", "--algorithm", "ed25519", check=True)
    srv.start()
    # alice may send as herself only; the From field is hers to write.
    submit(srv, frm="ceo@other.example")
    (msg,) = wait_for_mail(srv, BOB)
    assert b"DKIM-Signature" not in msg
    assert "not dkim signed" in srv.log_text()


def test_rotation_signs_with_the_new_selector_only_after_activate(make_server):
    srv = make_server(start=False)
    srv.cli("dkim", "keygen", "localhost", "--selector", "old", "--algorithm", "ed25519", check=True)
    srv.start()
    out = srv.cli("dkim", "keygen", "localhost", "--selector", "new", "--algorithm", "ed25519", check=True).stdout
    assert "dkim activate localhost new" in out
    submit(srv)
    assert b"s=old;" in wait_for_mail(srv, BOB, 1)[0]
    time.sleep(1.1)  # a new mtime for the active file
    srv.cli("dkim", "activate", "localhost", "new", check=True)
    submit(srv)
    assert b"s=new;" in wait_for_mail(srv, BOB, 2)[1], "the running server picks the new key up"


def test_keygen_refuses_a_domain_that_is_a_path(make_server):
    srv = make_server(start=False)
    r = srv.cli("dkim", "keygen", "../etc", "--algorithm", "ed25519")
    assert r.returncode != 0 and "not a domain name" in r.stderr


def test_a_bounce_is_signed_by_the_hostname_key(make_server):
    fake = DnsServer({"nullmx.test": {"MX": [(0, ".")]}})
    try:
        srv = make_server(config={"dns": {"nameservers": [fake.address]}}, start=False)
        out = srv.cli("dkim", "keygen", "localhost", "--algorithm", "ed25519", check=True).stdout
        name, text = zone_record(out)
        fake.records[name] = {"TXT": [text]}
        srv.start()
        submit(srv, to="x@nullmx.test")
        bounce = next(m for m in wait_for_mail(srv, ALICE) if b"MAILER-DAEMON@localhost" in m)
        assert dkim.DKIM(without_return_path(bounce)).verify(dnsfunc=dnsfunc(fake))
    finally:
        fake.close()


# --- inbound verification -----------------------------------------------------

def dkimpy_key(algorithm: str) -> tuple[bytes, str]:
    """(private key as dkimpy takes it, the TXT record), generated here."""
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(seed), f"v=DKIM1; k=ed25519; p={base64.b64encode(pub).decode()}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


RECORDS = {
    # SPF (RFC 7208) verdicts, compared with pyspf.
    "pass.test": {"TXT": ["v=spf1 ip4:127.0.0.0/8 -all"]},
    "fail.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
    "soft.test": {"TXT": ["v=spf1 ~all"]},
    "neutral.test": {"TXT": ["v=spf1 ?all"]},
    "include.test": {"TXT": ["v=spf1 include:pass.test -all"]},
    "none.test": {"A": ["192.0.2.9"]},
    "client.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    # DMARC (RFC 7489).
    "dpass.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    "_dmarc.dpass.test": {"TXT": ["v=DMARC1; p=reject"]},
    "dreject.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.dreject.test": {"TXT": ["v=DMARC1; p=reject"]},
    "dquar.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.dquar.test": {"TXT": ["v=DMARC1; p=quarantine"]},
    "dnone.test": {"TXT": ["v=spf1 -all"]},
    # The organisational domain's record covers a subdomain (RFC 7489 6.6.3).
    "sub.dorg.test": {"TXT": ["v=spf1 -all"]},
    "_dmarc.dorg.test": {"TXT": ["v=DMARC1; p=reject"]},
}
SERVFAIL, SILENT = {"broken.test"}, {"slow.test"}


@pytest.fixture(scope="module")
def fake_dns():
    fake = DnsServer(RECORDS, servfail=SERVFAIL, silent=SILENT)
    yield fake
    fake.close()


@pytest.fixture
def mx(make_server, fake_dns):
    """A server checking mail from other servers, with a tenant that only stamps."""
    users = {ALICE: PASSWORDS[ALICE], BOB: PASSWORDS[BOB], "carol@acme.test": "carol-secret"}
    return make_server(
        config={
            "dns": {"nameservers": [fake_dns.address], "timeout": "1s"},
            "mail_auth": {"verify": True, "timeout": "10s"},
            "tenants": {"acme": {"domains": ["acme.test"], "plugin_config": {"dmarc": {"reject": "stamp"}}}},
        },
        users=users,
    )


def send_in(srv, sender, to=BOB, frm=None, raw: bytes | None = None, helo="client.test"):
    msg = raw or (f"From: <{frm or sender}>\r\nTo: <{to}>\r\nSubject: hi\r\n\r\nbody\r\n").encode()
    with srv.smtp(ehlo=helo) as s:
        return s.sendmail(sender, [to], msg)


def auth_results(msg: bytes) -> str:
    head = msg.split(b"\r\n\r\n")[0].decode(errors="replace")
    fields = re.findall(r"^Authentication-Results:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M | re.I)
    assert fields, head
    return fields[0].replace("\r\n", "")


def result(ar: str, method: str) -> str:
    return re.search(rf"\b{method}=(\w+)", ar).group(1)


@pytest.mark.parametrize("domain", ["pass.test", "fail.test", "soft.test", "neutral.test", "include.test",
                                    "none.test", "broken.test", "slow.test"])
def test_spf_verdicts_match_pyspf(mx, fake_dns, domain):
    sender = f"someone@{domain}"
    send_in(mx, sender)
    (msg,) = wait_for_mail(mx, BOB)
    ar = auth_results(msg)
    assert ar.split(";")[0].strip() == "localhost", "stamped with our host name"
    ours = result(ar, "spf")
    dns.resolver.default_resolver = resolver(fake_dns)
    try:
        theirs, _ = spf.check2(i="127.0.0.1", s=sender, h="client.test", timeout=3)
    finally:
        dns.resolver.default_resolver = None
    assert ours == theirs, f"ferrymail {ours}, pyspf {theirs}: {ar}"
    assert f"smtp.mailfrom={sender}" in ar


def test_spf_on_the_helo_name_is_reported_too(mx):
    send_in(mx, "someone@fail.test")
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert re.search(r"spf=pass \([^)]*\) smtp\.helo=client\.test", ar), ar


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_dkimpy_signatures_verify_and_one_changed_body_byte_fails(mx, fake_dns, algorithm):
    key, record = dkimpy_key(algorithm)
    fake_dns.records[f"{algorithm}._domainkey.signer.test"] = {"TXT": [record]}
    msg = b"From: <news@signer.test>\r\nTo: <bob@localhost>\r\nSubject: signed by dkimpy\r\n\r\nThe body.\r\n"
    sig = dkim.sign(msg, algorithm.encode(), b"signer.test", key, include_headers=[b"from", b"to", b"subject"],
                    signature_algorithm=b"ed25519-sha256" if algorithm == "ed25519" else b"rsa-sha256")
    send_in(mx, "news@signer.test", raw=sig + msg)
    send_in(mx, "news@signer.test", raw=sig + msg.replace(b"The body.", b"The body!"))
    good, bad = wait_for_mail(mx, BOB, 2)
    ar = auth_results(good)
    assert result(ar, "dkim") == "pass" and re.search(r"header\.[di]=@?signer\.test", ar), ar
    assert f"header.s={algorithm}" in ar, ar
    assert result(auth_results(bad), "dkim") == "fail", auth_results(bad)
    # dkimpy agrees on both.
    assert dkim.verify(sig + msg, dnsfunc=dnsfunc(fake_dns))
    assert not dkim.verify(sig + msg.replace(b"The body.", b"The body!"), dnsfunc=dnsfunc(fake_dns))


def test_dmarc_pass_is_stamped_and_delivered(mx):
    send_in(mx, "a@dpass.test")
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert result(ar, "dmarc") == "pass" and "header.from=dpass.test" in ar, ar


def test_dmarc_reject_policy_failure_is_refused_550_5_7_1(mx):
    with pytest.raises(Exception) as refused:
        send_in(mx, "a@dreject.test")
    assert getattr(refused.value, "smtp_code", None) == 550, refused.value
    assert b"5.7.1" in refused.value.smtp_error and b"DMARC" in refused.value.smtp_error
    assert mx.count(BOB) == 0


def test_dmarc_of_the_organisational_domain_applies_to_a_subdomain(mx):
    with pytest.raises(Exception) as refused:
        send_in(mx, "a@sub.dorg.test")
    assert getattr(refused.value, "smtp_code", None) == 550


def test_dmarc_quarantine_files_in_junk(mx):
    send_in(mx, "a@dquar.test")
    assert mx.count(BOB) == 0, "not in INBOX"
    i = mx.imap(BOB)
    try:
        typ, data = i.select("Junk")
        assert typ == "OK" and data == [b"1"], data
        _, fetched = i.fetch("1", "(BODY.PEEK[HEADER])")
        head = fetched[0][1]
        assert b"X-Ferrymail-Quarantine: dmarc=fail policy.dmarc=quarantine" in head
        assert re.search(rb"dmarc=fail", head)
    finally:
        i.logout()


def test_dmarc_none_when_the_domain_publishes_no_policy(mx):
    send_in(mx, "a@dnone.test")
    ar = auth_results(wait_for_mail(mx, BOB)[0])
    assert result(ar, "dmarc") == "none" and result(ar, "spf") == "fail", ar


def test_a_tenant_that_only_stamps_accepts_a_dmarc_reject_failure(mx):
    send_in(mx, "a@dreject.test", to="carol@acme.test")
    p = mx.pop3("carol@acme.test", "carol-secret")
    try:
        assert p.stat()[0] == 1
        msg = b"\r\n".join(p.retr(1)[1])
    finally:
        p.quit()
    ar = auth_results(msg)
    assert result(ar, "dmarc") == "fail" and "policy.dmarc=reject" in ar, ar


def test_results_claiming_our_name_are_removed_rfc8601_5(mx):
    forged = (b"Authentication-Results: localhost; dmarc=pass header.from=dreject.test\r\n"
              b"Authentication-Results: elsewhere.example; spf=pass\r\n"
              b"From: <a@none.test>\r\nTo: <bob@localhost>\r\nSubject: forged\r\n\r\nx\r\n")
    send_in(mx, "a@none.test", raw=forged)
    (msg,) = wait_for_mail(mx, BOB)
    head = msg.split(b"\r\n\r\n")[0]
    assert head.count(b"Authentication-Results: localhost") == 1
    assert b"dmarc=pass header.from=dreject.test" not in head
    assert b"Authentication-Results: elsewhere.example; spf=pass" in head, "other hosts' results stay"


def test_submission_is_not_checked(mx):
    submit(mx)
    (msg,) = wait_for_mail(mx, BOB)
    assert b"Authentication-Results" not in msg
