"""Issue 10, the milter bridge: the chain element `milter:NAME` against the
real counterparts — Debian's rspamd (proxy worker in milter mode) refusing
the GTUBE test message, OpenDKIM signing what passes through it (checked
by dkimpy), and a milter that accepts the connection and never answers
(the failure policy within the deadline, while other sessions carry on),
and milters that answer garbage or try what they were not allowed.
Clients are smtplib; mail is read back over POP3.
"""

import re
import smtplib
import threading
import time
import tomllib
from pathlib import Path

import dkim
import pytest

from conftest import HOST, PASSWORDS
from fake_dns import DnsServer
from milters import HangingMilter, OpenDkim, Rspamd, ScriptedMilter
from test_mail_auth import dkimpy_verifies, dnsfunc, without_return_path

ALICE = "alice@localhost"
DEFAULT_CHAIN = ["dmarc", "auth", "local", "relay", "vrfy-expn", "retry"]
# GTUBE: every spam filter's "this is spam" test string.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def milter_server(make_server, name, port, failure="tempfail", timeout="30s", **config):
    return make_server(config={
        "chain": ["@tenant", f"milter:{name}", *DEFAULT_CHAIN],
        "milters": {name: {"socket": f"inet:{HOST}:{port}", "failure": failure, "timeout": timeout}},
        **config,
    })


def message(subject, body, frm="sender@example.org", to=ALICE) -> bytes:
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Wed, 02 Dec 2026 21:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
            f"\r\n{body}").encode()


# --- rspamd ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def rspamd():
    r = Rspamd()
    yield r
    r.close()


def test_rspamd_refuses_gtube_with_its_own_reply_and_passes_clean_mail(make_server, rspamd):
    srv = milter_server(make_server, "rspamd", rspamd.port)
    with srv.smtp() as s:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("sender@example.org", [ALICE], message("gtube", f"{GTUBE}\r\n"))
        # rspamd's reject action, sent as SMFIR_REPLYCODE and passed on as given.
        assert refused.value.smtp_code == 554, refused.value
        assert b"5.7.1" in refused.value.smtp_error and b"Gtube" in refused.value.smtp_error, refused.value
        # The same session goes on: the next transaction is judged afresh.
        refused = s.sendmail("sender@example.org", [ALICE], message("clean", "Lunch at noon?\r\n"))
        assert not refused
    (msg,) = srv.mailbox(ALICE)
    assert b"Lunch at noon?" in msg
    assert GTUBE.encode() not in msg
    log = rspamd.log.read_text(errors="replace")
    assert "GTUBE" in log.upper(), "rspamd saw and judged the GTUBE message"


def test_a_tenant_can_put_rspamd_in_its_own_chain(make_server, rspamd):
    srv = make_server(
        config={
            "milters": {"rspamd": {"socket": f"inet:{HOST}:{rspamd.port}"}},
            "tenants": {"t": {"domains": ["t.test"], "chain": ["milter:rspamd"]}},
        },
        users={ALICE: PASSWORDS[ALICE], "carol@t.test": "carol-pw"},
    )
    with srv.smtp() as s:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("sender@example.org", ["carol@t.test"], message("gtube", f"{GTUBE}\r\n", to="carol@t.test"))
        assert refused.value.smtp_code == 554
        # alice's domain belongs to no tenant: the global chain, no milter.
        assert not s.sendmail("sender@example.org", [ALICE], message("gtube", f"{GTUBE}\r\n"))
    (msg,) = srv.mailbox(ALICE)
    assert GTUBE.encode() in msg


