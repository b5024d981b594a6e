"""Issue 16 item 10: an authenticated user may use its own address, the
null sender and what a plugin allows (the default `auth` plugin: the
account's aliases and its `senders` grants), and nothing else: 553 5.7.1.
"""

import smtplib

import pytest

from conftest import PASSWORDS

ALICE = "alice@localhost"


@pytest.fixture
def srv(make_server):
    # Addresses as TOML keys need quotes, which the config helper does not add.
    return make_server(extra_toml="""
[plugins.local]
path = "builtin:local"
config = { aliases = { "sales@localhost" = ["alice@localhost", "bob@localhost"] } }
[plugins.auth]
path = "builtin:auth"
config = { senders = { "alice@localhost" = ["ceo@example.com", "@shop.example"] } }
""")


def mail_reply(srv, sender: str, user: str = ALICE) -> tuple[int, bytes]:
    with srv.submission() as s:
        s.login(user, PASSWORDS[user])
        return s.mail(sender)


def test_someone_elses_sender_is_refused_553(srv):
    # Seen on the wire: 250 for another tenant's CEO after AUTH as alice.
    code, text = mail_reply(srv, "ceo@b.test")
    assert (code, text) == (553, b"5.7.1 <ceo@b.test>: Sender address rejected: not owned by user alice@localhost")
    # Another account of the same server is someone else's too.
    assert mail_reply(srv, "bob@localhost")[0] == 553


@pytest.mark.parametrize("sender", [ALICE, "Alice@LocalHost", "", "sales@localhost", "ceo@example.com",
                                    "orders@shop.example"])
def test_own_address_null_sender_aliases_and_grants_are_accepted(srv, sender):
    assert mail_reply(srv, sender)[0] == 250


def test_alias_is_shared_by_its_targets_only(srv):
    assert mail_reply(srv, "sales@localhost", user="bob@localhost")[0] == 250
    assert mail_reply(srv, "ceo@example.com", user="bob@localhost")[0] == 553


def test_refused_sender_then_own_sender_delivers(srv):
    with srv.submission() as s:
        s.login(ALICE, PASSWORDS[ALICE])
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            s.sendmail("ceo@b.test", ["bob@localhost"], b"Subject: forged\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 553
        s.rset()
        s.sendmail(ALICE, ["bob@localhost"], b"Subject: mine\r\n\r\nx\r\n")
    (msg,) = srv.mailbox("bob@localhost")
    assert b"Subject: mine" in msg


def test_unauthenticated_smtp_takes_any_sender(srv):
    # Port 25 receives mail from the whole world: no sender rule there.
    with srv.smtp() as s:
        assert s.mail("ceo@b.test")[0] == 250
