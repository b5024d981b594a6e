"""Issue 16 item 10: per-tenant message-rate limits, as the default plugin
`rate-limit` configured per tenant (450 4.7.1 past the limit)."""

import smtplib

import pytest


@pytest.fixture
def srv(make_server):
    # Arrays of tables are beyond the config helper: written as TOML here.
    srv = make_server(extra_toml="""
[plugins.rate-limit]
path = "builtin:rate-limit"
[tenants.acme]
domains = ["acme.test"]
chain = ["rate-limit"]
[tenants.acme.plugin_config.rate-limit]
limits = [{ per = "tenant", max = 2, window = "1h" }]
[tenants.beta]
domains = ["beta.test"]
chain = ["rate-limit"]
[tenants.beta.plugin_config.rate-limit]
limits = [{ per = "tenant", max = 5, window = "1h" }]
""")
    for user in ("ann@acme.test", "bo@beta.test"):
        srv.add_user(user, "pw")
    return srv


def count(srv, user: str) -> int:
    p = srv.pop3(user, "pw")
    try:
        return p.stat()[0]
    finally:
        p.quit()


def test_a_tenant_over_its_limit_is_deferred_and_others_are_not(srv):
    srv.send("ann@acme.test")
    srv.send("ann@acme.test")
    with srv.smtp() as s:
        s.mail("someone@example.org")
        code, text = s.rcpt("ann@acme.test")
        assert code == 450 and text.startswith(b"4.7.1 Rate limit exceeded"), (code, text)
        # The session goes on; beta counts its own messages.
        assert s.rcpt("bo@beta.test")[0] == 250
        s.data(b"Subject: for beta\r\n\r\nhello\r\n")
    assert count(srv, "ann@acme.test") == 2
    assert count(srv, "bo@beta.test") == 1
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        srv.send("ann@acme.test")
