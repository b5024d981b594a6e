//! STLS (RFC 2595 4).

use super::*;

#[test]
fn stls_upgrades_and_discards_pipelined_plaintext_rfc2595_4() {
    let mut s = fresh();
    // An attacker in the middle appends USER after the client's STLS
    // (CVE-2011-0411); it must not survive the handshake.
    let (event, out) = send(&mut s, "STLS\r\nUSER evil\r\n");
    assert_eq!((event, out.as_str()), (Pop3Event::StartTls, "+OK Begin TLS negotiation\r\n"));
    s.feed(b"PASS evil\r\n");
    assert_eq!(step(&mut s), (Pop3Event::StartTls, String::new()));
    s.tls_established();
    assert_eq!(step(&mut s), (Pop3Event::NeedInput, String::new()));
    assert_eq!(send(&mut s, "PASS p\r\n").1, "-ERR PASS must follow USER\r\n");
}

#[test]
fn user_before_stls_is_forgotten_rfc2595_4() {
    let mut s = fresh();
    send(&mut s, "USER u\r\nSTLS\r\n");
    s.tls_established();
    assert_eq!(send(&mut s, "PASS p\r\n").1, "-ERR PASS must follow USER\r\n");
}

#[test]
fn capa_drops_stls_once_tls_is_active_rfc2595_4() {
    let mut s = fresh();
    send(&mut s, "STLS\r\n");
    s.tls_established();
    let out = send(&mut s, "CAPA\r\n").1;
    assert!(out.contains("\r\nUSER\r\n") && !out.contains("STLS"), "{out}");
    assert!(send(&mut s, "STLS\r\n").1.starts_with("-ERR"));
}

#[test]
fn stls_only_in_authorization_rfc2595_4() {
    let mut s = logged_in();
    assert_eq!(send(&mut s, "STLS\r\n"), (Pop3Event::NeedInput, "-ERR command not valid in this state\r\n".into()));
}

#[test]
fn stls_refused_when_not_offered_rfc2595_4() {
    let mut s = Pop3Session::new(Pop3Config { stls_available: false, ..cfg() }, info());
    s.take_output();
    assert!(!send(&mut s, "CAPA\r\n").1.contains("STLS"));
    assert_eq!(send(&mut s, "STLS\r\n"), (Pop3Event::NeedInput, "-ERR STLS not available\r\n".into()));
}
