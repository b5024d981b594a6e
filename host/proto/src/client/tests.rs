//! Client session flows against scripted servers.

use super::*;
use ferrymail_policy::Reply;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tests' epoch; tests move the clock by adding to it.
fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// 100 octets of 7-bit content.
const CONTENT: &[u8] =
    b"Subject: t\r\n\r\n012345678901234567890123456789012345678901234567890123456789012345678901234567890123\r\n";

fn session(mode: TlsMode) -> ClientSession {
    ClientSession::new("out.test", mode, Timeouts::default())
}

const EHLO_FULL: &[u8] =
    b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_PLAIN: &[u8] = b"250 mx.test\r\n";

fn txn(rcpts: &[&str]) -> Transaction {
    Transaction { from: "s@a.test".into(), rcpts: rcpts.iter().map(|r| r.to_string()).collect() }
}

/// Feeds `input`, returns the events up to the next read or `Ready`, and the output.
fn step(s: &mut ClientSession, input: &[u8]) -> (Vec<ClientEvent>, String) {
    s.feed(input);
    let mut events = Vec::new();
    loop {
        let ev = s.next_event(t0());
        let stop = matches!(
            ev,
            ClientEvent::NeedInput(_)
                | ClientEvent::Ready
                | ClientEvent::SendContent
                | ClientEvent::StartTls
                | ClientEvent::Closed
        );
        events.push(ev);
        if stop {
            return (events, String::from_utf8(s.take_output()).unwrap());
        }
    }
}

fn ready(ehlo: &[u8]) -> ClientSession {
    let mut s = session(TlsMode::Off);
    assert_eq!(step(&mut s, b"220 mx.test ESMTP\r\n").1, "EHLO out.test\r\n");
    assert_eq!(step(&mut s, ehlo).0.last(), Some(&ClientEvent::Ready));
    s
}

fn outcomes(events: &[ClientEvent]) -> Vec<Outcome> {
    events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Done(r) => Some(r.iter().map(|r| r.outcome).collect()),
            _ => None,
        })
        .expect("a Done event")
}

#[test]
fn pipelined_transaction_rfc2920_3_1() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test", "c@b.test"]), CONTENT);
    let (ev, out) = step(&mut s, b"");
    assert_eq!(out, "MAIL FROM:<s@a.test> SIZE=100\r\nRCPT TO:<a@b.test>\r\nRCPT TO:<c@b.test>\r\nDATA\r\n");
    assert_eq!(ev, [ClientEvent::NeedInput(Phase::Command)]);
    let (ev, _) = step(&mut s, b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
    assert_eq!(ev, [ClientEvent::SendContent]);
    s.content_sent();
    let (ev, _) = step(&mut s, b"");
    assert_eq!(ev, [ClientEvent::NeedInput(Phase::DataDone)]);
    let (ev, _) = step(&mut s, b"250 2.0.0 queued\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Delivered, Outcome::Failed]);
    let ClientEvent::Done(r) = &ev[0] else { panic!() };
    assert_eq!(r[1].reply, Reply::new(550, "5.1.1", "no such user"));
    // The failed recipient leaves state at the server: RSET first next time.
    s.begin(&txn(&["a@b.test"]), CONTENT);
    assert!(step(&mut s, b"").1.starts_with("RSET\r\nMAIL FROM:"));
}

#[test]
fn lock_step_without_pipelining_and_helo_fallback_rfc5321_3_2() {
    let mut s = session(TlsMode::Opportunistic);
    step(&mut s, b"220 old.test\r\n");
    assert_eq!(step(&mut s, b"502 what?\r\n").1, "HELO out.test\r\n");
    assert_eq!(step(&mut s, b"250 old.test\r\n").0.last(), Some(&ClientEvent::Ready));
    s.begin(&txn(&["a@b.test", "c@b.test"]), CONTENT);
    assert_eq!(step(&mut s, b"").1, "MAIL FROM:<s@a.test>\r\n", "no SIZE without the extension");
    assert_eq!(step(&mut s, b"250 ok\r\n").1, "RCPT TO:<a@b.test>\r\n");
    assert_eq!(step(&mut s, b"451 later\r\n").1, "RCPT TO:<c@b.test>\r\n");
    let (ev, out) = step(&mut s, b"250 ok\r\n");
    assert_eq!((out.as_str(), ev.as_slice()), ("DATA\r\n", [ClientEvent::NeedInput(Phase::DataInit)].as_slice()));
    assert_eq!(step(&mut s, b"354 go\r\n").0, [ClientEvent::SendContent]);
    s.content_sent();
    let (ev, _) = step(&mut s, b"250 ok\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred, Outcome::Delivered]);
}

#[test]
fn no_data_when_every_recipient_is_refused() {
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["a@b.test"]), CONTENT);
    step(&mut s, b"");
    step(&mut s, b"250 ok\r\n");
    let (ev, out) = step(&mut s, b"550 no\r\n");
    assert_eq!(out, "");
    assert_eq!(outcomes(&ev), [Outcome::Failed]);
}

