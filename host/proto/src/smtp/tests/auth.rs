//! AUTH (RFC 4954) and STARTTLS (RFC 3207) in the session.

use super::*;

#[test]
fn auth_requires_tls_unless_allowed_rfc4954_4() {
    let mut s = auth_session(false);
    let out = talk(&mut s, b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\n");
    assert!(out.contains("STARTTLS") && !out.contains("AUTH PLAIN"));
    assert_eq!(codes(&out)[1], "538");
}

#[test]
fn starttls_resets_and_drops_injected_input_rfc3207_4_2() {
    let mut s = auth_session(false);
    s.feed(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@b.test>\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Helo { .. }));
    s.verdict(Verdict::Continue);
    assert_eq!(s.next_event(t0()), SmtpEvent::StartTls);
    s.tls_established();
    assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput, "injected MAIL must be discarded");
    assert!(s.helo().is_none());
    s.take_output();
    let out = talk(&mut s, b"MAIL FROM:<a@b.test>\r\nEHLO c\r\n");
    assert_eq!(codes(&out).last(), Some(&"250"));
    assert!(out.contains("AUTH PLAIN LOGIN") && !out.contains("STARTTLS"), "{out}");
}

#[test]
fn auth_plain_and_submission_rfc4954_rfc6409() {
    let mut s = auth_session(true);
    let out = talk(&mut s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nAUTH PLAIN AHUAYmFk\r\nAUTH PLAIN AHUAZ29vZA==\r\nAUTH PLAIN AHUAZ29vZA==\r\nMAIL FROM:<u@x.test>\r\n");
    assert_eq!(codes(&out), ["250", "530", "535", "235", "503", "250"]);
    assert_eq!(s.auth_user(), Some("u@x.test"));
}

#[test]
fn auth_login_exchange_and_cancel_rfc4954_4() {
    let mut s = auth_session(true);
    let out = talk(&mut s, b"EHLO c\r\nAUTH LOGIN\r\ndQ==\r\n*\r\n");
    assert!(out.contains("334 VXNlcm5hbWU6\r\n") && out.contains("334 UGFzc3dvcmQ6\r\n"));
    assert!(out.ends_with("501 5.0.0 Authentication cancelled\r\n"));
    let out = talk(&mut s, b"AUTH LOGIN dQ==\r\nZ29vZA==\r\n");
    assert!(out.ends_with("235 2.7.0 Authentication successful\r\n"));
}

#[test]
fn auth_bad_base64_is_501_rfc4954_4() {
    let mut s = auth_session(true);
    let out = talk(&mut s, b"EHLO c\r\nAUTH PLAIN !!!\r\n");
    assert_eq!(codes(&out).last(), Some(&"501"));
}

/// Issue 16 item 5, seen on the wire: 30 failures in one session, then the
/// right password worked. Failures now count towards `max_errors`.
#[test]
fn auth_failures_count_towards_max_errors_rfc4954_4() {
    let cfg = SmtpConfig { auth: true, max_errors: 5, error_delay: Duration::ZERO, ..Default::default() };
    let mut info = info();
    info.tls = true;
    let mut s = open_with(cfg, info);
    let out = talk(
        &mut s,
        &[&b"EHLO c\r\n"[..], &b"AUTH PLAIN AHUAYmFk\r\n".repeat(6), b"AUTH PLAIN AHUAZ29vZA==\r\n"].concat(),
    );
    assert_eq!(codes(&out), ["250", "535", "535", "535", "535", "535", "421"], "{out}");
    assert!(s.is_closed() && s.auth_user().is_none());
    assert_eq!(s.ending(), Some(Ending::TooManyErrors));
}

/// Issue 16 item 5: a login the driver refuses for earlier failures (of
/// this address or account, counted across sessions) is 454 4.7.0 (RFC
/// 4954 6: temporary) and counts towards `max_errors` like a failure.
#[test]
fn refused_login_is_454_4_7_0_and_counts_as_an_error_rfc4954_6() {
    let cfg = SmtpConfig { auth: true, max_errors: 2, error_delay: Duration::ZERO, ..Default::default() };
    let mut info = info();
    info.tls = true;
    let mut s = open_with(cfg, info);
    talk(&mut s, b"EHLO c\r\n");
    let mut replies = Vec::new();
    for _ in 0..2 {
        s.feed(b"AUTH PLAIN AHUAZ29vZA==\r\n");
        assert!(matches!(s.next_event(t0()), SmtpEvent::Auth { .. }));
        s.auth_result(AuthResult::Refused);
        let _ = s.next_event(t0());
        replies.push(String::from_utf8(s.take_output()).unwrap());
    }
    assert!(replies[0].starts_with("454 4.7.0 "), "{replies:?}");
    assert_eq!(codes(&replies[1]), ["454", "421"], "{replies:?}");
    assert!(s.auth_user().is_none());
}

#[test]
fn auth_failures_are_tarpitted_after_the_soft_limit() {
    let cfg = SmtpConfig { auth: true, soft_error_limit: 2, error_delay: secs(3), ..Default::default() };
    let mut info = info();
    info.tls = true;
    let mut s = open_with(cfg, info);
    talk(&mut s, b"EHLO c\r\n");
    let bad = b"AUTH PLAIN AHUAYmFk\r\n";
    for _ in 0..2 {
        s.feed(bad);
        assert!(matches!(s.next_event(t0()), SmtpEvent::Auth { .. }));
        s.auth_result(AuthResult::Fail);
        assert_eq!(s.next_event(t0()), SmtpEvent::NeedInput);
        assert_eq!(codes(&String::from_utf8(s.take_output()).unwrap()), ["535"]);
    }
    // The third failure is answered only after the delay, and nothing the
    // client pipelined meanwhile is read before then.
    s.feed(bad);
    assert!(matches!(s.next_event(t0()), SmtpEvent::Auth { .. }));
    s.auth_result(AuthResult::Fail);
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::Pause(t0() + secs(3)));
    assert!(!s.has_output());
    assert_eq!(s.next_event(t0() + secs(2)), SmtpEvent::Pause(t0() + secs(3)), "the pause keeps its end");
    assert_eq!(s.next_event(t0() + secs(3)), SmtpEvent::NeedInput);
    assert_eq!(codes(&String::from_utf8(s.take_output()).unwrap()), ["535", "250"]);
}

