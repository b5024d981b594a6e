//! RFC 3501 6.4 and the extensions of the selected state.

use super::*;

fn answer_messages(s: &mut ImapSession, messages: Vec<MessageData>) -> String {
    s.answer(Answer::Messages(Ok(messages)));
    let (event, mut out) = step(s);
    if let ImapEvent::Request(Request::KeepSearchRows { .. }) = event {
        // SEARCH keeps the rows it computed from summaries; then answers.
        s.answer(Answer::Done(Ok(())));
        out.push_str(&step(s).1);
    }
    out
}

/// Answers a SEARCH's request for kept rows with `rows`; the next event.
fn answer_rows(s: &mut ImapSession, rows: &[(u32, Vec<u8>)]) -> (ImapEvent, String) {
    let mut answer = SearchRows::default();
    for (uid, row) in rows {
        answer.data.extend_from_slice(row);
        answer.ends.push((*uid, answer.data.len() as u32));
    }
    s.answer(Answer::SearchRows(Ok(answer)));
    step(s)
}

#[test]
fn fetch_metadata_needs_no_content_rfc3501_6_4_5() {
    let mut s = selected();
    let (event, _) = send(&mut s, "A654 FETCH 2:3 (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![20, 30], content: false, summary: false })
    );
    let out = answer_messages(
        &mut s,
        vec![message(20, MessageFlags::system(MessageFlags::SEEN), None), message(30, MessageFlags::default(), None)],
    );
    assert_eq!(
        out,
        "* 2 FETCH (FLAGS (\\Seen) UID 20 RFC822.SIZE 100 INTERNALDATE \"17-Jul-1996 02:23:25 +0000\")\r\n\
         * 3 FETCH (FLAGS () UID 30 RFC822.SIZE 100 INTERNALDATE \"17-Jul-1996 02:23:25 +0000\")\r\n\
         A654 OK FETCH completed\r\n"
    );
}

#[test]
fn uid_fetch_always_includes_uid_rfc3501_6_4_8() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a UID FETCH 15:* FLAGS\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![20, 30], content: false, summary: false })
    );
    let out = answer_messages(&mut s, vec![message(30, MessageFlags::default(), None)]);
    assert_eq!(out, "* 3 FETCH (UID 30 FLAGS ())\r\na OK UID FETCH completed\r\n");
}

#[test]
fn fetch_body_sets_seen_and_reports_flags_rfc3501_6_4_5() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a FETCH 3 BODY[]\r\n");
    let seen = MessageFlags::system(MessageFlags::SEEN);
    let change = StoreFlags { add: Some(true), flags: seen.clone() };
    assert_eq!(event, ImapEvent::Request(Request::SetFlags { mailbox: 0, uids: vec![30], change }));
    s.answer(Answer::Flags(Ok(vec![(30, seen.clone())])));
    let (event, _) = step(&mut s);
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![30], content: true, summary: false })
    );
    let out = answer_messages(&mut s, vec![message(30, seen, Some(MAIL))]);
    assert_eq!(
        out,
        format!("* 3 FETCH (BODY[] {{{}}}\r\n{MAIL} FLAGS (\\Seen))\r\na OK FETCH completed\r\n", MAIL.len())
    );
}

#[test]
fn body_peek_and_partial_rfc3501_6_4_5() {
    let mut s = selected();
    let (event, _) =
        send(&mut s, "a FETCH 3 (BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[TEXT]<0.5> BODY.PEEK[]<999.5>)\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![30], content: true, summary: false })
    );
    let out = answer_messages(&mut s, vec![message(30, MessageFlags::default(), Some(MAIL))]);
    assert_eq!(
        out,
        "* 3 FETCH (BODY[HEADER.FIELDS (Subject)] {49}\r\nSubject: IMAP4rev1 WG mtg summary and minutes\r\n\r\n \
         BODY[TEXT]<0> {5}\r\nHello BODY[]<999> {0}\r\n)\r\na OK FETCH completed\r\n"
    );
}

#[test]
fn fetch_envelope_rfc3501_7_4_2() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a FETCH 1 (ENVELOPE BODYSTRUCTURE)\r\n");
    // The stored summary answers: no message bytes are read.
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10], content: false, summary: true })
    );
    let mut m = message(10, MessageFlags::default(), None);
    m.summary = Some(Summary::compute(MAIL.as_bytes()));
    let out = answer_messages(&mut s, vec![m]);
    assert!(out.starts_with("* 1 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "), "{out}");
    assert!(
        out.contains(" BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 1 "),
        "{out}"
    );
}

