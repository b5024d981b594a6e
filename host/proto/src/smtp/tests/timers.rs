//! RFC 5321 4.5.3.2 timeouts with a made-up clock: each phase has one
//! deadline from its start, whatever trickles in meanwhile.

use super::*;

fn timed() -> SmtpSession {
    open(SmtpConfig {
        command_timeout: secs(300),
        data_timeout: secs(600),
        tls_timeout: secs(30),
        starttls: true,
        ..Default::default()
    })
}

#[test]
fn command_phase_has_one_deadline_rfc5321_4_5_3_2_7() {
    let mut s = timed();
    assert_eq!(s.poll_timeout(), Some(t0() + secs(300)));
    // A byte a second: the deadline does not move.
    for (i, b) in b"NOOP".iter().enumerate() {
        s.feed(&[*b]);
        assert_eq!(s.next_event(t0() + secs(i as u64 + 1)), SmtpEvent::NeedInput);
        assert_eq!(s.poll_timeout(), Some(t0() + secs(300)));
    }
    s.handle_timeout(t0() + secs(299));
    assert!(!s.is_closed(), "not before the deadline");
    s.handle_timeout(t0() + secs(300));
    assert_eq!(s.next_event(t0() + secs(300)), SmtpEvent::Close);
    assert_eq!(s.ending(), Some(Ending::Timeout));
    let out = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(out, "421 4.4.2 localhost Timeout waiting for client input\r\n");
}

#[test]
fn each_command_starts_a_new_phase() {
    let mut s = timed();
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next_event(t0() + secs(200)), SmtpEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(500)));
    s.handle_timeout(t0() + secs(300));
    assert!(!s.is_closed(), "the old deadline is gone");
}

#[test]
fn a_late_byte_does_not_extend_an_expired_phase() {
    let mut s = timed();
    s.feed(b"NO");
    assert_eq!(s.next_event(t0() + secs(301)), SmtpEvent::Close, "expired: checked when input is fed");
}

#[test]
fn data_phase_has_one_deadline_rfc5321_4_5_3_2_5() {
    let mut s = timed();
    talk(&mut s, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
    s.feed(b"Subject: x\r\n");
    assert_eq!(s.next_event(t0() + secs(10)), SmtpEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(600)), "DATA's clock starts at the 354");
    for i in 0..50 {
        s.feed(b"a line\r\n");
        assert_eq!(s.next_event(t0() + secs(10 + i * 10)), SmtpEvent::NeedInput);
    }
    assert_eq!(s.poll_timeout(), Some(t0() + secs(600)));
    s.handle_timeout(t0() + secs(600));
    assert_eq!(s.next_event(t0() + secs(600)), SmtpEvent::Close);
    assert!(
        String::from_utf8(s.take_output())
            .unwrap()
            .ends_with("421 4.4.2 localhost Timeout waiting for message content\r\n")
    );
}

#[test]
fn no_timer_runs_while_a_decision_is_pending() {
    let mut s = timed();
    s.feed(b"EHLO c\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Helo { .. }));
    assert_eq!(s.poll_timeout(), None, "the policy's time is not the client's");
    s.verdict(Verdict::Continue);
    assert_eq!(s.next_event(t0() + secs(1000)), SmtpEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(1300)), "the reply's write starts the next phase");
}

#[test]
fn starttls_handshake_has_its_own_deadline() {
    let mut s = timed();
    s.feed(b"EHLO c\r\nSTARTTLS\r\n");
    assert!(matches!(s.next_event(t0()), SmtpEvent::Helo { .. }));
    s.verdict(Verdict::Continue);
    assert_eq!(s.next_event(t0() + secs(5)), SmtpEvent::StartTls);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(35)));
    s.take_output();
    s.handle_timeout(t0() + secs(35));
    assert_eq!(s.next_event(t0() + secs(35)), SmtpEvent::Close);
    assert_eq!(s.ending(), Some(Ending::TlsTimeout));
    assert!(!s.has_output(), "nothing in plaintext mid-handshake");
}

#[test]
fn handshake_done_stops_its_clock() {
    let mut s = timed();
    s.feed(b"STARTTLS\r\n");
    assert_eq!(s.next_event(t0()), SmtpEvent::StartTls);
    s.tls_established();
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.next_event(t0() + secs(1)), SmtpEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(301)));
}

#[test]
fn sasl_exchange_is_a_command_phase() {
    let mut info = info();
    info.tls = true;
    let mut s = open_with(SmtpConfig { auth: true, ..Default::default() }, info);
    talk(&mut s, b"EHLO c\r\nAUTH LOGIN\r\n");
    assert_eq!(s.next_event(t0() + secs(1)), SmtpEvent::NeedInput);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(300)), "started when AUTH's 334 was queued");
}
