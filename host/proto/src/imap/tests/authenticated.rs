//! RFC 3501 6.3: the authenticated state.

use super::*;

#[test]
fn select_reports_the_mailbox_rfc3501_6_3_1() {
    let mut s = logged_in();
    send(&mut s, "A142 SELECT INBOX\r\n");
    let seen = MessageFlags::system(MessageFlags::SEEN);
    let mut kw = MessageFlags::default();
    kw.keywords.push("$Junk".into());
    s.answer(Answer::Selected(Ok(SelectedMailbox::from_messages(
        0,
        status(),
        vec![(10, seen), (20, kw), (30, MessageFlags::default())],
    ))));
    let (_, out) = step(&mut s);
    assert_eq!(
        out,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n\
         * 3 EXISTS\r\n\
         * 0 RECENT\r\n\
         * OK [UNSEEN 2] First unseen\r\n\
         * OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
         * OK [UIDNEXT 40] Predicted next UID\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk \\*)] Flags permitted\r\n\
         A142 OK [READ-WRITE] SELECT completed\r\n"
    );
    assert_eq!(s.selected(), Some(0));
}

#[test]
fn examine_is_read_only_rfc3501_6_3_2() {
    let mut s = logged_in();
    send(&mut s, "A932 EXAMINE blurdybloop\r\n");
    s.answer(Answer::Selected(Ok(SelectedMailbox::from_messages(5, status(), vec![]))));
    let (_, out) = step(&mut s);
    assert!(out.ends_with("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\nA932 OK [READ-ONLY] EXAMINE completed\r\n"));
    assert_eq!(send(&mut s, "b STORE 1 +FLAGS (\\Seen)\r\n").1, "b BAD invalid message sequence number\r\n");
}

#[test]
fn failed_select_leaves_nothing_selected_rfc3501_6_3_1() {
    let mut s = selected();
    let (_, out) = send(&mut s, "a SELECT nosuch\r\n");
    assert_eq!(out, "* OK [CLOSED] Previous mailbox closed\r\n");
    s.answer(Answer::Selected(Err(Failure::NoSuchMailbox)));
    assert_eq!(step(&mut s).1, "a NO [NONEXISTENT] No such mailbox\r\n");
    assert_eq!(s.selected(), None);
}

#[test]
fn create_delete_rename_rfc3501_6_3_3_to_6_3_5() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "A003 CREATE owatagusiam/\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Create { name: "owatagusiam/".into() }));
    s.answer(Answer::Done(Ok(())));
    assert_eq!(step(&mut s).1, "A003 OK CREATE completed\r\n");
    let (event, _) = send(&mut s, "A683 RENAME blurdybloop sarasoop\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Rename { from: "blurdybloop".into(), to: "sarasoop".into() }));
    s.answer(Answer::Done(Err(Failure::Exists)));
    assert_eq!(step(&mut s).1, "A683 NO [ALREADYEXISTS] Mailbox already exists\r\n");
    send(&mut s, "A684 DELETE INBOX\r\n");
    s.answer(Answer::Done(Err(Failure::Cannot("INBOX cannot be deleted".into()))));
    assert_eq!(step(&mut s).1, "A684 NO [CANNOT] INBOX cannot be deleted\r\n");
}

#[test]
fn status_needs_an_item_and_rename_to_itself_exists_rfc3501_6_3() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "a STATUS INBOX ()\r\n").1, "a BAD empty status list\r\n");
    assert_eq!(
        send(&mut s, "b RENAME inbox INBOX\r\n").1,
        "b NO [ALREADYEXISTS] Cannot rename a mailbox to itself\r\n"
    );
}

#[test]
fn mailbox_names_are_modified_utf7_rfc3501_5_1_3() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "a CREATE &ZeVnLIqe-\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Create { name: "日本語".into() }));
    s.answer(Answer::Done(Ok(())));
    step(&mut s);
    // NO, as Dovecot answers: the command is well-formed, the name is not.
    assert_eq!(
        send(&mut s, "b CREATE &Jjo!\r\n").1,
        "b NO Mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)\r\n"
    );
    // "inbox/x" keeps INBOX's spelling (RFC 3501 5.1).
    let (event, _) = send(&mut s, "c CREATE inbox/x\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Create { name: "INBOX/x".into() }));
}