#[test]
fn fetch_of_a_sequence_number_beyond_the_mailbox_is_bad_rfc3501_9() {
    let mut s = selected();
    assert_eq!(send(&mut s, "a FETCH 4 FLAGS\r\n").1, "a BAD invalid message sequence number\r\n");
}

#[test]
fn store_reports_new_flags_unless_silent_rfc3501_6_4_6() {
    let mut s = selected();
    let (event, _) = send(&mut s, "A003 STORE 2:3 +FLAGS (\\Deleted)\r\n");
    let change = StoreFlags { add: Some(true), flags: MessageFlags::system(MessageFlags::DELETED) };
    assert_eq!(event, ImapEvent::Request(Request::SetFlags { mailbox: 0, uids: vec![20, 30], change }));
    let del_seen = MessageFlags::system(MessageFlags::DELETED | MessageFlags::SEEN);
    s.answer(Answer::Flags(Ok(vec![(20, del_seen.clone()), (30, MessageFlags::system(MessageFlags::DELETED))])));
    assert_eq!(
        step(&mut s).1,
        "* 2 FETCH (FLAGS (\\Seen \\Deleted))\r\n* 3 FETCH (FLAGS (\\Deleted))\r\nA003 OK STORE completed\r\n"
    );
    send(&mut s, "b UID STORE 10 FLAGS.SILENT ($Work)\r\n");
    s.answer(Answer::Flags(Ok(vec![(10, MessageFlags::default())])));
    assert_eq!(step(&mut s).1, "b OK STORE completed\r\n");
}

#[test]
fn expunge_removes_deleted_messages_per_the_store_rfc3501_6_4_3() {
    let mut s = selected();
    let (event, _) = send(&mut s, "A202 EXPUNGE\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10, 20, 30], content: false, summary: false })
    );
    let del = MessageFlags::system(MessageFlags::DELETED);
    s.answer(Answer::Messages(Ok(vec![
        message(10, del.clone(), None),
        message(20, MessageFlags::default(), None),
        message(30, del, None),
    ])));
    let (event, _) = step(&mut s);
    assert_eq!(event, ImapEvent::Request(Request::Expunge { mailbox: 0, uids: vec![10, 30] }));
    s.answer(Answer::Expunged(Ok(vec![10, 30])));
    assert_eq!(step(&mut s).1, "* 1 EXPUNGE\r\n* 2 EXPUNGE\r\nA202 OK EXPUNGE completed\r\n");
}

#[test]
fn uid_expunge_only_touches_its_set_rfc4315_2_1() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a UID EXPUNGE 20:25\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![20], content: false, summary: false })
    );
}

#[test]
fn close_expunges_silently_unselect_does_not_rfc3501_6_4_2_rfc3691() {
    let mut s = selected();
    send(&mut s, "a CLOSE\r\n");
    s.answer(Answer::Messages(Ok(vec![message(20, MessageFlags::system(MessageFlags::DELETED), None)])));
    step(&mut s);
    s.answer(Answer::Expunged(Ok(vec![20])));
    assert_eq!(step(&mut s).1, "a OK CLOSE completed\r\n");
    assert_eq!(s.selected(), None);
    let mut s = selected();
    assert_eq!(send(&mut s, "b UNSELECT\r\n"), (ImapEvent::NeedInput, "b OK UNSELECT completed\r\n".into()));
    assert_eq!(s.selected(), None);
}