#[test]
fn pipelined_354_without_recipients_gets_a_lone_dot_rfc2920_3_1() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), CONTENT);
    step(&mut s, b"");
    let (_, out) = step(&mut s, b"250 ok\r\n550 no\r\n354 go\r\n");
    assert_eq!(out, ".\r\n");
    let (ev, _) = step(&mut s, b"250 empty\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Failed]);
}

#[test]
fn mail_refused_fails_or_defers_everyone() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test", "c@b.test"]), CONTENT);
    step(&mut s, b"");
    let (ev, _) = step(&mut s, b"451 4.3.0 busy\r\n503 no mail\r\n503 no mail\r\n503 no mail\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred, Outcome::Deferred]);
}

#[test]
fn greeting_refusal_is_a_host_failure_rfc5321_3_1() {
    let mut s = session(TlsMode::Off);
    let (ev, out) = step(&mut s, b"554 go away\r\n");
    let failed = ClientEvent::HostFailed { reply: Reply::plain(554, "go away"), from_server: true };
    assert_eq!(ev, [failed, ClientEvent::Closed]);
    assert_eq!(out, "QUIT\r\n");
}

#[test]
fn closing_421_defers_the_transaction_without_quit_rfc5321_3_8() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), CONTENT);
    step(&mut s, b"");
    let (ev, out) = step(&mut s, b"421 4.3.2 shutting down\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
    assert_eq!((ev.last(), out.as_str()), (Some(&ClientEvent::Closed), ""));
}

#[test]
fn connection_lost_after_the_dot_defers() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), CONTENT);
    step(&mut s, b"");
    step(&mut s, b"250 ok\r\n250 ok\r\n354 go\r\n");
    s.content_sent();
    s.connection_lost(Reply::new(451, "4.4.2", "connection lost"));
    let (ev, _) = step(&mut s, b"");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
}

#[test]
fn size_and_smtputf8_refusals_before_sending_rfc1870_6_1_rfc6531_3_2() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), &[b'x'; 1001]);
    let (ev, out) = step(&mut s, b"");
    assert_eq!((outcomes(&ev), out.as_str()), (vec![Outcome::Failed], ""));
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["ü@b.test"]), CONTENT);
    let (ev, out) = step(&mut s, b"");
    assert_eq!((outcomes(&ev), out.as_str()), (vec![Outcome::Failed], ""));
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["ü@b.test"]), "Subject: t\r\n\r\n\u{e9}\r\n".as_bytes());
    assert!(step(&mut s, b"").1.starts_with("MAIL FROM:<s@a.test> SIZE=18 BODY=8BITMIME SMTPUTF8\r\n"));
}

#[test]
fn starttls_then_ehlo_again_rfc3207_4_2() {
    let mut s = session(TlsMode::Opportunistic);
    step(&mut s, b"220 mx\r\n");
    let (ev, out) = step(&mut s, b"250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
    assert_eq!((out.as_str(), ev.as_slice()), ("STARTTLS\r\n", [ClientEvent::NeedInput(Phase::Command)].as_slice()));
    // Bytes after the 220 are injected plaintext: discarded, never replies.
    let (ev, _) = step(&mut s, b"220 go ahead\r\n250 injected\r\n");
    assert_eq!(ev, [ClientEvent::StartTls]);
    s.tls_established();
    let (ev, out) = step(&mut s, b"");
    assert_eq!(
        (out.as_str(), ev.as_slice()),
        ("EHLO out.test\r\n", [ClientEvent::NeedInput(Phase::Command)].as_slice())
    );
    assert_eq!(step(&mut s, b"250-mx\r\n250 STARTTLS\r\n").0, [ClientEvent::Ready], "no second STARTTLS");
    assert!(s.is_tls() && !s.extensions().pipelining, "extensions come from the new EHLO");
}

#[test]
fn starttls_refused_opportunistic_goes_on_required_gives_up() {
    let mut s = session(TlsMode::Opportunistic);
    step(&mut s, b"220 mx\r\n");
    step(&mut s, b"250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(step(&mut s, b"454 4.7.0 no TLS today\r\n").0, [ClientEvent::Ready]);
    let mut s = session(TlsMode::Require);
    step(&mut s, b"220 mx\r\n");
    let (ev, _) = step(&mut s, b"250 mx\r\n");
    assert!(matches!(&ev[0], ClientEvent::HostFailed { reply, from_server: false } if reply.code == 451));
}

#[test]
fn garbage_from_the_server_ends_the_session_cleanly() {
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), CONTENT);
    step(&mut s, b"");
    let (ev, _) = step(&mut s, b"HTTP/1.1 400 Bad Request\r\n");
    assert_eq!(outcomes(&ev), [Outcome::Deferred]);
    assert_eq!(ev.last(), Some(&ClientEvent::Closed));
    // A reply while idle is out of step too.
    let mut s = ready(EHLO_FULL);
    let (ev, _) = step(&mut s, b"250 surprise\r\n");
    assert_eq!(ev, [ClientEvent::Ready], "not read while idle");
}