#[test]
fn auth_ok_sets_user_and_tenant_and_starttls_forgets_them_rfc3207_4_2() {
    let mut s = auth_session(false);
    let mut cfg = s.cfg.clone();
    cfg.auth_without_tls = true;
    s.cfg = cfg;
    s.feed(b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Helo { .. }));
    s.verdict(Verdict::Continue);
    assert!(matches!(s.next_event(t0()), SmtpEvent::Auth { .. }));
    s.auth_result(AuthResult::Ok { user: "u@a.test".into(), tenant: Some("a".into()) });
    assert_eq!((s.info().auth_user.as_deref(), s.info().tenant.as_deref()), (Some("u@a.test"), Some("a")));
    assert_eq!(s.info().helo.as_deref(), Some("c"));
    s.feed(b"STARTTLS\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::StartTls);
    s.tls_established();
    let info = s.info();
    assert!(info.tls && info.auth_user.is_none() && info.tenant.is_none() && info.helo.is_none());
}

/// Issue 16 item 6: an AUTH LOGIN name with a line break forged log lines.
#[test]
fn auth_login_name_with_control_characters_is_535() {
    let mut s = auth_session(true);
    // base64("mallory\nINFO auth ok user=admin")
    let out = talk(&mut s, b"EHLO c\r\nAUTH LOGIN bWFsbG9yeQpJTkZPIGF1dGggb2sgdXNlcj1hZG1pbg==\r\n");
    assert_eq!(codes(&out), ["250", "535"], "{out}");
}

/// Issue 16 item 10, seen on the wire: after AUTH as alice@a.test,
/// `MAIL FROM:<ceo@b.test>` got 250. A sender that is not the user's own
/// address needs a plugin's accept; a chain that only continues refuses
/// it with 553 5.7.1 (RFC 6409 6.1: the MSA may check the sender is
/// authorised; 553 is RFC 5321 4.2.3's "mailbox name not allowed").
#[test]
fn authenticated_sender_must_be_the_users_own_rfc6409_6_1() {
    let mut s = auth_session(true);
    let out = talk(&mut s, b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nMAIL FROM:<ceo@b.test>\r\n");
    assert!(out.ends_with("553 5.7.1 <ceo@b.test>: Sender address rejected: not owned by user u@x.test\r\n"), "{out}");
    // Its own address, in any case, and the null reverse-path (RFC 5321
    // 4.5.5: notifications such as RFC 8098 MDNs) are fine.
    for from in ["u@x.test", "U@X.Test", ""] {
        let out = talk(&mut s, format!("MAIL FROM:<{from}>\r\nRSET\r\n").as_bytes());
        assert_eq!(codes(&out), ["250", "250"], "{from}: {out}");
    }
    // A plugin's accept allows any sender (the default auth plugin accepts
    // the account's aliases).
    s.feed(b"MAIL FROM:<sales@x.test>\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Mail { .. }));
    s.verdict(Verdict::Accept);
    assert_eq!(codes(&drive(&mut s)), ["250"]);
    // A plugin's refusal stays the plugin's.
    s.feed(b"RSET\r\nMAIL FROM:<u@x.test>\r\n");
    assert_eq!(codes(&drive_until_mail(&mut s)), ["250"]);
    s.verdict(Verdict::Reject(Reply::new(550, "5.7.1", "plugin says no")));
    assert!(drive(&mut s).ends_with("550 5.7.1 plugin says no\r\n"));
}

/// Refused senders count as errors, like other refused commands.
#[test]
fn refused_senders_count_towards_max_errors() {
    let cfg = SmtpConfig { auth: true, max_errors: 3, error_delay: Duration::ZERO, ..Default::default() };
    let mut info = info();
    info.tls = true;
    let mut s = open_with(cfg, info);
    let out =
        talk(&mut s, &[&b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\n"[..], &b"MAIL FROM:<x@y.test>\r\n".repeat(3)].concat());
    assert_eq!(codes(&out), ["250", "235", "553", "553", "553", "421"]);
}

/// Unauthenticated sessions (port 25) take every sender.
#[test]
fn unauthenticated_senders_are_the_plugins_business() {
    let mut s = session();
    let out = talk(&mut s, b"EHLO c\r\nMAIL FROM:<ceo@b.test>\r\n");
    assert_eq!(codes(&out), ["250", "250"]);
}

/// Drives until the next MAIL decision is pending, returning the output so far.
fn drive_until_mail(s: &mut SmtpSession) -> String {
    loop {
        match s.next_event(t0()) {
            SmtpEvent::Mail { .. } => return String::from_utf8(s.take_output()).unwrap(),
            SmtpEvent::NeedInput | SmtpEvent::Close => panic!("no MAIL event"),
            _ => s.verdict(Verdict::Continue),
        }
    }
}
