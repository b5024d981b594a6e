//! The AUTHORIZATION state: greeting, USER/PASS, AUTH PLAIN, CAPA, QUIT.

use super::*;

fn plain(authzid: &str, user: &str, password: &str) -> String {
    base64(format!("{authzid}\0{user}\0{password}").as_bytes())
}

#[test]
fn greeting_is_ok_rfc1939_4() {
    let mut s = Pop3Session::new(cfg(), info());
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, "+OK pop.example POP3 server ready\r\n".into()));
}

#[test]
fn user_then_pass_requests_auth_rfc1939_7() {
    let mut s = fresh();
    let (event, out) = send(&mut s, "user me@example.org\r\nPASS  two words \r\n");
    assert_eq!(out, "+OK send PASS\r\n");
    let want = Pop3Event::AuthRequested {
        user: "me@example.org".into(),
        password: " two words ".into(),
        mechanism: "USER".into(),
    };
    assert_eq!(event, want);
    s.auth_done(AuthDone::Ok { maildrop: maildrop(), user: "u@x.test".into(), tenant: None });
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, "+OK maildrop has 3 messages (600 octets)\r\n".into()));
    assert_eq!(send(&mut s, "STAT\r\n").1, "+OK 3 600\r\n");
}

#[test]
fn pass_without_user_is_err_rfc1939_7() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "PASS p\r\n"), (Pop3Event::NeedInput, "-ERR PASS must follow USER\r\n".into()));
    // "immediately after a successful USER command": anything between voids it.
    let (event, out) = send(&mut s, "USER u\r\nCAPA\r\nPASS p\r\n");
    assert_eq!(event, Pop3Event::NeedInput);
    assert!(out.ends_with("-ERR PASS must follow USER\r\n"), "{out}");
}

#[test]
fn quit_in_authorization_closes_without_update_rfc1939_6() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "QUIT\r\n"), (Pop3Event::Close, "+OK pop.example POP3 server signing off\r\n".into()));
    s.feed(b"USER u\r\n");
    assert_eq!(step(&mut s), (Pop3Event::Close, String::new()));
}

#[test]
fn failed_auth_answers_auth_code_and_allows_retry_rfc2449_8_1_2() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS bad\r\n");
    s.auth_done(AuthDone::Fail);
    let (event, out) = step(&mut s);
    assert_eq!(event, Pop3Event::NeedInput);
    assert!(out.starts_with("-ERR [AUTH] "), "{out}");
    let (event, _) = send(&mut s, "USER u\r\nPASS good\r\n");
    assert!(matches!(event, Pop3Event::AuthRequested { .. }));
}

/// Issue 16 item 5: refused for earlier failures, the client is told to
/// come back later (RFC 3206 4 SYS/TEMP), not to ask for a new password.
#[test]
fn refused_login_answers_sys_temp_rfc3206_4() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS good\r\n");
    s.auth_done(AuthDone::Refused);
    let (event, out) = step(&mut s);
    assert_eq!(event, Pop3Event::NeedInput);
    assert!(out.starts_with("-ERR [SYS/TEMP] too many failed logins"), "{out}");
}

#[test]
fn locked_maildrop_answers_in_use_rfc2449_8_1_1() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS p\r\n");
    s.auth_done(AuthDone::InUse);
    assert!(step(&mut s).1.starts_with("-ERR [IN-USE] "));
    assert!(send(&mut s, "STAT\r\n").1.starts_with("-ERR"));
}

#[test]
fn tempfail_answers_sys_temp_rfc3206_4() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS p\r\n");
    s.auth_done(AuthDone::Tempfail);
    assert!(step(&mut s).1.starts_with("-ERR [SYS/TEMP] "));
}

#[test]
fn auth_plain_with_initial_response_rfc5034_4() {
    let mut s = fresh();
    let (event, out) = send(&mut s, &format!("AUTH PLAIN {}\r\n", plain("", "u@x", "p w")));
    assert_eq!(out, "");
    let want = Pop3Event::AuthRequested { user: "u@x".into(), password: "p w".into(), mechanism: "PLAIN".into() };
    assert_eq!(event, want);
}

