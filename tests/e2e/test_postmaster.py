"""RFC 5321 4.5.1 (issue 16, item 10): RCPT TO:<Postmaster> without a
domain, and postmaster@ every domain we serve (local and tenant domains),
must be accepted even when no such account exists; the mail goes to the
configured `postmaster` address. Driven with smtplib and poplib.
"""

import smtplib

import pytest

USERS = {"admin@localhost": "admin-pw", "ann@t.test": "ann-pw"}
DOMAINS = {"local_domains": ["localhost", "example.test"], "tenants": {"t": {"domains": ["t.test"], "chain": []}}}


def subjects(srv, user: str, password: str) -> list[str]:
    p = srv.pop3()
    try:
        p.user(user)
        p.pass_(password)
        count, _ = p.stat()
        out = []
        for i in range(1, count + 1):
            lines = p.retr(i)[1]
            out += [ln.decode().split(": ", 1)[1] for ln in lines if ln.lower().startswith(b"subject: ")]
        return out
    finally:
        p.quit()


def send(srv, rcpt: str, subject: str):
    with srv.smtp() as s:
        # smtplib writes RCPT TO:<rcpt> exactly as given.
        refused = s.sendmail("someone@example.org", [rcpt], f"Subject: {subject}\r\n\r\nhello\r\n".encode())
        assert refused == {}, refused


@pytest.mark.parametrize("rcpt", ["postmaster", "Postmaster", "POSTMASTER@example.test", "postmaster@LocalHost",
                                  "PostMaster@t.test"])
def test_postmaster_is_accepted_and_delivered_to_the_configured_address(make_server, rcpt):
    srv = make_server(config={**DOMAINS, "postmaster": "admin@localhost"}, users=USERS)
    # Before: 550 5.1.1 User unknown (no account postmaster@…).
    send(srv, rcpt, f"to {rcpt}")
    assert subjects(srv, "admin@localhost", "admin-pw") == [f"to {rcpt}"]


def test_an_account_of_that_name_wins_and_the_default_is_the_first_local_domain(make_server):
    srv = make_server(config=DOMAINS, users={**USERS, "postmaster@localhost": "pm-pw"})
    send(srv, "postmaster@example.test", "one")  # no own account: the default target
    send(srv, "postmaster", "two")
    assert subjects(srv, "postmaster@localhost", "pm-pw") == ["one", "two"]
    assert subjects(srv, "admin@localhost", "admin-pw") == []


def test_postmaster_elsewhere_is_no_relay_and_a_missing_target_is_logged(make_server):
    srv = make_server(config={**DOMAINS, "relay_networks": []}, users=USERS)
    assert "no such account: mail to postmaster" in srv.log_text()
    with srv.smtp() as s:
        s.mail("someone@example.org")
        code, text = s.rcpt("postmaster@elsewhere.example")
        assert code == 554, (code, text)