#[test]
fn search_rfc3501_6_4_4() {
    let mut s = selected();
    let (event, _) = send(&mut s, "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    // A header key needs the summary kept at delivery, not the message.
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10, 20, 30], content: false, summary: true })
    );
    let flagged = MessageFlags::system(MessageFlags::FLAGGED);
    let out = answer_messages(
        &mut s,
        vec![
            message(10, flagged.clone(), Some(MAIL)),
            message(20, flagged, Some("From: Smith <s@x.org>\r\n\r\nx\r\n")),
            message(30, MessageFlags::default(), Some(MAIL)),
        ],
    );
    assert_eq!(out, "* SEARCH 1\r\nA282 OK SEARCH completed\r\n");
    // System flags and numbers only: the session's view answers, no
    // message is read.
    let (event, out) = send(&mut s, "b UID SEARCH UNSEEN\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::NeedInput, "* SEARCH 30\r\nb OK SEARCH completed\r\n"));
    s.mailbox_changed(MailboxChange::Flags { uid: 10, flags: MessageFlags::default() });
    let (_, out) = send(&mut s, "b2 SEARCH OR UNSEEN DELETED NOT 2\r\n");
    assert_eq!(out, "* SEARCH 1 3\r\n* 1 FETCH (FLAGS ())\r\nb2 OK SEARCH completed\r\n", "a change elsewhere counts");
    let (event, _) = send(&mut s, "b3 SEARCH UNSEEN KEYWORD $Junk\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10, 20, 30], content: false, summary: false }),
        "keywords are the store's to answer"
    );
    answer_messages(&mut s, vec![message(30, MessageFlags::default(), None)]);
    assert_eq!(
        send(&mut s, "c SEARCH CHARSET KOI8-R BODY x\r\n").1,
        "c NO [BADCHARSET (UTF-8 US-ASCII ISO-8859-1)] Unsupported charset\r\n"
    );
}

#[test]
fn header_and_sent_keys_search_the_summary_not_the_message_rfc3501_6_4_4() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a SEARCH SUBJECT \"WG MTG\" SENTON 17-Jul-1996 HEADER to washington\r\n");
    // The rows kept per message answer first; none are kept yet.
    assert_eq!(event, ImapEvent::Request(Request::SearchRows { mailbox: 0, uids: vec![10, 20, 30] }));
    let (event, _) = answer_rows(&mut s, &[]);
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10, 20, 30], content: false, summary: true })
    );
    let with_summary = |uid, raw: &str| MessageData {
        summary: Some(crate::imap::Summary::compute(raw.as_bytes())),
        ..message(uid, MessageFlags::default(), None)
    };
    let summaries = [
        with_summary(10, MAIL),
        with_summary(20, "Subject: =?utf-8?q?WG_mtg?=\r\nTo: x@washington.edu\r\n\r\n"),
        with_summary(30, "Subject: other\r\n\r\nWG mtg\r\n"),
    ];
    s.answer(Answer::Messages(Ok(summaries.to_vec())));
    // The rows computed on the way are kept for the next SEARCH.
    let rows: Vec<(u32, Vec<u8>)> =
        summaries.iter().map(|m| (m.uid, m.summary.as_ref().unwrap().search_row())).collect();
    assert_eq!(step(&mut s).0, ImapEvent::Request(Request::KeepSearchRows { mailbox: 0, rows: rows.clone() }));
    s.answer(Answer::Done(Ok(())));
    // 20 has no Date:, so SENTON cannot match it; 30's subject does not.
    assert_eq!(step(&mut s).1, "* SEARCH 1\r\na OK SEARCH completed\r\n");
    // Next time the rows answer alone (flags from the view, the sent date
    // from the row); 20's decoded subject matches, 10 was sent that day.
    send(&mut s, "b SEARCH SUBJECT \"wg mtg\" SEEN NOT SENTON 17-Jul-1996\r\n");
    let (_, out) = answer_rows(&mut s, &rows);
    assert_eq!(out, "* SEARCH 2\r\nb OK SEARCH completed\r\n", "encoded words are decoded");
    // A row missing (kept before, or lost) is read from the summary;
    // the answer is in UID order whichever way each message went.
    send(&mut s, "c SEARCH OR SUBJECT wg HEADER FROM \"\"\r\n");
    let (event, _) = answer_rows(&mut s, &[rows[1].clone(), rows[2].clone()]);
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10], content: false, summary: true })
    );
    assert_eq!(answer_messages(&mut s, vec![summaries[0].clone()]), "* SEARCH 1 2\r\nc OK SEARCH completed\r\n");
    // A row of another format (kept by another version) counts as missing.
    send(&mut s, "d SEARCH SUBJECT wg\r\n");
    let mut stale = rows[1].clone();
    stale.1[0] = 0;
    let (event, _) = answer_rows(&mut s, &[rows[0].clone(), stale, rows[2].clone()]);
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![20], content: false, summary: true })
    );
    assert_eq!(answer_messages(&mut s, vec![summaries[1].clone()]), "* SEARCH 1 2\r\nd OK SEARCH completed\r\n");
}