/// Drives the session until it needs input, at `now`.
fn pending_at(s: &mut ClientSession, now: Instant) -> ClientEvent {
    loop {
        match s.next_event(now) {
            ClientEvent::Done(_) | ClientEvent::HostFailed { .. } => continue,
            e => return e,
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Issue 16 item 3, seen on the wire: a greeting trickled at a byte every
/// 2 s kept a delivery in flight > 54 s with `greeting_timeout = 5s`.
#[test]
fn a_trickled_greeting_times_out_as_a_whole_rfc5321_4_5_3_2_1() {
    let t = Timeouts { greeting: secs(5), ..Timeouts::default() };
    let mut s = ClientSession::new("out.test", TlsMode::Off, t);
    assert_eq!(s.next_event(t0()), ClientEvent::NeedInput(Phase::Greeting));
    assert_eq!(s.poll_timeout(), Some(t0() + secs(5)));
    for (i, b) in b"220 mx".iter().enumerate() {
        s.feed(&[*b]);
        let now = t0() + secs(2 * i as u64);
        if now >= t0() + secs(5) {
            break;
        }
        assert_eq!(s.next_event(now), ClientEvent::NeedInput(Phase::Greeting));
        assert_eq!(s.poll_timeout(), Some(t0() + secs(5)), "bytes do not extend the phase");
    }
    s.handle_timeout(t0() + secs(5));
    match s.next_event(t0() + secs(5)) {
        ClientEvent::HostFailed { reply, from_server: false } => {
            assert_eq!((reply.code, reply.enhanced.as_deref()), (451, Some("4.4.2")));
            assert!(reply.text.contains("greeting"), "{reply}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(s.next_event(t0() + secs(5)), ClientEvent::Closed);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn each_reply_is_a_phase_with_its_own_timeout_rfc5321_4_5_3_2() {
    let t = Timeouts {
        greeting: secs(10),
        command: secs(20),
        data_init: secs(30),
        data_block: secs(40),
        data_done: secs(50),
        quit: secs(5),
    };
    let mut s = ClientSession::new("out.test", TlsMode::Off, t);
    s.next_event(t0());
    s.feed(b"220 mx\r\n");
    assert_eq!(s.next_event(t0() + secs(1)), ClientEvent::NeedInput(Phase::Command));
    assert_eq!(s.poll_timeout(), Some(t0() + secs(21)), "EHLO's write and reply");
    s.feed(b"250 mx\r\n");
    assert_eq!(s.next_event(t0() + secs(2)), ClientEvent::Ready);
    assert_eq!(s.poll_timeout(), None, "idle between transactions");
    s.begin(&txn(&["a@b.test"]), CONTENT);
    assert_eq!(pending_at(&mut s, t0() + secs(3)), ClientEvent::NeedInput(Phase::Command));
    s.feed(b"250 ok\r\n250 ok\r\n");
    assert_eq!(pending_at(&mut s, t0() + secs(4)), ClientEvent::NeedInput(Phase::DataInit));
    assert_eq!(s.poll_timeout(), Some(t0() + secs(34)));
    s.feed(b"354 go\r\n");
    assert_eq!(pending_at(&mut s, t0() + secs(5)), ClientEvent::SendContent);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(45)), "one data block for a small message");
    assert_eq!(s.take_content(), dot_stuff(CONTENT));
    s.content_sent();
    assert_eq!(pending_at(&mut s, t0() + secs(6)), ClientEvent::NeedInput(Phase::DataDone));
    assert_eq!(s.poll_timeout(), Some(t0() + secs(56)));
    s.handle_timeout(t0() + secs(56));
    match s.next_event(t0() + secs(56)) {
        ClientEvent::Done(r) => assert_eq!((r[0].outcome, r[0].from_server), (Outcome::Deferred, false)),
        e => panic!("{e:?}"),
    }
}

#[test]
fn content_deadline_grows_per_started_mib() {
    let t = Timeouts { data_block: secs(10), ..Timeouts::default() };
    assert_eq!(t.content(0), secs(10));
    assert_eq!(t.content(1 << 20), secs(10));
    assert_eq!(t.content((1 << 20) + 1), secs(20));
    assert_eq!(t.content(25 << 20), secs(250));
}

#[test]
fn handshake_runs_under_the_command_timeout() {
    let mut s = session(TlsMode::Opportunistic);
    step(&mut s, b"220 mx\r\n");
    step(&mut s, b"250-mx\r\n250 STARTTLS\r\n");
    s.feed(b"220 go\r\n");
    assert_eq!(s.next_event(t0() + secs(1)), ClientEvent::StartTls);
    assert_eq!(s.poll_timeout(), Some(t0() + secs(301)));
    s.tls_established();
    assert_eq!(s.poll_timeout(), None);
}

/// RFC 6152 3: a server without 8BITMIME gets 8-bit mail converted, not
/// passed through (issue 16 item 10).
#[test]
fn eight_bit_content_is_converted_for_a_7bit_server_rfc6152_3() {
    let mut s = ready(EHLO_PLAIN);
    let content = "Subject: t\r\n\r\ncaf\u{e9}\r\n.dot\r\n".as_bytes();
    s.begin(&txn(&["a@b.test"]), content);
    let (_, out) = step(&mut s, b"");
    assert_eq!(out, "MAIL FROM:<s@a.test>\r\n", "no BODY=8BITMIME");
    step(&mut s, b"250 ok\r\n");
    step(&mut s, b"250 ok\r\n");
    assert_eq!(step(&mut s, b"354 go\r\n").0, [ClientEvent::SendContent]);
    let wire = String::from_utf8(s.take_content()).unwrap();
    assert!(wire.is_ascii(), "{wire}");
    assert!(wire.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n..dot\r\n.\r\n"), "{wire}");
}

/// RFC 6376 5.3 / RFC 6152 3: converting a signed message breaks its
/// signature, so it goes back to the sender instead; 7-bit signed mail
/// and 8BITMIME servers are unaffected.
#[test]
fn a_dkim_signed_8bit_message_is_not_converted_after_signing_but_bounces_5_6_3() {
    let signed = "DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s;\r\n\tbh=x; b=y\r\nSubject: t\r\n\r\ncaf\u{e9}\r\n";
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["a@b.test", "c@b.test"]), signed.as_bytes());
    let (ev, out) = step(&mut s, b"");
    assert_eq!(out, "", "nothing is sent");
    let ClientEvent::Done(r) = &ev[0] else { panic!("{ev:?}") };
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].outcome, r[0].reply.code, r[0].reply.enhanced.as_deref()), (Outcome::Failed, 554, Some("5.6.3")));
    assert!(r[0].reply.text.contains("DKIM-signed"), "{:?}", r[0].reply);
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["a@b.test"]), b"DKIM-Signature: v=1\r\nSubject: t\r\n\r\nplain\r\n");
    assert_eq!(step(&mut s, b"").1, "MAIL FROM:<s@a.test>\r\n", "7-bit signed mail goes as it is");
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), signed.as_bytes());
    assert!(step(&mut s, b"").1.contains(" BODY=8BITMIME"), "an 8BITMIME server takes it unchanged");
}

#[test]
fn eight_bit_content_that_cannot_be_converted_bounces_5_6_3() {
    let mut s = ready(EHLO_PLAIN);
    s.begin(&txn(&["a@b.test"]), "Subject: caf\u{e9}\r\n\r\nx\r\n".as_bytes());
    let (ev, out) = step(&mut s, b"");
    assert_eq!(out, "");
    let ClientEvent::Done(r) = &ev[0] else { panic!("{ev:?}") };
    assert_eq!((r[0].outcome, r[0].reply.code, r[0].reply.enhanced.as_deref()), (Outcome::Failed, 554, Some("5.6.3")));
    // An 8BITMIME server takes it as it is.
    let mut s = ready(EHLO_FULL);
    s.begin(&txn(&["a@b.test"]), "Subject: caf\u{e9}\r\n\r\nx\r\n".as_bytes());
    assert!(step(&mut s, b"").1.contains(" BODY=8BITMIME"));
}
