//! Hostile input: limits, malformed commands, timeouts.

use super::*;
use std::time::Duration;

#[test]
fn a_huge_literal_is_refused_before_it_is_sent_rfc7888_4() {
    let mut s = logged_in();
    let (event, out) = send(&mut s, "a APPEND INBOX {4294967295}\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::NeedInput, "a NO [TOOBIG] literal too large\r\n"));
    // The session goes on with the next command.
    assert_eq!(send(&mut s, "b NOOP\r\n").1, "b OK NOOP completed\r\n");
}

#[test]
fn a_huge_non_synchronising_literal_ends_the_session_rfc7888_4() {
    let mut s = logged_in();
    let (event, out) = send(&mut s, "a APPEND INBOX {4294967295+}\r\nxxxx");
    assert_eq!((event, out.as_str()), (ImapEvent::Close, "* BYE [TOOBIG] literal too large\r\n"));
}

#[test]
fn an_overlong_line_ends_the_session_before_it_is_buffered() {
    let mut s = fresh_with(ImapConfig { max_line: 100, ..cfg() });
    let (event, out) = send(&mut s, &format!("a NOOP {}", "x".repeat(200)));
    assert_eq!((event, out.as_str()), (ImapEvent::Close, "* BYE [TOOBIG] command line too long\r\n"));
}

#[test]
fn bad_commands_get_bad_with_their_tag_rfc3501_7_1_5() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "a1 FROBNICATE\r\n").1, "a1 BAD syntax error in command\r\n");
    assert_eq!(send(&mut s, "\r\n").1, "* BAD syntax error in command\r\n");
    assert_eq!(send(&mut s, "a2 NOOP\n").1, "a2 BAD line must end with CRLF, and the command must fit the limits\r\n");
    assert_eq!(send(&mut s, "a3 NOOP\r\n").1, "a3 OK NOOP completed\r\n");
}

#[test]
fn too_many_bad_commands_end_the_session() {
    let mut s = fresh_with(ImapConfig { max_errors: 3, ..cfg() });
    send(&mut s, "a X\r\nb X\r\n");
    let (event, out) = send(&mut s, "c X\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::Close, "* BYE Too many invalid commands\r\n"));
}

#[test]
fn deep_search_nesting_is_bad_not_a_stack_overflow() {
    let mut s = selected();
    let deep = format!("a SEARCH {}ALL{}\r\n", "NOT (".repeat(60), ")".repeat(60));
    let out = send(&mut s, &deep).1;
    assert!(out.starts_with("a BAD "), "{out}");
}

#[test]
fn autologout_after_the_idle_timeout_rfc3501_5_4() {
    let mut s = fresh();
    assert_eq!(step(&mut s).0, ImapEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + Duration::from_secs(30 * 60)));
    s.handle_timeout(t0() + Duration::from_secs(60));
    assert_eq!(step(&mut s).0, ImapEvent::NeedInput, "not yet");
    s.handle_timeout(t0() + Duration::from_secs(30 * 60));
    assert_eq!(step(&mut s), (ImapEvent::Close, "* BYE Autologout; idle for too long\r\n".into()));
    assert!(s.timed_out());
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 8] = [
        b"\xff\xfe\r\n",
        b"a FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.10.11]<0.4294967295>)\r\n",
        b"a UID FETCH 0 FLAGS\r\n",
        b"a SELECT {3}\r\n\x00\x01\x02\r\n",
        b"a LOGIN {0}\r\n {0}\r\n\r\n",
        b"a SEARCH UID 4294967295:* LARGER 4294967295\r\n",
        b"a STORE * FLAGS (\\Recent)\r\n",
        b"* OK\r\n",
    ];
    for input in inputs {
        let mut s = selected();
        s.feed(input);
        for _ in 0..10 {
            match s.next_event(t0()) {
                ImapEvent::Request(Request::Messages { uids, content, .. }) => s.answer(Answer::Messages(Ok(uids
                    .iter()
                    .map(|&u| message(u, MessageFlags::default(), content.then_some(MAIL)))
                    .collect()))),
                ImapEvent::Request(Request::SetFlags { .. }) => s.answer(Answer::Flags(Ok(vec![]))),
                ImapEvent::Request(_) => s.answer(Answer::Done(Ok(()))),
                _ => break,
            }
        }
        s.take_output();
    }
}

#[test]
fn a_literal_longer_than_a_line_is_not_a_long_line_rfc3501_4_3() {
    let mut s = fresh_with(ImapConfig { max_line: 1000, ..cfg() });
    send(&mut s, "a LOGIN u p\r\n");
    s.login_done(LoginDone::Ok { user: "u".into(), tenant: None });
    step(&mut s);
    let body = format!("Subject: big\r\n\r\n{}", "y".repeat(5000));
    let (_, out) = send(&mut s, &format!("b APPEND INBOX {{{}}}\r\n", body.len()));
    assert_eq!(out, "+ Ready for literal data\r\n");
    // The literal arrives in pieces, each read leaving it unfinished.
    for piece in body.as_bytes().chunks(700) {
        assert_eq!(send(&mut s, std::str::from_utf8(piece).unwrap()).0, ImapEvent::NeedInput);
    }
    let (event, _) = send(&mut s, "\r\n");
    assert!(matches!(event, ImapEvent::Request(Request::Append { .. })), "{event:?}");
}