#[test]
fn auth_plain_continuation_rfc5034_4() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "auth plain\r\n"), (Pop3Event::NeedInput, "+ \r\n".into()));
    // The response line is not bound by the 255-octet command limit.
    let password = "p".repeat(300);
    let (event, _) = send(&mut s, &format!("{}\r\n", plain("u", "u", &password)));
    assert!(matches!(event, Pop3Event::AuthRequested { password: p, .. } if p == password));
}

#[test]
fn star_cancels_auth_rfc5034_4() {
    let mut s = fresh();
    send(&mut s, "AUTH PLAIN\r\n");
    assert_eq!(send(&mut s, "*\r\n").1, "-ERR authentication cancelled\r\n");
    // Back to commands: the next line is not taken as a response.
    assert_eq!(send(&mut s, "USER u\r\n").1, "+OK send PASS\r\n");
}

#[test]
fn malformed_or_unsupported_auth_is_err_rfc5034_4() {
    let mut s = fresh();
    for line in ["AUTH PLAIN =", "AUTH PLAIN !!!!", "AUTH LOGIN", "AUTH CRAM-MD5 abc"] {
        let (event, out) = send(&mut s, &format!("{line}\r\n"));
        assert_eq!(event, Pop3Event::NeedInput, "{line}");
        assert!(out.starts_with("-ERR "), "{line}: {out}");
    }
    let mut s = Pop3Session::new(Pop3Config { auth_plain: false, ..cfg() }, info());
    s.take_output();
    assert!(send(&mut s, &format!("AUTH PLAIN {}\r\n", plain("", "u", "p"))).1.starts_with("-ERR"));
    assert!(!send(&mut s, "CAPA\r\n").1.contains("SASL"));
}

#[test]
fn capa_lists_capabilities_rfc2449_5() {
    let mut s = fresh();
    let want = "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
                PIPELINING\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nIMPLEMENTATION ferrymail\r\n.\r\n";
    assert_eq!(send(&mut s, "capa\r\n"), (Pop3Event::NeedInput, want.into()));
    // AUTHORIZATION capabilities are announced in TRANSACTION too; STLS is not
    // usable there (RFC 2595 4).
    let mut s = logged_in();
    assert_eq!(send(&mut s, "CAPA\r\n").1, want.replace("STLS\r\n", ""));
}

#[test]
fn transaction_commands_are_err_before_login_rfc1939_3() {
    let mut s = fresh();
    for cmd in ["STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"] {
        let out = send(&mut s, &format!("{cmd}\r\n")).1;
        assert_eq!(out, "-ERR command not valid in this state\r\n", "{cmd}");
    }
}

#[test]
fn pipelined_commands_wait_for_the_decision_rfc2449_6_6() {
    let mut s = fresh();
    let (event, out) = send(&mut s, "CAPA\r\nUSER u\r\nPASS p\r\nSTAT\r\nLIST 1\r\n");
    assert!(matches!(event, Pop3Event::AuthRequested { .. }));
    assert!(out.ends_with("+OK send PASS\r\n"), "{out}");
    // Repeated until answered; STAT stays buffered meanwhile.
    assert_eq!(step(&mut s), (event, String::new()));
    s.feed(b"NOOP\r\n");
    s.auth_done(AuthDone::Ok { maildrop: maildrop(), user: "u@x.test".into(), tenant: None });
    let want = "+OK maildrop has 3 messages (600 octets)\r\n+OK 3 600\r\n+OK 1 100\r\n+OK\r\n";
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, want.into()));
}

#[test]
fn debug_output_hides_the_password() {
    let event = Pop3Event::AuthRequested { user: "u".into(), password: "hunter2".into(), mechanism: "USER".into() };
    let shown = format!("{event:?}");
    assert!(!shown.contains("hunter2") && shown.contains("redacted"), "{shown}");
}
