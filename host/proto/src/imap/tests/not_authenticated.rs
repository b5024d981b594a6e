//! RFC 3501 6.1 and 6.2: any state, and logging in.

use super::*;

#[test]
fn greeting_is_ok_with_capabilities_rfc3501_7_1_1() {
    let mut s = ImapSession::new(cfg(), info());
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(out.starts_with("* OK [CAPABILITY IMAP4rev1 "), "{out}");
    assert!(out.ends_with("imap.example IMAP4rev1 server ready\r\n"));
}

#[test]
fn capability_lists_only_what_works_rfc3501_6_1_1() {
    let mut s = fresh();
    let (event, out) = send(&mut s, "abcd CAPABILITY\r\n");
    assert_eq!(event, ImapEvent::NeedInput);
    assert_eq!(
        out,
        "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN \
         SPECIAL-USE STARTTLS AUTH=PLAIN\r\nabcd OK CAPABILITY completed\r\n"
    );
}

#[test]
fn noop_and_logout_rfc3501_6_1_2_and_6_1_3() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "a002 NOOP\r\n").1, "a002 OK NOOP completed\r\n");
    let (event, out) = send(&mut s, "A023 LOGOUT\r\n");
    assert_eq!(out, "* BYE Logging out\r\nA023 OK LOGOUT completed\r\n");
    assert_eq!(event, ImapEvent::Close);
}

#[test]
fn login_asks_the_driver_and_reports_capabilities_rfc3501_6_2_3() {
    let mut s = fresh();
    let (event, out) = send(&mut s, "a001 LOGIN SMITH SESAME\r\n");
    assert_eq!(out, "");
    assert_eq!(event, ImapEvent::Login { user: "SMITH".into(), password: "SESAME".into(), mechanism: "LOGIN".into() });
    // Repeated until answered; pipelined input waits.
    s.feed(b"a002 NOOP\r\n");
    assert!(matches!(step(&mut s).0, ImapEvent::Login { .. }));
    s.login_done(LoginDone::Ok { user: "smith@x.test".into(), tenant: Some("acme".into()) });
    let (_, out) = step(&mut s);
    assert!(out.starts_with("a001 OK [CAPABILITY IMAP4rev1 "), "{out}");
    assert!(!out.contains("AUTH=PLAIN"), "no AUTH once authenticated: {out}");
    assert!(out.ends_with("a002 OK NOOP completed\r\n"));
    assert_eq!(s.info().auth_user.as_deref(), Some("smith@x.test"));
    assert_eq!(s.info().tenant.as_deref(), Some("acme"));
}

#[test]
fn failed_login_is_no_authenticationfailed_rfc5530() {
    let mut s = fresh();
    send(&mut s, "a LOGIN u \"wrong pass\"\r\n");
    s.login_done(LoginDone::Fail);
    assert_eq!(step(&mut s).1, "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n");
    send(&mut s, "b LOGIN u p\r\n");
    s.login_done(LoginDone::Tempfail);
    assert_eq!(step(&mut s).1, "b NO [UNAVAILABLE] Temporary failure, try again later\r\n");
    send(&mut s, "c LOGIN u p\r\n");
    s.login_done(LoginDone::Limit);
    assert_eq!(step(&mut s).1, "c NO [LIMIT] Too many sessions for this user\r\n");
    assert_eq!(s.info().auth_user, None);
}

#[test]
fn login_with_literals_rfc3501_4_3() {
    let mut s = fresh();
    let (event, out) = send(&mut s, "a LOGIN {5}\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::NeedInput, "+ Ready for literal data\r\n"));
    let (event, _) = send(&mut s, "smith {6+}\r\nsesame\r\n");
    assert_eq!(event, ImapEvent::Login { user: "smith".into(), password: "sesame".into(), mechanism: "LOGIN".into() });
}

#[test]
fn authenticate_plain_with_continuation_rfc3501_6_2_2() {
    let mut s = fresh();
    let (_, out) = send(&mut s, "a AUTHENTICATE PLAIN\r\n");
    assert_eq!(out, "+ \r\n");
    let (event, _) = send(&mut s, &format!("{}\r\n", b64(b"\0tim\0tanstaaftanstaaf")));
    assert_eq!(
        event,
        ImapEvent::Login { user: "tim".into(), password: "tanstaaftanstaaf".into(), mechanism: "PLAIN".into() }
    );
}

#[test]
fn authenticate_plain_initial_response_rfc4959() {
    let mut s = fresh();
    let (event, _) = send(&mut s, &format!("a AUTHENTICATE PLAIN {}\r\n", b64(b"\0tim\0pw")));
    assert!(matches!(event, ImapEvent::Login { .. }));
}

#[test]
fn authenticate_cancel_is_bad_rfc3501_6_2_2() {
    let mut s = fresh();
    send(&mut s, "a AUTHENTICATE PLAIN\r\n");
    assert_eq!(send(&mut s, "*\r\n").1, "a BAD AUTHENTICATE cancelled\r\n");
    assert_eq!(send(&mut s, "b AUTHENTICATE CRAM-MD5\r\n").1, "b NO [CANNOT] Unsupported authentication mechanism\r\n");
}

#[test]
fn logindisabled_without_tls_rfc3501_6_2_3() {
    let mut s = fresh_with(ImapConfig { plaintext_auth: false, ..cfg() });
    let (_, out) = send(&mut s, "a CAPABILITY\r\n");
    assert!(out.contains(" STARTTLS LOGINDISABLED\r\n"), "{out}");
    assert!(!out.contains("AUTH="));
    assert_eq!(send(&mut s, "b LOGIN u p\r\n").1, "b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n");
    // RFC 3501 6.2.1: after STARTTLS the capabilities change.
    let (event, out) = send(&mut s, "c STARTTLS\r\n");
    assert_eq!((event, out.as_str()), (ImapEvent::StartTls, "c OK Begin TLS negotiation now\r\n"));
    s.tls_established();
    let (_, out) = send(&mut s, "d CAPABILITY\r\n");
    assert!(out.contains("AUTH=PLAIN") && !out.contains("STARTTLS") && !out.contains("LOGINDISABLED"), "{out}");
}

#[test]
fn starttls_discards_input_sent_before_the_handshake_rfc3501_6_2_1() {
    let mut s = fresh();
    let (event, _) = send(&mut s, "a STARTTLS\r\nb LOGIN injected command\r\n");
    assert_eq!(event, ImapEvent::StartTls);
    s.tls_established();
    assert_eq!(step(&mut s), (ImapEvent::NeedInput, String::new()));
}

#[test]
fn commands_need_the_right_state_rfc3501_3() {
    let mut s = fresh();
    assert_eq!(send(&mut s, "a SELECT INBOX\r\n").1, "a BAD log in first\r\n");
    let mut s = logged_in();
    assert_eq!(send(&mut s, "a FETCH 1 FLAGS\r\n").1, "a BAD no mailbox selected\r\n");
    assert_eq!(send(&mut s, "b LOGIN u p\r\n").1, "b BAD already authenticated\r\n");
}