#[test]
fn search_rows_hold_the_rfc3501_header_keys_only() {
    let summary = crate::imap::Summary::compute(MAIL.as_bytes());
    let row = summary.search_row();
    let text = String::from_utf8_lossy(&row[9..]).into_owned();
    assert!(text.starts_with("from:") && text.contains("\nsubject:imap4rev1 wg mtg summary and minutes\n"), "{text}");
    assert!(!text.contains("message-id"), "{text}");
    assert_eq!(i64::from_le_bytes(row[1..9].try_into().unwrap()), summary.sent.unwrap());
    let mut s = selected();
    // Any other header field, a date or size key, a keyword: not rows.
    for key in ["HEADER Message-Id x", "SINCE 1-Jan-2000", "LARGER 10", "KEYWORD x", "TEXT x"] {
        let (event, _) = send(&mut s, &format!("a SEARCH SUBJECT x {key}\r\n"));
        assert!(matches!(event, ImapEvent::Request(Request::Messages { .. })), "{key}: {event:?}");
        s = selected();
    }
}

#[test]
fn store_of_recent_or_an_unknown_system_flag_is_bad_rfc3501_2_3_2() {
    let mut s = selected();
    assert_eq!(send(&mut s, "a STORE 1 FLAGS (\\Recent)\r\n").1, "a BAD invalid system flag \\Recent\r\n");
    assert_eq!(send(&mut s, "b STORE 1 +FLAGS (\\Seen \\Foo)\r\n").1, "b BAD invalid system flag \\Foo\r\n");
}

#[test]
fn a_new_keyword_announces_flags_and_permanentflags_rfc3501_7_2_6() {
    let mut s = selected();
    send(&mut s, "a STORE 1 +FLAGS (Later)\r\n");
    let mut later = MessageFlags::system(MessageFlags::SEEN);
    later.keywords.push("Later".into());
    s.answer(Answer::Flags(Ok(vec![(10, later.clone())])));
    assert_eq!(
        step(&mut s).1,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Later)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Later \\*)] Flags permitted\r\n\
         * 1 FETCH (FLAGS (\\Seen Later))\r\n\
         a OK STORE completed\r\n"
    );
    send(&mut s, "b STORE 2 +FLAGS (later)\r\n");
    s.answer(Answer::Flags(Ok(vec![(20, later)])));
    assert_eq!(step(&mut s).1, "* 2 FETCH (FLAGS (\\Seen Later))\r\nb OK STORE completed\r\n", "known already");
}

#[test]
fn a_missing_part_is_empty_and_binary_is_bad_rfc3501_6_4_5() {
    let mut s = selected();
    send(&mut s, "a FETCH 1 BODY.PEEK[1.2.3]\r\n");
    let out = answer_messages(&mut s, vec![message(10, MessageFlags::default(), Some(MAIL))]);
    assert_eq!(out, "* 1 FETCH (BODY[1.2.3] {0}\r\n)\r\na OK FETCH completed\r\n");
    assert_eq!(send(&mut s, "b FETCH 1 BINARY[1]\r\n").1, "b BAD BINARY is not supported\r\n");
}