#[test]
fn list_rfc3501_6_3_8() {
    let mut s = logged_in();
    assert_eq!(
        send(&mut s, "A101 LIST \"\" \"\"\r\n").1,
        "* LIST (\\Noselect) \"/\" \"\"\r\nA101 OK LIST completed\r\n"
    );
    let (event, _) = send(&mut s, "A102 LIST \"\" *\r\n");
    assert_eq!(event, ImapEvent::Request(Request::List));
    let boxes = vec![
        ListedMailbox { name: "INBOX".into(), special_use: None },
        ListedMailbox { name: "Trash".into(), special_use: Some("\\Trash") },
    ];
    s.answer(Answer::Listed(Ok((boxes, vec!["INBOX".into()]))));
    assert_eq!(
        step(&mut s).1,
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         A102 OK LIST completed\r\n"
    );
}

#[test]
fn status_rfc3501_6_3_10() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n");
    assert_eq!(event, ImapEvent::Request(Request::Status { name: "blurdybloop".into() }));
    s.answer(Answer::Status(Ok(MailboxStatus { messages: 231, uid_next: 44292, ..status() })));
    assert_eq!(step(&mut s).1, "* STATUS blurdybloop (UIDNEXT 44292 MESSAGES 231)\r\nA042 OK STATUS completed\r\n");
}

#[test]
fn append_with_literal_reports_appenduid_rfc3501_6_3_11_rfc4315() {
    let mut s = logged_in();
    let msg = "Subject: afternoon meeting\r\n\r\nHello Joe\r\n";
    let (_, out) = send(&mut s, &format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n", msg.len()));
    assert_eq!(out, "+ Ready for literal data\r\n");
    let (event, _) = send(&mut s, &format!("{msg}\r\n"));
    let ImapEvent::Request(Request::Append { name, flags, internal_date, content }) = event else { panic!() };
    assert_eq!(
        (name.as_str(), flags, internal_date),
        ("saved-messages", MessageFlags::system(MessageFlags::SEEN), None)
    );
    assert_eq!(content, msg.as_bytes());
    s.answer(Answer::Appended(Ok((38505, 3955))));
    assert_eq!(step(&mut s).1, "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n");
    // LITERAL+ (RFC 7888) and a date; a missing mailbox is TRYCREATE.
    let (event, _) = send(&mut s, "A004 APPEND x \"05-Jan-2024 10:00:00 +0100\" {2+}\r\nhi\r\n");
    let ImapEvent::Request(Request::Append { internal_date, .. }) = event else { panic!() };
    assert_eq!(internal_date, Some(1_704_445_200));
    s.answer(Answer::Appended(Err(Failure::NoSuchMailbox)));
    assert_eq!(step(&mut s).1, "A004 NO [TRYCREATE] No such mailbox\r\n");
}

#[test]
fn namespace_id_enable_rfc2342_rfc2971_rfc5161() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "a NAMESPACE\r\n").1, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\na OK NAMESPACE completed\r\n");
    assert_eq!(
        send(&mut s, "b ID (\"name\" \"sodr\")\r\n").1,
        "* ID (\"name\" \"ferrymail\")\r\nb OK ID completed\r\n"
    );
    assert_eq!(send(&mut s, "c ENABLE CONDSTORE\r\n").1, "* ENABLED\r\nc OK ENABLE completed\r\n");
}

#[test]
fn list_special_use_selection_rfc6154_5_1() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "t1 LIST (SPECIAL-USE) \"\" \"*\"\r\n");
    assert_eq!(event, ImapEvent::Request(Request::List));
    let boxes = vec![
        ListedMailbox { name: "INBOX".into(), special_use: None },
        ListedMailbox { name: "Sent".into(), special_use: Some("\\Sent") },
    ];
    s.answer(Answer::Listed(Ok((boxes.clone(), vec![]))));
    assert_eq!(step(&mut s).1, "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\nt1 OK LIST completed\r\n");
    send(&mut s, "t2 LIST \"\" \"%\" RETURN (SPECIAL-USE)\r\n");
    s.answer(Answer::Listed(Ok((boxes, vec![]))));
    assert_eq!(
        step(&mut s).1,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\nt2 OK LIST completed\r\n"
    );
    // The next plain LIST is not narrowed.
    send(&mut s, "t3 LIST \"\" Sent\r\n");
    s.answer(Answer::Listed(Ok((vec![ListedMailbox { name: "Sent".into(), special_use: None }], vec![]))));
    assert_eq!(step(&mut s).1, "* LIST (\\HasNoChildren) \"/\" Sent\r\nt3 OK LIST completed\r\n");
}
