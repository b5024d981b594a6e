"""IMAP edge cases answered the way Dovecot answers them (the outside
compliance suite compares the two side by side), with imaplib: the kind of
answer (OK / NO / BAD) and the untagged responses, not the wording. Each
case was run against Dovecot 2.3.19 on this machine first."""

import imaplib

import pytest

from conftest import PASSWORDS

ALICE = "alice@localhost"


def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


def raw(i, line):
    """One raw command line; (status word, tagged text, untagged lines)."""
    tag = i._new_tag().decode()
    i.send(f"{tag} {line}\r\n".encode())
    untagged = []
    while True:
        l = i._get_line().decode(errors="replace")
        if l.startswith(tag + " "):
            word, _, text = l[len(tag) + 1:].partition(" ")
            return word, text, untagged
        untagged.append(l)


@pytest.fixture
def alice(server):
    i = server.imap(ALICE)
    for n in range(3):
        ok(i.append("INBOX", None, None, f"Subject: m{n}\r\nFrom: a@example.org\r\n\r\nbody {n}\r\n".encode()))
    return i


def test_invalid_modified_utf7_is_no_not_bad(alice):
    # Dovecot: "NO Mailbox name is not valid mUTF-7" for every command.
    for line in ("CREATE &AGE-", "SELECT &AGE-", "STATUS &AGE- (MESSAGES)", "DELETE &AGE-", "RENAME &AGE- x",
                 "SUBSCRIBE &AGE-"):
        assert raw(alice, line)[0] == "NO", line


def test_hierarchy_tricks_are_no(alice):
    for name in ("a/../b", "a/./b", "..", "/lead", "a//b"):
        word, text, _ = raw(alice, f"CREATE {name}")
        assert word == "NO" and "[CANNOT]" in text, (name, text)
    # A trailing separator only says children will follow (RFC 3501 6.3.3).
    assert raw(alice, "CREATE trail/")[0] == "OK"
    assert raw(alice, 'LIST "" trail')[2] == ['* LIST (\\HasNoChildren) "/" trail']


def test_list_wildcards(alice):
    ok(alice.create("INBOX/sub"))
    ok(alice.create("Work/2024/q1"))
    names = lambda pattern: [l.rsplit(" ", 1)[1] for l in raw(alice, f'LIST "" "{pattern}"')[2]]
    assert "Work/2024/q1" in names("*") and "Work/2024/q1" not in names("%")
    assert names("Work/%") == ["Work/2024"]
    assert names("%/%") == ["INBOX/sub", "Work/2024"]
    assert names("inbox/%") == ["INBOX/sub"], "INBOX is case-insensitive in patterns too"
    # An empty pattern asks for the separator (RFC 3501 6.3.8).
    assert raw(alice, 'LIST "" ""')[2] == ['* LIST (\\Noselect) "/" ""']


def test_status_rename_subscribe_edges(alice):
    assert raw(alice, "STATUS INBOX ()")[0] == "BAD"
    assert raw(alice, "STATUS INBOX (FOO)")[0] == "BAD"
    word, text, _ = raw(alice, "RENAME INBOX inbox")
    assert word == "NO" and "[ALREADYEXISTS]" in text, text
    word, text, _ = raw(alice, "SUBSCRIBE nosuch")
    assert word == "NO", text
    assert raw(alice, "UNSUBSCRIBE nosuch")[0] == "OK", "unsubscribing what is gone still works"
    assert raw(alice, "DELETE INBOX")[0] == "NO"


def test_store_flags_and_keywords(alice):
    ok(alice.select("INBOX"))
    assert raw(alice, "STORE 1 FLAGS (\\Recent)")[0] == "BAD"
    assert raw(alice, "STORE 1 +FLAGS (\\Seen \\Foo)")[0] == "BAD"
    word, _, untagged = raw(alice, "STORE 1 +FLAGS (\\Seen)")
    assert word == "OK" and untagged == ["* 1 FETCH (FLAGS (\\Seen))"], untagged
    # A new keyword: FLAGS and PERMANENTFLAGS first (RFC 3501 7.2.6), as Dovecot.
    word, _, untagged = raw(alice, "STORE 2 +FLAGS (Later)")
    assert untagged[0].startswith("* FLAGS (") and "Later" in untagged[0], untagged
    assert "[PERMANENTFLAGS (" in untagged[1] and "Later \\*)" in untagged[1], untagged
    assert untagged[2] == "* 2 FETCH (FLAGS (Later))", untagged
    assert raw(alice, "SEARCH UNSEEN")[2] == ["* SEARCH 2 3"]


def test_fetch_edges(alice):
    ok(alice.select("INBOX"))
    for line in ("FETCH 0 FLAGS", "FETCH 4 FLAGS", "FETCH 1:4 FLAGS", "UID FETCH 0 FLAGS", "FETCH 1 (FLAGS",
                 "FETCH 1 FOO", "FETCH 1 BINARY[1]"):
        assert raw(alice, line)[0] == "BAD", line
    assert raw(alice, "UID FETCH 100 FLAGS") == ("OK", "UID FETCH completed", [])
    assert raw(alice, "FETCH *:2 UID")[2] == ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]
    # A part the message does not have is an empty string, as in Dovecot.
    typ, data = alice.fetch("1", "(BODY.PEEK[1.2.3])")
    assert typ == "OK" and data[0][1] == b"", data


def test_examine_store_and_expunge_change_nothing(alice):
    ok(alice.select("INBOX"))
    ok(alice.store("1", "+FLAGS", "(\\Deleted)"))
    ok(alice.select("INBOX", readonly=True))
    word, text, untagged = raw(alice, "STORE 2 +FLAGS (\\Deleted)")
    assert (word, untagged) == ("OK", []), text
    word, text, untagged = raw(alice, "EXPUNGE")
    assert (word, untagged) == ("OK", []), text
    ok(alice.select("INBOX"))
    assert raw(alice, "SEARCH DELETED")[2] == ["* SEARCH 1"], "only the read-write STORE took effect"


def test_expunge_renumbers_before_fetch(alice):
    ok(alice.select("INBOX"))
    ok(alice.store("1:2", "+FLAGS", "(\\Deleted)"))
    word, _, untagged = raw(alice, "EXPUNGE")
    # RFC 3501 7.4.1: each EXPUNGE renumbers the rest, so both are "1".
    assert (word, untagged) == ("OK", ["* 1 EXPUNGE", "* 1 EXPUNGE"])
    assert raw(alice, "FETCH 1 UID")[2] == ["* 1 FETCH (UID 3)"]


def test_search_charsets(alice):
    ok(alice.select("INBOX"))
    ok(alice.append("INBOX", None, None, "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n".encode()))
    # ISO-8859-1 search strings work as in Dovecot; unknown charsets get BADCHARSET.
    alice.literal = "café".encode("latin-1")
    typ, data = alice.search("ISO-8859-1", "SUBJECT")
    assert (typ, data) == ("OK", [b"4"]), data
    word, text, _ = raw(alice, "SEARCH CHARSET KOI8-R SUBJECT x")
    assert word == "NO" and "[BADCHARSET" in text, text
