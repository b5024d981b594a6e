//! The TRANSACTION and UPDATE states (RFC 1939 5, 6, 7).

use super::*;

#[test]
fn stat_counts_messages_not_deleted_rfc1939_5() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 3 600\r\n");
    send(&mut s, "DELE 2\r\n");
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 2 400\r\n");
}

#[test]
fn list_skips_deleted_messages_rfc1939_5() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "DELE 2\r\n").1, "+OK message 2 deleted\r\n");
    let want = "+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n";
    assert_eq!(send(&mut s, "LIST\r\n").1, want);
    assert_eq!(send(&mut s, "LIST 3\r\n").1, "+OK 3 300\r\n");
    assert_eq!(send(&mut s, "LIST 2\r\n").1, "-ERR message 2 already deleted\r\n");
}

#[test]
fn uidl_lists_unique_ids_rfc1939_7() {
    let mut s = logged_in();
    send(&mut s, "DELE 1\r\n");
    let want = "+OK unique-id listing follows\r\n2 uid-2\r\n3 uid-3\r\n.\r\n";
    assert_eq!(send(&mut s, "UIDL\r\n").1, want);
    assert_eq!(send(&mut s, "uidl 3\r\n").1, "+OK 3 uid-3\r\n");
    assert_eq!(send(&mut s, "UIDL 1\r\n").1, "-ERR message 1 already deleted\r\n");
}

#[test]
fn retr_stuffs_and_normalises_line_ends_rfc1939_3() {
    let mut s = logged_in();
    let (event, out) = send(&mut s, "RETR 2\r\n");
    assert_eq!((event, out.as_str()), (Pop3Event::MessageNeeded { index: 1, top_lines: None }, ""));
    s.message_ready(b"Subject: x\n\n.hidden\r\n.\nlast");
    let want = "+OK 200 octets\r\nSubject: x\r\n\r\n..hidden\r\n..\r\nlast\r\n.\r\n";
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, want.into()));
}

#[test]
fn top_sends_headers_and_n_body_lines_rfc1939_7() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "TOP 1 1\r\n");
    assert_eq!(event, Pop3Event::MessageNeeded { index: 0, top_lines: Some(1) });
    s.message_ready(b"A: b\r\n\r\none\r\ntwo\r\n");
    let want = "+OK top of message follows\r\nA: b\r\n\r\none\r\n.\r\n";
    assert_eq!(step(&mut s).1, want);
    assert!(send(&mut s, "TOP 1\r\n").1.starts_with("-ERR"));
}

#[test]
fn deleted_messages_cannot_be_read_rfc1939_7() {
    let mut s = logged_in();
    send(&mut s, "DELE 3\r\n");
    for cmd in ["RETR 3", "TOP 3 0", "DELE 3"] {
        let got = send(&mut s, &format!("{cmd}\r\n"));
        assert_eq!(got, (Pop3Event::NeedInput, "-ERR message 3 already deleted\r\n".into()), "{cmd}");
    }
}

#[test]
fn invalid_message_numbers_are_err_rfc1939_3() {
    let mut s = logged_in_with(Pop3Config { max_errors: 0, ..cfg() });
    for n in ["0", "4", "18446744073709551616", "99999999999999999999999", "-1", "x", "1x", "+1"] {
        for cmd in ["RETR", "DELE", "LIST", "UIDL"] {
            let (event, out) = send(&mut s, &format!("{cmd} {n}\r\n"));
            assert_eq!(event, Pop3Event::NeedInput, "{cmd} {n}");
            assert!(out.starts_with("-ERR "), "{cmd} {n}: {out}");
        }
    }
    // Numbers out of range are ordinary negative answers, not bad commands.
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 3 600\r\n");
}

#[test]
fn rset_unmarks_deleted_messages_rfc1939_5() {
    let mut s = logged_in();
    send(&mut s, "DELE 1\r\nDELE 3\r\n");
    assert_eq!(send(&mut s, "RSET\r\n").1, "+OK maildrop has 3 messages (600 octets)\r\n");
    assert_eq!(send(&mut s, "NOOP\r\n").1, "+OK\r\n");
    assert_eq!(send(&mut s, "QUIT\r\n").0, Pop3Event::UpdateRequested { delete: vec![] });
}

#[test]
fn quit_enters_update_and_signs_off_rfc1939_6() {
    let mut s = logged_in();
    let (event, out) = send(&mut s, "DELE 1\r\nDELE 3\r\nQUIT\r\nNOOP\r\n");
    assert_eq!(event, Pop3Event::UpdateRequested { delete: vec![0, 2] });
    assert_eq!(out, "+OK message 1 deleted\r\n+OK message 3 deleted\r\n");
    s.update_done(true);
    assert_eq!(step(&mut s), (Pop3Event::Close, "+OK pop.example POP3 server signing off\r\n".into()));
    assert_eq!(step(&mut s), (Pop3Event::Close, String::new()));
}

#[test]
fn failed_update_reports_messages_not_removed_rfc1939_6() {
    let mut s = logged_in();
    send(&mut s, "DELE 2\r\nQUIT\r\n");
    s.update_done(false);
    let want = "-ERR [SYS/TEMP] some deleted messages not removed\r\n";
    assert_eq!(step(&mut s), (Pop3Event::Close, want.into()));
}

#[test]
fn unavailable_message_is_err_and_session_goes_on_rfc1939_7() {
    let mut s = logged_in();
    send(&mut s, "RETR 1\r\n");
    s.message_unavailable();
    assert_eq!(step(&mut s).1, "-ERR [SYS/TEMP] message 1 unavailable\r\n");
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 3 600\r\n");
}

#[test]
fn pipelined_retrievals_are_answered_in_order_rfc2449_6_6() {
    let mut s = logged_in();
    let (event, _) = send(&mut s, "RETR 1\r\nTOP 2 0\r\nSTAT\r\n");
    assert_eq!(event, Pop3Event::MessageNeeded { index: 0, top_lines: None });
    s.message_ready(b"one\r\n");
    assert_eq!(
        step(&mut s),
        (Pop3Event::MessageNeeded { index: 1, top_lines: Some(0) }, "+OK 100 octets\r\none\r\n.\r\n".into())
    );
    s.message_ready(b"H: v\r\n\r\nbody\r\n");
    let want = "+OK top of message follows\r\nH: v\r\n\r\n.\r\n+OK 3 600\r\n";
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, want.into()));
}

#[test]
fn pipelined_flood_is_flushed_in_bounded_pieces_rfc2449_6_6() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS p\r\n");
    let big = (0..500).map(|i| MaildropEntry { uid: format!("u{i}"), size: 1000 }).collect();
    s.auth_done(AuthDone::Ok { maildrop: big, user: "u@x.test".into(), tenant: None });
    s.take_output();
    s.feed("LIST\r\n".repeat(1000).as_bytes());
    let (mut flushes, mut total) = (0, 0);
    loop {
        let (event, out) = step(&mut s);
        assert!(out.len() < 128 * 1024, "{}", out.len());
        total += out.len();
        match event {
            Pop3Event::Flush => flushes += 1,
            Pop3Event::NeedInput => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(flushes > 10, "{flushes}");
    let one = send(&mut s, "LIST\r\n").1.len();
    assert_eq!(total, one * 1000);
}

#[test]
fn answers_out_of_turn_are_ignored() {
    let mut s = logged_in();
    s.auth_done(AuthDone::Fail);
    s.message_ready(b"x");
    s.message_unavailable();
    s.update_done(true);
    s.tls_established();
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, String::new()));
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 3 600\r\n");
}
