"""Tenant isolation against the real binary (issue 16, item 1): tenant a
runs a hostile plugin (plugins/tests/hostile) that answers for tenant b's
users and accounts and reports what it is shown; the host must refuse the
answers and show each tenant only its own recipients. Driven with smtplib
and poplib, the plugin configured in the server's TOML like any tenant's.
"""

import imaplib
import poplib
import smtplib

import pytest

from conftest import HOST
from test_plugins import wasm

USERS = {
    "mallory@a.test": "mallory-pw",
    "ann@a.test": "ann-pw",
    "bob@b.test": "bob-pw",
    "alice@localhost": "alice-pw",
}


def isolation_server(make_server, failure: str = "tempfail", **a_config):
    """Tenants a (the hostile plugin configured with `a_config`) and b (the
    same plugin, only reporting what it sees)."""
    return make_server(
        config={
            "local_domains": ["localhost"],
            "plugins": {
                "hostile": {"path": str(wasm("test_hostile")), "failure": failure, "grants": {"directory": True}},
            },
            "tenants": {
                "a": {"domains": ["a.test"], "chain": ["hostile"],
                      "plugin_config": {"hostile": {"tag": "a", **a_config}}},
                "b": {"domains": ["b.test"], "chain": ["hostile"], "plugin_config": {"hostile": {"tag": "b"}}},
            },
        },
        users=USERS,
    )


def message(to: list[str], subject: str) -> bytes:
    return (f"From: <x@example.org>\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\n\r\nbody\r\n").encode()


def mailbox(srv, user: str) -> list[bytes]:
    p = srv.pop3()
    try:
        p.user(user)
        p.pass_(USERS[user])
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i)[1]) for i in range(1, count + 1)]
    finally:
        p.quit()


def header_block(msg: bytes) -> bytes:
    return msg.split(b"\r\n\r\n", 1)[0]


# --- (a) auth ----------------------------------------------------------------

def test_auth_plugin_cannot_log_in_as_another_tenants_user(make_server):
    srv = isolation_server(make_server, auth_as="bob@b.test")
    srv.send("bob@b.test", subject="for bob only")
    # Before the fix: +OK, and RETR 1 returned bob's mail to mallory.
    p = srv.pop3()
    p.user("mallory@a.test")
    with pytest.raises(poplib.error_proto) as refused:
        p.pass_("anything")
    assert refused.value.args[0].startswith(b"-ERR"), refused.value
    p.quit()
    # SMTP AUTH likewise (before: 235, and mallory sent as bob).
    with srv.submission() as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("mallory@a.test", "anything")
        assert e.value.smtp_code == 454, e.value
    log = srv.log_text()
    assert "plugin answer refused: tenant isolation" in log and "bob@b.test" in log
    assert "user=bob@b.test" not in log, "bob's maildrop or session was opened"
    # Bob's own login still works, and his mail is there.
    (mail,) = mailbox(srv, "bob@b.test")
    assert b"Subject: for bob only" in mail


def test_imap_login_cannot_become_another_tenants_user(make_server):
    srv = isolation_server(make_server, auth_as="bob@b.test")
    srv.send("bob@b.test", subject="for bob only")
    i = srv.imap()
    # Before the fix: OK, and SELECT INBOX showed bob's mailbox.
    with pytest.raises(imaplib.IMAP4.error):
        i.login("mallory@a.test", "anything")
    i.logout()
    assert "user=bob@b.test" not in srv.log_text()
    # The same client logs bob in with his own password (the failure above is the check).
    srv.imap("bob@b.test", USERS["bob@b.test"]).logout()


def test_auth_failure_policy_skip_lets_the_real_password_decide(make_server):
    srv = isolation_server(make_server, failure="skip", auth_as="bob@b.test")
    p = srv.pop3()
    p.user("mallory@a.test")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")  # the answer naming bob is ignored; auth checks the password
    p.quit()
    assert mailbox(srv, "mallory@a.test") == []


# --- (b) route ---------------------------------------------------------------

def test_route_hook_cannot_file_into_another_tenants_mailbox(make_server):
    srv = isolation_server(make_server, route_local="bob@b.test")
    with srv.smtp() as s:
        # Before the fix: 250, and the message was in bob's mailbox.
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@example.org", ["ann@a.test"], message(["ann@a.test"], "to ann"))
        assert e.value.smtp_code == 451, e.value
    assert mailbox(srv, "bob@b.test") == []
    assert "plugin answer refused: tenant isolation" in srv.log_text()


