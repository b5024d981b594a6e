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
    # \Recent: this session's SELECT was the first (RFC 3501 2.3.2).
    word, _, untagged = raw(alice, "STORE 1 +FLAGS (\\Seen)")
    assert word == "OK" and untagged == ["* 1 FETCH (FLAGS (\\Recent \\Seen))"], untagged
    # A new keyword: FLAGS and PERMANENTFLAGS first (RFC 3501 7.2.6), as Dovecot.
    word, _, untagged = raw(alice, "STORE 2 +FLAGS (Later)")
    assert untagged[0].startswith("* FLAGS (") and "Later" in untagged[0], untagged
    assert "[PERMANENTFLAGS (" in untagged[1] and "Later \\*)" in untagged[1], untagged
    assert untagged[2] == "* 2 FETCH (FLAGS (\\Recent Later))", untagged
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


# The cases below come from Dovecot's imaptest scripts (src/tests), where
# ferrymail answered differently from Dovecot 2.3.19.

def test_id_with_the_longest_values_rfc2971_allows(server):
    # RFC 2971 3.3: up to 30 pairs, values up to 1024 octets: a ~32 KB line
    # (imaptest "id"). A line limit of 8192 ended the session with BYE.
    i = server.imap(ALICE)
    pairs = " ".join(f'"f{n:02}" "{"v" * 1024}"' for n in range(30))
    word, text, untagged = raw(i, f"ID ({pairs})")
    assert word == "OK" and untagged and untagged[0].startswith("* ID "), (word, text, untagged)
    ok(i.noop())


def test_parts_two_message_rfc822_levels_deep(alice):
    # imaptest fetch-body-message-rfc822-x2: the third level's part numbers
    # used to be cut with the second level's offsets (the session died).
    msg = (b"From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n"
           b"From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\n"
           b"From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n")
    ok(alice.append("INBOX", None, None, msg))
    ok(alice.select("INBOX"))
    typ, data = alice.fetch("4", "(BODY.PEEK[1.1.1] BODY.PEEK[1.1.HEADER])")
    assert typ == "OK", data
    assert data[0][1] == b"Hello world\r\n", data
    assert data[1][1] == b"From: sub@domain.org\r\nSubject: submsg\r\n\r\n", data


def test_sent_dates_are_the_date_fields_own_day(alice):
    # imaptest search-date (RFC 3501 6.4.4: "disregarding time and
    # timezone"): 00:30 +0200 on the 25th is sent on the 25th, not on the
    # 24th it is in UTC.
    for date in ("Sat, 24 Mar 2007 23:00:00 +0200", "Sun, 25 Mar 2007 00:30:00 +0200",
                 "Sun, 25 Mar 2007 23:00:00 -0500"):
        ok(alice.append("INBOX", None, None, f"Date: {date}\r\nSubject: d\r\n\r\nx\r\n".encode()))
    ok(alice.select("INBOX"))
    assert alice.search(None, "SENTON 24-Mar-2007") == ("OK", [b"4"])
    assert alice.search(None, "SENTON 25-Mar-2007") == ("OK", [b"5 6"])
    assert alice.search(None, "SENTBEFORE 25-Mar-2007") == ("OK", [b"4"])
    assert alice.search(None, "4:* SENTSINCE 26-Mar-2007") == ("OK", [b""])


def test_address_groups_in_envelope_and_search(alice):
    # imaptest fetch-envelope and search-addresses: a group is framed by
    # (NIL NIL "name" NIL) ... (NIL NIL NIL NIL) (RFC 3501 7.4.2) and its
    # name is searchable.
    ok(alice.append("INBOX", None, None,
                    b"From: a@example.org\r\nTo: team: g1@d1.org, g2@d2.org;\r\nCc: nobody:;\r\n\r\nx\r\n"))
    ok(alice.select("INBOX"))
    _, _, untagged = raw(alice, "FETCH 4 ENVELOPE")
    assert ('((NIL NIL "team" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") (NIL NIL NIL NIL)) '
            '((NIL NIL "nobody" NIL) (NIL NIL NIL NIL))') in untagged[0], untagged
    assert alice.search(None, "TO team") == ("OK", [b"4"])
    assert alice.search(None, "CC nobody") == ("OK", [b"4"])


def test_lsub_percent_shows_unsubscribed_parents_noselect(alice):
    # RFC 3501 6.3.9 (imaptest subscribe): foo/bar subscribed, foo not:
    # "%" returns foo with \Noselect, "*" returns foo/bar only.
    for name in ("t/a", "t/b/x"):
        ok(alice.create(name))
    ok(alice.subscribe("t/a"))
    ok(alice.subscribe("t/b/x"))
    assert raw(alice, 'LSUB "" t/%')[2] == ['* LSUB () "/" t/a', '* LSUB (\\Noselect) "/" t/b']
    assert raw(alice, 'LSUB "" t/*')[2] == ['* LSUB () "/" t/a', '* LSUB () "/" t/b/x']


def recent(untagged):
    return [l for l in untagged if l.endswith(" RECENT")]


def test_recent_belongs_to_the_first_session_that_selects(server, alice):
    # RFC 3501 2.3.2 (imaptest select, copy, search-flags): EXAMINE shows
    # the unclaimed messages as recent and claims none; the first SELECT
    # takes them; a second session sees none; new mail is recent in exactly
    # one of the sessions that have the mailbox selected.
    assert recent(raw(alice, "EXAMINE INBOX")[2]) == ["* 3 RECENT"]
    assert raw(alice, "STATUS INBOX (RECENT)")[2] == ["* STATUS INBOX (RECENT 3)"]
    assert recent(raw(alice, "SELECT INBOX")[2]) == ["* 3 RECENT"]
    assert raw(alice, "FETCH 1 FLAGS")[2] == ["* 1 FETCH (FLAGS (\\Recent))"]
    assert raw(alice, "SEARCH NEW")[2] == ["* SEARCH 1 2 3"]
    assert raw(alice, "SEARCH OLD")[2] == ["* SEARCH"]
    other = server.imap(ALICE)
    assert raw(other, "STATUS INBOX (RECENT)")[2] == ["* STATUS INBOX (RECENT 0)"]
    assert recent(raw(other, "SELECT INBOX")[2]) == ["* 0 RECENT"]
    ok(other.append("INBOX", None, None, b"Subject: m3\r\n\r\nbody\r\n"))
    ok(alice.noop())
    mine, theirs = raw(alice, "SEARCH RECENT")[2], raw(other, "SEARCH RECENT")[2]
    assert (mine, theirs) in ((["* SEARCH 1 2 3 4"], ["* SEARCH"]), (["* SEARCH 1 2 3"], ["* SEARCH 4"])), (mine, theirs)