#[test]
fn search_charset_iso_8859_1_rfc3501_6_4_4() {
    let mut s = selected();
    s.feed(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {4+}\r\ncaf\xe9\r\n");
    let (event, _) = step(&mut s);
    assert!(matches!(event, ImapEvent::Request(Request::SearchRows { .. })), "{event:?}");
    let (event, _) = answer_rows(&mut s, &[]);
    assert!(matches!(event, ImapEvent::Request(Request::Messages { .. })), "{event:?}");
    let out = answer_messages(
        &mut s,
        vec![
            message(10, MessageFlags::default(), Some("Subject: CAF\u{c9}\r\n\r\n")),
            message(20, MessageFlags::default(), Some("Subject: cafe\r\n\r\n")),
            message(30, MessageFlags::default(), Some("Subject: caf\u{c3}\u{a9}\r\n\r\n")),
        ],
    );
    assert_eq!(out, "* SEARCH 1\r\na OK SEARCH completed\r\n", "\\xe9 is é, not a UTF-8 fragment");
}

#[test]
fn search_body_and_header_keys_rfc3501_6_4_4() {
    let mut s = selected();
    send(&mut s, "a SEARCH OR BODY \"hello WORLD\" HEADER Message-Id nosuch\r\n");
    let out = answer_messages(
        &mut s,
        vec![
            message(10, MessageFlags::default(), Some(MAIL)),
            message(20, MessageFlags::default(), Some("\r\nbye\r\n")),
            message(30, MessageFlags::default(), Some("Subject: hello\r\n\r\nworld\r\n")),
        ],
    );
    assert_eq!(out, "* SEARCH 1\r\na OK SEARCH completed\r\n");
}

#[test]
fn copy_reports_copyuid_rfc4315_3() {
    let mut s = selected();
    let (event, _) = send(&mut s, "A003 COPY 2:3 MEETING\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Copy { mailbox: 0, uids: vec![20, 30], to: "MEETING".into(), remove: false })
    );
    s.answer(Answer::Copied(Ok(CopyOutcome { uid_validity: 38505, mapping: vec![(20, 3956), (30, 3957)] })));
    assert_eq!(step(&mut s).1, "A003 OK [COPYUID 38505 20,30 3956:3957] COPY completed\r\n");
    send(&mut s, "b COPY 1 nosuch\r\n");
    s.answer(Answer::Copied(Err(Failure::NoSuchMailbox)));
    assert_eq!(step(&mut s).1, "b NO [TRYCREATE] No such mailbox\r\n");
}

#[test]
fn move_sends_copyuid_then_expunges_rfc6851_4_3() {
    let mut s = selected();
    send(&mut s, "a UID MOVE 20:30 Trash\r\n");
    s.answer(Answer::Copied(Ok(CopyOutcome { uid_validity: 7, mapping: vec![(20, 1), (30, 2)] })));
    assert_eq!(
        step(&mut s).1,
        "* OK [COPYUID 7 20,30 1:2] Moved\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\na OK MOVE completed\r\n"
    );
}

#[test]
fn changes_elsewhere_are_announced_at_the_end_of_a_command_rfc3501_7_4_1() {
    let mut s = selected();
    s.mailbox_changed(MailboxChange::Appended { uid: 41, recent: false });
    s.mailbox_changed(MailboxChange::Expunged { uids: vec![10] });
    // Not during FETCH: only EXISTS.
    send(&mut s, "a FETCH 1 UID\r\n");
    let out = answer_messages(&mut s, vec![message(10, MessageFlags::default(), None)]);
    assert_eq!(out, "* 1 FETCH (UID 10)\r\n* 4 EXISTS\r\na OK FETCH completed\r\n");
    assert_eq!(send(&mut s, "b NOOP\r\n").1, "* 1 EXPUNGE\r\nb OK NOOP completed\r\n");
}

#[test]
fn idle_announces_changes_at_once_rfc2177_3() {
    let mut s = selected();
    assert_eq!(send(&mut s, "A002 IDLE\r\n"), (ImapEvent::NeedInput, "+ idling\r\n".into()));
    s.mailbox_changed(MailboxChange::Appended { uid: 50, recent: false });
    assert_eq!(step(&mut s), (ImapEvent::NeedInput, "* 4 EXISTS\r\n".into()));
    s.mailbox_changed(MailboxChange::Expunged { uids: vec![20] });
    assert_eq!(step(&mut s).1, "* 2 EXPUNGE\r\n");
    assert_eq!(send(&mut s, "DONE\r\n").1, "A002 OK IDLE terminated\r\n");
    assert_eq!(send(&mut s, "b IDLE\r\n").1, "+ idling\r\n");
    assert_eq!(send(&mut s, "c NOOP\r\n").1, "b BAD expected DONE\r\n");
}

/// RFC 3501 6.3.2 makes the mailbox read-only; what STORE and EXPUNGE
/// answer there is left open, and Dovecot says OK having changed nothing.
#[test]
fn read_only_mailbox_refuses_changes_rfc3501_6_3_2() {
    let mut s = logged_in();
    send(&mut s, "a EXAMINE INBOX\r\n");
    s.answer(Answer::Selected(Ok(SelectedMailbox::from_messages(0, status(), vec![(10, MessageFlags::default())]))));
    step(&mut s);
    let (event, out) = send(&mut s, "b STORE 1 +FLAGS (\\Seen)\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::NeedInput, "b OK Store ignored with read-only mailbox\r\n"));
    let (event, out) = send(&mut s, "c EXPUNGE\r\n");
    assert_eq!(
        (event, out.as_str()),
        (ImapEvent::NeedInput, "c OK Expunge completed (read-only mailbox: nothing removed)\r\n")
    );
    // FETCH BODY[] of an examined mailbox does not set \Seen.
    let (event, _) = send(&mut s, "d FETCH 1 BODY[]\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![10], content: true, summary: false })
    );
}

#[test]
fn a_batch_answered_in_part_is_asked_again() {
    let mut s = selected();
    send(&mut s, "a FETCH 1:3 BODY.PEEK[]\r\n");
    // The driver's budget ran out after the first message.
    s.answer(Answer::Messages(Ok(vec![message(10, MessageFlags::default(), Some("x\r\n"))])));
    let (event, out) = step(&mut s);
    assert_eq!(out, "* 1 FETCH (BODY[] {3}\r\nx\r\n)\r\n");
    assert_eq!(
        event,
        ImapEvent::Request(Request::Messages { mailbox: 0, uids: vec![20, 30], content: true, summary: false })
    );
    // 20 was expunged meanwhile: not asked for again.
    let out = answer_messages(&mut s, vec![message(30, MessageFlags::default(), Some("y\r\n"))]);
    assert_eq!(out, "* 3 FETCH (BODY[] {3}\r\ny\r\n)\r\na OK FETCH completed\r\n");
}

#[test]
fn a_uid_range_narrows_what_search_reads_rfc3501_6_4_4() {
    let mut s = selected();
    let (event, _) = send(&mut s, "a UID SEARCH UID 15:* SUBJECT x 2:3\r\n");
    assert_eq!(event, ImapEvent::Request(Request::SearchRows { mailbox: 0, uids: vec![20, 30] }));
}

/// RFC 3501 2.3.2: `\Recent` is this session's (the driver says which
/// messages it claimed): counted at SELECT, shown in FETCH FLAGS, searched
/// by RECENT, NEW and OLD, and announced with new mail (imaptest select,
/// copy and search-flags).
#[test]
fn recent_messages_are_the_sessions_rfc3501_2_3_2() {
    let mut s = logged_in();
    send(&mut s, "a SELECT INBOX\r\n");
    let seen = MessageFlags::system(MessageFlags::SEEN);
    let mut mailbox = SelectedMailbox::from_messages(
        0,
        status(),
        vec![(10, seen.clone()), (20, seen), (30, MessageFlags::default())],
    );
    mailbox.recent_from = 20;
    s.answer(Answer::Selected(Ok(mailbox)));
    let (_, out) = step(&mut s);
    assert!(out.contains("* 3 EXISTS\r\n* 2 RECENT\r\n"), "{out}");
    send(&mut s, "b FETCH 1:3 FLAGS\r\n");
    let out = answer_messages(
        &mut s,
        vec![
            message(10, MessageFlags::system(MessageFlags::SEEN), None),
            message(20, MessageFlags::system(MessageFlags::SEEN), None),
            message(30, MessageFlags::default(), None),
        ],
    );
    assert_eq!(
        out,
        "* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS (\\Recent \\Seen))\r\n* 3 FETCH (FLAGS (\\Recent))\r\n\
         b OK FETCH completed\r\n"
    );
    assert_eq!(send(&mut s, "c SEARCH RECENT\r\n").1, "* SEARCH 2 3\r\nc OK SEARCH completed\r\n");
    assert_eq!(send(&mut s, "d SEARCH NEW\r\n").1, "* SEARCH 3\r\nd OK SEARCH completed\r\n");
    assert_eq!(send(&mut s, "e SEARCH OLD\r\n").1, "* SEARCH 1\r\ne OK SEARCH completed\r\n");
    // New mail this session heard of first is recent here; another
    // session's claim is not.
    s.mailbox_changed(MailboxChange::Appended { uid: 41, recent: true });
    assert_eq!(send(&mut s, "f NOOP\r\n").1, "* 4 EXISTS\r\n* 3 RECENT\r\nf OK NOOP completed\r\n");
    s.mailbox_changed(MailboxChange::Appended { uid: 42, recent: false });
    assert_eq!(send(&mut s, "g NOOP\r\n").1, "* 5 EXISTS\r\ng OK NOOP completed\r\n");
    assert_eq!(send(&mut s, "h SEARCH RECENT\r\n").1, "* SEARCH 2 3 4\r\nh OK SEARCH completed\r\n");
}