def test_route_alias_into_another_tenant_is_refused_and_skip_routes_normally(make_server):
    srv = isolation_server(make_server, failure="skip", route_alias=["bob@b.test", "alice@localhost"])
    srv.send("ann@a.test", subject="to ann")
    # The alias answer was ignored (skip); the default chain filed it for ann.
    assert len(mailbox(srv, "ann@a.test")) == 1
    assert mailbox(srv, "bob@b.test") == [] and mailbox(srv, "alice@localhost") == []


# --- (c) what a tenant sees and adds -----------------------------------------

def test_each_tenant_sees_and_stamps_only_its_own_recipients(make_server):
    srv = isolation_server(make_server, resolve="bob@b.test", verify=["bob@b.test", USERS["bob@b.test"]])
    with srv.smtp() as s:
        refused = s.sendmail("x@example.org", ["ann@a.test", "mallory@a.test", "bob@b.test"],
                             message(["ann@a.test", "bob@b.test"], "both tenants"))
        # RFC 5321 4.5.3.1.10 / RFC 3463 X.5.3: b's recipient goes in a
        # transaction of its own, as an MTA does with a 452'd recipient.
        assert set(refused) == {"bob@b.test"}
        code, text = refused["bob@b.test"]
        assert code == 452 and text.startswith(b"4.5.3"), refused
        assert s.sendmail("x@example.org", ["bob@b.test"], message(["ann@a.test", "bob@b.test"], "both tenants")) == {}
    (ann,) = mailbox(srv, "ann@a.test")
    (bob,) = mailbox(srv, "bob@b.test")
    # Before the fix: one transaction; both hooks saw all three recipients
    # and each copy carried both tenants' headers.
    assert b'X-Hostile-a: saw ["ann@a.test", "mallory@a.test"]' in header_block(ann)
    assert b"X-Hostile-b" not in header_block(ann)
    assert b'X-Hostile-b: saw ["bob@b.test"]' in header_block(bob)
    assert b"X-Hostile-a" not in header_block(bob)
    log = srv.log_text()
    for line in log.splitlines():
        if "hostile a " in line:
            assert "bob@b.test" not in line or "bob@b.test: Err(HostError::Denied)" in line \
                or "resolved bob@b.test: error HostError::Denied" in line, line
        if "hostile b " in line:
            assert "a.test" not in line, line
    # Plugin log messages go through logsafe, which escapes their quotes.
    assert r'hostile a rcpt saw [\"ann@a.test\"] mallory@a.test' in log
    # directory.resolve of another tenant's address is not a's to ask.
    assert "hostile a resolved bob@b.test: error HostError::Denied" in log
    # Nor is guessing b's passwords (before: Ok(true)).
    assert "hostile a verified bob@b.test: Err(HostError::Denied)" in log


def test_a_tenants_data_refusal_refuses_only_its_own_recipients(make_server):
    srv = isolation_server(make_server, data_reject="tenant a says no")
    with srv.smtp() as s:
        refused = s.sendmail("x@example.org", ["bob@b.test", "ann@a.test"], message(["bob@b.test"], "b first"))
        assert set(refused) == {"ann@a.test"}  # 452: another transaction
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@example.org", ["ann@a.test"], message(["ann@a.test"], "a second"))
        assert (e.value.smtp_code, e.value.smtp_error) == (550, b"5.7.1 tenant a says no")
    assert len(mailbox(srv, "bob@b.test")) == 1
    assert mailbox(srv, "ann@a.test") == []


def test_submission_from_a_tenant_to_a_local_user_of_no_tenant(make_server):
    # a's route hook must not decide for alice@localhost (the global chain does).
    srv = isolation_server(make_server, route_local="mallory@a.test")
    with smtplib.SMTP(HOST, srv.submission_port, timeout=10) as s:
        s.ehlo("client.test")
        s.login("ann@a.test", USERS["ann@a.test"])
        assert s.sendmail("ann@a.test", ["alice@localhost"], message(["alice@localhost"], "hi alice")) == {}
    assert len(mailbox(srv, "alice@localhost")) == 1
    assert mailbox(srv, "mallory@a.test") == []
