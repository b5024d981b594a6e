//! The autologout timer (RFC 1939 3) with a made-up clock, and the
//! plaintext-login rule (RFC 2595 2.1).

use super::*;
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn timed() -> Pop3Session {
    Pop3Session::new(Pop3Config { idle_timeout: secs(600), tls_timeout: secs(30), ..cfg() }, info())
}

#[test]
fn idle_phase_has_one_deadline_rfc1939_3() {
    let mut s = timed();
    assert_eq!(s.next_event(t0()), Pop3Event::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(600)));
    s.feed(b"US");
    assert_eq!(s.next_event(t0() + secs(500)), Pop3Event::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(600)), "trickled bytes do not move it");
    s.handle_timeout(t0() + secs(599));
    assert!(!s.timed_out());
    s.handle_timeout(t0() + secs(600));
    assert!(s.timed_out());
    assert_eq!(s.next_event(t0() + secs(600)), Pop3Event::Close);
    assert!(String::from_utf8(s.take_output()).unwrap().ends_with("-ERR autologout: idle too long\r\n"));
}

#[test]
fn autologout_in_transaction_requests_no_update_rfc1939_3() {
    let mut s = logged_in_with(Pop3Config { idle_timeout: secs(600), ..cfg() });
    send(&mut s, "DELE 1\r\n");
    s.feed(b"QU");
    assert_eq!(s.next_event(t0() + secs(601)), Pop3Event::Close, "expired: no UpdateRequested");
}

/// Issue 16 item 3: a client that stopped reading during RETR of a big
/// message held the maildrop forever. The write of the answer runs under
/// the next phase's deadline, so the driver's write gives up in time.
#[test]
fn the_answer_to_retr_is_written_under_a_deadline() {
    let mut s = logged_in_with(Pop3Config { idle_timeout: secs(60), ..cfg() });
    s.feed(b"RETR 1\r\n");
    assert!(matches!(s.next_event(t0()), Pop3Event::MessageNeeded { .. }));
    assert_eq!(s.poll_timeout(), None, "loading is not the client's time");
    s.message_ready(&vec![b'x'; 1 << 20]);
    assert_eq!(s.next_event(t0() + secs(5)), Pop3Event::NeedInput);
    assert!(s.take_output().len() > 1 << 20);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(65)));
}

#[test]
fn a_flush_is_bounded_too() {
    let mut s = logged_in_with(Pop3Config { idle_timeout: secs(60), ..cfg() });
    s.feed(&b"LIST\r\n".repeat(10_000));
    assert_eq!(s.next_event(t0() + secs(1)), Pop3Event::Flush);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(61)));
}

#[test]
fn stls_handshake_has_its_own_deadline() {
    let mut s = timed();
    assert_eq!(send(&mut s, "STLS\r\n").0, Pop3Event::StartTls);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(30)));
    s.take_output();
    s.handle_timeout(t0() + secs(30));
    assert_eq!(s.next_event(t0() + secs(30)), Pop3Event::Close);
    assert!(s.take_output().is_empty(), "nothing in plaintext mid-handshake");
}

fn tls_only() -> Pop3Config {
    Pop3Config { plaintext_auth: false, ..cfg() }
}

/// Issue 9: CAPA advertised USER where the driver then refused the login.
#[test]
fn capa_offers_no_login_that_would_be_refused_rfc2595_2_1() {
    let mut s = Pop3Session::new(tls_only(), info());
    s.take_output();
    let out = send(&mut s, "CAPA\r\n").1;
    assert!(!out.contains("\r\nUSER\r\n") && !out.contains("SASL") && out.contains("\r\nSTLS\r\n"), "{out}");
    send(&mut s, "STLS\r\n");
    s.tls_established();
    let out = send(&mut s, "CAPA\r\n").1;
    assert!(out.contains("\r\nUSER\r\n") && out.contains("\r\nSASL PLAIN\r\n"), "{out}");
}

#[test]
fn plaintext_login_is_refused_before_stls_rfc2595_2_1() {
    let mut s = Pop3Session::new(tls_only(), info());
    s.take_output();
    for cmd in ["USER u\r\n", "PASS p\r\n", "AUTH PLAIN AHUAcA==\r\n"] {
        let (event, out) = send(&mut s, cmd);
        assert_eq!(event, Pop3Event::NeedInput, "{cmd}: no credentials reach the driver");
        assert!(out.starts_with("-ERR [AUTH] Plaintext authentication disallowed"), "{out}");
    }
    let mut info = info();
    info.tls = true;
    let mut s = Pop3Session::new(tls_only(), info);
    s.take_output();
    assert!(matches!(send(&mut s, "USER u\r\nPASS p\r\n").0, Pop3Event::AuthRequested { .. }));
}

#[test]
fn login_names_the_user_and_tenant() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nPASS p\r\n");
    s.auth_done(AuthDone::Ok { maildrop: maildrop(), user: "u@a.test".into(), tenant: Some("a".into()) });
    assert_eq!(s.info().auth_user.as_deref(), Some("u@a.test"));
    assert_eq!(s.info().tenant.as_deref(), Some("a"));
}