def readme_milter_config() -> dict:
    """The README's milter example (the TOML block with [milters.rspamd]), parsed as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if "[milters.rspamd]" in b]
    return tomllib.loads(block)


def test_the_readme_milter_example_works_as_written(make_server, rspamd):
    config = readme_milter_config()
    assert config["milters"]["rspamd"]["socket"] == "inet:127.0.0.1:11332", "the README's port, swapped below"
    config["milters"]["rspamd"]["socket"] = f"inet:{HOST}:{rspamd.port}"
    srv = make_server(config=config)
    with srv.smtp() as s:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("sender@example.org", [ALICE], message("gtube", f"{GTUBE}\r\n"))
        assert refused.value.smtp_code == 554 and b"5.7.1" in refused.value.smtp_error, refused.value
        assert not s.sendmail("sender@example.org", [ALICE], message("clean", "Lunch at noon?\r\n"))
    (msg,) = srv.mailbox(ALICE)
    assert b"Lunch at noon?" in msg


# --- OpenDKIM -------------------------------------------------------------------

def test_opendkim_signs_what_passes_and_dkimpy_verifies_it(make_server):
    odk = OpenDkim("example.org")
    fake = DnsServer({odk.record_name: {"TXT": [odk.record]}})
    try:
        srv = milter_server(make_server, "opendkim", odk.port)
        srv.send(ALICE, body="Signed by OpenDKIM.\r\n", sender="sender@example.org", subject="odk",
                 headers="Date: Wed, 02 Dec 2026 21:00:00 +0000\r\nMessage-ID: <odk@example.org>\r\n")
        (msg,) = srv.mailbox(ALICE)
        signed = without_return_path(msg)
        fields = re.search(rb"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", signed, re.M)
        assert fields, f"no signature:\n{signed.decode()}"
        tags = re.sub(rb"\s+", b"", fields.group(1))
        assert b"d=example.org" in tags and b"s=odk" in tags and b"a=rsa-sha256" in tags, tags
        assert b"\r\n\t" in fields.group(0), "OpenDKIM's LF folding arrives as CRLF"
        assert dkim.DKIM(signed).verify(dnsfunc=dnsfunc(fake)), f"dkimpy refused:\n{signed.decode()}"
        tampered = signed.replace(b"Signed by OpenDKIM.", b"Signed by OpenDKIM!")
        assert not dkimpy_verifies(tampered, fake), "one changed body byte must fail"
    finally:
        fake.close()
        odk.close()


# --- a milter that never answers -----------------------------------------------

def hanging_server(make_server, hang, failure):
    return make_server(
        config={
            "milters": {"hang": {"socket": f"inet:{HOST}:{hang.port}", "failure": failure, "timeout": "2s"}},
            "tenants": {"slow": {"domains": ["slow.test"], "chain": ["milter:hang"]}},
        },
        users={ALICE: PASSWORDS[ALICE], "carol@slow.test": "carol-pw"},
    )


def carol_count(srv) -> int:
    p = srv.pop3("carol@slow.test", "carol-pw")
    try:
        return p.stat()[0]
    finally:
        p.quit()


@pytest.mark.parametrize("failure", ["tempfail", "skip"])
def test_a_hanging_milter_gets_the_failure_policy_at_the_deadline_while_others_carry_on(make_server, failure):
    hang = HangingMilter()
    try:
        srv = hanging_server(make_server, hang, failure)
        result = {}

        def slow_session():
            started = time.monotonic()
            with srv.smtp() as s:
                s.mail("sender@example.org")
                result["rcpt"] = s.rcpt("carol@slow.test")
                result["rcpt_after"] = time.monotonic() - started
                if result["rcpt"][0] == 250:
                    result["data"] = s.data(message("slow", "after the deadline\r\n", to="carol@slow.test"))

        t = threading.Thread(target=slow_session)
        t.start()
        time.sleep(0.5)
        started = time.monotonic()
        srv.send(ALICE, body="not held up\r\n")
        other = time.monotonic() - started
        assert t.is_alive(), "the slow session is still waiting on its milter"
        t.join(15)
        assert not t.is_alive()
        assert other < 1.5, f"another session took {other:.1f}s while a milter hung"
        assert 1.9 <= result["rcpt_after"] < 5, result
        if failure == "tempfail":
            assert result["rcpt"][0] == 451 and b"4.3.0" in result["rcpt"][1], result
            assert carol_count(srv) == 0
        else:
            assert result["rcpt"][0] == 250 and result["data"][0] == 250, result
            assert carol_count(srv) == 1
        assert hang.connections == 1, "one connection, for the one session that reached the milter"
        assert "milter failed" in srv.log_text()
        (mine,) = srv.mailbox(ALICE)
        assert b"not held up" in mine
    finally:
        hang.close()


# --- a milter that answers garbage ------------------------------------------------

packet = ScriptedMilter.packet
GARBAGE = {
    "a 4 GiB length": (b"E", b"\xff\xff\xff\xff" + b"x" * 64),
    "a zero length": (b"E", b"\x00\x00\x00\x00"),
    "a success reply code": (b"E", packet(b"y", b"250 2.0.0 fine by me\x00")),
    "a reply code with a header after CRLF": (b"E", packet(b"y", b"554 5.7.1 no\r\nX-Injected: yes\x00")),
    # A modification, then the final answer (libmilter's order).
    "a header value starting a new field": (b"E", packet(b"h", b"X-Spam\x00Yes\r\nBcc: victim@example.org\x00")
                                            + packet(b"c")),
    "a header name with a space": (b"E", packet(b"h", b"Bad Name\x00x\x00") + packet(b"c")),
    "a recipient added, not negotiated": (b"E", packet(b"+", b"<victim@example.org>\x00")),
    "an unknown answer at RCPT": (b"R", packet(b"Z", b"zzzz")),
}


@pytest.mark.parametrize("case", GARBAGE)
def test_a_milter_answering_garbage_gets_the_failure_policy_and_nothing_of_it_is_used(make_server, case):
    at, answer = GARBAGE[case]
    bad = ScriptedMilter(at, answer)
    try:
        srv = milter_server(make_server, "bad", bad.port, failure="tempfail", timeout="5s")
        started = time.monotonic()
        with srv.smtp() as s:
            assert s.mail("sender@example.org")[0] == 250
            code, text = s.rcpt(ALICE)
            if at == b"R":
                assert code == 451 and b"4.3.0" in text, (code, text)
            else:
                assert code == 250
                # smtplib's data() returns the reply to the message (raising only for the one to DATA).
                code, text = s.data(message("garbage", "hello\r\n"))
                assert code == 451 and b"4.3.0" in text, (code, text)
        assert time.monotonic() - started < 4, "a broken answer is a failure at once, not at the deadline"
        assert srv.count(ALICE) == 0
        assert "milter failed" in srv.log_text() and "panicked" not in srv.log_text()
    finally:
        bad.close()


def test_with_skip_a_garbage_answer_leaves_the_message_as_it_came(make_server):
    bad = ScriptedMilter(b"E", packet(b"h", b"X-Spam\x00Yes\r\nBcc: victim@example.org\x00") + packet(b"c"))
    try:
        srv = milter_server(make_server, "bad", bad.port, failure="skip", timeout="5s")
        with srv.smtp() as s:
            assert not s.sendmail("sender@example.org", [ALICE], message("skipped", "hello\r\n"))
        (msg,) = srv.mailbox(ALICE)
        assert b"hello" in msg and b"X-Spam" not in msg and b"victim" not in msg, msg.decode()
    finally:
        bad.close()
